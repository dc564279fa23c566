"""`waihu call URI --campaign FILE --json` as a user runs it: one real call through the real
Rasa server, action server, gateway (baresip), Whisper and TTS to a SIP endpoint, here a
virtual customer (`python -m voice.simphone`) listening on a free port of 127.0.0.1, which
records what it heard: the bot's voice as it came over RTP (G.711)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voice.telephony.base import free_port

pytestmark = [pytest.mark.rasa, pytest.mark.sip]

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "13800000001"


@pytest.fixture(scope="module")
def heard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the virtual customer writes each call's recording (left: what it heard)."""
    return tmp_path_factory.mktemp("heard")


@pytest.fixture(scope="module")
def customer(tmp_path_factory: pytest.TempPathFactory, heard: Path) -> Iterator[str]:
    """The do_not_call persona on a free SIP port; its URI."""
    folder = tmp_path_factory.mktemp("callee")
    shutil.copy(ROOT / "examples" / "personas" / "marketing" / "do_not_call.yml", folder)
    (folder / "numbers.json").write_text(json.dumps({NUMBER: "do_not_call"}))
    port = free_port()
    phone = subprocess.Popen(
        [sys.executable, "-m", "voice.simphone", "--listen", f"127.0.0.1:{port}",
         "--personas", str(folder), "--numbers", str(folder / "numbers.json"),
         "--record-dir", str(heard)],
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


@pytest.fixture(scope="module")
def called(customer: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `waihu call` to the customer: its JSON output."""
    db = tmp_path_factory.mktemp("call") / "call.db"
    done = subprocess.run(
        [sys.executable, "-m", "voice.cli", "--database", f"sqlite:///{db}",
         "call", customer, "--campaign", str(ROOT / "examples" / "campaigns" / "marketing.yml"),
         "--name", "王芳", "--gender", "female", "--json",
         "--force"],  # a test line: whatever the hour, outside the calling windows too
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return out


def test_one_call_prints_outcome_transcript_and_recording(called: dict[str, Any]) -> None:
    out = called
    assert (out["dial_result"], out["sip_status"]) == ("answered", 200), out
    assert out["outcome"] == "do_not_call", out["transcript"]
    turns = out["transcript"]
    assert turns[0]["speaker"] == "bot" and "王女士" in "".join(t["text"] for t in turns[:2])
    request = [t for t in turns if t["speaker"] == "customer"][0]
    assert request["input_mode"] == "speech" and request["asr_confidence"] is not None
    assert request["intent"] == "do_not_call", turns  # what the classifier made of it
    recording = Path(out["recording"])
    assert hashlib.sha256(recording.read_bytes()).hexdigest() == out["recording_sha256"]


def test_the_customer_hears_the_campaigns_kokoro_voice(called: dict[str, Any],
                                                       heard: Path) -> None:
    """The bot's opening as the customer's phone received it over RTP (A-law/µ-law) is the
    campaign's default voice, Kokoro's zf_xiaoyi: it follows the cached Kokoro prompt sample
    by sample (not espeak-ng, not the customers' own zf_xiaobei), and Whisper, which the
    project does not tune, hears it back as the words of the prompts."""
    from faster_whisper import WhisperModel
    from pypinyin import lazy_pinyin

    from voice.asr.models import whisper_model
    from voice.asr.snap import edit_distance, normalize
    from voice.asr.whisper_engine import upsample
    from voice.tts.cache import PromptCache
    from voice.tts.voices import DEFAULT, synthesizer

    [wav] = heard.glob("*.wav")
    with wave.open(str(wav)) as recording:
        frames = np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")
    got = frames[0::2].astype(np.float64)  # left: what the customer heard
    greeting = next(t["text"] for t in called["transcript"] if t["speaker"] == "bot")
    pcm = PromptCache(ROOT / "var" / "tts" / "cache", synthesizer(DEFAULT)).lookup(greeting)
    assert pcm is not None, "the greeting was not synthesised in the default voice"
    want = np.frombuffer(pcm, dtype="<i2").astype(np.float64)[:8000 * 2]
    start = int(np.argmax(np.abs(got) > 300))  # the first sound the customer heard
    window = got[max(0, start - 4000): start + 4000 + len(want)]
    best = max(float(np.dot(window[k:k + len(want)], want))
               / (np.linalg.norm(window[k:k + len(want)]) * np.linalg.norm(want) + 1e-9)
               for k in range(0, len(window) - len(want), 1))
    assert best > 0.95, f"what the customer heard is not the zf_xiaoyi greeting ({best:.2f})"

    model = whisper_model()
    assert model is not None
    # The greeting (with the question, if it followed at once) ends at the first 0.6 s of
    # silence.
    head = got[start:start + 8000 * 20]
    loud = np.abs(head[:len(head) // 160 * 160]).reshape(-1, 160).max(axis=1) > 300
    quiet = np.convolve(~loud, np.ones(30), mode="valid") == 30
    end = start + 160 * (int(np.argmax(quiet)) if quiet.any() else len(loud))
    opening = got[start:end].astype("<i2").tobytes()
    segments, _ = WhisperModel(str(model), device="cpu", compute_type="int8").transcribe(
        upsample(opening), language="zh", beam_size=5, temperature=0.0,
        condition_on_previous_text=False, without_timestamps=True)
    words = lazy_pinyin(normalize("".join(segment.text for segment in segments)))
    bot = [t["text"] for t in called["transcript"] if t["speaker"] == "bot"]
    # Syllables, not characters: Whisper writes the company name 示例 as 势力 (same sound).
    errors = min(edit_distance(lazy_pinyin(normalize(said)), words) / len(lazy_pinyin(
        normalize(said))) for said in (bot[0], bot[0] + bot[1].removesuffix("（被打断）")))
    assert errors < 0.4, (bot[:2], words, errors)  # Kokoro: about 0.2; espeak-ng: 0.77
