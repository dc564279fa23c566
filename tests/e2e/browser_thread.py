"""Headless Chromium for the SIP tests, driven by Playwright's sync API from a thread of its own.

A SIP test carries its call on the event loop (the gateway, the phones); the desk's page
objects (tests/e2e/test_console_desk.py: `Desk`, `Pop`, `Frames`, `log_in`, `shot`) are
written for the sync API, which refuses to run inside a running loop and binds each object
to the thread that made it.  So every browser step runs on one worker thread
(`await chromium.run(fn, *args)`) while the loop goes on with the call, and the same page
objects serve the browser-only and the SIP journeys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, Playwright, sync_playwright

T = TypeVar("T")


class ChromiumThread:
    def __init__(self, executable: Path) -> None:
        self.executable = executable
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._driver: Playwright | None = None
        self._browser: Browser | None = None

    @property
    def browser(self) -> Browser:
        """Only for use inside `run` (the browser belongs to the worker thread)."""
        assert self._browser is not None, "start() first"
        return self._browser

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, partial(work, *args))

    def _launch(self) -> None:
        self._driver = sync_playwright().start()
        # No click precedes an offer in a test: let the pop's sound play without one.
        self._browser = self._driver.chromium.launch(
            executable_path=str(self.executable), headless=True,
            args=["--autoplay-policy=no-user-gesture-required"])

    def _close(self) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            if self._driver is not None:
                self._driver.stop()

    @classmethod
    @contextlib.asynccontextmanager
    async def started(cls, executable: Path) -> AsyncIterator[ChromiumThread]:
        chromium = cls(executable)
        try:
            await chromium.run(chromium._launch)
            yield chromium
        finally:
            await chromium.run(chromium._close)
            chromium._pool.shutdown(wait=True)
