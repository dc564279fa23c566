"""A voice gateway in a process of its own, for the fault tests (`waihu run`'s gateway part,
against a Rasa server and action server the test started).

    python -m tests.e2e.fault_gateway CONFIG.json

CONFIG: database, rasa_url, rasa_token, gateway_id, lease_s, recordings, var, campaign.
Prints ``gateway.ready`` once its prompts are warm and it is about to claim; SIGTERM stops
claiming and lets the call in progress end (SIGKILL is the fault under test).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bot.channel import RasaEndpoint
from bot.store import Database
from bot.store.base import utcnow
from voice.gateway import Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceSettings, voice_parts
from voice.tts.warm import warm_campaign


async def serve(config: dict[str, Any]) -> None:
    db = Database(config["database"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    settings = VoiceSettings(var=Path(config["var"]))
    async with voice_parts(settings) as parts, aiohttp.ClientSession() as http:
        await asyncio.to_thread(warm_campaign, db, config["campaign"], parts.cache,
                                now=utcnow(), days=1)  # the test warmed them: cache hits
        rasa = RasaEndpoint(config["rasa_url"], config["rasa_token"])
        gateway = Gateway(db, parts.telephony, parts.asr, parts.tts, rasa.channel(http),
                          GatewayConfig(gateway_id=config["gateway_id"], capacity=1,
                                        lease_s=config["lease_s"], poll_s=0.5,
                                        ring_timeout_s=20.0,
                                        session=SessionConfig(
                                            recordings_dir=Path(config["recordings"]))))
        print("gateway.ready", flush=True)
        await gateway.run(stop)
    db.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
