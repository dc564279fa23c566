"""Contacts: the people a campaign calls, with their ID digits kept only as a salted hash."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import privacy
from bot.store.models import Contact
from bot.store.repos.common import check_phone


class ContactRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        campaign_id: int,
        phone: str,
        name: str | None = None,
        gender: str | None = None,
        age: int | None = None,
        region: str | None = None,
        id_last4: str | None = None,
        fields: dict[str, Any] | None = None,
        priority: int = 0,
    ) -> Contact:
        """Add a contact; ``id_last4`` is stored only as a salted hash."""
        salt = hashed = None
        if id_last4:
            salt = privacy.new_salt()
            hashed = privacy.hash_secret(id_last4, salt)
        contact = Contact(
            campaign_id=campaign_id,
            phone=check_phone(phone),
            name=name,
            gender=gender,
            age=age,
            region=region,
            id_last4_hash=hashed,
            id_salt=salt,
            fields=dict(fields or {}),
            priority=priority,
        )
        self.session.add(contact)
        self.session.flush()
        return contact

    def by_phone(self, campaign_id: int, phone: str) -> Contact | None:
        return self.session.scalar(
            select(Contact).where(Contact.campaign_id == campaign_id, Contact.phone == phone)
        )

    def check_id_last4(self, contact: Contact, value: str) -> bool | None:
        """Whether *value* matches the stored ID digits; None when the list gave none."""
        if contact.id_last4_hash is None or contact.id_salt is None:
            return None
        return privacy.verify_secret(value, contact.id_salt, contact.id_last4_hash)

    def list(self, campaign_id: int) -> Sequence[Contact]:
        return self.session.scalars(
            select(Contact).where(Contact.campaign_id == campaign_id).order_by(Contact.id)
        ).all()
