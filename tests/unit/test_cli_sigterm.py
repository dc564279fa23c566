"""A SIGTERM ends a waihu command through its cleanup (bot.cli.exit_on_sigterm): before,
`kill` of `waihu simulate` left its Rasa server and action server running."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_runs_the_cleanup(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from bot.cli import exit_on_sigterm
        exit_on_sigterm()
        try:
            print("ready", flush=True)
            time.sleep(30)
        finally:
            open({str(marker)!r}, "w").write("yes")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert marker.read_text() == "yes"
