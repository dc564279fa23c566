"""Bound values stay out of database error messages and logs (hide_parameters, and
PostgreSQL's DETAIL/CONTEXT lines, which quote the row)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.store import CampaignRepo, ContactRepo, Database
from bot.store.models import Contact

PHONE = "13812345678"


def test_an_integrity_error_does_not_show_the_phone_number(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    with db.session() as session:
        campaign_id = CampaignRepo(session).add("hidden", "marketing", {}, "0" * 64).id
        ContactRepo(session).add(campaign_id, PHONE, name="张伟")
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    with pytest.raises(IntegrityError) as duplicate, db.session() as session:
        ContactRepo(session).add(campaign_id, PHONE, name="张伟")
    with pytest.raises(IntegrityError) as not_null, db.session() as session:
        session.execute(text("INSERT INTO contacts (campaign_id, phone, name, fields, status, "
                             "attempts, priority, created_at) VALUES (:c, :p, :n, '{}', "
                             "'pending', 0, NULL, CURRENT_TIMESTAMP)"),
                        {"c": campaign_id, "p": PHONE, "n": "张伟"})
    for raised in (duplicate.value, not_null.value):
        message = str(raised)
        assert PHONE not in message and "张伟" not in message, message
        assert PHONE not in repr(raised.args) and PHONE not in str(raised.orig)
        assert "contacts" in message  # still says what failed
    assert "unique" in str(duplicate.value).lower()
    assert PHONE not in caplog.text
    with db.session() as session:
        assert session.query(Contact).count() == 1
