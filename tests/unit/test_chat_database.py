"""`waihu chat` writes to a scratch database unless told otherwise: what is typed there
(a consent, a do-not-call request) must not land among real campaigns."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot import chat as chat_module
from bot import cli
from bot.store import Database
from bot.store.db import ENV_VAR

REPO = Path(__file__).resolve().parents[2]
MARKETING = str(REPO / "examples" / "campaigns" / "marketing.yml")


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The database URL the chat would talk on (the servers are not started)."""
    urls: list[str] = []

    async def chat(db: Database, args: argparse.Namespace) -> int:
        urls.append(db.url.render_as_string(hide_password=False))
        return 0

    monkeypatch.setattr(chat_module, "chat", chat)
    return urls


def test_chat_uses_a_scratch_database_by_default(
        used: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert cli.main(["chat", "--campaign", MARKETING]) == 0
    assert used == [f"sqlite:///{REPO / 'var' / 'chat.db'}"]


def test_chat_uses_the_database_it_is_told(used: list[str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    given = f"sqlite:///{tmp_path / 'given.db'}"
    from_env = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv(ENV_VAR, from_env)
    assert cli.main(["--database", given, "chat", "--campaign", MARKETING]) == 0
    assert cli.main(["chat", "--campaign", MARKETING]) == 0
    assert used == [given, from_env]
