"""bot.services.Process.stop ends what the process started too (Sanic's worker outlives a
parent killed alone, and left the test run with stray servers)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from bot.services import Process

# A parent that starts a child ignoring SIGTERM, writes the child's pid, then waits.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().split()[2] != "Z"


def test_stop_ends_the_children_as_well(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    process = Process("parent", [sys.executable, "-c", PARENT, str(pid_file)],
                      tmp_path / "parent.log", dict(os.environ))
    process.start()
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, process.tail()
        time.sleep(0.05)
    child = int(pid_file.read_text())
    try:
        process.stop(timeout=5)
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        if alive(child):
            os.kill(child, 9)


def test_a_process_that_already_ended_is_not_signalled_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once its leader is reaped, the group id may belong to someone else's processes."""
    process = Process("quick", [sys.executable, "-c", "pass"], tmp_path / "quick.log",
                      dict(os.environ))
    process.start()
    assert process.popen is not None
    process.popen.wait(20)
    signalled: list[int] = []
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: signalled.append(pgid))
    process.stop()
    assert signalled == []
