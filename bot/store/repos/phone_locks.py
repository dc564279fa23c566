"""Phone locks: one live call per number across campaigns and gateways.

A lock is a uniqueness guard with no clock: the attempt's lease says whether the call is live
and until when (bot/campaigns/dialer.py); the lock is taken and released with it."""

from __future__ import annotations

import zlib

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from bot.store.models import PhoneLock
from bot.store.repos.common import check_phone


class PhoneLockRepo:
    """One live call per number across campaigns and gateways (table ``phone_locks``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def available(self, phone: str) -> bool:
        """Whether this transaction may lock *phone*: no live call holds it and, on PostgreSQL,
        no concurrent transaction is locking it right now.  Never waits.

        On PostgreSQL it takes a transaction-scoped advisory lock on the number without
        waiting (``pg_try_advisory_xact_lock``) and keeps it to commit, so the :meth:`lock`
        that follows cannot collide: whoever else holds it may be inserting the same number,
        and queueing behind them could deadlock with a completion releasing the number.
        SQLite has one writer at a time, so the read alone is enough there.
        """
        check_phone(phone)
        if self.session.get_bind().dialect.name == "postgresql":
            got = self.session.scalar(text("SELECT pg_try_advisory_xact_lock(:ns, :k)"),
                                      {"ns": PHONE_LOCK_NAMESPACE, "k": phone_lock_key(phone)})
            if not got:
                return False
        return self.holder(phone) is None

    def lock(self, phone: str, call_id: str, gateway: str | None) -> PhoneLock:
        """Lock *phone* for the attempt *call_id* (check :meth:`available` first) for as long
        as that attempt's lease lives: :meth:`release` it in the unit of work that ends it."""
        lock = PhoneLock(phone=check_phone(phone), call_id=call_id, gateway=gateway)
        self.session.add(lock)
        self.session.flush()
        return lock

    def holder(self, phone: str) -> PhoneLock | None:
        return self.session.scalar(select(PhoneLock).where(PhoneLock.phone == phone))

    def release(self, call_id: str) -> None:
        self.session.execute(delete(PhoneLock).where(PhoneLock.call_id == call_id))
        self.session.flush()


# Advisory locks on numbers use PostgreSQL's two-int4 key space, which never overlaps the
# single-bigint one of the consent ledger's lock (ledger.py).
PHONE_LOCK_NAMESPACE = int.from_bytes(b"WHPH", "big")


def phone_lock_key(phone: str) -> int:
    """A signed 32-bit key for a number; two numbers sharing one only makes a claim skip."""
    return zlib.crc32(phone.encode("ascii")) - (1 << 31)
