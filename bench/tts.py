"""Listening check of the TTS: synthesise every fixed prompt of the sample campaigns and
transcribe it with Whisper (no hints), then compare. Prints one JSON object: per-prompt
character error rate (CER), overall mean/p95 CER, synthesis rate and audio seconds.

    .venv/bin/python bench/tts.py [--campaigns examples/campaigns/*.yml] [--worst 15]

Both sides are compared as spoken: digits in the reference and in the transcript go through
the front end's ``to_speakable`` (Whisper writes "5元" for 五元), 幺 counts as 一, and
punctuation, spaces and case do not count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.campaigns.definition import load_definition  # noqa: E402
from voice.asr.base import Hints  # noqa: E402
from voice.asr.models import whisper_model_dir  # noqa: E402
from voice.asr.snap import edit_distance, normalize  # noqa: E402
from voice.asr.whisper_engine import WhisperEngine, WhisperSettings  # noqa: E402
from voice.tts.cache import PromptCache  # noqa: E402
from voice.tts.espeak import SAMPLE_RATE, EspeakSynthesizer  # noqa: E402
from voice.tts.frontend import to_speakable  # noqa: E402
from voice.tts.prompts import ContactWording, contact_slot_values, plan_prompts  # noqa: E402
from voice.tts.worker import warm_many  # noqa: E402

CONTACTS = [ContactWording("张伟", "男", {"trial_end": "2026-12-01"}),
            ContactWording("李娜", "女", {}), ContactWording(None, None, {})]
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def spoken(text: str) -> str:
    """What counts in the comparison: the words as said, simplified, no punctuation."""
    return normalize(to_speakable(normalize(text))).replace("幺", "一").lower()


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = spoken(reference), spoken(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def prompts(campaign_files: list[Path]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in campaign_files:
        definition = load_definition(path)
        values = contact_slot_values(definition, CONTACTS, NOW)
        for text, response in plan_prompts(definition, values).texts.items():
            texts.setdefault(text, response)
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", nargs="*", type=Path,
                        default=sorted((REPO / "examples" / "campaigns").glob("*.yml")))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--worst", type=int, default=15)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="keep the synthesised prompts here (default: a temporary folder)")
    args = parser.parse_args(argv)

    texts = prompts(args.campaigns)
    with tempfile.TemporaryDirectory(prefix="waihu-bench-tts-") as tmp:
        cache = PromptCache(args.cache_dir or Path(tmp), EspeakSynthesizer())
        started = time.perf_counter()
        warm = warm_many(cache, texts, processes=args.processes)
        synth_seconds = time.perf_counter() - started

        engine = WhisperEngine(WhisperSettings(whisper_model_dir()))
        engine.warm_up()
        rows: list[dict[str, Any]] = []
        audio_seconds = 0.0
        decode_seconds = 0.0
        for text, response in texts.items():
            pcm = cache.lookup(text)
            if pcm is None:
                rows.append({"response": response, "text": text, "cer": 1.0,
                             "heard": "(synthesis failed)"})
                continue
            audio_seconds += len(pcm) / 2 / SAMPLE_RATE
            recognizer = engine.open(Hints())
            recognizer.feed(pcm)
            transcript = recognizer.finish()
            decode_seconds += transcript.decode_ms / 1000
            rows.append({"response": response, "text": text, "heard": transcript.raw,
                         "cer": round(cer(text, transcript.raw), 3),
                         "audio_s": round(len(pcm) / 2 / SAMPLE_RATE, 2)})

    scores = sorted(row["cer"] for row in rows)
    p95 = scores[min(len(scores) - 1, int(0.95 * len(scores)))] if scores else 0.0
    print(json.dumps({
        "prompts": len(rows),
        "campaigns": [p.name for p in args.campaigns],
        "voice": cache.synthesizer.voice_id,
        "cer_mean": round(statistics.fmean(scores), 3) if scores else 0.0,
        "cer_median": round(statistics.median(scores), 3) if scores else 0.0,
        "cer_p95": p95,
        "synthesis": {"processes": args.processes, "seconds": round(synth_seconds, 2),
                      "prompts_per_s": round(warm["synthesised"] / synth_seconds, 2)
                      if synth_seconds else None,
                      "slowest_s": round(warm["slowest_seconds"], 2),
                      "failed": warm["failed"]},
        "audio_seconds": round(audio_seconds, 1),
        "asr_decode_seconds": round(decode_seconds, 1),
        "worst": sorted(rows, key=lambda r: -r["cer"])[:args.worst],
        "all": rows,
    }, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
