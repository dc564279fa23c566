"""Shared fixtures.  Databases: every test gets a freshly migrated one, SQLite and PostgreSQL.

PostgreSQL is reached at $WAIHU_TEST_PG_URL (default: the local ``postgres`` database with
trust auth).  The run creates its own ``waihu_test_<hex>`` database, migrates it, empties it
before each test and drops it at the end; ``fresh_db`` gives a test a database of its own.
When the server cannot be reached, only the PostgreSQL parameters are skipped (or fail,
with WAIHU_TEST_REQUIRE_PG=1).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.exc import OperationalError

from bot import keys
from bot.store import Base, Call, CallRepo, CampaignRepo, ContactRepo, Database


@pytest.fixture(scope="session", autouse=True)
def server_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's own key files (bot.keys): the tests never read or create the machine's
    var/keys, and the services a test starts inherit WAIHU_KEYS_DIR."""
    folder = tmp_path_factory.mktemp("keys")
    os.environ[keys.KEYS_DIR_ENV] = str(folder)
    for name in keys.KEYRINGS:
        keys.ensure(name, folder)
    return folder


PG_ADMIN_URL = os.environ.get(
    "WAIHU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """AUTOCOMMIT engine on the PostgreSQL maintenance database (CREATE/DROP DATABASE)."""
    try:
        engine = create_engine(
            PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect():
            pass
    except (ImportError, OperationalError) as exc:
        where = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        reason = f"PostgreSQL not reachable at {where}: {str(exc).strip() or type(exc).__name__}"
        if os.environ.get("WAIHU_TEST_REQUIRE_PG") == "1":
            pytest.fail(reason)  # CI sets this so that a missing server cannot pass as green
        pytest.skip(reason)
    yield engine
    engine.dispose()


def _fresh_pg(admin: Engine) -> Iterator[Database]:
    """Create ``waihu_test_<hex>``, migrate it, yield it, drop it."""
    name = f"waihu_test_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    database = Database(make_url(PG_ADMIN_URL).set(database=name))
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_sqlite(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'waihu.db'}")
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def pg_session_db(pg_admin: Engine) -> Iterator[Database]:
    """One migrated PostgreSQL database for the whole run (emptied before each test).

    Creating and migrating a database costs 0.5-2 s on PostgreSQL, ~40 tests need one, and
    the suite must stay fast; emptying the tables costs milliseconds.  Tests that change the
    schema itself use ``fresh_db``.
    """
    yield from _fresh_pg(pg_admin)


APPEND_ONLY_TABLES = ("consents", "audit_log")


def _emptied(database: Database) -> Database:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]  # children first
    with database.engine.begin() as connection:
        # The ledger and the audit log refuse DELETE by design; as the tables' owner, switch
        # that off for the clean-up only (DDL is transactional in PostgreSQL: nobody sees it).
        for table in APPEND_ONLY_TABLES:
            connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for table in tables:
            connection.exec_driver_sql(f"DELETE FROM {table}")
        for table in APPEND_ONLY_TABLES:
            connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    return database


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database of each kind: a new SQLite file, or the run's PostgreSQL
    database emptied."""
    if request.param == "sqlite":
        yield from _fresh_sqlite(tmp_path)
    else:
        yield _emptied(request.getfixturevalue("pg_session_db"))


@pytest.fixture(params=BACKENDS)
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of each kind created and migrated for this test alone (schema changes)."""
    if request.param == "sqlite":
        yield from _fresh_sqlite(tmp_path)
    else:
        yield from _fresh_pg(request.getfixturevalue("pg_admin"))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    yield from _fresh_sqlite(tmp_path)


@pytest.fixture
def pg_db(pg_session_db: Database) -> Database:
    return _emptied(pg_session_db)


def seed_call(db: Database, phone: str = "13812345678") -> Call:
    """Campaign "trial" (created once), a new contact and its answered, opened call.

    The returned ``Call`` is detached but readable (``campaign_id``, ``contact_id``, ``id``).
    """
    with db.session() as session:
        campaigns = CampaignRepo(session)
        campaign = campaigns.by_name("trial") or campaigns.add(
            "trial", "marketing", {"product": "彩铃"}, "a" * 64
        )
        contact = ContactRepo(session).add(campaign.id, phone, name="张三", id_last4="123X")
        calls = CallRepo(session)
        attempt = calls.start_attempt(campaign.id, contact.id)
        calls.set_dial_result(attempt.call_id, "answered")
        return calls.open_call(attempt.call_id)


@pytest.fixture
def call(db: Database) -> Call:
    """An opened call in the parametrised ``db``."""
    return seed_call(db)


@pytest.fixture
def seeder() -> Callable[..., Call]:
    """``seed_call`` for tests that pick their own database or need several calls."""
    return seed_call
