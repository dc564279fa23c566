"""A second baresip-python process: answers every call and echoes the caller's
audio back (frame by frame through Python). Prints READY when listening.

Run: /tmp/bsp/bin/python callee_echo.py PORT [SECONDS]
"""

import asyncio
import os
import sys

from baresip import Account, Config, Runtime, UserAgent
from baresip.errors import AudioNotActive, AudioRestarted, BaresipError


async def echo(call):
    try:
        await call.answer()
        await call.wait_established(5)
    except BaresipError:
        return
    while call.state.value != "closed":
        try:
            data = call.audio.read(3200)
            if data:
                call.audio.write(data)
        except (AudioNotActive, AudioRestarted):
            pass
        await asyncio.sleep(0.02)


async def main(port, seconds):
    rt = Runtime()
    await rt.start(Config(net_interface="127.0.0.1", max_concurrent_calls=None,
                          extra_config_text=f"sip_listen 127.0.0.1:{port}\n"
                          + os.environ.get("EXTRA_CONFIG", "").replace("\\n", "\n")))
    ua = await UserAgent.create(rt, Account(user="echo", domain=f"127.0.0.1:{port}", password="",
                                            reg_interval=0, audio_codecs=("PCMA", "PCMU")))
    tasks = set()

    def on_incoming(call):
        t = asyncio.get_running_loop().create_task(echo(call))
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    ua.on_incoming(on_incoming)
    print("READY", flush=True)
    try:
        await asyncio.sleep(seconds)
    finally:
        await rt.close()


asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 120))
