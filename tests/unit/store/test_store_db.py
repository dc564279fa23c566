"""Migrations, engine set-up, unit of work and datetime handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

import bot.store.db as db_module
from bot.store import (
    Base,
    Call,
    CallbackRepo,
    CallRepo,
    Campaign,
    CampaignRepo,
    Database,
    TranscriptTurn,
    default_url,
)


def test_migrations_create_every_table(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert {
        "campaigns",
        "contacts",
        "call_attempts",
        "calls",
        "transcript_turns",
        "consents",
        "survey_answers",
        "dnc_entries",
        "callbacks",
        "escalations",
    } <= tables


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_drops_everything(fresh_db: Database) -> None:
    fresh_db.downgrade("base")
    assert set(inspect(fresh_db.engine).get_table_names()) <= {"alembic_version"}
    with fresh_db.engine.connect() as connection:
        if fresh_db.is_sqlite:
            leftovers = "SELECT name FROM sqlite_master WHERE tbl_name != 'alembic_version'"
        else:
            leftovers = "SELECT proname FROM pg_proc WHERE proname = 'consents_append_only'"
        assert connection.exec_driver_sql(leftovers).all() == []
    fresh_db.upgrade()  # and back up again, triggers included
    assert "consents" in inspect(fresh_db.engine).get_table_names()


def test_upgrade_works_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = Database(f"sqlite:///{tmp_path / 'sub' / 'w.db'}")  # parent is created
    try:
        database.upgrade()
        assert "calls" in inspect(database.engine).get_table_names()
    finally:
        database.dispose()


def test_sqlite_connection_settings(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError), db.session() as session:
        CallbackRepo(session).schedule(999, 999, datetime.now(UTC), "customer_request")
    with pytest.raises(IntegrityError), db.session() as session:
        session.execute(
            text("INSERT INTO contacts (campaign_id, phone) VALUES (4242, '13800000000')")
        )


def test_default_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAIHU_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert default_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.delenv("WAIHU_DATABASE_URL")
    assert (db_module.REPO_ROOT / "bot" / "store" / "db.py").is_file()
    monkeypatch.setattr(db_module, "REPO_ROOT", tmp_path)  # don't create var/ in the repo
    assert default_url() == f"sqlite:///{tmp_path / 'var' / 'waihu.db'}"
    assert (tmp_path / "var").is_dir()


def test_unit_of_work_commits(db: Database) -> None:
    with db.session() as session:
        CampaignRepo(session).add("c1", "survey", {"questions": []}, "0" * 64)
    with db.session() as session:
        campaign = CampaignRepo(session).by_name("c1")
        assert campaign is not None and campaign.status == "draft"


def test_unit_of_work_rolls_back_on_exception(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        CampaignRepo(session).add("c1", "survey", {}, "0" * 64)  # flushed, not committed
        raise RuntimeError("boom")
    with db.session() as session:
        assert session.scalars(select(Campaign)).all() == []


def test_check_constraints_guard_raw_sql(db: Database, call: Call) -> None:
    with pytest.raises(IntegrityError), db.session() as session:
        session.execute(text("UPDATE calls SET outcome = 'sold'"))
    with pytest.raises(IntegrityError), db.session() as session:
        session.execute(text("UPDATE campaigns SET type = 'spam'"))


def test_datetimes_come_back_timezone_aware_utc(db: Database, call: Call) -> None:
    beijing = timezone(timedelta(hours=8))
    due = datetime(2030, 5, 1, 9, 30, 15, 123456, tzinfo=beijing)
    with db.session() as session:
        CallbackRepo(session).schedule(call.campaign_id, call.contact_id, due, "customer_request")
        CallRepo(session).add_turn(call.id, "bot", "您好")
    with db.session() as session:
        callback = CallbackRepo(session).pending_for(call.contact_id,
                                                     due_by=due + timedelta(seconds=1))[0]
        assert callback.due_at == due
        assert callback.due_at.tzinfo is not None and callback.due_at.utcoffset() == timedelta(0)
        assert callback.due_at.hour == 1  # 09:30 in Beijing is 01:30 UTC
        reloaded = session.get(Call, call.id)
        assert reloaded is not None and reloaded.started_at.tzinfo is not None
        turn = session.scalars(select(TranscriptTurn)).one()
        assert turn.started_at.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - turn.started_at) < timedelta(minutes=1)
        # comparisons in SQL see the same instants
        assert CallbackRepo(session).pending_for(call.contact_id,
                                                 due_by=due - timedelta(seconds=1)) == []


def test_server_default_timestamps_read_as_utc(db: Database) -> None:
    with db.session() as session:
        session.execute(
            text(
                "INSERT INTO campaigns (name, type, definition, script_hash) "
                "VALUES ('raw', 'survey', '{}', 'x')"
            )
        )
    with db.session() as session:
        campaign = CampaignRepo(session).by_name("raw")
        assert campaign is not None and campaign.status == "draft"
        assert abs(datetime.now(UTC) - campaign.created_at) < timedelta(minutes=1)


def test_naive_datetimes_are_refused(db: Database, call: Call) -> None:
    with pytest.raises(Exception, match="naive datetime"), db.session() as session:
        CallbackRepo(session).schedule(
            call.campaign_id, call.contact_id, datetime(2030, 1, 1), "customer_request"
        )


def test_every_command_takes_its_database_the_same_way(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """--database, else $WAIHU_DATABASE_URL (also for demo and simulate), else var/; a
    sample run's own file starts empty."""
    monkeypatch.setattr(db_module, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("WAIHU_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert default_url("sqlite:///given.db") == "sqlite:///given.db"
    assert default_url(None, scratch="demo") == "postgresql+psycopg://u@h/db"
    monkeypatch.delenv("WAIHU_DATABASE_URL")
    old = tmp_path / "var" / "demo.db"
    old.parent.mkdir()
    old.write_bytes(b"yesterday's demo")
    assert default_url(None, scratch="demo") == f"sqlite:///{old}"
    assert not old.exists()
