"""`waihu db`: migrate the schema as its owner, grant the services' role its rights.

The services run as an application role that cannot change the schema or switch triggers
off (`bot.store.schema`); these two commands are the owner's.
"""

from __future__ import annotations

import argparse
import sys

from bot.cliutil import Subcommands
from bot.store import Database, default_url
from bot.store.schema import MIGRATION_ENV, current_revision, grant_app_role, migration_url


def add_db_commands(sub: Subcommands) -> None:
    db = sub.add_parser("db", help="schema migrations and the services' database role")
    dsub = db.add_subparsers(dest="action", required=True)
    for name, func, text in (
        ("migrate", cmd_db_migrate, "migrate to the code's schema (as the owner)"),
        ("grant-app-role", cmd_db_grant_app_role,
         "give a PostgreSQL role the services' rights (no DDL, ledger insert-only)"),
    ):
        p = dsub.add_parser(name, help=text)
        p.add_argument("--database", default=argparse.SUPPRESS,
                       help=f"the owner's URL (default: ${MIGRATION_ENV}, else as "
                       "`waihu --database`)")
        if name == "grant-app-role":
            p.add_argument("role")
        p.set_defaults(func=func)


def _owner_database(args: argparse.Namespace) -> Database:
    return Database(default_url(migration_url(args.database)))


def cmd_db_migrate(args: argparse.Namespace) -> int:
    db = _owner_database(args)
    db.upgrade()
    print(f"{db!r}: at revision {current_revision(db)}")
    return 0


def cmd_db_grant_app_role(args: argparse.Namespace) -> int:
    db = _owner_database(args)
    try:
        grant_app_role(db, args.role)
    except ValueError as exc:
        print(f"waihu db: {exc}", file=sys.stderr)
        return 2
    print(f"{db!r}: role {args.role} may read and write rows, append to the ledger and "
          "the audit log, and change nothing else")
    return 0
