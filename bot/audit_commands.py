"""`waihu audit`: check the consent ledger, anchor its head, export its public keys.

- `verify` walks the chain, checks the signatures, the recording seals and the evidence
  each consent binds, and compares with the latest anchor (`bot.ledger_audit`); it names
  every problem and exits 1 on any (2 when it cannot check: no keys, a bad anchor file).
- `anchor` appends the head to the anchor file (`bot.ledger_anchor`).
- `public-key` prints the ledger's public keys, for an auditor who must be able to check
  the signatures (`verify --public-keys FILE`) without being able to make one.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot import keys
from bot.cliutil import Subcommands, with_json
from bot.cliutil import database as _database
from bot.cliutil import print_json as _print_json
from bot.ledger_anchor import (
    DEFAULT_ANCHORS,
    AnchorError,
    append_anchor,
    database_name,
    latest_anchor,
    make_anchor,
)
from bot.ledger_audit import audit
from bot.store import ConsentLedger
from bot.store.ledger_signer import LedgerSigner

_SHOWN_PROBLEMS = 20


def add_audit_commands(sub: Subcommands) -> None:
    audit_parser = sub.add_parser("audit", help="check the consent ledger, anchor its head")
    asub = audit_parser.add_subparsers(dest="action", required=True)
    verify = _with_database(with_json(asub.add_parser(
        "verify", help="check the chain, signatures, seals and the latest anchor")))
    verify.add_argument("--anchor", type=Path, help=f"anchor file (default: {DEFAULT_ANCHORS}"
                        "; given, it must exist)")
    verify.add_argument("--public-keys", type=Path, help="check with these public keys "
                        "(`waihu audit public-key`) instead of the keyring")
    verify.set_defaults(func=cmd_audit_verify)
    anchor = _with_database(with_json(asub.add_parser(
        "anchor", help="append the ledger's head to an append-only file")))
    anchor.add_argument("--to", type=Path, default=DEFAULT_ANCHORS,
                        help=f"anchor file (default: {DEFAULT_ANCHORS})")
    anchor.set_defaults(func=cmd_audit_anchor)
    asub.add_parser("public-key", help="print the ledger's public keys (JSON lines)"
                    ).set_defaults(func=cmd_audit_public_key)


def _with_database(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # Also after the subcommand; SUPPRESS keeps a `waihu --database URL audit …` given first.
    p.add_argument("--database", default=argparse.SUPPRESS,
                   help="SQLAlchemy URL (as `waihu --database`)")
    return p


def _fail(message: str) -> int:
    print(f"waihu audit: {message}", file=sys.stderr)
    return 2


def cmd_audit_verify(args: argparse.Namespace) -> int:
    try:
        signer = (LedgerSigner.from_public_keys(args.public_keys) if args.public_keys
                  else LedgerSigner.load())
        db = _database(args)
        anchor = latest_anchor(args.anchor or DEFAULT_ANCHORS, signer,
                               database_name(db.url))
    except (keys.KeyringError, AnchorError, OSError, ValueError) as exc:
        return _fail(str(exc))
    if anchor is None and args.anchor is not None:
        return _fail(f"no anchor of {database_name(db.url)} in {args.anchor}")
    with db.session() as session:
        report = audit(session, signer, anchor)
    if args.json:
        _print_json(report.as_json())
    else:
        chain = report.chain
        print(f"consent ledger: {chain.entries} entries ({chain.legacy} legacy), head "
              f"{chain.head[:16]}…" + ("" if anchor is None else
                                      f"; anchor of {anchor.at}: {anchor.count} entries"))
        for problem in report.problems[:_SHOWN_PROBLEMS]:
            where = " ".join(filter(None, [
                f"entry {problem.entry_id}" if problem.entry_id is not None else "",
                f"call {problem.call_id}" if problem.call_id else ""]))
            print(f"  {problem.kind.upper()}{' (' + where + ')' if where else ''}: "
                  f"{problem.detail}")
        if len(report.problems) > _SHOWN_PROBLEMS:
            print(f"  … and {len(report.problems) - _SHOWN_PROBLEMS} more (--json)")
        for note in report.notes:
            print(f"  note: {note}")
        print("ledger intact" if report.ok else f"LEDGER TAMPERED: {len(report.problems)} "
              "problems")
    return 0 if report.ok else 1


def cmd_audit_anchor(args: argparse.Namespace) -> int:
    try:
        signer = LedgerSigner.load()
    except keys.KeyringError as exc:
        return _fail(str(exc))
    db = _database(args)
    with db.session() as session:
        check = ConsentLedger(session, signer).verify()
    if not check.ok:  # anchoring a broken chain would vouch for it
        return _fail(f"the chain does not verify ({check.problem}): not anchored; run "
                     "`waihu audit verify`")
    anchor = make_anchor(check, signer, datetime.now(UTC), database_name(db.url))
    try:
        append_anchor(args.to, anchor)
    except AnchorError as exc:
        return _fail(str(exc))
    if args.json:
        _print_json({**anchor.as_json(), "file": str(args.to)})
    else:
        print(f"anchored {anchor.count} entries, head {anchor.head[:16]}… to {args.to}")
    return 0


def cmd_audit_public_key(args: argparse.Namespace) -> int:
    try:
        signer = LedgerSigner.load()
    except keys.KeyringError as exc:
        return _fail(str(exc))
    sys.stdout.write(signer.public_keys_json())
    return 0
