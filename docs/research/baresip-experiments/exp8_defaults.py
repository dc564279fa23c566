"""Experiment 8: defaults -- where the stack listens without sip_listen, which audio
drivers are registered, native version, and the cost of one read/write call.

Run: /tmp/bsp/bin/python exp8_defaults.py
"""
import asyncio
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from peers import DebianBaresip, free_port  # noqa: E402

from baresip import Account, Config, Runtime, UserAgent  # noqa: E402
from baresip._native import ffi, lib  # noqa: E402


async def main():
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1"))
    try:
        pid = os.getpid()
        ss = subprocess.run(["ss", "-lunpt"], capture_output=True, text=True).stdout
        print("sockets without sip_listen:", [l.split()[4] for l in ss.splitlines() if f"pid={pid}," in l])
        _, payload = await rt.cmd(lib.BP_CMD_AUDIO_DRIVERS)
        print("audio drivers:", json.loads(payload))
        print("native version:", ffi.string(lib.bp_version()).decode() if lib.bp_version() else None)
        # a second process binding the default port would conflict -> always set sip_listen
        b = DebianBaresip("/tmp/bexp/exp8/b", user="callee", wav="/tmp/bexp/b_tone1000.wav")
        await b.start()
        ua = await UserAgent.create(rt, Account(user="bot", domain="127.0.0.1", password="",
                                                reg_interval=0, audio_codecs=("PCMA", "PCMU")))
        call = await ua.dial(b.uri)
        await call.wait_established(3)
        await asyncio.sleep(0.5)
        frame = b"\x00\x01" * 160
        n = 20000
        t = time.perf_counter()
        for _ in range(n):
            call.audio.read(320)
        t_read = (time.perf_counter() - t) / n * 1e6
        t = time.perf_counter()
        for _ in range(n):
            call.audio.write(frame)
        t_write = (time.perf_counter() - t) / n * 1e6
        print(f"call.audio.read(320): {t_read:.1f} us/call; write(320 B): {t_write:.1f} us/call")
        print("info after flood:", call.audio.info())
        call.audio.flush_tx()
        await asyncio.sleep(0.05)
        print("after flush_tx:", call.audio.info().tx_buffered, "bytes buffered;",
              "stats:", call.audio.stats())
        await call.hangup()
        await asyncio.sleep(0.2)
        await b.stop()
    finally:
        await rt.close()


asyncio.run(main())
