"""Experiment 4: early media (183 + SDP + RTP) reaching baresip-python's call.audio
before any 200 OK, then a final 404/480 -- the operator-announcement shape
(空号/停机/关机 announcements arrive as early media before the final status).

Run: /tmp/bsp/bin/python exp4_early_media.py
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import fake_uas  # noqa: E402
from peers import dominant_freq, free_port, rms  # noqa: E402

from baresip import Account, CallFailed, Config, Runtime, UserAgent  # noqa: E402
from baresip.errors import AudioNotActive, AudioRestarted  # noqa: E402


async def main():
    a_port = free_port()
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None,
                          extra_config_text=f"sip_listen 127.0.0.1:{a_port}\n"))
    try:
        ua = await UserAgent.create(rt, Account(
            user="bot", domain=f"127.0.0.1:{a_port}", password="", reg_interval=0,
            audio_codecs=("PCMA", "PCMU")))
        for final in ((404, "Not Found"), (480, "Temporarily Unavailable")):
            port, tr, proto = await fake_uas.start(early_s=1.5, final=final)
            t0 = time.monotonic()
            call = await ua.dial(f"sip:12345@127.0.0.1:{port}")
            ev = []
            call.on(lambda e: ev.append((round((time.monotonic() - t0) * 1000), e.event.name, e.text)))
            early = bytearray()
            not_active = 0
            restarted = []
            waiter = asyncio.create_task(call.wait_established(5))
            while not waiter.done():
                try:
                    early += call.audio.read(3200)
                except AudioNotActive:
                    not_active += 1
                except AudioRestarted:
                    # streams replaced (epoch moved); the next read rebinds
                    restarted.append(round((time.monotonic() - t0) * 1000))
                await asyncio.sleep(0.02)
            try:
                waiter.result()
            except CallFailed as exc:
                print(f"final: {type(exc).__name__} status={exc.status} reason={exc.reason!r}")
            print("early audio read by A: %.2f s, RMS %.0f, reads before media: %d"
                  % (len(early) / 16000, rms(early), not_active),
                  {k: round(v) for k, v in dominant_freq(bytes(early[1600:9600]), candidates=(440, 1000, 1500)).items()})
            print("AudioRestarted at ms:", restarted)
            print("events:", ev)
            tr.close()
    finally:
        await rt.close()


asyncio.run(main())
