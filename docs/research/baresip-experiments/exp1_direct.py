"""Experiment 1: baresip-python (A, this process) calls Debian baresip (B) directly.

A sends 2 s of a 440 Hz tone as 20 ms PCM frames and reads B's audio (B plays a
1000 Hz WAV). DTMF A->B (seen as ctrl_tcp event at B) and B->A (ctrl_tcp
`sndcode`, seen by call.on_dtmf at A). Then A hangs up.

Run: /tmp/bsp/bin/python exp1_direct.py
"""

import asyncio
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from peers import DebianBaresip, dominant_freq, free_port, rms, tone  # noqa: E402

import baresip  # noqa: E402
from baresip import Account, Config, Event, Runtime, UserAgent  # noqa: E402

WORK = "/tmp/bexp/exp1"
WAV = "/tmp/bexp/b_tone1000.wav"
FRAME = 320  # 20 ms of 8 kHz mono s16


async def main():
    logging.basicConfig(level=os.environ.get("LOG", "WARNING"))
    b = DebianBaresip(os.path.join(WORK, "b"), user="callee", wav=WAV)
    await b.start()
    a_port = free_port()
    rt = Runtime()
    await rt.start(
        Config(
            net_interface="127.0.0.1",
            max_concurrent_calls=None,
            extra_config_text=f"sip_listen 127.0.0.1:{a_port}\n",
            sip_trace=bool(os.environ.get("TRACE")),
        )
    )
    try:
        ua = await UserAgent.create(
            rt,
            Account(
                user="bot",
                domain=f"127.0.0.1:{a_port}",
                password="",
                reg_interval=0,
                audio_codecs=("PCMA", "PCMU"),
            ),
        )
        events = []
        t0 = time.monotonic()
        call = await ua.dial(b.uri)
        call.on(lambda e: events.append((round(time.monotonic() - t0, 4), e.event.name, e.text)))
        digits_at_a = []
        call.on_dtmf(lambda d: digits_at_a.append((d.digit, d.duration_ms)))
        await call.wait_established(timeout=5)
        t_est = time.monotonic() - t0
        info = call.audio.info()
        print("established after %.1f ms; audio info: %s" % (t_est * 1000, info))

        # 2 s of 440 Hz out, paced on the monotonic clock; read whatever arrived.
        out = tone(440, 2.0)
        received = bytearray()
        start = time.monotonic()
        for i in range(0, len(out), FRAME):
            call.audio.write(out[i : i + FRAME])
            received += call.audio.read(4 * FRAME)
            nxt = start + (i // FRAME + 1) * 0.020
            await asyncio.sleep(max(0, nxt - time.monotonic()))
        await asyncio.sleep(0.3)
        received += call.audio.read(64000)
        print(
            "A received %d bytes (%.2f s), RMS %.0f, Goertzel %s"
            % (len(received), len(received) / 16000, rms(received), dominant_freq(received[8000:24000]))
        )
        print("A audio stats:", call.audio.stats())

        # DTMF A -> B
        await call.send_dtmf("159#")
        await asyncio.sleep(0.5)
        # DTMF B -> A over ctrl_tcp
        r = await b.command("sndcode", "7")
        print("B sndcode response:", r)
        await asyncio.sleep(0.6)
        r = await b.command("sndcode", "*")
        await asyncio.sleep(0.8)
        print("digits at A:", digits_at_a)
        print("B events:", b.event_types())

        await call.hangup()
        await asyncio.sleep(0.5)
        print("A call events:", events)
        print("final stats:", call.final_stats)
    finally:
        await rt.close()
        await b.stop()
    snd = os.path.join(WORK, "b", "snd")
    for f in sorted(os.listdir(snd)):
        p = os.path.join(snd, f)
        with open(p, "rb") as fh:
            data = fh.read()[44:]
        print("B recording", f, "%.2f s" % (len(data) / 16000), "RMS %.0f" % rms(data),
              {k: round(v) for k, v in dominant_freq(data[:32000]).items()})


asyncio.run(main())
