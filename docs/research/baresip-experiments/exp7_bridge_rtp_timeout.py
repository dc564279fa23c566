"""Experiment 7: a two-leg bridge in Python (customer <-> agent through the bot's
process) and rtp_timeout when a peer vanishes without BYE (SIGKILL).

Customer (Debian baresip) plays 1000 Hz, agent (Debian baresip) plays 2000 Hz. The bot
dials both, copies 20 ms frames across for 2 s; then the customer is SIGKILLed and the
bot's call must close by itself (Config.rtp_timeout=2).

Run: /tmp/bsp/bin/python exp7_bridge_rtp_timeout.py
"""

import asyncio
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from peers import DebianBaresip, dominant_freq, free_port, rms  # noqa: E402

from baresip import Account, Config, Runtime, UserAgent  # noqa: E402
from baresip.errors import AudioNotActive, AudioRestarted  # noqa: E402

W1 = "/tmp/bexp/b_tone1000.wav"
W2 = "/tmp/bexp/c_tone2000.wav"


async def main():
    if not os.path.exists(W2):
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", W2, "synth", "20", "sine",
                        "2000", "vol", "0.5"], check=True)
    cust = DebianBaresip("/tmp/bexp/exp7/cust", user="customer", wav=W1)
    agent = DebianBaresip("/tmp/bexp/exp7/agent", user="agent", wav=W2)
    await cust.start()
    await agent.start()
    port = free_port()
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None, rtp_timeout=2,
                          extra_config_text=f"sip_listen 127.0.0.1:{port}\n"))
    try:
        ua = await UserAgent.create(rt, Account(user="bot", domain=f"127.0.0.1:{port}", password="",
                                                reg_interval=0, audio_codecs=("PCMA", "PCMU")))
        c1 = await ua.dial(cust.uri)
        c2 = await ua.dial(agent.uri)
        await asyncio.gather(c1.wait_established(3), c2.wait_established(3))
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 2.0:
            try:
                c2.audio.write(c1.audio.read(1280))  # customer -> agent
                c1.audio.write(c2.audio.read(1280))  # agent -> customer
            except (AudioNotActive, AudioRestarted):
                pass
            n += 1
            await asyncio.sleep(max(0, t0 + n * 0.02 - time.monotonic()))
        await c2.hangup()
        closed = asyncio.get_running_loop().create_future()
        c1.on(lambda e: e.event.name == "CALL_CLOSED" and not closed.done() and closed.set_result(
            (time.monotonic(), e.text)))
        t_kill = time.monotonic()
        os.kill(cust.proc.pid, signal.SIGKILL)
        cust.proc.wait()
        t_closed, reason = await asyncio.wait_for(closed, 10)
        print("customer SIGKILLed; bot's call closed after %.2f s with reason %r"
              % (t_closed - t_kill, reason))
    finally:
        await rt.close()
        await cust.stop()
        await agent.stop()
    for who in ("cust", "agent"):
        snd = f"/tmp/bexp/exp7/{who}/snd"
        for f in sorted(os.listdir(snd)):
            if f.endswith("dec.wav"):
                data = open(os.path.join(snd, f), "rb").read()[44:]
                print(f"{who} heard (dec) %.2f s RMS %.0f" % (len(data) / 16000, rms(data)),
                      {k: round(v) for k, v in dominant_freq(data[4000:20000], candidates=(1000, 2000)).items()})


asyncio.run(main())
