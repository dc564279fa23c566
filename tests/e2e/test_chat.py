"""`waihu chat` as a user runs it: typed replies in, the bot's lines and the outcome out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.store import ConsentLedger, Database
from bot.store.models import Call, Consent

pytestmark = pytest.mark.rasa
REPO = Path(__file__).resolve().parents[2]


def test_chat_records_a_keyed_consent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    typed = "\n".join(["是我", "可以", "多少钱", "我同意", ":1"]) + "\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--database", url, "chat", "--campaign",
         str(REPO / "examples/campaigns/marketing.yml"), "--name", "王芳", "--gender",
         "female"],
        input=typed, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "请问您是王女士本人吗？" in out
    assert "来电提醒服务的资费是每月5元。" in out
    assert "disclosures price" in out
    assert "outcome: consented" in out
    with Database(url).session() as session:
        [call] = session.scalars(select(Call)).all()
        [consent] = session.scalars(select(Consent).where(Consent.kind == "consent")).all()
        assert call.outcome == "consented" and consent.utterance == "DTMF 1"
        assert ConsentLedger(session).verify().ok
