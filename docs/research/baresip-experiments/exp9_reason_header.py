"""Experiment 9: can the application see a Reason (Q.850) header on a failure
response? Config.expose_headers=("Reason",) and a kamailio reply carrying one.

Run: /tmp/bsp/bin/python exp9_reason_header.py
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from peers import Kamailio, free_port  # noqa: E402

from baresip import Account, CallFailed, Config, Runtime, UserAgent  # noqa: E402


async def main():
    k = Kamailio("/tmp/bexp/exp9/kam")
    k.start()
    port = free_port()
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None,
                          expose_headers=("Reason", "X-Test"),
                          extra_config_text=f"sip_listen 127.0.0.1:{port}\n"))
    try:
        ua = await UserAgent.create(rt, Account(user="bot", domain=f"127.0.0.1:{port}", password="",
                                                reg_interval=0, audio_codecs=("PCMA", "PCMU")))
        call = await ua.dial(f"sip:q850@127.0.0.1:{k.port}")
        evs = []
        call.on(lambda e: evs.append(e))
        try:
            await call.wait_established(3)
        except CallFailed as exc:
            print("failed:", type(exc).__name__, exc.status, exc.reason)
        for e in evs:
            print(e.event.name, repr(e.text), "headers:", e.headers, "from:", e.from_, "to:", e.to)
    finally:
        await rt.close()
        k.stop()


asyncio.run(main())
