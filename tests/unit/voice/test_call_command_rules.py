"""`waihu call` refuses what the dialer would not dial, before it starts any server; with
`--force` it warns and the override is audited (bot/campaigns/manual.py decides)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.store import AuditRepo, Database, DncRepo
from bot.store.models import CallAttempt
from voice import cli, commands

REPO = Path(__file__).resolve().parents[3]
MARKETING = REPO / "examples" / "campaigns" / "marketing.yml"
PHONE = "13812345678"


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'call.db'}"
    db = Database(url)
    db.upgrade()
    with db.session() as session:
        DncRepo(session).add(PHONE, "do_not_call", "asked", "operator", "admin")
    db.dispose()
    return url


def test_a_do_not_call_number_is_refused_with_a_message_and_exit_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _database(tmp_path)
    code = cli.main(["--database", url, "call", f"sip:{PHONE}@127.0.0.1:5999",
                     "--campaign", str(MARKETING), "--json"])
    assert code == 3
    out, err = capsys.readouterr()
    assert "refused to call 138****5678" in err and "do-not-call" in err and "--force" in err
    assert "do_not_call" in json.loads(out.splitlines()[-1])["refused"]
    with Database(url).session() as session:
        assert session.scalar(select(func.count()).select_from(CallAttempt)) == 0


def test_force_warns_and_is_audited(tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = _database(tmp_path)
    args = argparse.Namespace(database=url, campaign=MARKETING, uri=f"sip:{PHONE}@127.0.0.1",
                              name="张伟", gender="male", id_last4="1234", force=True)
    db = Database(url)
    job = commands._one_job(db, args)
    assert "WARNING: --force" in capsys.readouterr().err
    with db.session() as session:
        [entry] = AuditRepo(session).entries("call.forced", job.call_id)
        assert "do_not_call" in entry.detail["rules"]
    commands._release(db, job.call_id)  # what `call` does however the call ended
    with db.session() as session:
        attempt = session.scalar(select(CallAttempt).where(CallAttempt.call_id == job.call_id))
        assert attempt is not None and attempt.lease_expires_at is None
