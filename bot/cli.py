"""The `waihu` commands of the bot: campaigns, contacts, reports, audit, DNC, QA, chat, demo.

`voice/cli.py` is the `waihu` command itself: it adds the voice commands (simulate, call,
run, prompts) and the demo's voice calls through `build_parser`'s *extensions*, so that the
dependency goes one way (voice on bot).  Run alone (`python -m bot.cli`), this is the
command line without them: `demo` then needs --text.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

from bot import keys
from bot.audit_commands import add_audit_commands
from bot.campaigns.definition import CampaignFileError, load_definition
from bot.cliutil import Subcommands, with_json
from bot.cliutil import database as _database
from bot.cliutil import print_json as _print_json
from bot.console.command import add_console_command
from bot.db_commands import add_db_commands
from bot.dnc_commands import add_dnc_commands
from bot.keys_commands import add_keys_commands
from bot.qa.commands import add_qa_complaints_command, add_qa_sample_command
from bot.store import CampaignRepo, utcnow
from bot.user_commands import add_user_commands

REPO = Path(__file__).resolve().parents[1]
DESCRIPTION = ("`waihu`: the command line of the project (every command that prints results "
               "has --json).")

Extension: TypeAlias = Callable[[Subcommands], None]  # adds commands or options to the parser


# --- campaign -------------------------------------------------------------------------


def cmd_campaign_create(args: argparse.Namespace) -> int:
    from bot.campaigns.registry import save_campaign

    defn = load_definition(args.file)
    campaign_id = save_campaign(_database(args), defn)
    result = {"id": campaign_id, "name": defn.name, "type": defn.type,
              "wording_hash": defn.wording_hash()}
    _print_json(result) if args.json else print(
        f"campaign {defn.name} ({defn.type}) saved, id {campaign_id}")
    return 0


def cmd_campaign_list(args: argparse.Namespace) -> int:
    with _database(args).session() as session:
        rows = [{"id": c.id, "name": c.name, "type": c.type, "status": c.status}
                for c in CampaignRepo(session).list()]
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['id']:>4}  {row['name']:<30} {row['type']:<20} {row['status']}")
    return 0


# --- import ---------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from bot.campaigns.importer import ContactImportError, import_contacts

    try:
        summary = import_contacts(_database(args), args.campaign, args.file,
                                  rejects_path=args.rejects, encoding=args.encoding,
                                  sheet=args.sheet)
    except ContactImportError as exc:
        print(f"waihu import: {exc}", file=sys.stderr)
        return 2
    _print_json(summary.as_json())  # always JSON; rejected rows are in the summary
    return 0


# --- report / audit -------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from bot.reports.command import run

    return run(_database(args), args)


def cmd_campaign_start(args: argparse.Namespace) -> int:
    from bot.campaigns.registry import CampaignControlError, start_campaign

    try:
        result = start_campaign(_database(args), args.name, utcnow(), force=args.force)
    except CampaignControlError as exc:
        print(f"waihu campaign start: {exc}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(result.as_json())
        return 0
    print(f"campaign {result.name} is {result.status}")
    if result.warning is not None:
        print(f"{result.warning.level.upper()}: {result.warning.message}")
    for note in result.notes:
        print(f"note: {note}")
    return 0


def cmd_campaign_pause_resume(args: argparse.Namespace) -> int:
    from bot.campaigns.registry import CampaignControlError, pause_campaign, resume_campaign

    change = pause_campaign if args.action == "pause" else resume_campaign
    try:
        status = change(_database(args), args.name)
    except CampaignControlError as exc:
        print(f"waihu campaign {args.action}: {exc}", file=sys.stderr)
        return 2
    _print_json({"name": args.name, "status": status}) if args.json else print(
        f"campaign {args.name} is {status}")
    return 0


def cmd_campaign_check(args: argparse.Namespace) -> int:
    from bot.campaigns.dryrun import check_campaign
    from bot.store import NotFound

    at = datetime.fromisoformat(args.at) if args.at else utcnow()
    if at.tzinfo is None:
        print("waihu campaign check: --at needs a time zone, e.g. 2030-05-06T10:00+08:00",
              file=sys.stderr)
        return 2
    try:
        result = check_campaign(_database(args), args.name, at)
    except NotFound as exc:
        print(f"waihu campaign check: {exc}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(result)
        return 0
    print(f"campaign {result['campaign']} "
          f"({result['type']}, {result['status']}) at {result['at']}: "
          f"{result['contacts']} contacts, {result['would_dial']} would be dialled now")
    for reason, count in result["skipped"].items():
        if count:
            print(f"  skipped {reason}: {count}")
    if not result["in_window"]:
        print(f"  outside the calling windows; next window starts {result['next_window_start']}")
    if result["deadline"]:
        print(f"  {result['deadline']['level'].upper()}: {result['deadline']['message']}")
    return 0


# --- dnc / qa -------------------------------------------------------------------------


def cmd_qa_review(args: argparse.Namespace) -> int:
    from bot.campaigns.qa import record_qa_review
    from bot.store import NotFound

    try:
        result = record_qa_review(_database(args), args.call_id, args.reviewer,
                                  args.compliant, args.notes, now=utcnow())
    except (NotFound, ValueError) as exc:
        print(f"waihu qa review: {exc}", file=sys.stderr)
        return 2
    out = {"review_id": result.review_id, "call_id": args.call_id,
           "compliant": args.compliant, "followup_callback_id": result.callback_id,
           "note": result.note}
    if args.json:
        _print_json(out)
    else:
        print(f"review {result.review_id} saved"
              + (f"; QA follow-up call scheduled (callback {result.callback_id})"
                 if result.callback_id else "")
              + (f" ({result.note})" if result.note else ""))
    return 0


# --- chat / demo ----------------------------------------------------------------------


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat import run

    return run(args)  # a scratch database unless told otherwise


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import demo

    return demo(args)


# --- parser ---------------------------------------------------------------------------


def build_parser(*extensions: Extension) -> argparse.ArgumentParser:
    """The bot's commands, then whatever each of *extensions* adds."""
    parser = argparse.ArgumentParser(prog="waihu", description=DESCRIPTION)
    parser.add_argument("--database", help="SQLAlchemy URL (default: $WAIHU_DATABASE_URL or "
                        "var/waihu.db)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    campaign = sub.add_parser("campaign", help="create and list campaigns")
    csub = campaign.add_subparsers(dest="action", required=True)
    create = with_json(csub.add_parser("create", help="create or update from a YAML file"))
    create.add_argument("file", type=Path)
    create.set_defaults(func=cmd_campaign_create)
    with_json(csub.add_parser("list", help="list campaigns")).set_defaults(func=cmd_campaign_list)
    start = with_json(csub.add_parser("start", help="start dialling (warns on a late notice)"))
    start.add_argument("name")
    start.add_argument("--force", action="store_true",
                       help="start a notification even though its deadline has passed")
    start.set_defaults(func=cmd_campaign_start)
    for action, text in (("pause", "hand out no new calls (calls in progress finish)"),
                         ("resume", "resume a paused campaign")):
        control = with_json(csub.add_parser(action, help=text))
        control.add_argument("name")
        control.set_defaults(func=cmd_campaign_pause_resume)
    check = with_json(csub.add_parser("check", help="dry run: who would be dialled, who not"))
    check.add_argument("name")
    check.add_argument("--at", help="evaluate at this ISO time with zone (default: now)")
    check.set_defaults(func=cmd_campaign_check)

    imp = with_json(sub.add_parser("import", help="import a contact list (CSV or XLSX)"))
    imp.add_argument("campaign", help="campaign name")
    imp.add_argument("file", type=Path)
    imp.add_argument("--rejects", type=Path,
                     help="rejected rows go here (default: <file>.rejects.csv beside the file)")
    imp.add_argument("--encoding", help="CSV encoding (default: UTF-8, else GBK/GB18030)")
    imp.add_argument("--sheet", help="XLSX sheet name (default: the first sheet)")
    imp.set_defaults(func=cmd_import)

    from bot.reports import command as report_command

    report = sub.add_parser("report", help="campaign, daily and weekly reports (json, text, "
                            "csv, xlsx, html, pdf)")
    report_command.add_arguments(report)
    report.set_defaults(func=cmd_report)

    add_audit_commands(sub)
    add_db_commands(sub)

    add_dnc_commands(sub)
    add_keys_commands(sub)
    add_user_commands(sub)
    add_console_command(sub)

    qa = sub.add_parser("qa", help="quality review of recorded calls")
    qsub = qa.add_subparsers(dest="action", required=True)
    review = with_json(qsub.add_parser("review", help="record a reviewer's verdict on a call"))
    review.add_argument("call_id")
    review.add_argument("--reviewer", required=True)
    verdict = review.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--compliant", dest="compliant", action="store_true")
    verdict.add_argument("--non-compliant", dest="compliant", action="store_false")
    review.add_argument("--notes")
    review.set_defaults(func=cmd_qa_review)
    add_qa_sample_command(qsub)
    add_qa_complaints_command(qsub)

    chat = sub.add_parser("chat", help="talk to the bot as a customer, in the terminal")
    chat.add_argument("--campaign", type=Path, required=True, help="campaign YAML file")
    chat.add_argument("--name", default="张伟", help="the customer's name")
    chat.add_argument("--gender", default="male", choices=["male", "female"])
    chat.add_argument("--phone", default="13800138000")
    chat.add_argument("--id-last4", default="1234", help="last 4 ID digits on file")
    chat.add_argument("--trial-end", help="the contact's trial end date (YYYY-MM-DD)")
    chat.set_defaults(func=cmd_chat)

    demo = with_json(sub.add_parser("demo", help="sample campaigns with virtual customers"))
    demo.add_argument("--only", choices=["marketing", "notification", "survey",
                                         "second_confirmation"],
                      help="run one sample campaign instead of all four")
    demo.add_argument("--text", action="store_true",
                      help="text mode: no SIP, audio, ASR or TTS (fast)")
    demo.set_defaults(func=cmd_demo)

    for extend in extensions:
        extend(sub)
    return parser


def exit_on_sigterm() -> None:
    """A SIGTERM (`kill PID`, a CI timeout) ends the command as Ctrl-C would, through its
    `finally` and `with` blocks: `waihu demo` and `simulate` start Rasa and the action
    server in process groups of their own, which a bare SIGTERM left running.  Commands
    that serve (`run`, `console`) set their own handler on the event loop."""
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    args = (parser or build_parser()).parse_args(argv)
    exit_on_sigterm()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args))
    except (CampaignFileError, keys.KeyringError) as exc:
        print(f"waihu: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
