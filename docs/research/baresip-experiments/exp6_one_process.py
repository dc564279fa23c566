"""Experiment 6: what one process can hold, and codec negotiation.

a) A second Runtime in the same process.  b) Two UserAgents in one Runtime calling each
other (caller and callee in one process).  c) The default max_concurrent_calls=2.
d) Which thread runs callbacks.  e) The SDP offer (codec order) and a PCMU-only peer.

Run: /tmp/bsp/bin/python exp6_one_process.py
"""

import asyncio
import logging
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from peers import DebianBaresip, free_port, rms, tone  # noqa: E402

from baresip import Account, BaresipError, CallFailed, Config, Runtime, UserAgent  # noqa: E402

WAV = "/tmp/bexp/b_tone1000.wav"


class Grab(logging.Handler):
    def __init__(self):
        super().__init__()
        self.msgs = []

    def emit(self, record):
        self.msgs.append(record.getMessage())


async def main():
    grab = Grab()
    lg = logging.getLogger("baresip.native.sip")
    lg.setLevel(logging.DEBUG)
    lg.addHandler(grab)
    port = free_port()
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", sip_trace=True,  # default max_concurrent_calls=2
                          extra_config_text=f"sip_listen 127.0.0.1:{port}\n"))
    try:
        # a) second runtime
        try:
            await Runtime().start(Config(net_interface="127.0.0.1"))
            print("a) second Runtime started?!")
        except BaresipError as exc:
            print("a) second Runtime:", type(exc).__name__, exc)

        # b) two UAs, one runtime, calling each other
        mk = lambda user, codecs=("PCMA", "PCMU"): UserAgent.create(rt, Account(
            user=user, domain=f"127.0.0.1:{port}", password="", reg_interval=0, audio_codecs=codecs))
        bot = await mk("bot")
        cust = await mk("customer")
        threads = []
        inq = asyncio.Queue()

        def on_inc(call):
            threads.append(threading.current_thread().name)
            inq.put_nowait(call)

        cust.on_incoming(on_inc)
        out = await bot.dial(f"sip:customer@127.0.0.1:{port}")
        out.on(lambda e: threads.append(threading.current_thread().name))
        inc = await asyncio.wait_for(inq.get(), 3)
        await inc.answer()
        await out.wait_established(3)
        await inc.wait_established(3)
        t = tone(440, 1.0)
        heard_out, heard_in = bytearray(), bytearray()
        t0 = time.monotonic()
        for i in range(0, len(t), 320):
            out.audio.write(t[i:i + 320])
            inc.audio.write(t[i:i + 320])
            heard_out += out.audio.read(1280)
            heard_in += inc.audio.read(1280)
            await asyncio.sleep(max(0, t0 + (i // 320 + 1) * 0.02 - time.monotonic()))
        print("b) same-process call: caller heard %.2f s RMS %.0f; callee heard %.2f s RMS %.0f"
              % (len(heard_out) / 16000, rms(heard_out), len(heard_in) / 16000, rms(heard_in)))
        offer = next(m for m in grab.msgs if "INVITE sip:customer" in m and "m=audio" in m)
        print("b) SDP offer m-line / rtpmaps:", re.findall(r"m=audio.*|a=rtpmap.*", offer))
        # c) default limit 2: both legs of this self-call count; a third call is refused
        third = await bot.dial(f"sip:customer@127.0.0.1:{port}")
        try:
            await third.wait_established(3)
            print("c) third call established")
        except CallFailed as exc:
            print("c) third call with max_concurrent_calls=2:", type(exc).__name__, exc.status, exc.reason)
        except BaresipError as exc:
            print("c) third call:", type(exc).__name__, exc)
        await out.hangup()
        await asyncio.sleep(0.3)
        # d)
        print("d) callback threads:", sorted(set(threads)), "| main:", threading.current_thread().name)

        # e) PCMU-only Debian peer
        b = DebianBaresip("/tmp/bexp/exp6/b", user="mulaw", wav=WAV)
        with open(os.path.join(b.dir, "accounts"), "w") as f:
            f.write(f"<sip:mulaw@127.0.0.1:{b.sip_port}>;regint=0;answermode=auto;"
                    "audio_codecs=PCMU/8000/1;ptime=20\n")
        await b.start()
        grab.msgs.clear()
        c = await bot.dial(b.uri)
        await c.wait_established(3)
        await asyncio.sleep(1)
        heard = c.audio.read(16000)
        ans = next(m for m in grab.msgs if m.startswith("SIP/2.0 200") or "\nSIP/2.0 200" in m or "SIP/2.0 200 OK" in m)
        print("e) PCMU-only peer answer:", re.findall(r"m=audio.*|a=rtpmap.*", ans),
              "| info:", c.audio.info().rx_sample_rate, "Hz, heard RMS %.0f" % rms(heard))
        await c.hangup()
        await asyncio.sleep(0.3)
        await b.stop()
        print("log lines mentioning PCMU/PCMA from native:", [m for m in grab.msgs if "Set audio" in m][:4])
    finally:
        await rt.close()


asyncio.run(main())
