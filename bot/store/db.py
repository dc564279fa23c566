"""Engine, unit of work and migrations.  Nothing here connects at import time."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ENV_VAR = "WAIHU_DATABASE_URL"
WRITE_ATTEMPTS = 3
log = logging.getLogger("waihu.store")
T = TypeVar("T")


def default_url(given: str | None = None, *, scratch: str | None = None) -> str:
    """The database a command uses, decided here for every command and service.

    *given* (a command's ``--database``), else ``$WAIHU_DATABASE_URL``, else an embedded
    SQLite file under ``<repo>/var``: ``waihu.db``, or for a command that plays sample
    calls (``demo``, ``simulate``) a fresh ``<scratch>.db``, emptied first so that its
    report shows that run alone."""
    url = given or os.environ.get(ENV_VAR)
    if url:
        return url
    var = REPO_ROOT / "var"
    var.mkdir(parents=True, exist_ok=True)
    if scratch is None:
        return f"sqlite:///{var / 'waihu.db'}"
    for suffix in ("", "-wal", "-shm"):
        (var / f"{scratch}.db{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{var / f'{scratch}.db'}"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dialer, the action server and the console read while one of them writes;
    # SQLite leaves foreign keys off unless asked; 30 s of waiting beats "database is locked".
    # recursive_triggers: INSERT OR REPLACE deletes the row it collides with, and only fires
    # that row's DELETE triggers (the insert-only tables refuse) when this is on.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA recursive_triggers=ON")
    finally:
        cursor.close()


def _hide_row_values(context: ExceptionContext) -> None:
    """Keep the row's values out of a PostgreSQL error's text: the server quotes them in
    DETAIL ("Key (campaign_id, phone)=(1, 13812345678) already exists", "Failing row
    contains (...)") and CONTEXT (COPY's line).  The message keeps its first line and HINT;
    the whole report stays in the driver exception's ``diag`` for whoever debugs."""
    original = context.original_exception
    diag = getattr(original, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:  # not a PostgreSQL server error (SQLite quotes no values)
        return
    hint = getattr(diag, "message_hint", None)
    shown = f"{primary}\nHINT:  {hint}" if hint else primary
    full = str(original)
    if shown == full:
        return
    original.args = (shown,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args and isinstance(wrapped.args[0], str):
        # SQLAlchemy wrote the driver's text into its own message already
        wrapped.args = (wrapped.args[0].replace(full, shown), *wrapped.args[1:])


class Database:
    """One database: its engine, units of work (:meth:`session`) and migrations."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: bound values (phone numbers, names) stay out of exception
        # messages and SQLAlchemy's logs; _hide_row_values does it for PostgreSQL's own text.
        self.engine: Engine = create_engine(self.url, echo=echo, hide_parameters=True,
                                            pool_pre_ping=not self.is_sqlite)
        event.listen(self.engine, "handle_error", _hide_row_values)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
        # Objects stay readable after the unit of work commits (they are not expired).
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One unit of work: commit when the block ends normally, roll back on any exception.

        ``write=True`` is for units of work that read and then write rows other processes
        write too (the dialer): on SQLite it takes the database write lock first
        (``BEGIN IMMEDIATE``, waiting up to busy_timeout), because a WAL read snapshot that
        another writer overtakes cannot be upgraded to a write and fails at once with
        "database is locked".  PostgreSQL needs nothing here (row locks do the job).
        """
        session = self._sessions()
        try:
            if write and self.is_sqlite:
                session.execute(text("BEGIN IMMEDIATE"))
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self, revision: str = "head") -> None:
        """Run the Alembic migrations up to *revision* on this database."""
        from alembic import command  # imported here: only needed when migrating

        with self.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def downgrade(self, revision: str = "base") -> None:
        """Run the Alembic migrations down to *revision* (``base`` drops everything)."""
        from alembic import command

        with self.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, revision)

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


def in_write(db: Database, work: Callable[[Session], T], attempts: int = WRITE_ATTEMPTS) -> T:
    """*work* in a unit of work that writes rows others write too (the agent desk: the
    console's buttons and the gateway's offers): the SQLite write lock first; on
    PostgreSQL, a change that collided with another on a unique key (an agent's change
    number) is tried again, and then sees the other change."""
    for attempt in range(1, attempts + 1):
        try:
            with db.session(write=True) as session:
                return work(session)
        except IntegrityError:
            if attempt == attempts:
                raise
            log.info("store.write_retry attempt=%d", attempt)
    raise AssertionError("unreachable")


def alembic_config(url: str | None = None) -> Any:
    """An Alembic ``Config`` built in code, independent of the current directory.

    With *url* it can drive the ``alembic`` command API directly; :class:`Database` passes its
    own connection instead.  Typed ``Any`` so importing this module does not import Alembic.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
