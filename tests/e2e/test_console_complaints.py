"""The complaints pages in headless Chromium (issue 15 item 5): a supervisor opens the
complaints from the menu, filters the overdue ones, opens a complaint the bot heard on a
call (the customer's words highlighted in the transcript, the number masked), marks the
customer contacted with the answer given, resolves it with its root cause, and decides it
was not serious: the blacklist the complaint applied at once (the campaign's default) is
lifted, and the database holds who did each step.

`waihu console` runs from here on a free 127.0.0.1 port (tests/e2e/console_process.py).
Screenshots complaints-01..04 in var/test-artifacts/console/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect
from sqlalchemy import select

from bot import accounts
from bot.qa import complaints
from bot.store import Database, utcnow
from bot.store.models import Call, Complaint, Contact, DncEntry, TranscriptTurn
from tests.e2e.console_process import running_console
from tests.e2e.test_console_qa_review import page, shot  # noqa: F401 (the browser fixture)
from tests.unit.campaigns.test_qa import consented_call

pytestmark = pytest.mark.browser
PASSWORD = "supervisor pass 1"
TURNS = (("bot", "您好，这里是某某公司，请问是王先生吗？"),
         ("customer", "你们一天打三遍，我要投诉你们"),
         ("bot", "非常抱歉打扰您，正在为您转接人工客服。"))


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[str, Database, int]]:
    """A supervisor and a complaint the bot heard four days ago (overdue by now)."""
    url = f"sqlite:///{tmp_path / 'console.db'}"
    db = Database(url)
    db.upgrade()
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts.create_user(db, cheap, "lizhuguan", "supervisor", PASSWORD, actor="test",
                         display_name="李主管")
    _, call_id = consented_call(db)
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        for seq, (speaker, text) in enumerate(TURNS, 1):
            session.add(TranscriptTurn(call_id=call_id, seq=seq, speaker=speaker, text=text))
        session.flush()
        contact = session.get(Contact, call.contact_id)
        assert contact is not None
        made = complaints.record_call_complaint(session, call, contact, "",
                                                utcnow() - timedelta(days=4))
        complaint_id = made.complaint.id
    try:
        yield url, db, complaint_id
    finally:
        db.dispose()


@pytest.fixture
def console(seeded: tuple[str, Database, int], tmp_path: Path) -> Iterator[str]:
    with running_console(seeded[0], tmp_path / "console.log") as base:
        yield base


def test_supervisor_handles_a_complaint_and_decides_it_was_not_serious(
        console: str, page: Page, seeded: tuple[str, Database, int]) -> None:  # noqa: F811
    _, db, complaint_id = seeded
    page.goto(f"{console}/login")
    page.get_by_label("用户名").fill("lizhuguan")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录 Log in").click()
    expect(page).to_have_url(f"{console}/supervisor")
    page.get_by_role("link", name="投诉 Complaints").click()
    expect(page).to_have_url(f"{console}/qa/complaints")
    row = page.locator(f'tr[data-complaint-id="{complaint_id}"]')
    expect(row).to_contain_text("138****5678")
    expect(row).to_contain_text("超期 overdue")
    expect(page.locator("body")).not_to_contain_text("13812345678")
    shot(page, "complaints-01-list")

    page.get_by_role("link", name="已超期 Overdue").click()
    expect(page).to_have_url(f"{console}/qa/complaints?overdue=1")
    row.get_by_role("link", name="打开 Open").click()
    expect(page.locator("#complaint-words")).to_have_text("你们一天打三遍，我要投诉你们")
    expect(page.locator("#complaint-excerpt .qa-playing")).to_contain_text("我要投诉你们")
    expect(page.locator("#complaint-blacklist")).to_contain_text("号码已拉黑 blacklisted")
    shot(page, "complaints-02-detail")

    page.get_by_label("给客户的答复").fill("已致歉，已将号码设为不再拨打营销电话")
    page.get_by_role("button", name="已联系客户 Customer contacted").click()
    expect(page.get_by_role("status")).to_contain_text("Marked contacted")
    page.get_by_label("根本原因").select_option("people")
    page.get_by_role("button", name="结案 Resolve").click()
    expect(page.get_by_role("status")).to_contain_text("Complaint resolved")
    expect(page.locator("#complaint-status")).to_contain_text("已结案 resolved")
    shot(page, "complaints-03-resolved")

    page.get_by_role("button", name="不严重 Not serious").click()
    expect(page.get_by_role("status")).to_contain_text("the blacklist is lifted")
    expect(page.locator("#complaint-decision")).to_contain_text("不严重 not serious")
    expect(page.locator("#complaint-blacklist")).to_contain_text("黑名单已解除 lifted")
    expect(page.locator("#complaint-history")).to_contain_text("complaint.decided")
    shot(page, "complaints-04-decided")

    with db.session() as session:
        done = session.get(Complaint, complaint_id)
        assert done is not None
        assert (done.status, done.contacted_by, done.resolved_by, done.root_cause,
                done.decision, done.decided_by) == (
            "resolved", "lizhuguan", "lizhuguan", "people", "not_serious", "lizhuguan")
        [entry] = session.scalars(select(DncEntry)).all()
        assert (entry.kind, entry.removed_by) == ("blacklist", "lizhuguan")
