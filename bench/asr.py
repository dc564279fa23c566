"""How well the gateway's ASR hears the customers: the persona replies of the sample
campaigns (``--variants``: also the paraphrase set), synthesised in two customer voices
(Kokoro zf_xiaobei, the virtual customers' voice, and the male zm_yunjian), sent through
G.711 clean and with line noise at ``--noise-db`` SNR, and transcribed by every available
engine and model with the hints the gateway would listen with at that question
(bench/asrbench/corpus.py says how the question is found).  Prints one JSON object:
``results.<engine>.<voice>.<condition>`` with the exact-match rate, hint-snap accuracy,
meaning accuracy, character error rate, false snaps on out-of-list replies (consent and
do-not-call apart: both must be 0) and time per utterance (p50/p95), and ``summary``.

    .venv/bin/python bench/asr.py [--engines whisper,vosk] [--voices zf_xiaobei,zm_yunjian]
                                  [--limit N] [--noise-db 15] [--noise pink] [--variants]
                                  [--json out.json]

Engines: ``whisper:<folder>`` for every faster-whisper model folder under var/models (and
``$WAIHU_WHISPER_MODEL``), ``vosk:<folder>`` when the Mandarin Vosk model is present;
``--engines whisper`` takes every model of that engine.  Each is set up as the gateway sets
it up (``WhisperSettings`` defaults, one thread).  Synthesised replies are cached in
var/tts/cache (the virtual customers' cache, keyed by voice): a second run only decodes.
The whole clip is decoded, Kokoro's lead and tail silences included (the gateway's VAD
would trim some of them).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and would shadow `voice`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench.asrbench import CACHE_DIR  # noqa: E402
from bench.asrbench.audio import CODECS, line  # noqa: E402
from bench.asrbench.corpus import Utterance, utterances  # noqa: E402
from bench.asrbench.score import Heard, summarise, understood  # noqa: E402
from voice.asr import models  # noqa: E402
from voice.asr.base import AsrEngine  # noqa: E402
from voice.asr.snap import interpret  # noqa: E402
from voice.tts.cache import PromptCache  # noqa: E402
from voice.tts.kokoro import KokoroSynthesizer  # noqa: E402

DEFAULT_VOICES = "zf_xiaobei,zm_yunjian"


def whisper_folders() -> list[Path]:
    """Every faster-whisper model folder under var/models, and the configured one."""
    found = [models.whisper_model_dir()]
    if models.MODELS_DIR.is_dir():
        found += sorted(p for p in models.MODELS_DIR.iterdir()
                        if (p / "model.bin").is_file() and (p / "tokenizer.json").is_file())
    unique: list[Path] = []
    for path in found:
        if (path / "model.bin").is_file() and path.resolve() not in [u.resolve() for u in unique]:
            unique.append(path)
    return unique


def available_engines() -> dict[str, Callable[[], AsrEngine]]:
    """name → a factory of the engine as the gateway would run it."""
    from voice.asr.vosk_engine import VoskEngine, VoskSettings
    from voice.asr.whisper_engine import WhisperEngine, WhisperSettings

    engines: dict[str, Callable[[], AsrEngine]] = {}
    for folder in whisper_folders():
        engines[f"whisper:{folder.name}"] = functools.partial(
            WhisperEngine, WhisperSettings(folder, cpu_threads=1))
    vosk = models.vosk_cn_model()
    if vosk is not None:
        engines[f"vosk:{vosk.name}"] = functools.partial(VoskEngine, VoskSettings(vosk))
    return engines


def chosen(engines: dict[str, Callable[[], AsrEngine]], wanted: str
           ) -> tuple[dict[str, Callable[[], AsrEngine]], list[str]]:
    """The engines ``wanted`` names (``whisper`` or ``whisper:<folder>``), and the names
    asked for that are not available."""
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    out = {name: make for name, make in engines.items()
           if any(name == w or name.split(":")[0] == w for w in names)}
    missing = [w for w in names if not any(n == w or n.split(":")[0] == w for n in out)]
    return out, missing


def replies(voice: str, corpus: list[Utterance], cache_dir: Path) -> tuple[dict[str, bytes],
                                                                           list[float]]:
    """Each reply's PCM in ``voice`` (from the cache, else synthesised and cached), and the
    seconds each synthesis took."""
    cache = PromptCache(cache_dir, KokoroSynthesizer(voice))
    pcm: dict[str, bytes] = {}
    took: list[float] = []
    for utterance in corpus:
        if utterance.text in pcm:
            continue
        found = cache.lookup(utterance.text)
        if found is None:
            found, seconds = cache.synthesize(utterance.text)
            took.append(seconds)
            print(f"[tts {voice}] {utterance.text} {seconds:.2f}s", file=sys.stderr, flush=True)
        pcm[utterance.text] = found
    return pcm, took


def decode(engine: AsrEngine, utterance: Utterance, audio: bytes) -> Heard:
    started = time.perf_counter()
    recognizer = engine.open(utterance.hints)
    recognizer.feed(audio)
    transcript = recognizer.finish()
    return Heard(utterance.text, utterance.question, utterance.hints, transcript.raw,
                 transcript.text, transcript.unclear, time.perf_counter() - started)


def wrong(rows: list[Heard]) -> list[dict[str, str]]:
    """The replies whose meaning did not come through, for reading."""
    out = []
    for row in rows:
        if not understood(row):
            out.append({"said": row.reference, "question": row.question, "heard": row.raw,
                        "got": "[unclear]" if row.unclear else row.text,
                        "meant": interpret(row.reference, row.hints).text})
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    folders = [p for p in sorted((REPO / "examples" / "personas").iterdir()) if p.is_dir()]
    if args.variants:
        folders += [p for p in sorted((REPO / "examples" / "personas-variants").iterdir())
                    if p.is_dir()]
    corpus = utterances(folders)
    if args.limit:
        corpus = corpus[:args.limit]
    engines, missing = chosen(available_engines(), args.engines)
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    conditions: dict[str, float | None] = {"clean": None,
                                           f"{args.noise}_{args.noise_db:g}dB": args.noise_db}
    audio: dict[str, dict[str, bytes]] = {}
    synthesis: dict[str, Any] = {}
    for voice in voices:
        audio[voice], took = replies(voice, corpus, args.cache_dir)
        synthesis[voice] = {"synthesised": len(took), "seconds": round(sum(took), 1)}
    result: dict[str, Any] = {
        "date": datetime.now().date().isoformat(),
        "personas": [str(f.relative_to(REPO)) for f in folders],
        "utterances": len(corpus),
        "in_list_replies": None,
        "codec": args.codec, "noise": args.noise, "seed": args.seed,
        "voices": voices, "conditions": list(conditions), "synthesis": synthesis,
        "engines": {}, "unavailable": missing, "results": {}, "summary": {},
        "questions": {u.text + " @ " + u.question: list(u.personas) for u in corpus},
    }
    for name, make in engines.items():
        engine = make()
        started = time.perf_counter()
        engine.warm_up()
        result["engines"][name] = {"describe": engine.describe(),
                                   "warm_up_s": round(time.perf_counter() - started, 1)}
        for voice in voices:
            for condition, snr in conditions.items():
                rows = []
                for utterance in corpus:
                    pcm = line(audio[voice][utterance.text], args.codec, snr, args.noise,
                               f"{voice}\n{utterance.text}", args.seed)
                    rows.append(decode(engine, utterance, pcm))
                    print(f"[{name} {voice} {condition}] {utterance.text} → {rows[-1].raw!r}"
                          f" → {rows[-1].text!r}", file=sys.stderr, flush=True)
                figures = summarise(rows)
                result["in_list_replies"] = figures["in_list"]
                result["results"].setdefault(name, {}).setdefault(voice, {})[condition] = {
                    **figures, "wrong": wrong(rows)}
                result["summary"][f"{name} {voice} {condition}"] = {
                    key: figures[key] for key in ("exact_rate", "snap_accuracy",
                                                  "meaning_accuracy", "cer")} | {
                    "false_consent": figures["false_snaps"]["consent"],
                    "false_dnc": figures["false_snaps"]["do_not_call"],
                    "false_other": figures["false_snaps"]["other"],
                    "p50_ms": figures["time_ms"]["p50"], "p95_ms": figures["time_ms"]["p95"]}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="whisper,vosk",
                        help="comma-separated: whisper, vosk, or whisper:<model folder>")
    parser.add_argument("--voices", default=DEFAULT_VOICES, help="Kokoro voices, comma-separated")
    parser.add_argument("--limit", type=int, default=0, help="only the first N replies")
    parser.add_argument("--noise-db", type=float, default=15.0, help="SNR of the noisy line")
    parser.add_argument("--noise", choices=("pink", "white"), default="pink")
    parser.add_argument("--seed", type=int, default=0, help="of the line noise")
    parser.add_argument("--codec", choices=sorted(CODECS), default="pcma")
    parser.add_argument("--variants", action="store_true",
                        help="also the paraphrase set (examples/personas-variants)")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result = run(args)
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
