"""What the repositories share: the missing-row error and the phone check."""

from __future__ import annotations

from bot import privacy


class NotFound(LookupError):
    """The row a repository method needs does not exist."""


def check_phone(phone: str) -> str:
    """Phones are stored as normalised digits (the importer normalises); refuse anything else,
    so a DNC lookup can never miss a number because of its spelling."""
    if not phone.isascii() or not phone.isdigit() or len(phone) > 20:
        raise ValueError(f"phone must be 1-20 digits, got {privacy.mask_phone(phone)!r}")
    return phone
