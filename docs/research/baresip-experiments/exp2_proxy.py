"""Experiment 2: baresip-python (A) dials through kamailio (proxy on loopback).

For busy/noanswer/nosuch/reject/timeout/blackhole/secure(auth)/early/callee, print the
events A sees, the exception class, .status and .reason. `early` goes to a Debian
baresip with answermode=early (183 + SDP, plays its WAV as early media), which is
then accepted over ctrl_tcp; `callee` is hung up by the far end.

Run: /tmp/bsp/bin/python exp2_proxy.py
"""

import asyncio
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from peers import DebianBaresip, Kamailio, dominant_freq, free_port, rms  # noqa: E402

from baresip import Account, CallFailed, Config, Runtime, UserAgent  # noqa: E402

WORK = "/tmp/bexp/exp2"
WAV = "/tmp/bexp/b_tone1000.wav"


async def dial_and_report(ua, uri, timeout=10, early_peer=None, far_hangup_peer=None):
    events = []
    t0 = time.monotonic()
    call = await ua.dial(uri)
    call.on(lambda e: events.append((round((time.monotonic() - t0) * 1000, 1), e.event.name, e.text)))
    early_audio = b""
    result = {}
    try:
        if early_peer is not None:
            # read early media while the call is only "in progress"
            await asyncio.sleep(0.3)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                try:
                    early_audio += call.audio.read(3200)
                except Exception as exc:  # AudioNotActive before media
                    result.setdefault("early_read_errors", repr(exc))
                await asyncio.sleep(0.02)
            result["state_during_early"] = call.state.value
            result["early_audio_s"] = len(early_audio) / 16000
            result["early_rms"] = round(rms(early_audio))
            await early_peer.command("accept", "")
        await call.wait_established(timeout=timeout)
        result["outcome"] = "established"
        if far_hangup_peer is not None:
            await asyncio.sleep(0.5)
            await far_hangup_peer.command("hangup", "")
            await asyncio.sleep(0.5)
        else:
            await asyncio.sleep(0.5)
            await call.hangup()
            await asyncio.sleep(0.3)
    except CallFailed as exc:
        result.update(outcome=type(exc).__name__, status=exc.status, reason=exc.reason)
    result["elapsed_ms"] = round((time.monotonic() - t0) * 1000)
    result["state"] = call.state.value
    result["events"] = events
    return result


async def main():
    logging.basicConfig(level=os.environ.get("LOG", "WARNING"))
    b = DebianBaresip(os.path.join(WORK, "callee"), user="callee", wav=WAV)
    e = DebianBaresip(os.path.join(WORK, "early"), user="early", wav=WAV, answermode="early")
    r = DebianBaresip(os.path.join(WORK, "ring"), user="ring", wav=WAV, answermode="manual")
    for p in (b, e, r):
        await p.start()
    k = Kamailio(os.path.join(WORK, "kam"), callee_port=b.sip_port, early_port=e.sip_port,
                 ring_port=r.sip_port)
    k.start()
    a_port = free_port()
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None,
                          extra_config_text=f"sip_listen 127.0.0.1:{a_port}\n"))
    try:
        ua = await UserAgent.create(rt, Account(
            user="bot", domain=f"127.0.0.1:{a_port}", password="secret", reg_interval=0,
            audio_codecs=("PCMA", "PCMU")))
        ua_noauth = await UserAgent.create(rt, Account(
            user="anon", domain=f"127.0.0.1:{a_port}", password="", reg_interval=0,
            audio_codecs=("PCMA", "PCMU")))
        kp = k.port
        cases = [
            ("busy", ua, {}), ("noanswer", ua, {}), ("nosuch", ua, {}), ("reject", ua, {}),
            ("timeout", ua, {}), ("blackhole", ua, {}),
            ("secure", ua, {}), ("secure(no password)", ua_noauth, {}),
            ("early", ua, {"early_peer": e}),
            ("callee", ua, {"far_hangup_peer": b}),
        ]
        for name, agent, kw in cases:
            user = name.split("(")[0]
            res = await dial_and_report(agent, f"sip:{user}@127.0.0.1:{kp}", **kw)
            print(f"--- {name}:")
            for key, val in res.items():
                print(f"   {key}: {val}")
        # a caller-side timeout: peer only rings, we give up after 1.5 s
        res = await dial_and_report(ua, f"sip:ring@127.0.0.1:{r.sip_port}", timeout=1.5)
        print("--- ring, wait_established(timeout=1.5):")
        for key, val in res.items():
            print(f"   {key}: {val}")
        print("ring peer events:", r.event_types())
        print("early peer events:", e.event_types())
    finally:
        await rt.close()
        k.stop()
        for p in (b, e, r):
            await p.stop()


asyncio.run(main())
