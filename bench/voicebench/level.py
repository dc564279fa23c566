"""One level: N concurrent real calls from the gateway's SIP stack to the SimPhone, each a
`CallSession` with the scripted dialogue, and the level's figures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.voicebench.dialogue import ScriptedDialogue
from bench.voicebench.engines import Engine
from bench.voicebench.machine import LoopProbe, cpu_load
from bench.voicebench.phone import PhoneProc
from bench.voicebench.stats import cpu_s, dist, pct, rss_mb
from bench.voicebench.wire import WireCapture
from bot.personas import Persona, Turn
from voice.session import SessionConfig

OVERHEAD_LIMIT_MS = 300.0

@dataclass
class CallStats:
    call_id: str
    number: str
    answered: bool = False
    ended_by: str | None = None
    error: str | None = None
    first_audio_ms: float | None = None
    gaps_ms: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    tx_frames: int = 0
    underruns: Counter[str] = field(default_factory=Counter)  # the stack's raw counters
    underrun_frames: int | None = None  # the leg's: bot audio due, nothing queued


def seed_call(db: Any, phone: str) -> str:
    from bot import callrecord
    from bot.store import CallRepo, CampaignRepo, ContactRepo
    from bot.store.base import utcnow

    with db.session() as session:
        campaigns = CampaignRepo(session)
        campaign = campaigns.by_name("bench") or campaigns.add(
            "bench", "survey", {"product": "彩铃"}, "b" * 64)
        contact = ContactRepo(session).add(campaign.id, phone, name="张三")
        attempt = CallRepo(session).start_attempt(campaign.id, contact.id)
        callrecord.record_dial_result(session, attempt.call_id, "answered", utcnow())
        return str(attempt.call_id)


async def _watch_stats(leg: Any, stats: CallStats) -> None:
    """Mid-call underruns: the stack's counters from the 10th tx frame on.  The counters
    start again from 0 when the stack replaces the streams (renegotiation), so a drop is
    read as a restart: the new value is all new."""
    prev: dict[str, int] | None = None
    while not leg.closed.is_set():
        with contextlib.suppress(Exception):
            snap = leg.call.audio.stats()
            now = {"starved": snap.tx_starved_frames, "silence": snap.tx_silence_frames}
            if prev is not None:
                for key, value in now.items():
                    stats.underruns[key] += value - prev[key] if value >= prev[key] else value
            if prev is not None or stats.tx_frames >= 10:
                prev = now
        await asyncio.sleep(0.5)


async def one_call(i: int, number: str, port: int, delay: float, engine: Engine,
                   ctx: dict[str, Any], config: SessionConfig) -> CallStats:
    from voice.session import CallSession
    from voice.telephony.base import DialRequest

    await asyncio.sleep(delay)
    call_id = await asyncio.to_thread(seed_call, ctx["db"], number)  # not on the loop
    stats = CallStats(call_id, number)
    leg = await ctx["telephony"].dial(DialRequest(f"sip:{number}@127.0.0.1:{port}", call_id,
                                                  caller_id="95555"))

    def on_frame(direction: str, frame: Any) -> None:
        if direction == "tx":
            stats.tx_frames += 1

    leg.on_frame(on_frame)
    outcome = await leg.wait_answer(20)
    if outcome.result != "answered":
        stats.error = f"dial {outcome.result}"
        return stats
    stats.answered = True
    watcher = asyncio.create_task(_watch_stats(leg, stats))
    session = CallSession(call_id=call_id, leg=leg, dialogue=ctx["dialogue"], asr=engine.asr,
                          tts=ctx["tts"], db=ctx["db"], config=config,
                          metadata={"call_id": call_id, "campaign_type": "survey"})
    started = time.monotonic()
    result = await session.run()
    stats.duration_s = time.monotonic() - started
    watcher.cancel()
    stats.ended_by, stats.error = result.ended_by, result.error
    stats.first_audio_ms = result.first_audio_ms
    stats.gaps_ms = list(result.response_gaps_ms)
    stats.underrun_frames = getattr(leg, "underrun_frames", None)
    return stats


async def run_level(n: int, engine: Engine, ctx: dict[str, Any], call_seconds: float,
                    tag: str) -> dict[str, Any]:
    turns = max(1, round((call_seconds - 5) / 5.5))
    says = [engine.persona_says[k % len(engine.persona_says)] for k in range(turns)]
    persona = Persona(id=f"bench-{engine.name}", ring_s=0.2,
                      turns=tuple(Turn("say", s) for s in says))
    numbers = [f"139{tag}{n:03d}{i:04d}"[-11:] for i in range(n)]
    phone = await PhoneProc.start({num: persona for num in numbers}, engine.synth)
    ctx["dialogue"] = ScriptedDialogue(turns - 1, engine.hints)  # greeting asks too
    end_silence = SessionConfig().vad.end_silence_ms
    config = SessionConfig(recordings_dir=ctx["tmp"] / "recordings", max_call_s=call_seconds * 4)
    stagger = min(5.0, 0.25 * n)
    peak = [rss_mb()]

    async def sample_rss() -> None:
        while True:
            peak[0] = max(peak[0], rss_mb())
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_rss())
    clock = getattr(ctx["telephony"], "clock", None)
    if clock is not None:
        clock.reset_stats()
    cpu0, wall0 = cpu_s(), time.monotonic()
    capture = WireCapture() if ctx.get("capture") else None
    async with contextlib.AsyncExitStack() as stack:
        if capture is not None:
            await stack.enter_async_context(capture)
        stack.enter_context(cpu_load(ctx.get("cpu_load", 0)))
        probe = stack.enter_context(LoopProbe(ctx.get("loop_profile_ms")))
        results = await asyncio.gather(*(
            one_call(i, num, phone.port, stagger * i / n, engine, ctx, config)
            for i, num in enumerate(numbers)), return_exceptions=True)
    cpu = cpu_s() - cpu0
    wall = time.monotonic() - wall0
    sampler.cancel()
    records, rx_jitter, phone_cpu = await phone.stop()

    calls = [r for r in results if isinstance(r, CallStats)]
    crashed = [repr(r) for r in results if not isinstance(r, CallStats)]
    call_s = sum(c.duration_s for c in calls)
    greet = [r["greeting_latency_ms"] for r in records if r["greeting_latency_ms"] is not None]
    gaps: list[float] = []
    overhead: list[float] = []
    for r in records:
        for own in r["own_audio"]:
            if own["kind"] == "say" and own["gap_ms"] is not None:
                gaps.append(own["gap_ms"])
                quiet = engine.quiet_ms.get(own["text"], 0.0)
                overhead.append(own["gap_ms"] + quiet - end_silence)
    expected_gaps = n * turns
    starved = sum(c.underruns["starved"] for c in calls)
    silence = sum(c.underruns["silence"] for c in calls)
    underrun_legs = [c.underrun_frames for c in calls if c.underrun_frames is not None]
    rx_p99 = [j["p99_abs_dev_ms"] for j in rx_jitter.values() if j["p99_abs_dev_ms"] is not None]
    completed = sum(c.ended_by == "bot" for c in calls)
    heard = Counter(m for msgs in ctx["dialogue"].heard.values() for m in msgs)
    out: dict[str, Any] = {
        "concurrent_calls": n,
        "turns_per_call": turns,
        "calls_completed": completed,
        "calls_failed": [f"{c.call_id}: {c.ended_by} {c.error}" for c in calls
                         if c.ended_by != "bot"] + crashed,
        "wall_s": round(wall, 1),
        "greeting_ms": dist(greet),
        "greeting_ms_gateway": dist([c.first_audio_ms for c in calls
                                     if c.first_audio_ms is not None]),
        "response_gap_ms": dist(gaps),
        "overhead_ms": dist(overhead),
        "overhead_ms_gateway": dist([g for c in calls for g in c.gaps_ms]),
        "responses_heard": f"{len(gaps)}/{expected_gaps}",
        "caller_inputs_sent_to_dialogue": dict(heard.most_common(8)),
        "rtp_tx": {"underrun_frames": sum(underrun_legs) if underrun_legs else None,
                   "calls_with_underruns": sum(u > 0 for u in underrun_legs),
                   "stack_tx_starved_frames": starved,
                   "stack_tx_silence_frames_idle": silence},
        "rtp_rx_at_phone": {"interval_p99_abs_dev_ms_worst_call": max(rx_p99) if rx_p99 else None,
                            "interval_p99_abs_dev_ms_median_call": pct(rx_p99, 50),
                            "intervals_over_40ms": sum(j["over_40ms"]
                                                       for j in rx_jitter.values())},
        "cpu": {"gateway_cpu_s": round(cpu, 1), "call_s": round(call_s, 1),
                "per_call_pct_of_core": round(100 * cpu / call_s, 2) if call_s else None,
                "gateway_pct_of_machine": round(100 * cpu / wall / (os.cpu_count() or 1), 1),
                "simphone_cpu_s": round(phone_cpu, 1)},
        "rss_mb_peak": round(peak[0], 1),
        "event_loop": probe.report(),
    }
    if clock is not None:
        out["audio_clock"] = clock.stats()
    if capture is not None:
        out["rtp_tx_on_wire"] = capture.report()
    p95 = out["overhead_ms"]["p95"]
    out["pass"] = bool(completed == n and not crashed and p95 is not None
                       and p95 < OVERHEAD_LIMIT_MS and len(gaps) >= 0.9 * expected_gaps)
    return out
