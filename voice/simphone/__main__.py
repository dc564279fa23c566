"""`python -m voice.simphone`: virtual customers on a SIP address until SIGTERM/SIGINT.

    python -m voice.simphone --listen 127.0.0.1:5080 --personas examples/personas \\
        --numbers numbers.json [--record-dir D] [--report out.jsonl]

`numbers.json` maps each dialled number to a persona id: {"13800000001": "busy_customer"}.
Every persona phrase is synthesised (or read from the prompt cache) before the socket opens;
one JSON line per finished call goes to --report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.personas import PersonaError, load_personas
from voice.simphone.phone import SimPhone, SimPhoneOptions, personas_by_number


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m voice.simphone", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 5080),
                        help="SIP UDP address (default 127.0.0.1:5080)")
    parser.add_argument("--personas", type=Path, required=True, help="folder of persona *.yml")
    parser.add_argument("--numbers", type=Path, required=True,
                        help="JSON file mapping number → persona id")
    parser.add_argument("--record-dir", type=Path, help="write a stereo WAV per call here")
    parser.add_argument("--report", type=Path, help="append one JSON line per call here")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/cache/tts"),
                        help="TTS prompt cache (default var/cache/tts)")
    parser.add_argument("--bot-silence-ms", type=int, default=700,
                        help="silence after which the bot counts as having stopped")
    parser.add_argument("--idle-hangup-s", type=float, default=20.0)
    parser.add_argument("--max-call-s", type=float, default=180.0)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(phone: SimPhone) -> None:
    await phone.start()
    print(f"simphone listening on sip:*@{phone.host}:{phone.port} "
          f"({len(phone.personas)} numbers)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await phone.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        numbers = json.loads(args.numbers.read_text(encoding="utf-8"))
        if not isinstance(numbers, dict):
            raise ValueError(f"{args.numbers}: expected a JSON object number → persona id")
        personas = personas_by_number(numbers, load_personas(args.personas))
    except (OSError, ValueError, PersonaError) as exc:
        print(f"simphone: {exc}", file=sys.stderr)
        return 2
    options = SimPhoneOptions(bot_silence_ms=args.bot_silence_ms,
                              idle_hangup_s=args.idle_hangup_s, max_call_s=args.max_call_s)
    host, port = args.listen
    phone = SimPhone(personas, host, port, cache_dir=args.cache_dir,
                     record_dir=args.record_dir, report=args.report, options=options)
    phone.prepare()  # pyttsx3 before the event loop starts (it can deadlock under threads)
    asyncio.run(serve(phone))
    return 0


if __name__ == "__main__":
    sys.exit(main())
