"""`--rasa`: one sample campaign through the real Rasa server and action server."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from bench.voicebench import CACHE_DIR, REPO
from bench.voicebench.stats import dist
from voice.session import SessionConfig


async def run_rasa(ctx: dict[str, Any], engine_name: str) -> dict[str, Any]:
    """One sample campaign (examples/) through the real Rasa server and action server."""
    from datetime import date

    import voice.simulate as simulate
    from bot.demo import load_sample
    from bot.personas import load_personas
    from bot.services import RasaStack
    from bot.store import Database
    from voice.gateway import Gateway

    var = ctx["tmp"] / "rasa"
    var.mkdir()
    (var / "tts").mkdir()
    (var / "tts" / "cache").symlink_to(CACHE_DIR)
    url = f"sqlite:///{var / 'rasa.db'}"
    db = Database(url)
    db.upgrade()
    phones: list[Any] = []
    reports: list[Any] = []
    original_customers, original_place = simulate.virtual_customers, Gateway.place_call

    @contextlib.asynccontextmanager
    async def customers(*args: Any) -> Any:
        async with original_customers(*args) as phone:
            phones.append(phone)
            yield phone

    async def place(self: Any, job: Any, now: Any = None) -> Any:
        report = await original_place(self, job, now)
        reports.append(report)
        return report

    simulate.virtual_customers = customers  # type: ignore[assignment]
    Gateway.place_call = place  # type: ignore[method-assign]
    try:
        campaign = "survey"
        today = date.today()
        defn = load_sample(REPO / "examples" / "campaigns" / f"{campaign}.yml", today)
        personas = load_personas(REPO / "examples" / "personas" / campaign)
        started = time.monotonic()
        with RasaStack(url) as stack:
            rasa_start_s = time.monotonic() - started
            results, _ = await simulate.simulate_campaign(
                db, stack.endpoint, defn, personas, var, today=today, asr_engine=engine_name,
                concurrency=4)
    finally:
        simulate.virtual_customers = original_customers
        Gateway.place_call = original_place  # type: ignore[method-assign]
    end_silence = SessionConfig().vad.end_silence_ms
    records = [r for p in phones for r in p.records]
    greet = [r.greeting_latency_ms for r in records if r.greeting_latency_ms is not None]
    gaps = [o.gap_ms for r in records for o in r.own_audio
            if o.kind == "say" and o.gap_ms is not None]
    sessions = [r.session for r in reports if r.session is not None]
    return {"campaign": campaign, "asr": engine_name, "personas": len(personas),
            "rasa_start_s": round(rasa_start_s, 1),
            "expect_met": sum(r.ok for r in results), "answered_calls": len(sessions),
            "greeting_ms": dist(greet), "response_gap_ms": dist(gaps),
            "overhead_ms_uncorrected": dist([g - end_silence for g in gaps]),
            "overhead_ms_gateway": dist([g for s in sessions for g in s.response_gaps_ms]),
            "greeting_ms_gateway": dist([s.first_audio_ms for s in sessions
                                         if s.first_audio_ms is not None])}
