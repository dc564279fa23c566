"""`in_write`, the unit of work of the rows several writers change at once (the agent
desk: the console's buttons, the gateways' offers): a collision on a unique key is tried
again with a fresh unit of work, and reported once the attempts are spent."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store import Database, in_write
from bot.store.models import User


def _collision() -> IntegrityError:
    return IntegrityError("INSERT ...", None, Exception("UNIQUE constraint failed"))


def test_a_collision_is_tried_again_and_its_first_try_undone(db: Database) -> None:
    tries: list[int] = []

    def work(session: Session) -> int:
        tries.append(1)
        session.add(User(username=f"u{len(tries)}", role="agent", password_hash="x"))
        session.flush()
        if len(tries) == 1:
            raise _collision()  # as another desk's change with the same number
        return len(tries)

    assert in_write(db, work) == 2
    with db.session() as session:
        assert session.scalars(select(User.username)).all() == ["u2"]


def test_the_last_collision_is_reported(db: Database) -> None:
    def work(session: Session) -> None:
        raise _collision()

    with pytest.raises(IntegrityError):
        in_write(db, work, attempts=2)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0
