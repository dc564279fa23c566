"""`waihu`: the command line of the project, bot's commands with the voice ones added.

bot.cli builds the commands that need no audio; this module adds `simulate`, `call`, `run`
and `prompts warm`, and gives `demo` its voice calls (`--asr`) through bot.cli's parser
extensions.  The dependency goes one way: voice/ uses bot/, bot/ imports nothing from voice/.
The voice modules are imported when their command runs, so `waihu campaign list` does not
load the SIP stack or an ASR engine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot import cli as bot_cli
from bot.console.command import add_console_options
from bot.qa.schedule import CATCH_UP_DAYS

ASR_ENGINES = ["auto", "vosk", "whisper"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of 1 or more")
    return value


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import demo
    from voice.simulate import demo_calls

    return demo(args, voice_calls=demo_calls(args.asr))


def cmd_simulate(args: argparse.Namespace) -> int:
    from voice.simulate import simulate

    return simulate(args)


def cmd_call(args: argparse.Namespace) -> int:
    from voice.commands import call

    return call(args)


def cmd_run(args: argparse.Namespace) -> int:
    from voice.commands import run

    return run(args)


def cmd_prompts_warm(args: argparse.Namespace) -> int:
    from voice.tts.warm import main as warm_main

    argv = [args.campaign, *(["--database", args.database] if args.database else []),
            *(["--contacts"] if args.contacts else [])]
    return warm_main(argv)


def add_voice_commands(sub: bot_cli.Subcommands) -> None:
    """The demo's voice calls, and the commands that place real calls or synthesise."""
    demo = sub.choices["demo"]
    demo.add_argument("--asr", default="auto", choices=ASR_ENGINES)
    demo.set_defaults(func=cmd_demo)

    def voice_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--asr", default="auto", choices=ASR_ENGINES,
                       help="ASR engine (auto: Vosk if its Mandarin model is present)")
        return p

    simulate = voice_options(sub.add_parser(
        "simulate", help="virtual customers (persona files) as real SIP calls"))
    simulate.add_argument("--personas", type=Path, nargs="+", required=True,
                          help="folder(s) of personas, run one after the other")
    simulate.add_argument("--campaign", type=Path,
                          help="campaign YAML (default: the sample campaign named like the "
                          "persona folder)")
    simulate.add_argument("--concurrency", type=int, default=4, help="calls at once")
    simulate.add_argument("--report", action="store_true",
                          help="also print the campaign report as a JSON line")
    simulate.add_argument("--text", action="store_true",
                          help="text calls instead (no SIP or audio): the words go straight "
                          "to Rasa")
    simulate.add_argument("--summary", action="store_true",
                          help="finally a JSON line: expectations held per folder and "
                          "overall, failures, unwanted consents")
    simulate.set_defaults(func=cmd_simulate)

    call = voice_options(bot_cli.with_json(sub.add_parser(
        "call", help="one real call with a campaign's script to any SIP URI")))
    call.add_argument("uri", help="sip:user@host[:port]")
    call.add_argument("--campaign", type=Path, required=True, help="campaign YAML file")
    call.add_argument("--name", default="张伟", help="the customer's name")
    call.add_argument("--gender", default="male", choices=["male", "female"])
    call.add_argument("--id-last4", default="1234", help="last 4 ID digits on file")
    call.add_argument("--ring-timeout", type=float, default=40.0, help="seconds")
    call.add_argument("--agent-uri", help="SIP URI of the agent phone for transfers")
    call.add_argument("--transfer-mode", default="bridge", choices=["bridge", "refer"])
    call.add_argument("--sip-port", type=int, default=0, help="local SIP port (0: any)")
    call.add_argument("--force", action="store_true",
                      help="for a test line: call even if the number is on the do-not-call "
                      "list or blacklist, outside the calling window, or on another call "
                      "(audited as call.forced)")
    call.set_defaults(func=cmd_call)

    run = voice_options(sub.add_parser(
        "run", help="Rasa, actions, gateway and dialer for real use (until Ctrl-C)"))
    run.add_argument("--capacity", type=int, default=10, help="concurrent calls")
    run.add_argument("--sip-host", default="127.0.0.1", help="address to bind SIP/RTP to")
    run.add_argument("--sip-port", type=int, default=5060)
    run.add_argument("--outbound-proxy", help="SBC every INVITE goes through (host[:port])")
    run.add_argument("--agent-uri", help="SIP URI of the agent queue for transfers")
    run.add_argument("--transfer-mode", default="bridge", choices=["bridge", "refer"])
    run.add_argument("--recorded-prompts", type=Path,
                     help="folder of <response>.wav recordings that replace synthesis")
    add_console_options(run, "console-")
    run.add_argument("--no-console", action="store_true", help="do not start the web console")
    run.add_argument("--no-qa-schedule", action="store_true",
                     help="do not draw the daily and weekly QA samples after midnight "
                     "(`waihu qa sample` still draws them on demand)")
    run.add_argument("--qa-catch-up-days", type=_positive_int, default=CATCH_UP_DAYS,
                     metavar="N", help="draw the QA samples missed in the last N days "
                     f"(default {CATCH_UP_DAYS})")
    run.set_defaults(func=cmd_run)

    prompts = sub.add_parser("prompts", help="the TTS prompt cache")
    psub = prompts.add_subparsers(dest="prompts_command", required=True)
    warm = psub.add_parser("warm", help="synthesise every fixed prompt of a campaign (JSON)")
    warm.add_argument("campaign", help="campaign name or YAML file")
    warm.add_argument("--contacts", action="store_true",
                      help="also every stored contact's own prompts (else synthesised when "
                      "the gateway claims the contact)")
    warm.set_defaults(func=cmd_prompts_warm)


def build_parser() -> argparse.ArgumentParser:
    return bot_cli.build_parser(add_voice_commands)


def main(argv: list[str] | None = None) -> int:
    return bot_cli.main(argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
