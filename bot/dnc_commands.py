"""`waihu dnc`: the do-not-call list and the blacklist, by hand or from a CSV file."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from bot.campaigns.phones import normalize_phone
from bot.cliutil import Subcommands, with_json
from bot.cliutil import database as _database
from bot.cliutil import print_json as _print_json
from bot.store import DncRepo


def add_dnc_commands(sub: Subcommands) -> None:
    dnc = sub.add_parser("dnc", help="the do-not-call list and blacklist")
    dsub = dnc.add_subparsers(dest="action", required=True)
    kinds = ["do_not_call", "blacklist"]
    dnc_add = with_json(dsub.add_parser("add", help="never call this number again"))
    dnc_add.add_argument("phone")
    dnc_add.add_argument("--reason", required=True)
    dnc_add.add_argument("--by", required=True, help="who adds it")
    dnc_add.add_argument("--kind", choices=kinds, default="do_not_call")
    dnc_add.set_defaults(func=cmd_dnc_add)
    dnc_remove = with_json(dsub.add_parser("remove", help="take a number off the lists"))
    dnc_remove.add_argument("phone")
    dnc_remove.add_argument("--reason", required=True)
    dnc_remove.add_argument("--by", required=True, help="who removes it")
    dnc_remove.add_argument("--kind", choices=kinds, help="only this list (default: both)")
    dnc_remove.set_defaults(func=cmd_dnc_remove)
    dnc_import = with_json(dsub.add_parser("import", help="add the numbers of a CSV file"))
    dnc_import.add_argument("file", type=Path)
    dnc_import.add_argument("--by", required=True, help="who imports it")
    dnc_import.add_argument("--reason", help="default: imported from FILE")
    dnc_import.add_argument("--kind", choices=kinds, default="do_not_call")
    dnc_import.set_defaults(func=cmd_dnc_import)
    with_json(dsub.add_parser("list", help="active entries")).set_defaults(func=cmd_dnc_list)


def _phone(text: str) -> str:
    return normalize_phone(text)


def _phone_arg(args: argparse.Namespace) -> str | None:
    """The command's phone number, normalised; None (said on stderr) if it is not one."""
    try:
        return _phone(args.phone)
    except ValueError as exc:
        print(f"waihu dnc {args.action}: {exc}", file=sys.stderr)
        return None


def cmd_dnc_add(args: argparse.Namespace) -> int:
    phone = _phone_arg(args)
    if phone is None:
        return 2
    with _database(args).session() as session:
        entry = DncRepo(session).add(phone, args.kind, args.reason, "operator", args.by)
        result = {"id": entry.id, "phone": phone, "kind": entry.kind, "reason": entry.reason,
                  "added_by": entry.added_by}
    _print_json(result) if args.json else print(
        f"{phone} is on the {result['kind']} list (entry {result['id']})")
    return 0


def cmd_dnc_remove(args: argparse.Namespace) -> int:
    phone = _phone_arg(args)
    if phone is None:
        return 2
    with _database(args).session() as session:
        removed = DncRepo(session).remove(phone, args.by, args.reason, kind=args.kind)
    _print_json({"phone": phone, "removed": removed}) if args.json else print(
        f"{phone}: {removed} entr{'y' if removed == 1 else 'ies'} removed")
    return 0 if removed else 1


_PHONE_HEADERS = ("phone", "mobile", "手机号", "手机号码", "手机", "电话", "电话号码", "号码")


def cmd_dnc_import(args: argparse.Namespace) -> int:
    from bot.campaigns.importer import ContactImportError
    from bot.campaigns.importer.reading import check_csv_file

    try:
        check_csv_file(args.file)  # the contact import's limits: size, binary, line length
        with args.file.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except ContactImportError as exc:
        print(f"waihu dnc import: {exc}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        print(f"waihu dnc import: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    header = [h.strip().lower() for h in (rows[0] if rows else [])]
    column = next((header.index(h) for h in _PHONE_HEADERS if h in header), None)
    if column is None:
        print(f"waihu dnc import: {args.file} has no phone column "
              f"({' / '.join(_PHONE_HEADERS)})", file=sys.stderr)
        return 2
    reason = args.reason or f"imported from {args.file.name}"
    added = already = 0
    rejected: list[dict[str, Any]] = []
    with _database(args).session() as session:
        repo = DncRepo(session)
        active = {(e.phone, e.kind) for e in repo.active()}
        for line, row in enumerate(rows[1:], start=2):
            text = row[column].strip() if column < len(row) else ""
            if not text:
                continue
            try:
                phone = _phone(text)
            except ValueError as exc:
                rejected.append({"line": line, "reason": str(exc)})
                continue
            if (phone, args.kind) in active:
                already += 1
                continue
            repo.add(phone, args.kind, reason, "import", args.by)
            active.add((phone, args.kind))
            added += 1
    result = {"file": str(args.file), "kind": args.kind, "added": added,
              "already_listed": already, "rejected": rejected}
    if args.json:
        _print_json(result)
    else:
        print(f"{added} added, {already} already listed, {len(rejected)} rejected")
        for item in rejected:
            print(f"  line {item['line']}: {item['reason']}")
    return 0


def cmd_dnc_list(args: argparse.Namespace) -> int:
    with _database(args).session() as session:
        rows = [{"id": e.id, "phone": e.phone, "kind": e.kind, "source": e.source,
                 "reason": e.reason, "added_by": e.added_by, "call_id": e.call_id,
                 "created_at": e.created_at.isoformat()} for e in DncRepo(session).active()]
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['phone']:<14} {row['kind']:<12} {row['source']:<10} "
                  f"{row['added_by']:<12} {row['reason']}")
    return 0


