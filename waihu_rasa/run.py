"""`rasa` with the HTTP API's `--auth-token` taken from `WAIHU_RASA_TOKEN`.

    WAIHU_RASA_TOKEN=… .venv-rasa/bin/python -m waihu_rasa.run run --enable-api …

A token on the command line can be read by every user of the machine (`ps`,
`/proc/PID/cmdline`); the environment of a process only by its owner. So the token is
added to the arguments here, inside the process, and this refuses to start without one.
"""

from __future__ import annotations

import os
import sys

from waihu_rasa import TOKEN_ENV, token_problem


def rasa_argv(args: list[str], token: str) -> list[str]:
    """Rasa's command line with the token placed after the subcommand (rasa reads a last
    positional argument as the model path), joined to its option by `=`: a URL-safe token
    may start with "-", which argparse would take for the next option."""
    return ["rasa", *args[:1], f"--auth-token={token}", *args[1:]]


def main() -> int:
    token = os.environ.get(TOKEN_ENV)
    problem = token_problem(token)
    if problem is not None:
        print(f"waihu_rasa.run: {problem}; refusing to start Rasa with an open HTTP API "
              "and channel", file=sys.stderr)
        return 2
    if any(arg.split("=", 1)[0] in ("--auth-token", "-t") for arg in sys.argv[1:]):
        print("waihu_rasa.run: pass the token in the environment, not as --auth-token",
              file=sys.stderr)
        return 2
    sys.argv = rasa_argv(sys.argv[1:], str(token))
    from rasa.__main__ import main as rasa_main

    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
