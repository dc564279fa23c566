"""`waihu keys`: the server keyrings (bot.keys) -- create, rotate, list; and moving the
stored ID-digits hashes to the current key.

What a rotation means for the ID-digits hashes: a new key becomes current (new hashes use
it); every older key stays in the keyring, because the hashes it made can only be checked
with it.  A row moves to the current key when its customer next proves the digits
(`ContactRepo.check_id_last4`) or when `waihu keys rehash-ids` moves it: that command finds
each row's digits among the 11,000 possible values with the key that made its hash (the
digits are never stored in clear, and this search is exactly what the key protects), then
hashes them anew.  Once it reports no row on an old key, that key could be removed by hand
from the keyring file; keep it as long as backups of the database from before may be
restored.  The ledger's keys are never removed: they check signed entries for ever.

The commands never print a secret, only key ids.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from bot import keys, privacy
from bot.cliutil import Subcommands, with_json
from bot.cliutil import database as _database
from bot.cliutil import print_json as _print_json
from bot.store import ContactRepo
from bot.store.models import Contact
from bot.store.repos.audit import AuditRepo, os_actor

REHASH_BATCH = 200  # contacts per unit of work (each may take up to ~50 ms to recover)


def add_keys_commands(sub: Subcommands) -> None:
    ksub = sub.add_parser("keys", help="the server keys (ID-digits hash, consent ledger)"
                          ).add_subparsers(dest="action", required=True)
    with_json(ksub.add_parser(
        "init", help="create the keyrings that are missing (0600 files; what setup runs)")
    ).set_defaults(func=cmd_keys_init)
    rotate = with_json(ksub.add_parser(
        "rotate", help="put a new current key in front (the old ones stay, for checking)"))
    rotate.add_argument("name", choices=keys.KEYRINGS)
    rotate.set_defaults(func=cmd_keys_rotate)
    with_json(ksub.add_parser("list", help="the keyrings and their key ids (never secrets)")
              ).set_defaults(func=cmd_keys_list)
    rehash = with_json(ksub.add_parser(
        "rehash-ids", help="move stored ID-digits hashes made with an older key (or none) "
        "to the current key"))
    rehash.add_argument("--limit", type=int, help="move at most this many rows (default: all)")
    rehash.set_defaults(func=cmd_keys_rehash_ids)


def _from_environment(name: str) -> bool:
    return bool(os.environ.get(keys.env_name(name)))


def _where(name: str) -> str:
    return "environment" if _from_environment(name) else str(keys.key_path(name))


def cmd_keys_init(args: argparse.Namespace) -> int:
    rows = []
    for name in keys.KEYRINGS:
        try:
            ring, created = keys.ensure(name)
        except keys.KeyringError as exc:
            print(f"waihu keys init: {exc}", file=sys.stderr)
            return 1
        rows.append({"name": name, "created": created, "current": ring.current.id,
                     "where": _where(name)})
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            state = "created" if row["created"] else "exists"
            print(f"{row['name']:<15} {state:<8} current {row['current']}  {row['where']}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    if _from_environment(args.name):
        print(f"waihu keys rotate: the {args.name} key comes from the environment "
              f"({keys.env_name(args.name)}): rotate it where it is managed", file=sys.stderr)
        return 2
    try:
        old = keys.load(args.name)
        ring = keys.rotate(args.name)
    except keys.KeyringError as exc:
        print(f"waihu keys rotate: {exc}", file=sys.stderr)
        return 1
    result = {"name": args.name, "current": ring.current.id, "previous": old.current.id,
              "kept": [key.id for key in ring.keys[1:]]}
    if args.json:
        _print_json(result)
    else:
        print(f"{args.name}: new current key {ring.current.id}; kept for checking: "
              f"{', '.join(result['kept'])}")
        if args.name == keys.ID_HASH:
            print("Stored ID hashes move to the new key when their customer next proves the "
                  "digits, or now with `waihu keys rehash-ids`. Back up the keyring file.")
        elif args.name == keys.CONSOLE_SESSION:
            print("New console sessions use the new key; older ones stay valid until they "
                  "expire (12 hours), after which the old key may be removed from the file.")
        else:
            print("Back up the keyring file: the old keys check what they signed, for ever.")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name in keys.KEYRINGS:
        try:
            ring = keys.load(name)
        except keys.KeyringError as exc:
            rows.append({"name": name, "where": _where(name), "error": str(exc)})
            continue
        rows.append({"name": name, "where": _where(name), "current": ring.current.id,
                     "older": [key.id for key in ring.keys[1:]]})
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            if "error" in row:
                print(f"{row['name']:<15} ERROR {row['error']}")
            else:
                older = ", ".join(row["older"]) or "-"
                print(f"{row['name']:<15} current {row['current']}  older {older}  "
                      f"{row['where']}")
    return 1 if any("error" in row for row in rows) else 0


def _hashes_by_key(session: Any) -> dict[str, int]:
    """Stored ID hashes per key id ("unkeyed": rows of before the server key)."""
    rows = session.execute(select(Contact.id_hash_key, func.count())
                           .where(Contact.id_last4_hash.is_not(None))
                           .group_by(Contact.id_hash_key))
    return {key_id or "unkeyed": count for key_id, count in rows}


def cmd_keys_rehash_ids(args: argparse.Namespace) -> int:
    try:
        hasher = privacy.IdHasher()
    except keys.KeyringError as exc:
        print(f"waihu keys rehash-ids: {exc}", file=sys.stderr)
        return 1
    db = _database(args)
    current = hasher.key_id
    moved, unmatched, after_id = 0, [], 0
    missing: Counter[str] = Counter()
    limit = args.limit if args.limit is not None else float("inf")
    while moved < limit:
        with db.session() as session:
            batch = session.scalars(
                select(Contact).where(Contact.id > after_id,
                                      Contact.id_last4_hash.is_not(None),
                                      (Contact.id_hash_key != current)
                                      | Contact.id_hash_key.is_(None))
                .order_by(Contact.id).limit(REHASH_BATCH)).all()
            if not batch:
                break
            repo = ContactRepo(session, hasher)
            for contact in batch:
                after_id = contact.id
                if moved >= limit:
                    break
                assert contact.id_last4_hash is not None and contact.id_salt is not None
                try:
                    digits = hasher.recover(contact.id_salt, contact.id_last4_hash,
                                            contact.id_hash_key)
                except keys.KeyringError:
                    missing[str(contact.id_hash_key)] += 1
                    continue
                if digits is None:
                    unmatched.append(contact.id)
                    continue
                repo.set_id_hash(contact, hasher.hash(digits))
                moved += 1
    with db.session() as session:
        by_key = _hashes_by_key(session)
        AuditRepo(session).record(os_actor(), "keys.rehash_ids", keys.ID_HASH,
                                  to_key=current, moved=moved, unmatched=len(unmatched),
                                  missing_keys=dict(missing))
    no_row_needs = [key.id for key in hasher.ring.keys[1:] if key.id not in by_key]
    result = {"current": current, "moved": moved, "unmatched_contact_ids": unmatched,
              "rows_on_missing_keys": dict(missing), "hashes_by_key": by_key,
              "keys_no_row_needs": no_row_needs}
    if args.json:
        _print_json(result)
    else:
        print(f"{moved} ID hashes moved to key {current}; hashes per key now: "
              + ", ".join(f"{k} {n}" for k, n in sorted(by_key.items())))
        if unmatched:
            print(f"{len(unmatched)} hashes match no ID digits (contact ids "
                  f"{', '.join(map(str, unmatched[:20]))})")
        for key_id, count in sorted(missing.items()):
            print(f"{count} hashes name key {key_id}, which the keyring does not hold: "
                  f"restore the keyring file from its backup")
        if no_row_needs:
            print("No stored hash needs the older keys "
                  f"{', '.join(no_row_needs)} any more (keep them while "
                  f"older database backups may be restored).")
    return 1 if unmatched or missing else 0
