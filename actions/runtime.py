"""Process-wide resources of the action server, created on first use (not at import)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.store import Database, default_url

DOMAIN_FILE = Path(__file__).resolve().parents[1] / "domain.yml"


@cache
def database() -> Database:
    """The database named by WAIHU_DATABASE_URL (default: the embedded SQLite file)."""
    return Database(default_url())


@cache
def domain() -> dict[str, Any]:
    """domain.yml as the model was trained from it (setup retrains whenever it changes).

    Rasa runs with `enable_selective_domain`, so actions do not receive the domain with
    every call; the consent ledger's script hash reads the response templates from here."""
    loaded: dict[str, Any] = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))
    return loaded
