"""Writing the good rows of an import into the contacts table, fast enough for lists of
millions of rows.

:class:`ContactSink` merges rows by phone and writes them in batches, one commit per batch so
that other processes can write in between: new contacts by a driver-level bulk INSERT (COPY on
PostgreSQL), contacts already in the campaign by a fill-the-blanks UPDATE.
:func:`bulk_load_settings` tunes SQLite for the load and restores it afterwards.  Records come
from :meth:`.columns.ColumnPlan.parse`: ``[name, gender, age, region, id_last4, fields]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from bot import privacy
from bot.store.base import utcnow
from bot.store.models import Contact, DncEntry

# Phones per "IN (...)" lookup: below SQLite's historical limit of 999 bound parameters.
_LOOKUP_CHUNK = 900
_ANALYZE_AFTER = 10_000  # new contacts after which PostgreSQL's statistics are refreshed

_CONTACTS = cast(Table, Contact.__table__)
_c = _CONTACTS.c
_FILLABLE = ("name", "gender", "age", "region")
_NO_ID = (None, None, None)  # hash, salt, key id of a contact without ID digits


class ContactSink:
    """Good rows, merged by phone, written in batches: new contacts by bulk INSERT, contacts
    already in the database (before or earlier in this import) by a fill-the-blanks UPDATE."""

    def __init__(self, connection: Connection, campaign_id: int, batch_size: int,
                 hasher: privacy.IdHasher | None = None) -> None:
        self.connection = connection
        self.campaign_id = campaign_id
        self.batch_size = batch_size
        self._hasher = hasher  # the server key, loaded once per import (at the first ID)
        self.existing: set[str] = set(connection.scalars(
            select(_c.phone).where(_c.campaign_id == campaign_id)))
        self.dnc: set[str] = set(connection.scalars(
            select(DncEntry.phone).where(DncEntry.removed_at.is_(None)).distinct()))
        connection.commit()
        self.written: set[str] = set()  # phones written by this import
        self.new: dict[str, list[Any]] = {}
        self.known: dict[str, list[Any]] = {}  # phones already in the database
        self.changed: set[str] = set()  # phones of existing contacts that got new values
        self.inserted = self.merged = self.matched = self.on_dnc = 0
        self._insert = _BulkInsert(connection)
        self._update = (
            update(_CONTACTS)
            .where(_c.campaign_id == campaign_id, _c.phone == bindparam("b_phone"))
            .values({name: bindparam(f"b_{name}") for name in
                     (*_FILLABLE, "id_last4_hash", "id_salt", "id_hash_key", "fields")}))

    def _hash_id(self, last4: str) -> privacy.HashedId:
        if self._hasher is None:
            self._hasher = privacy.IdHasher()
        return self._hasher.hash(last4)

    def add(self, phone: str, record: list[Any]) -> None:
        pending = self.new.get(phone) or self.known.get(phone)
        if pending is not None:
            _fill_blanks(pending, record)
            self.merged += 1
            return
        if phone in self.written:
            self.known[phone] = record  # repeats a contact already written: merge in the db
            self.merged += 1
        else:
            if phone in self.dnc:
                self.on_dnc += 1
            if phone in self.existing:
                self.known[phone] = record
                self.matched += 1
            else:
                self.new[phone] = record
        if len(self.new) >= self.batch_size:
            self._insert_new()
        if len(self.known) >= self.batch_size:
            self._merge_known()

    def flush(self) -> None:
        self._insert_new()
        self._merge_known()
        if self.inserted >= _ANALYZE_AFTER and self.connection.dialect.name == "postgresql":
            # Fresh statistics: until autovacuum gets to it, the planner would take the table
            # for as small as before and scan it whole for every lookup by phone (the dialer's
            # and the next import's: minutes instead of seconds for a million contacts).
            self.connection.exec_driver_sql(f"ANALYZE {_CONTACTS.name}")
            self.connection.commit()

    def _insert_new(self) -> None:
        if not self.new:
            return
        campaign_id = self.campaign_id
        created_at = self._insert.created_at(utcnow())
        as_json = self._insert.as_json
        rows = []
        # In phone order: the (campaign_id, phone) index then grows in runs, not at random.
        for phone in sorted(self.new):
            name, gender, age, region, last4, fields = self.new[phone]
            hashed, salt, key_id = self._hash_id(last4) if last4 is not None else _NO_ID
            rows.append((campaign_id, phone, name, gender, age, region, hashed, salt, key_id,
                         as_json(fields), "pending", 0, 0, created_at))
        self._insert.execute(rows)
        self.connection.commit()
        self.inserted += len(rows)
        self.written.update(self.new)
        self.new = {}

    def _merge_known(self) -> None:
        if not self.known:
            return
        phones = list(self.known)
        updates: list[dict[str, Any]] = []
        for start in range(0, len(phones), _LOOKUP_CHUNK):
            chunk = phones[start:start + _LOOKUP_CHUNK]
            rows = self.connection.execute(
                select(_c.phone, _c.name, _c.gender, _c.age, _c.region, _c.id_last4_hash,
                       _c.id_salt, _c.id_hash_key, _c.fields)
                .where(_c.campaign_id == self.campaign_id, _c.phone.in_(chunk)))
            for row in rows:
                params = self._merged(row, self.known.pop(row.phone))
                if params is not None:
                    updates.append(params)
                    if row.phone in self.existing:
                        self.changed.add(row.phone)
                self.written.add(row.phone)
        if updates:
            self.connection.execute(self._update, updates)
        self.connection.commit()
        # Phones deleted by someone else meanwhile: insert them again.
        for phone, record in self.known.items():
            self.new[phone] = record
        self.known = {}
        self._insert_new()

    def _merged(self, row: Any, record: list[Any]) -> dict[str, Any] | None:
        """UPDATE parameters filling the row's blanks from *record*; None if nothing new."""
        values = {name: getattr(row, name) for name in _FILLABLE}
        changed = False
        for slot, name in enumerate(_FILLABLE):
            if values[name] in (None, "") and record[slot] is not None:
                values[name] = record[slot]
                changed = True
        hashed, salt, key_id = row.id_last4_hash, row.id_salt, row.id_hash_key
        if hashed is None and record[4] is not None:
            hashed, salt, key_id = self._hash_id(record[4])
            changed = True
        fields = dict(row.fields or {})
        for key, value in record[5].items():
            if fields.get(key) in (None, ""):
                fields[key] = value
                changed = True
        if not changed:
            return None
        params = {f"b_{name}": value for name, value in values.items()}
        params.update(b_phone=row.phone, b_id_last4_hash=hashed, b_id_salt=salt,
                      b_id_hash_key=key_id, b_fields=fields)
        return params


class _BulkInsert:
    """Bulk INSERT of contacts at the driver level: ``COPY`` on PostgreSQL (psycopg),
    executemany elsewhere.  Rows are tuples in :attr:`COLUMNS` order.

    Core's executemany spends ~10 us a row building and processing parameter dicts, about as
    long as SQLite takes to store the row (~10 s for a million-row list), and psycopg's
    executemany as much again per row.  SQLAlchemy still compiles the statement for the
    connection's dialect (same SQL, placeholders and casts as Core) and the column types'
    own bind processors convert the values: the JSON ``fields`` per row, the timestamp once
    per batch.
    """

    COLUMNS = ("campaign_id", "phone", "name", "gender", "age", "region", "id_last4_hash",
               "id_salt", "id_hash_key", "fields", "status", "attempts", "priority",
               "created_at")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        dialect = connection.dialect
        self.copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
        # inline(): no RETURNING of the new ids (PostgreSQL would add it), nobody needs them.
        compiled = insert(_CONTACTS).inline().compile(dialect=dialect,
                                                      column_keys=list(self.COLUMNS))
        self.sql = str(compiled)
        self.positional = compiled.positional
        if self.positional and tuple(compiled.positiontup or ()) != self.COLUMNS:
            raise RuntimeError(f"contacts insert binds {compiled.positiontup}, expected "
                               f"{self.COLUMNS}")  # the model changed: update COLUMNS
        identity: Callable[[Any], Any] = lambda value: value  # noqa: E731 (a default)
        self.as_json = _c.fields.type.dialect_impl(dialect).bind_processor(dialect) or identity
        self.created_at = (_c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
                           or identity)

    def execute(self, rows: list[tuple[Any, ...]]) -> None:
        if self.copy:
            if not self.connection.in_transaction():
                self.connection.begin()  # so that the caller's commit() commits the COPY
            driver = self.connection.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(
                    f"COPY {_CONTACTS.name} ({', '.join(self.COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif self.positional:
            self.connection.exec_driver_sql(self.sql, rows)
        else:
            named = [dict(zip(self.COLUMNS, row, strict=True)) for row in rows]
            self.connection.exec_driver_sql(self.sql, named)


@contextmanager
def bulk_load_settings(connection: Connection) -> Iterator[None]:
    """SQLite settings for a bulk load on this connection, restored afterwards: a 64 MB page
    cache (the phone index of a million contacts does not fit the default 2 MB) and
    ``synchronous=NORMAL``, SQLite's advice for WAL databases: still never corrupt, but a
    power cut may lose the last commits -- which running the import again restores."""
    if connection.dialect.name != "sqlite":
        yield
        return
    saved = {name: int(connection.exec_driver_sql(f"PRAGMA {name}").scalar_one())
             for name in ("cache_size", "synchronous")}
    connection.exec_driver_sql("PRAGMA cache_size=-65536")
    connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        for name, value in saved.items():
            connection.exec_driver_sql(f"PRAGMA {name}={value}")


def _fill_blanks(record: list[Any], more: list[Any]) -> None:
    """Merge a later row of the same phone: its non-empty values fill the blanks."""
    for slot in range(5):
        if record[slot] is None:
            record[slot] = more[slot]
    for key, value in more[5].items():
        record[5].setdefault(key, value)
