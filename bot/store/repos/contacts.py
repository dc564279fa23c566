"""Contacts: the people a campaign calls, with their ID digits kept only as a hash keyed
with a server key (bot.privacy)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import privacy
from bot.store.models import Contact
from bot.store.repos.common import check_phone

log = logging.getLogger("waihu.store")


class ContactRepo:
    """*hasher*: the ID-digits hasher to use (default: the server's ``id-hash`` keyring,
    loaded the first time ID digits are hashed or checked)."""

    def __init__(self, session: Session, hasher: privacy.IdHasher | None = None) -> None:
        self.session = session
        self._hasher = hasher

    @property
    def hasher(self) -> privacy.IdHasher:
        if self._hasher is None:
            self._hasher = privacy.IdHasher()
        return self._hasher

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
        """Add a contact; ``id_last4`` is stored only as a keyed hash."""
        hashed = self.hasher.hash(id_last4) if id_last4 else None
        contact = Contact(
            campaign_id=campaign_id,
            phone=check_phone(phone),
            name=name,
            gender=gender,
            age=age,
            region=region,
            id_last4_hash=hashed.hash if hashed else None,
            id_salt=hashed.salt if hashed else None,
            id_hash_key=hashed.key_id if hashed else None,
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
        """Whether *value* matches the stored ID digits; None when the list gave none.

        A match on a hash made with an older key (or none, before the server key) is stored
        again under the current key: the customer has just proved the digits, the only
        moment they are known in clear."""
        if contact.id_last4_hash is None or contact.id_salt is None:
            return None
        hasher = self.hasher
        if not hasher.verify(value, contact.id_salt, contact.id_last4_hash,
                             contact.id_hash_key):
            return False
        if not hasher.is_current(contact.id_hash_key):
            self.set_id_hash(contact, hasher.hash(value))
        return True

    def set_id_hash(self, contact: Contact, hashed: privacy.HashedId) -> None:
        """Store *contact*'s ID digits hashed anew (a fresh salt, the current key)."""
        log.info("contact.id_rehashed contact_id=%s from_key=%s to_key=%s", contact.id,
                 contact.id_hash_key or "unkeyed", hashed.key_id)
        contact.id_last4_hash, contact.id_salt, contact.id_hash_key = hashed
        self.session.flush()

    def list(self, campaign_id: int) -> Sequence[Contact]:
        return self.session.scalars(
            select(Contact).where(Contact.campaign_id == campaign_id).order_by(Contact.id)
        ).all()
