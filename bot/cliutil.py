"""What every `waihu` command module shares: the database, JSON output, the parser type."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TypeAlias

from bot.store import Database, default_url
from bot.store.schema import SchemaNotCurrent, ensure_current

# What `add_parser` is called on (argparse has no public name for it).
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str))


def database(args: argparse.Namespace) -> Database:
    """The database of `--database` (see `bot.store.db.default_url`), at the code's schema
    (migrated if its role may: `bot.store.schema.ensure_current`)."""
    db = Database(default_url(args.database))
    try:
        ensure_current(db)
    except SchemaNotCurrent as exc:  # a service's role: the owner must migrate
        print(f"waihu: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return db


def with_json(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--json", action="store_true", help="print JSON")
    return p
