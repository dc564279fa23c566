"""Experiment 5: setup latency and the cost of N (env, default 10) concurrent calls.

Callee: a separate baresip-python process (callee_echo.py) that answers and echoes.
1) 30 sequential calls: dial() -> CALL_ANSWERED (event clock) and INVITE sent ->
   200 OK received (from the SIP trace log records).
2) 10 concurrent calls held 10 s with no Python audio (stack sends silence): CPU and RSS
   of this process and of the callee.
3) 10 concurrent calls for 10 s with Python writing and reading 20 ms frames on each.

Run: /tmp/bsp/bin/python exp5_load.py
"""

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from peers import free_port, rms, tone  # noqa: E402

from baresip import Account, Config, Event, Runtime, UserAgent  # noqa: E402
from baresip.errors import AudioNotActive, AudioRestarted  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")
N = int(os.environ.get("N", "10"))


def cpu_rss(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    cpu = (int(parts[11]) + int(parts[12])) / TICK
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                rss = int(line.split()[1]) // 1024
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return cpu, rss, threads


class TraceTimes(logging.Handler):
    """INVITE-sent and 200-received times by Call-ID, from baresip.native.sip."""

    def __init__(self):
        super().__init__()
        self.invite = {}
        self.ok = {}

    def emit(self, record):
        text = record.getMessage()
        cid = None
        for line in text.splitlines():
            if line.lower().startswith("call-id:"):
                cid = line.split(":", 1)[1].strip()
        if not cid:
            return
        if "INVITE sip:" in text and "CSeq:" in text and cid not in self.invite:
            self.invite[cid] = record.created
        elif "SIP/2.0 200" in text and "INVITE" in text.split("CSeq:", 1)[-1].splitlines()[0]:
            self.ok.setdefault(cid, record.created)


async def measure(label, seconds, pids):
    before = {p: cpu_rss(p) for p in pids}
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    dt = time.monotonic() - t0
    for p in pids:
        c1, rss, thr = cpu_rss(p)
        who = "caller(A)" if p == os.getpid() else "callee(echo)"
        print(f"{label}: {who} CPU {100 * (c1 - before[p][0]) / dt:.1f}% of one core, "
              f"RSS {rss} MB, threads {thr}")


async def main():
    port_b = free_port()
    callee = subprocess.Popen([sys.executable, os.path.join(HERE, "callee_echo.py"), str(port_b), "120"],
                              stdout=subprocess.PIPE, text=True)
    assert callee.stdout.readline().strip() == "READY"
    trace = TraceTimes()
    sip_logger = logging.getLogger("baresip.native.sip")
    sip_logger.setLevel(logging.DEBUG)
    sip_logger.addHandler(trace)
    a_port = free_port()
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None, sip_trace=True,
                          extra_config_text=f"sip_listen 127.0.0.1:{a_port}\n"))
    print("A after start: CPU %.2fs RSS %d MB threads %d" % cpu_rss(os.getpid()))
    try:
        ua = await UserAgent.create(rt, Account(user="bot", domain=f"127.0.0.1:{a_port}", password="",
                                                reg_interval=0, audio_codecs=("PCMA", "PCMU")))
        uri = f"sip:echo@127.0.0.1:{port_b}"

        # 1) sequential setup latency
        ev_ms = []
        for _ in range(30):
            answered = asyncio.get_running_loop().create_future()
            t0 = time.monotonic()
            call = await ua.dial(uri)
            call.on(lambda e, f=answered: (e.event is Event.CALL_ANSWERED and not f.done()
                                           and f.set_result(time.monotonic())))
            await call.wait_established(5)
            ev_ms.append((await answered - t0) * 1000)
            await call.hangup()
            await asyncio.sleep(0.05)
        wire = [(trace.ok[c] - trace.invite[c]) * 1000 for c in trace.invite if c in trace.ok]
        q = lambda xs: (f"n={len(xs)} median {statistics.median(xs):.2f} ms, "
                        f"p95 {sorted(xs)[int(0.95 * len(xs)) - 1]:.2f} ms, max {max(xs):.2f} ms")
        print("dial() -> CALL_ANSWERED:", q(ev_ms))
        print("INVITE sent -> 200 OK received (SIP trace):", q(wire))
        await rt.set_sip_trace(False)

        # 2) 10 concurrent idle calls
        calls = []
        for _ in range(N):
            c = await ua.dial(uri)
            calls.append(c)
        await asyncio.gather(*(c.wait_established(5) for c in calls))
        print(f"{N} calls established; live:", sum(c.state.value == "established" for c in calls))
        await asyncio.sleep(1)
        await measure(f"{N} idle calls (stack sends silence, Python untouched)", 10,
                      [os.getpid(), callee.pid])

        # 3) the same 10 calls with Python pumping 20 ms frames both ways
        frame = tone(440, 0.02)
        heard = [bytearray() for _ in calls]
        stop = asyncio.Event()
        late = []

        async def pump(i, c):
            t = time.monotonic()
            n = 0
            while not stop.is_set():
                try:
                    c.audio.write(frame)
                    heard[i] += c.audio.read(1280)
                except (AudioNotActive, AudioRestarted):
                    pass
                n += 1
                delay = t + n * 0.02 - time.monotonic()
                if delay < -0.01:
                    late.append(delay)
                await asyncio.sleep(max(0, delay))

        tasks = [asyncio.create_task(pump(i, c)) for i, c in enumerate(calls)]
        await asyncio.sleep(1)
        await measure(f"{N} active calls (Python writes+reads 20 ms frames each)", 10,
                      [os.getpid(), callee.pid])
        stop.set()
        await asyncio.gather(*tasks)
        print("echo heard per call (s, RMS):",
              [(round(len(h) / 16000, 1), round(rms(bytes(h[16000:])))) for h in heard])
        print("pacing slips >10 ms:", len(late))
        stats = [c.audio.stats() for c in calls]
        print("tx_starved_frames per call:", [s.tx_starved_frames for s in stats])
        for c in calls:
            await c.hangup()
        await asyncio.sleep(0.5)
        print("final stats call0:", calls[0].final_stats)
    finally:
        await rt.close()
        callee.terminate()
        callee.wait(5)


asyncio.run(main())
