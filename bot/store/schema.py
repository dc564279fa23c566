"""Who changes the schema: the owner migrates, the services only use it.

On PostgreSQL the services connect as an application role (``WAIHU_DATABASE_URL``, e.g.
``waihu_app``) that may read and write rows but owns no table: it cannot ALTER a table,
DISABLE or DROP a trigger — the triggers that keep the consent ledger and the audit log
append-only hold against it — nor UPDATE or DELETE those two tables at all.  Migrations run
as the owner (`waihu db migrate` with ``--database OWNER_URL`` or ``WAIHU_MIGRATION_URL``),
which then grants the application role its rights (`grant_app_role`, `waihu db
grant-app-role`).

`ensure_current` is what every command and service calls: nothing when the schema is at
the code's head; otherwise it migrates if its role may, and says what to do if not.  On
SQLite whoever can open the file owns it: there is one role.
"""

from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from bot.store.db import Database, alembic_config

MIGRATION_ENV = "WAIHU_MIGRATION_URL"
# Tables the application role may only read and append to.
INSERT_ONLY_TABLES = ("consents", "audit_log")
_INSUFFICIENT_PRIVILEGE = "42501"


class SchemaNotCurrent(RuntimeError):
    """The database is not at the code's revision and this role cannot migrate it."""


def migration_url(given: str | None = None) -> str | None:
    """The owner's URL for migrations: *given*, else ``$WAIHU_MIGRATION_URL``."""
    return given or os.environ.get(MIGRATION_ENV)


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def ensure_current(db: Database) -> None:
    """Migrate *db* to the code's head unless it is there; `SchemaNotCurrent` when its role
    is not allowed to (an application role)."""
    current, head = current_revision(db), head_revision()
    if current == head:
        return
    try:
        db.upgrade()
    except ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        raise SchemaNotCurrent(
            f"the database is at revision {current or 'none'} and this code needs {head}, "
            f"but {db!r} may not change the schema (an application role): run `waihu db "
            f"migrate` as the owner (--database OWNER_URL or ${MIGRATION_ENV})") from None


def grant_app_role(db: Database, role: str) -> None:
    """Give the existing PostgreSQL *role* what the services need and nothing more; run as
    the owner after each migration (tables added later get the defaults set here)."""
    if db.is_sqlite:
        raise ValueError("SQLite has no roles: file permissions decide who may write")
    with db.engine.begin() as connection:
        found = connection.execute(text(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"),
            {"role": role}).first()
        if found is None:
            raise ValueError(f"no role {role!r}: CREATE ROLE {role} LOGIN PASSWORD '…' first")
        owner = connection.scalar(text("SELECT tableowner FROM pg_tables "
                                       "WHERE schemaname = 'public' AND tablename = 'consents'"))
        if found.rolsuper or owner == role:
            raise ValueError(f"role {role!r} is a superuser or owns the tables: it could "
                             "switch the ledger's triggers off; use a role of its own")
        quoted = connection.dialect.identifier_preparer.quote(role)
        database = connection.dialect.identifier_preparer.quote(
            str(connection.scalar(text("SELECT current_database()"))))
        for statement in (
            f"GRANT CONNECT ON DATABASE {database} TO {quoted}",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            f"GRANT USAGE ON SCHEMA public TO {quoted}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
            f"REVOKE UPDATE, DELETE, TRUNCATE ON {', '.join(INSERT_ONLY_TABLES)} FROM {quoted}",
            f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {quoted}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES "
            f"TO {quoted}",
        ):
            connection.exec_driver_sql(statement)
