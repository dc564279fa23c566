"""On PostgreSQL the services' role cannot change the schema or switch the ledger's
triggers off; the owner migrates (bot.store.schema, `waihu db`)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from bot.cli import main
from bot.store import Consent, ConsentLedger, Database
from bot.store.schema import SchemaNotCurrent, current_revision, ensure_current, head_revision
from tests.conftest import seed_call

pytestmark = pytest.mark.postgres


@pytest.fixture
def owner_db(pg_admin: Engine) -> Iterator[Database]:
    """A database of its own (roles and grants are the test's subject)."""
    from tests.conftest import _fresh_pg

    yield from _fresh_pg(pg_admin)


@pytest.fixture
def app_role(pg_admin: Engine, owner_db: Database) -> Iterator[str]:
    role = f"waihu_app_{secrets.token_hex(4)}"
    with pg_admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    yield role
    with owner_db.engine.begin() as connection:
        connection.exec_driver_sql(f"DROP OWNED BY {role}")
    owner_db.dispose()
    with pg_admin.connect() as connection:
        connection.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


def as_role(db: Database, role: str) -> Database:
    return Database(db.url.set(username=role, password=None))


def test_the_app_role_appends_but_cannot_alter_or_rewrite_the_ledger(
        owner_db: Database, app_role: str) -> None:
    url = owner_db.url.render_as_string(hide_password=False)
    assert main(["db", "grant-app-role", app_role, "--database", url]) == 0
    call = seed_call(owner_db)
    app = as_role(owner_db, app_role)
    try:
        ensure_current(app)  # at head: nothing to do, nothing refused
        with app.session() as session:  # the services' everyday work
            ConsentLedger(session).append(call.id, call.contact_id, call.campaign_id, "p",
                                          "h" * 64, [], "我同意", "text", None)
        for statement in (
            "ALTER TABLE consents DISABLE TRIGGER USER",
            "ALTER TABLE consents DISABLE TRIGGER consents_append_only",
            "DROP TRIGGER consents_append_only ON consents",
            "DROP TRIGGER consents_at_head ON consents",
            "UPDATE consents SET utterance = '嗯'",
            "DELETE FROM consents",
            "TRUNCATE consents",
            "UPDATE audit_log SET actor = 'x'",
            "ALTER TABLE calls ADD COLUMN x int",
            "CREATE TABLE evil (id int)",
            "UPDATE alembic_version SET version_num = '0001'",
        ):
            with pytest.raises(DBAPIError) as refused, app.session() as session:
                session.execute(text(statement))
            assert "permission denied" in str(refused.value) or "must be owner" in str(
                refused.value), statement
        with app.session() as session:
            assert session.query(Consent).count() == 1
            assert ConsentLedger(session).verify().ok
    finally:
        app.dispose()


def test_the_app_role_cannot_migrate_and_says_so(owner_db: Database, app_role: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url = owner_db.url.render_as_string(hide_password=False)
    owner_db.downgrade("0006")
    assert main(["db", "grant-app-role", app_role, "--database", url]) == 0
    app = as_role(owner_db, app_role)
    try:
        with pytest.raises(SchemaNotCurrent, match="waihu db migrate"):
            ensure_current(app)
        assert current_revision(owner_db) == "0006"
        app_url = app.url.render_as_string(hide_password=False)
        with pytest.raises(SystemExit) as stopped:  # any command, as the services' role
            main(["--database", app_url, "audit", "verify"])
        assert stopped.value.code == 2
        assert "waihu db migrate" in capsys.readouterr().err
    finally:
        app.dispose()
    assert main(["db", "migrate", "--database", url]) == 0
    assert current_revision(owner_db) == head_revision()


def test_a_superuser_or_the_owner_is_not_made_the_app_role(owner_db: Database) -> None:
    url = owner_db.url.render_as_string(hide_password=False)
    assert main(["db", "grant-app-role", "postgres", "--database", url]) == 2
    assert main(["db", "grant-app-role", "no_such_role_here", "--database", url]) == 2
