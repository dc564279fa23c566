"""`--rasa-levels`: the capacity of one box with the whole stack (issue 17 item 6).

Each level is N concurrent calls of the `survey` sample campaign through the dialer,
`Gateway.place_call`, the real ASR and TTS, and the real Rasa server and action server on
this machine (`voice.simulate.simulate_campaign`, as `waihu simulate` runs it).  The called
customers are either SimPhones in a process of their own (`--callee simphone`: Kokoro
voices that listen to the bot and answer its questions, as in `make demo`, ringing for a
random 0.5-8.5 s like SIPp's) or SIPp
(`--callee sipp`: an independent SIP/RTP peer that plays fixed answers, bench/voicebench/
sipp.py).  Every customer is the satisfied survey persona, so every call runs the whole
survey (about 50 s).  One Rasa stack serves all levels; each level has a campaign of its
own.  The figures per level: the gateway's response overhead (the session's own measure:
the moment the endpointer decided the customer had finished → the bot's first audio, i.e.
the ASR's last decode, Rasa and the actions, and the TTS, after whatever end silence the
endpointer waited), the phone's response gap (SimPhone only: the end of its speech → the
bot's first audio it hears, the end silence included), calls answered and completed, and
where the CPU went
(the gateway's process, the Rasa server, the action server, the callee) with the load
average before and after.  A level passes when every call was answered and completed and
the overhead p95 stays ≤ 300 ms (`level.OVERHEAD_LIMIT_MS`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

from bench.voicebench import CACHE_DIR, REPO
from bench.voicebench.level import OVERHEAD_LIMIT_MS
from bench.voicebench.phone import PhoneProc
from bench.voicebench.sipp import RING_MS
from bench.voicebench.stats import cpu_s, dist, processes_cpu_s

HOPELESS_MS = 4 * OVERHEAD_LIMIT_MS
SURVEY = REPO / "examples" / "campaigns" / "survey.yml"
SATISFIED = REPO / "examples" / "personas" / "survey" / "satisfied.yml"


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in process group *pgid*."""
    return processes_cpu_s(lambda _, fields: int(fields[2]) == pgid)  # pgrp


def pid_cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Callees:
    """What `simulate_campaign` dials instead of its in-process SimPhone."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.phone_records: list[dict[str, Any]] = []
        self.sipp_stats: dict[str, str] = {}
        self.cpu_s = 0.0

    @contextlib.asynccontextmanager
    async def __call__(self, numbers: dict[str, Any], var: Path,
                       bot_words: Any = None) -> AsyncIterator[Any]:
        if self.kind == "sipp":
            from bench.voicebench.sipp import SURVEY_ANSWERS, sipp_callee
            from voice.tts.cache import PromptCache
            from voice.tts.kokoro import customer_voice

            cache = PromptCache(CACHE_DIR, customer_voice())
            answers = [(at, cache.get(text)) for at, text in SURVEY_ANSWERS]
            async with sipp_callee(answers) as callee:
                cpu0 = pid_cpu_s(callee.process.pid)
                try:
                    yield callee
                finally:
                    self.cpu_s = pid_cpu_s(callee.process.pid) - cpu0
            self.sipp_stats = callee.stats
            return
        phone = await PhoneProc.start(numbers, None)
        try:
            yield phone
        finally:
            self.phone_records, _, self.cpu_s = await phone.stop()


def _load() -> float:
    return round(os.getloadavg()[0], 2)


async def run_level(n: int, stack: Any, db: Any, var: Path, callee: str,
                    engine_name: str) -> dict[str, Any]:
    import voice.simulate as simulate
    from bot.channel import RasaChannel
    from bot.demo import load_sample
    from bot.personas import load_persona
    from voice.asr.base import AsrWorker
    from voice.gateway import Gateway

    level_var = var / f"{callee}-{n}"
    (level_var / "tts").mkdir(parents=True)
    (level_var / "tts" / "cache").symlink_to(CACHE_DIR)
    defn = load_sample(SURVEY, date.today())
    defn = defn.model_copy(update={
        "name": f"capacity-{callee}-{n}-{int(time.time())}",
        "dialing": defn.dialing.model_copy(update={"concurrency": n, "max_attempts": 1})})
    satisfied = load_persona(SATISFIED)
    # They ring for a random while, as SIPp's do: calls dialled together and answered at
    # once would all answer the same question at the same instant (every decode queued
    # together), which real calls do not.  Seeded: the same rings for the same level.
    rings = random.Random(n)
    personas = [dataclasses.replace(satisfied, id=f"{satisfied.id}-{i}",
                                    ring_s=rings.uniform(*RING_MS) / 1000) for i in range(n)]
    callees = _Callees(callee)
    reports: list[Any] = []
    original_customers, original_place = simulate.virtual_customers, Gateway.place_call

    async def place(self: Any, job: Any, now: Any = None) -> Any:
        report = await original_place(self, job, now)
        reports.append(report)
        return report

    timings: dict[str, list[float]] = {"asr": [], "rasa": []}
    original_send, original_transcribe = RasaChannel.send, AsrWorker.transcribe

    async def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return await original_send(self, *args, **kwargs)
        finally:
            timings["rasa"].append(1000 * (time.monotonic() - started))

    async def transcribe(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()  # waiting for a free decoder included
        try:
            return await original_transcribe(self, *args, **kwargs)
        finally:
            timings["asr"].append(1000 * (time.monotonic() - started))

    simulate.virtual_customers = callees  # type: ignore[assignment]
    Gateway.place_call = place  # type: ignore[method-assign]
    RasaChannel.send = send  # type: ignore[method-assign]
    AsrWorker.transcribe = transcribe  # type: ignore[method-assign]
    groups = {p.name: p.popen.pid for p in stack.processes if p.popen is not None}
    cpu0 = {name: group_cpu_s(pgid) for name, pgid in groups.items()}
    own0, wall0, load0 = cpu_s(), time.monotonic(), _load()
    try:
        results, _ = await simulate.simulate_campaign(
            db, stack.endpoint, defn, personas, level_var, today=date.today(),
            asr_engine=engine_name, concurrency=n)
    finally:
        simulate.virtual_customers = original_customers
        Gateway.place_call = original_place  # type: ignore[method-assign]
        RasaChannel.send = original_send  # type: ignore[method-assign]
        AsrWorker.transcribe = original_transcribe  # type: ignore[method-assign]
    wall = time.monotonic() - wall0
    cores = os.cpu_count() or 1

    def share(seconds: float) -> float:
        return round(100 * seconds / wall / cores, 1)

    cpu = {"gateway_pct_of_machine": share(cpu_s() - own0),
           **{f"{name.replace(' ', '_')}_pct_of_machine": share(group_cpu_s(pgid) - cpu0[name])
              for name, pgid in groups.items()},
           f"{callee}_pct_of_machine": share(callees.cpu_s)}
    sessions = [r.session for r in reports if r.session is not None]
    overhead = dist([g for s in sessions for g in s.response_gaps_ms])
    completed = sum(s.ended_by == "bot" for s in sessions)
    out: dict[str, Any] = {
        "concurrent_calls": n, "callee": callee, "asr": engine_name,
        "wall_s": round(wall, 1), "load_before": load0, "load_after": _load(),
        "answered": len(sessions), "completed_by_bot": completed,
        "outcomes": dict(sorted(_count(r.outcome for r in results).items())),
        "overhead_ms_gateway": overhead,
        # where a response's time goes: a whole-utterance decode (queue included; decodes
        # at a pause that were used are in it too) and each message to Rasa and back
        "asr_decode_ms": dist(timings["asr"]), "rasa_round_trip_ms": dist(timings["rasa"]),
        "greeting_ms_gateway": dist([s.first_audio_ms for s in sessions
                                     if s.first_audio_ms is not None]),
        "cpu": cpu,
    }
    if callee == "simphone":
        phone_gaps = [o["gap_ms"] for r in callees.phone_records for o in r["own_audio"]
                      if o["kind"] == "say" and o["gap_ms"] is not None]
        out["response_gap_ms_phone"] = dist(phone_gaps)
        out["expect_met"] = sum(r.ok for r in results)
    else:
        out["sipp"] = {k: v for k, v in callees.sipp_stats.items()
                       if k in ("returncode", "errors", "SuccessfulCall(C)", "FailedCall(C)",
                                "TotalCallCreated")}
    p95 = overhead["p95"]
    out["pass"] = bool(len(sessions) == n and completed == n and p95 is not None
                       and p95 <= OVERHEAD_LIMIT_MS)
    return out


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


async def run_capacity(levels: list[int], callee: str, engine_name: str, tmp: Path,
                       database_url: str | None = None) -> dict[str, Any]:
    """Each level in turn with one Rasa stack; stops after a level far beyond the target."""
    from bot.services import RasaStack
    from bot.store import Database

    var = tmp / "capacity"
    var.mkdir()
    url = database_url or f"sqlite:///{var / 'capacity.db'}"
    db = Database(url)
    db.upgrade()
    out: dict[str, Any] = {"callee": callee, "asr": engine_name,
                           "database": url.split(":", 1)[0], "levels": []}
    started = time.monotonic()
    with RasaStack(url) as stack:
        out["rasa_start_s"] = round(time.monotonic() - started, 1)
        for n in levels:
            result = await run_level(n, stack, db, var, callee, engine_name)
            out["levels"].append(result)
            p95 = result["overhead_ms_gateway"]["p95"]
            if not result["pass"] and (p95 is None or p95 > HOPELESS_MS):
                break  # a level above this one would tell nothing more
    passing = [r["concurrent_calls"] for r in out["levels"] if r["pass"]]
    out["max_concurrent_calls"] = max(passing) if passing else 0
    return out
