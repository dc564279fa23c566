"""`waihu console`: the web console alone (agents, supervisors, QA, administration)."""

from __future__ import annotations

import argparse

from bot.cliutil import Subcommands
from bot.cliutil import database as _database
from bot.console.settings import DEFAULT_HOST, DEFAULT_PORT, ConsoleSettings


def add_console_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--host/--port (or --console-host/--console-port for `waihu run`) and the TLS
    options."""
    p.add_argument(f"--{prefix}host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}; another address only "
                   "when given, and then behind TLS)")
    p.add_argument(f"--{prefix}port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--secure-cookies", action="store_true",
                   help="the console is reached over https (a TLS reverse proxy): Secure "
                   "session cookie, Strict-Transport-Security")
    p.add_argument("--trusted-proxy", metavar="ADDRESS",
                   help="the reverse proxy's address, whose X-Forwarded-For names the client")


def settings_from(args: argparse.Namespace, prefix: str = "") -> ConsoleSettings:
    key = prefix.replace("-", "_")
    return ConsoleSettings(host=getattr(args, f"{key}host"), port=getattr(args, f"{key}port"),
                           secure_cookies=args.secure_cookies,
                           trusted_proxy=args.trusted_proxy)


def cmd_console(args: argparse.Namespace) -> int:
    from bot.console.server import serve

    return serve(settings_from(args), _database(args))


def add_console_command(sub: Subcommands) -> None:
    p = sub.add_parser("console", help="the web console alone (login, agent desk, "
                       "supervisors, QA, administration) until Ctrl-C")
    add_console_options(p)
    p.set_defaults(func=cmd_console)
