"""`waihu`: the command line of the project (every command that prints results has --json)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from bot.campaigns.definition import CampaignFileError, load_definition
from bot.store import CampaignRepo, ConsentLedger, Database, default_url

REPO = Path(__file__).resolve().parents[1]


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str))


def _database(args: argparse.Namespace) -> Database:
    db = Database(args.database or default_url())
    db.upgrade()
    return db


# --- campaign -------------------------------------------------------------------------


def cmd_campaign_create(args: argparse.Namespace) -> int:
    from bot.campaigns.registry import save_campaign

    defn = load_definition(args.file)
    campaign_id = save_campaign(_database(args), defn)
    result = {"id": campaign_id, "name": defn.name, "type": defn.type,
              "script_hash": defn.script_hash()}
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


# --- report / audit -------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from bot.reports.command import run

    return run(_database(args), args)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    with _database(args).session() as session:
        check = ConsentLedger(session).verify()
    result = {"ok": check.ok, "entries": check.entries, "first_bad_id": check.first_bad_id,
              "problem": check.problem}
    if args.json:
        _print_json(result)
    else:
        print(f"consent ledger: {check.entries} entries, "
              + ("chain intact" if check.ok else f"BROKEN at id {check.first_bad_id}: "
                 f"{check.problem}"))
    return 0 if check.ok else 1


# --- chat / demo ----------------------------------------------------------------------


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat import chat

    return asyncio.run(chat(_database(args), args))


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import demo

    return demo(args)


# --- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waihu", description=__doc__)
    parser.add_argument("--database", help="SQLAlchemy URL (default: $WAIHU_DATABASE_URL or "
                        "var/waihu.db)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_json(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    campaign = sub.add_parser("campaign", help="create and list campaigns")
    csub = campaign.add_subparsers(dest="action", required=True)
    create = with_json(csub.add_parser("create", help="create or update from a YAML file"))
    create.add_argument("file", type=Path)
    create.set_defaults(func=cmd_campaign_create)
    with_json(csub.add_parser("list", help="list campaigns")).set_defaults(func=cmd_campaign_list)

    from bot.reports import command as report_command

    report = sub.add_parser("report", help="campaign, daily and weekly reports (json, text, "
                            "csv, xlsx, html, pdf)")
    report_command.add_arguments(report)
    report.set_defaults(func=cmd_report)

    audit = sub.add_parser("audit", help="check the consent ledger")
    asub = audit.add_subparsers(dest="action", required=True)
    with_json(asub.add_parser("verify", help="recompute the hash chain")).set_defaults(
        func=cmd_audit_verify)

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
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args))
    except CampaignFileError as exc:
        print(f"waihu: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
