"""Process-wide resources of the action server, created on first use (not at import)."""

from __future__ import annotations

from functools import cache

from bot.store import Database, default_url


@cache
def database() -> Database:
    """The database named by WAIHU_DATABASE_URL (default: the embedded SQLite file)."""
    return Database(default_url())
