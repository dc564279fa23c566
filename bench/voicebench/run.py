"""The whole run: the prompt cache warmed, each engine's levels (`auto` searching upward),
then the Rasa run; one JSON-ready document."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.voicebench import CACHE_DIR
from bench.voicebench.capacity import run_capacity
from bench.voicebench.dialogue import ScriptedDialogue
from bench.voicebench.engines import make_engine
from bench.voicebench.level import OVERHEAD_LIMIT_MS, run_level
from bench.voicebench.rasa import run_rasa
from voice.session import SessionConfig
from voice.tts.espeak import EspeakSynthesizer


async def run_engine(name: str, levels: list[str], ctx: dict[str, Any],
                     call_seconds: float) -> dict[str, Any]:
    engine = await make_engine(name)
    out: dict[str, Any] = {"engine": engine.asr.engine.describe(), "levels": [],
                           "phrase_trailing_quiet_ms": engine.quiet_ms}
    passing: list[int] = []
    tried: set[int] = set()

    async def level(n: int) -> bool:
        tried.add(n)
        print(f"[{name}] {n} concurrent calls…", file=sys.stderr, flush=True)
        ctx["levels_run"] = ctx.get("levels_run", 0) + 1
        result = await run_level(n, engine, ctx, call_seconds, f"{ctx['levels_run']:02d}")
        out["levels"].append(result)
        print(f"[{name}] {n}: pass={result['pass']} overhead_p95={result['overhead_ms']['p95']}"
              f" greeting_p95={result['greeting_ms']['p95']} cpu/call="
              f"{result['cpu']['per_call_pct_of_core']}%", file=sys.stderr, flush=True)
        if result["pass"]:
            passing.append(n)
        return bool(result["pass"])

    for spec in levels:
        if spec != "auto":
            await level(int(spec))
            continue
        if passing and max(passing) >= 10:
            n = (max(passing) // 10 + 1) * 10
            while n <= 200 and await level(n):
                n += 10
        elif 1 in passing or 1 not in tried:  # 10 is already too many: look below it
            for n in (5, 3, 2):
                if n not in tried and await level(n):
                    break
    engine.asr.close()
    out["max_concurrent_calls"] = max(passing) if passing else 0
    return out

async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from bot.store import Database
    from voice.telephony.baresip_telephony import BaresipTelephony
    from voice.tts.cache import PromptCache
    from voice.tts.worker import TtsWorker

    tmp = Path(tempfile.mkdtemp(prefix="waihu-bench-voice-"))
    db = Database(f"sqlite:///{tmp / 'bench.db'}")
    db.upgrade()
    tts = TtsWorker(PromptCache(CACHE_DIR, EspeakSynthesizer()))
    texts = ScriptedDialogue(0, ()).texts() + [SessionConfig().failure_text]
    warm = await tts.warm_many(texts)
    engines = [e for e in args.engines.split(",") if e]
    telephony = BaresipTelephony(listen=("127.0.0.1", 0))
    if engines:  # baresip allows one runtime per process: the Rasa run opens its own
        await telephony.start()
    ctx = {"db": db, "tts": tts, "telephony": telephony, "tmp": tmp,
           "loop_profile_ms": args.loop_profile, "cpu_load": args.cpu_load,
           "capture": args.capture}
    out: dict[str, Any] = {
        "benchmark": "voice gateway", "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "command": " ".join(["bench/voice.py", *sys.argv[1:]]),
        "config": {"call_seconds": args.call_seconds, "levels": args.levels,
                   "cpu_load_processes": args.cpu_load,
                   "end_silence_ms": SessionConfig().vad.end_silence_ms,
                   "overhead_limit_ms": OVERHEAD_LIMIT_MS, "tts_warm": dict(warm)},
        "engines": {},
    }
    try:
        for name in engines:
            out["engines"][name] = await run_engine(name, args.levels.split(","), ctx,
                                                    args.call_seconds)
    finally:
        await telephony.close()
    if args.rasa:  # run it alone (`--engines "" --rasa`): a second baresip runtime may fail
        out["rasa"] = await run_rasa(ctx, args.rasa_engine)
    if args.rasa_levels:  # the same: its own baresip runtime, one per level
        levels = [int(n) for n in args.rasa_levels.split(",") if n]
        out["capacity"] = await run_capacity(levels, args.callee, args.rasa_engine, tmp,
                                             args.database)
    await tts.aclose()
    shutil.rmtree(tmp, ignore_errors=True)
    return out
