"""`waihu console` as its own process on a free 127.0.0.1 port, for the browser tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from bot.services import free_port

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_console(database_url: str, log_path: Path) -> Iterator[str]:
    """The console's base URL once /login answers (60 s at most); stopped at the end."""
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "voice.cli", "--database", database_url, "console",
             "--port", str(port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/login", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                assert server.poll() is None, "the console exited at start"
                assert time.monotonic() < deadline, "the console did not answer within 60 s"
                time.sleep(0.2)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
