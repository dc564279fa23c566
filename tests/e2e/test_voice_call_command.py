"""`waihu call URI --campaign FILE --json` as a user runs it: one real call through the real
Rasa server, action server, gateway (baresip), Whisper and TTS to a SIP endpoint, here a
virtual customer (`python -m voice.simphone`) listening on a free port of 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voice.telephony.base import free_port

pytestmark = [pytest.mark.rasa, pytest.mark.sip]

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "13800000001"


@pytest.fixture(scope="module")
def customer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The do_not_call persona on a free SIP port; its URI."""
    folder = tmp_path_factory.mktemp("callee")
    shutil.copy(ROOT / "examples" / "personas" / "marketing" / "do_not_call.yml", folder)
    (folder / "numbers.json").write_text(json.dumps({NUMBER: "do_not_call"}))
    port = free_port()
    phone = subprocess.Popen(
        [sys.executable, "-m", "voice.simphone", "--listen", f"127.0.0.1:{port}",
         "--personas", str(folder), "--numbers", str(folder / "numbers.json")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert phone.stdout is not None
        deadline = time.monotonic() + 300  # synthesises the persona's phrases first
        while time.monotonic() < deadline:
            line = phone.stdout.readline()
            if "simphone listening" in line or not line:
                break
        assert phone.poll() is None, "the virtual customer did not start"
        yield f"sip:{NUMBER}@127.0.0.1:{port}"
    finally:
        phone.terminate()
        try:
            phone.wait(10)
        except subprocess.TimeoutExpired:
            phone.kill()
            phone.wait(5)


def test_one_call_prints_outcome_transcript_and_recording(customer: str,
                                                         tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voice.cli", "--database", f"sqlite:///{tmp_path / 'call.db'}",
         "call", customer, "--campaign", str(ROOT / "examples" / "campaigns" / "marketing.yml"),
         "--name", "王芳", "--gender", "female", "--json",
         "--force"],  # a test line: whatever the hour, outside the calling windows too
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert (out["dial_result"], out["sip_status"]) == ("answered", 200), out
    assert out["outcome"] == "do_not_call", out["transcript"]
    turns = out["transcript"]
    assert turns[0]["speaker"] == "bot" and "王女士" in "".join(t["text"] for t in turns[:2])
    request = [t for t in turns if t["speaker"] == "customer"][0]
    assert request["input_mode"] == "speech" and request["asr_confidence"] is not None
    assert request["intent"] == "do_not_call", turns  # what the classifier made of it
    recording = Path(out["recording"])
    assert hashlib.sha256(recording.read_bytes()).hexdigest() == out["recording_sha256"]
