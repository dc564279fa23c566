"""How well the bot's voices are understood on the telephone: every prompt of the sample
campaigns, synthesised with each voice, sent through G.711 (8 kHz A-law or µ-law, encoded and
decoded as the gateway sends it), and transcribed by an ASR model the project does not tune
(stock faster-whisper, no prompt, no hints).  Prints one JSON object:
``voices.<name>.cer_overall`` (character errors over all reference characters), the mean,
median and p95 of the per-prompt CER, the worst prompts, every prompt whose numbers, dates or
prices came back wrong, and the synthesis time per prompt.

    .venv/bin/python bench/tts.py [--voices zf_xiaoyi,zm_yunxi,espeak] [--codec pcma]
                                  [--cache-dir var/tts/cache] [--warm-up marketing]
                                  [--only REGEX] [--rescore EARLIER.json]

The judge is Whisper *base* from the package registry (``var/models/whisper-base``): Whisper
small is published there only in part (two of its parts; the joined file does not load), so
it cannot be had on these machines, nor any other Mandarin model (PyPI, Debian and npm were
searched: docs/benchmarks.md).  ``--model DIR`` takes any faster-whisper model folder.

Both sides are normalised alike (``bench.ttsbench.compare``, which lists what and why):
script, width, case and punctuation do not count, numbers are compared by value (Whisper
writes "5元" for 五元, "10010" for 幺零零幺零), 的/地/得 and 他/她/它 are one; a number heard
as another value is an error, and each prompt with one is listed under ``number_errors``
with what was said, what was heard and its kind (date, price, time, key, phone, count).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ttsbench.compare import (  # noqa: E402
    cer_counts,
    compared,
    error_causes,
    number_errors,
    spoken,
)
from bot.campaigns.definition import BotVoice, load_definition  # noqa: E402
from voice.asr.models import whisper_model_dir  # noqa: E402
from voice.asr.snap import edit_distance  # noqa: E402
from voice.asr.whisper_engine import upsample  # noqa: E402
from voice.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode  # noqa: E402
from voice.tts.cache import PromptCache  # noqa: E402
from voice.tts.espeak import SAMPLE_RATE  # noqa: E402
from voice.tts.prompts import ContactWording, contact_slot_values, plan_prompts  # noqa: E402
from voice.tts.voices import synthesizer  # noqa: E402

CONTACTS = [ContactWording("张伟", "男", {"trial_end": "2026-12-01"}),
            ContactWording("李娜", "女", {}), ContactWording(None, None, {})]
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
DEFAULT_VOICES = "zf_xiaoyi,zm_yunxi,espeak"
CODECS: dict[str, Callable[[bytes], bytes]] = {
    "pcma": lambda pcm: alaw_decode(alaw_encode(pcm)),
    "pcmu": lambda pcm: ulaw_decode(ulaw_encode(pcm)),
    "none": lambda pcm: pcm,
}

def voice_of(spec: str) -> tuple[str, BotVoice]:
    """``zf_xiaoyi`` / ``kokoro:zm_yunxi`` / ``espeak`` → (its name in the report, voice)."""
    engine, _, name = spec.partition(":") if ":" in spec else (
        ("espeak", "", "") if spec == "espeak" else ("kokoro", "", spec))
    voice = BotVoice.model_validate({"engine": engine, **({"name": name} if name else {})})
    return (voice.name if engine == "kokoro" else engine), voice


def prompts(campaign_files: Iterable[Path]) -> dict[str, str]:
    """Every text of the campaigns (as the bench's three contacts hear them) → response."""
    texts: dict[str, str] = {}
    for path in campaign_files:
        definition = load_definition(path)
        values = contact_slot_values(definition, CONTACTS, NOW)
        for text, response in plan_prompts(definition, values).texts.items():
            texts.setdefault(text, response)
    return texts


class Judge:
    """Stock faster-whisper: Mandarin, beam 5, temperature 0, no prompt."""

    def __init__(self, model: Path, threads: int) -> None:
        from faster_whisper import WhisperModel

        self.model_dir = model
        self.model = WhisperModel(str(model), device="cpu", compute_type="int8",
                                  cpu_threads=threads)

    def transcribe(self, pcm: bytes) -> tuple[str, float]:
        started = time.perf_counter()
        segments, _ = self.model.transcribe(
            upsample(pcm), language="zh", beam_size=5, temperature=0.0,
            condition_on_previous_text=False, vad_filter=False, without_timestamps=True)
        text = "".join(segment.text for segment in segments)
        return text, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def syllables(text: str) -> list[str]:
    """Tone-numbered pinyin of ``text`` as spoken; other characters (letters) as they are."""
    from pypinyin import Style, lazy_pinyin

    out: list[str] = []
    for part in lazy_pinyin(spoken(text), style=Style.TONE3, neutral_tone_with_five=True):
        out.extend([part] if part.isalnum() and not part.isascii() or part[-1:].isdigit()
                   else list(part))  # a run of letters or other signs: one by one
    return out


def score(rows: list[dict[str, Any]], worst: int) -> dict[str, Any]:
    """CER per prompt and overall, its character errors by cause (the same sound written
    otherwise, another tone, another sound, missing, added), wrong numbers, and the
    syllable error rate: the same comparison over tone-numbered pinyin, so that a character
    the judge wrote for the same sound (示例 as 势力, 客服 as 克服) is no error there."""
    edits = chars = syllable_edits = syllable_count = 0
    causes: Counter[str] = Counter()
    for row in rows:
        wrong, length = cer_counts(row["text"], row["heard"])
        said, heard = syllables(row["text"]), syllables(row["heard"])
        edits, chars = edits + wrong, chars + length
        syllable_edits += edit_distance(said, heard)
        syllable_count += len(said)
        row["cer"] = round(wrong / length, 3) if length else 0.0
        row["compared"] = [compared(row["text"]), compared(row["heard"])]
        row["errors"] = {k: n for k, n in error_causes(row["text"], row["heard"]).items() if n}
        causes.update(row["errors"])
        row.pop("numbers_wrong", None)
        wrong_numbers = number_errors(row["text"], row["heard"])
        if wrong_numbers:
            row["numbers_wrong"] = wrong_numbers
    scores = [row["cer"] for row in rows]
    return {
        "cer_overall": round(edits / chars, 4) if chars else 0.0,
        "cer_mean": round(statistics.fmean(scores), 4) if scores else 0.0,
        "cer_median": round(statistics.median(scores), 4) if scores else 0.0,
        "cer_p95": pct(scores, 0.95),
        "syllable_error_overall": round(syllable_edits / syllable_count, 4)
        if syllable_count else 0.0,
        "exact": sum(1 for s in scores if s == 0),
        "errors_by_cause": dict(causes),  # see bench.ttsbench.compare.error_causes
        "prompts_with_wrong_number": sum(1 for row in rows if row.get("numbers_wrong")),
        "wrong_numbers_by_kind": dict(Counter(
            number["kind"] for row in rows for number in row.get("numbers_wrong", []))),
        "number_errors": [{k: row[k] for k in ("response", "text", "heard", "numbers_wrong")}
                          for row in rows if row.get("numbers_wrong")],
        "worst": sorted(rows, key=lambda r: -r["cer"])[:worst],
        "all": rows,
    }


def measure_voice(name: str, voice: BotVoice, texts: dict[str, str], cache_dir: Path,
                  codec: Callable[[bytes], bytes], judge: Judge, worst: int) -> dict[str, Any]:
    cache = PromptCache(cache_dir, synthesizer(voice))
    cache.synthesizer.synthesize("您好。")  # loads the model: not part of any prompt's time
    rows: list[dict[str, Any]] = []
    synth_seconds: list[float] = []
    audio_seconds = 0.0
    for text, response in texts.items():
        pcm = cache.lookup(text)
        if pcm is None:
            pcm, seconds = cache.synthesize(text)
            synth_seconds.append(seconds)
        heard, _ = judge.transcribe(codec(pcm))
        seconds_of_audio = len(pcm) / 2 / SAMPLE_RATE
        audio_seconds += seconds_of_audio
        rows.append({"response": response, "text": text, "heard": heard,
                     "audio_s": round(seconds_of_audio, 2)})
        print(f"[{name}] {text} → {heard}", file=sys.stderr, flush=True)
    return {
        "voice_id": cache.synthesizer.voice_id,
        **score(rows, worst),
        "audio_seconds": round(audio_seconds, 1),
        "synthesis": {  # one process, one thread, as in a TTS worker; cached prompts not timed
            "prompts": len(synth_seconds),
            "mean_s": round(statistics.fmean(synth_seconds), 3) if synth_seconds else None,
            "p95_s": round(pct(synth_seconds, 0.95), 3) if synth_seconds else None,
            "max_s": round(max(synth_seconds), 3) if synth_seconds else None,
            "seconds_per_audio_second": round(sum(synth_seconds) / audio_seconds, 2)
            if synth_seconds and audio_seconds else None,
        },
    }


def warm_up_seconds(campaign: Path, voice: BotVoice, processes: int) -> dict[str, Any]:
    """``warm_campaign`` of one campaign file into an empty cache: the wait before it can
    start dialling on a machine that never spoke its prompts."""
    from voice.tts.warm import warm_campaign

    with tempfile.TemporaryDirectory(prefix="waihu-bench-warm-") as tmp:
        cache = PromptCache(Path(tmp), synthesizer(voice))
        report = warm_campaign(None, campaign, cache, now=NOW, days=1, processes=processes,
                               voices=synthesizer)
    return {"campaign": report["campaign"], "voice": report["voice"],
            "prompts": report["prompts"], "processes": processes,
            "seconds": round(report["seconds"], 1),
            "slowest_s": round(report["slowest_seconds"], 2),
            "audio_seconds": report["audio_seconds"], "failed": report["failed"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", nargs="*", type=Path,
                        default=sorted((REPO / "examples" / "campaigns").glob("*.yml")))
    parser.add_argument("--voices", default=DEFAULT_VOICES,
                        help="comma-separated: a Kokoro voice name, kokoro:NAME or espeak")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--codec", choices=sorted(CODECS), default="pcma",
                        help="the telephone path (default pcma: A-law, China's networks)")
    parser.add_argument("--model", type=Path, default=None,
                        help="faster-whisper model folder (default: var/models/whisper-base)")
    parser.add_argument("--threads", type=int, default=2, help="ASR threads")
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    parser.add_argument("--only", default="",
                        help="only the prompts whose text matches this regular expression "
                        "(e.g. '10010|按[12]' after a change of the readings of numbers)")
    parser.add_argument("--worst", type=int, default=10)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="keep the synthesised prompts here (default: a temporary folder; "
                        "prompts already there are not synthesised or timed again)")
    parser.add_argument("--warm-up", default="",
                        help="also time `waihu prompts warm` of this sample campaign (e.g. "
                        "marketing) into an empty cache with the first voice, 2 processes")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--rescore", type=Path, default=None,
                        help="score the transcripts of an earlier run's JSON again (after a "
                        "change of the comparison), without synthesis or ASR")
    args = parser.parse_args(argv)
    if args.rescore:
        earlier: dict[str, Any] = json.loads(args.rescore.read_text(encoding="utf-8"))
        for voice in earlier["voices"].values():
            voice.update(score(voice["all"], args.worst))
        return _report(earlier, args.out)

    texts = prompts(args.campaigns)
    if args.only:
        texts = {text: response for text, response in texts.items()
                 if re.search(args.only, text)}
    if args.limit:
        texts = dict(list(texts.items())[:args.limit])
    voices = [voice_of(spec.strip()) for spec in args.voices.split(",") if spec.strip()]
    voices = [(name, v.model_copy(update={"speed": args.speed})) for name, v in voices]
    model = args.model or whisper_model_dir()
    judge = Judge(model, args.threads)
    result: dict[str, Any] = {
        "date": datetime.now().date().isoformat(),
        "campaigns": [p.name for p in args.campaigns],
        "prompts": len(texts),
        **({"only": args.only} if args.only else {}),
        "codec": args.codec,
        "asr": {"model": str(model.name), "engine": "faster-whisper int8, beam 5, "
                "temperature 0, no prompt, no hints"},
        "voices": {},
    }
    with tempfile.TemporaryDirectory(prefix="waihu-bench-tts-") as tmp:
        for name, voice in voices:
            result["voices"][name] = measure_voice(
                name, voice, texts, args.cache_dir or Path(tmp), CODECS[args.codec], judge,
                args.worst)
    if args.warm_up:
        campaign = REPO / "examples" / "campaigns" / f"{args.warm_up}.yml"
        result["warm_up"] = warm_up_seconds(campaign, voices[0][1], processes=2)
    return _report(result, args.out)


def _report(result: dict[str, Any], out: Path | None) -> int:
    result["summary"] = {name: {"cer_overall": v["cer_overall"],
                                "syllable_error_overall": v["syllable_error_overall"],
                                "exact": v["exact"],
                                "prompts_with_wrong_number": len(v["number_errors"]),
                                "synthesis_mean_s": v["synthesis"]["mean_s"]}
                         for name, v in result["voices"].items()}
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
