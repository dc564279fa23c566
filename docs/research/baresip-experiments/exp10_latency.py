"""Experiment 10: audio round-trip latency through baresip-python on loopback.

A (this process) calls callee_echo.py (another baresip-python process echoing 20 ms
frames in Python). A writes silence, then a 60 ms burst; the time from writing the
burst to reading it back is the round trip: 2x (tx buffer + RTP + jitter buffer) + the
echo's Python poll. Run with the default jitter buffer and with a smaller one.

Run: /tmp/bsp/bin/python exp10_latency.py
"""
import asyncio
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from peers import free_port, rms, tone  # noqa: E402

from baresip import Account, Config, Runtime, UserAgent  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL_JB = "audio_jitter_buffer_type fixed\naudio_jitter_buffer_ms 20-60\n"


async def run(extra):
    port_b = free_port()
    env = dict(os.environ, EXTRA_CONFIG=extra)
    callee = subprocess.Popen([sys.executable, os.path.join(HERE, "callee_echo.py"), str(port_b), "60"],
                              stdout=subprocess.PIPE, text=True, env=env)
    assert callee.stdout.readline().strip() == "READY"
    port = free_port()
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None,
                          extra_config_text=f"sip_listen 127.0.0.1:{port}\n" + extra))
    try:
        ua = await UserAgent.create(rt, Account(user="bot", domain=f"127.0.0.1:{port}", password="",
                                                reg_interval=0, audio_codecs=("PCMA", "PCMU")))
        call = await ua.dial(f"sip:echo@127.0.0.1:{port_b}")
        await call.wait_established(3)
        silence = b"\x00" * 320
        burst = tone(1000, 0.06)
        rtts = []
        for trial in range(8):
            # 0.6 s of silence, then the burst, then wait for it to come back
            t0 = time.monotonic()
            n = 0
            sent_at = None
            got_at = None
            while time.monotonic() - t0 < 1.6 and got_at is None:
                if n == 30:
                    call.audio.write(burst)
                    sent_at = time.monotonic()
                elif n < 30 or n > 32:
                    call.audio.write(silence)
                data = call.audio.read(3200)
                if sent_at and data and rms(data) > 1000:
                    got_at = time.monotonic()
                n += 1
                await asyncio.sleep(max(0, t0 + n * 0.02 - time.monotonic()))
            if got_at:
                rtts.append((got_at - sent_at) * 1000)
        print(f"jitter buffer {'default' if not extra else extra.strip()!r}: round trip ms",
              [round(x) for x in rtts], "median %.0f" % statistics.median(rtts))
        print("   jbuf_delay_ms in stats at close:", end=" ")
        await call.hangup()
        await asyncio.sleep(0.3)
        print(call.final_stats.jbuf_delay_ms if call.final_stats else None)
    finally:
        await rt.close()
        callee.terminate()
        callee.wait(5)


async def main():
    await run("")
    await run(SMALL_JB)


asyncio.run(main())
