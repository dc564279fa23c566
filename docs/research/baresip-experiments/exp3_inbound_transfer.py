"""Experiment 3: inbound calls to baresip-python and blind transfer (REFER).

a) Debian baresip B dials A (ctrl_tcp `dial`); A answers via on_incoming; audio both
   ways; B hangs up.  b) B dials A; A rejects (486) -- what B sees.
c) A dials B, then A.transfer(C) -- B (Debian baresip 1.0.0) executes the REFER and
   calls C (agent phone). d) C (agent) REFERs A elsewhere: A receives a TransferRequest.

Run: /tmp/bsp/bin/python exp3_inbound_transfer.py
"""

import asyncio
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from peers import DebianBaresip, dominant_freq, free_port, rms, tone  # noqa: E402

from baresip import Account, Config, Runtime, StaleHandleError, UserAgent  # noqa: E402

WORK = "/tmp/bexp/exp3"
WAV = "/tmp/bexp/b_tone1000.wav"


async def pump(call, seconds, freq=440):
    """Write a tone and read the far end for `seconds`, 20 ms pacing."""
    out = tone(freq, seconds)
    got = bytearray()
    start = time.monotonic()
    for i in range(0, len(out), 320):
        call.audio.write(out[i:i + 320])
        got += call.audio.read(1280)
        await asyncio.sleep(max(0, start + (i // 320 + 1) * 0.02 - time.monotonic()))
    return bytes(got)


async def main():
    logging.basicConfig(level=os.environ.get("LOG", "WARNING"))
    b = DebianBaresip(os.path.join(WORK, "b"), user="customer", wav=WAV)
    c = DebianBaresip(os.path.join(WORK, "c"), user="agent", wav=WAV)
    await b.start()
    await c.start()
    a_port = free_port()
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None,
                          extra_config_text=f"sip_listen 127.0.0.1:{a_port}\n"))
    try:
        ua = await UserAgent.create(rt, Account(
            user="bot", domain=f"127.0.0.1:{a_port}", password="", reg_interval=0,
            audio_codecs=("PCMA", "PCMU")))
        a_uri = f"sip:bot@127.0.0.1:{a_port}"

        # a) inbound, answered
        incoming = asyncio.Queue()
        mode = {"v": "answer"}

        def on_incoming(call):
            # runs on the asyncio loop thread (call_soon_threadsafe from the SIP thread)
            incoming.put_nowait(call)

        ua.on_incoming(on_incoming)
        t0 = time.monotonic()
        await b.command("dial", a_uri)
        call = await asyncio.wait_for(incoming.get(), 3)
        ev = []
        call.on(lambda e: ev.append((round((time.monotonic() - t0) * 1000), e.event.name, e.text)))
        print("a) incoming:", call, "call_id", call.call_id, "headers", call.headers)
        await call.answer()
        await call.wait_established(3)
        got = await pump(call, 1.0)
        print("a) A heard %.2f s RMS %.0f" % (len(got) / 16000, rms(got)),
              {k: round(v) for k, v in dominant_freq(got[1600:]).items()})
        await b.command("hangup", "")
        await asyncio.sleep(0.5)
        print("a) A events:", ev)
        print("a) B events:", b.event_types()[-6:])

        # b) inbound, rejected
        b.events.clear()
        await b.command("dial", a_uri)
        call = await asyncio.wait_for(incoming.get(), 3)
        await call.reject()
        await asyncio.sleep(0.5)
        print("b) B events after A.reject():", b.event_types())
        closed = [m for m in b.events if m.get("type") == "CALL_CLOSED"]
        print("b) B CALL_CLOSED:", closed)

        # c) blind transfer: A calls B, then REFERs B to C
        b.events.clear()
        ev = []
        t0 = time.monotonic()
        call = await ua.dial(b.uri)
        call.on(lambda e: ev.append((round((time.monotonic() - t0) * 1000), e.event.name, e.text)))
        await call.wait_established(3)
        await asyncio.sleep(0.3)
        try:
            await call.transfer(c.uri, timeout=10)
            print("c) transfer() returned; call state", call.state)
        except Exception as exc:
            print("c) transfer failed:", type(exc).__name__, exc, getattr(exc, "status", None))
        await asyncio.sleep(0.5)
        print("c) A events:", ev)
        print("c) B events:", b.event_types())
        print("c) C events:", c.event_types())
        # clean up the B<->C call
        await c.command("hangup", "")
        await asyncio.sleep(0.3)

        # d) the far end REFERs us: C calls A, then C transfers A to B
        c.events.clear()
        await c.command("dial", a_uri)
        call = await asyncio.wait_for(incoming.get(), 3)
        reqs = []
        call.on_transfer_request(lambda r: reqs.append(r))
        dev = []
        t0 = time.monotonic()
        call.on(lambda e: dev.append((round((time.monotonic() - t0) * 1000), e.event.name, e.text)))
        await call.answer()
        await call.wait_established(3)
        await asyncio.sleep(0.3)
        r = await c.command("transfer", b.uri)
        print("d) C transfer cmd response:", r)
        await asyncio.sleep(0.8)
        print("d) A got transfer request:", reqs, "pending:", call.transfer_request)
        if call.transfer_request:
            await call.reject_transfer(603)
            await asyncio.sleep(0.5)
        print("d) C events:", c.event_types())
        print("d) A events:", dev)
        try:
            await call.hangup()
        except StaleHandleError:
            print("d) hangup: StaleHandleError (call already gone)")
        await asyncio.sleep(0.3)
    finally:
        await rt.close()
        await b.stop()
        await c.stop()


asyncio.run(main())
