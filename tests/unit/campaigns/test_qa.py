"""QA follow-ups: a reviewer's verdict, and the follow-up call for a non-compliant sale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.campaigns.dialer import Dialer
from bot.campaigns.qa import record_qa_review
from bot.cli import main
from bot.store import Database, DncRepo

from .test_dialer import MON, NOW, add_campaign, add_contacts, contact, run_call, sh
from .test_followups import callbacks


def consented_call(db: Database, **campaign: Any) -> tuple[int, str]:
    cid = add_campaign(db, **campaign)
    [contact_id] = add_contacts(db, cid, ["13812345678"])
    dialer = Dialer(db, "gw")
    [job] = dialer.claim(NOW, capacity=1)
    run_call(db, dialer, job, "answered", "consented")
    return contact_id, job.call_id


def test_non_compliant_sale_gets_a_qa_followup(db: Database) -> None:
    contact_id, call_id = consented_call(db)
    assert record_qa_review(db, call_id, "质检员甲", True, now=sh(MON, 12, 30)).callback_id is None
    result = record_qa_review(db, call_id, "质检员乙", False, "未说明取消方式",
                              now=sh(MON, 12, 30))
    assert result.callback_id is not None
    [followup] = callbacks(db, contact_id)
    assert (followup.kind, followup.due_at, followup.call_id) == (
        "qa_followup", sh(MON, 14), call_id)
    reopened = contact(db, contact_id)
    assert (reopened.status, reopened.attempts, reopened.next_attempt_at) == (
        "pending", 0, sh(MON, 14))
    again = record_qa_review(db, call_id, "主管", False, now=sh(MON, 13))
    assert again.callback_id == result.callback_id and again.note is not None
    dialer = Dialer(db, "gw")
    assert dialer.claim(sh(MON, 13, 59), capacity=1) == []
    [job] = dialer.claim(sh(MON, 14), capacity=1)
    assert (job.kind, job.callback_id, job.attempt_no) == ("qa_followup", result.callback_id, 2)


def test_qa_followup_only_for_consented_calls_and_reachable_numbers(db: Database) -> None:
    cid = add_campaign(db)
    declined, listed = add_contacts(db, cid, ["13800000001", "13800000002"])
    dialer = Dialer(db, "gw")
    jobs = {j.contact_id: j for j in dialer.claim(NOW, capacity=2)}
    run_call(db, dialer, jobs[declined], "answered", "declined", decline_reason="other")
    run_call(db, dialer, jobs[listed], "answered", "consented")
    assert record_qa_review(db, jobs[declined].call_id, "qa", False, now=NOW).callback_id is None
    with db.session() as session:
        DncRepo(session).add("13800000002", "do_not_call", "asked", "customer", "bot")
    blocked = record_qa_review(db, jobs[listed].call_id, "qa", False, now=NOW)
    assert blocked.callback_id is None and blocked.note is not None
    assert callbacks(db, declined) == [] and callbacks(db, listed) == []


def test_qa_followup_can_be_switched_off(db: Database) -> None:
    contact_id, call_id = consented_call(db, follow_ups={"qa_followup": False})
    result = record_qa_review(db, call_id, "qa", False, now=NOW)
    assert result.callback_id is None and contact(db, contact_id).status == "done"
    with pytest.raises(LookupError):
        record_qa_review(db, "no-such-call", "qa", False, now=NOW)


def test_cli_qa_review(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    db.upgrade()
    _, call_id = consented_call(db)
    assert main(["--database", url, "qa", "review", call_id, "--reviewer", "质检员",
                 "--non-compliant", "--notes", "未确认", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["compliant"] is False and out["followup_callback_id"] is not None
    assert main(["--database", url, "qa", "review", call_id, "--reviewer", "质检员",
                 "--compliant"]) == 0
    assert "saved" in capsys.readouterr().out
    assert main(["--database", url, "qa", "review", "nope", "--reviewer", "x",
                 "--compliant"]) == 2
    assert "nope" in capsys.readouterr().err
