"""The recording library and the weekly client summary in headless Chromium (issue 15 items
6 and 7): a QA reviewer keeps a sampled call as exemplary with a note and tags on its review
page, finds it in the library by its tag, and plays it from there; a supervisor opens the
week's client summary (QA results by rule included) and downloads its PDF and XLSX.

`waihu console` runs from here on a free 127.0.0.1 port, as in test_console_qa_review.py.
Screenshots lib-01..lib-03 and weekly-01 in var/test-artifacts/console/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from sqlalchemy import select

from bot import accounts
from bot.qa import review
from bot.qa.scorecard import RULES, checkpoint_field, parse_scorecard
from bot.store import Database
from bot.store.models import LibraryEntry
from tests.e2e.console_process import running_console
from tests.e2e.test_console_qa_review import page, shot, wait_until
from tests.unit.console.qa_helpers import sampled_call

pytestmark = pytest.mark.browser
PASSWORD = "library pass 1"
__all__ = ["page"]  # the fixture, shared with the review page's test


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[str, Database, str]]:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    db = Database(url)
    db.upgrade()
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    for name, role in (("zhangqa", "qa"), ("lisup", "supervisor")):
        accounts.create_user(db, cheap, name, role, PASSWORD, actor="test")
    _, call_id = sampled_call(db, tmp_path)
    # A reviewer found the sale non-compliant on the approved script (week 2030-W19).
    form = {checkpoint_field(r, c): "on" for r in RULES for c in r.checkpoints}
    del form["cp.approved_script.cancel_stated"]
    at = datetime(2030, 5, 6, 6, 0, tzinfo=UTC)
    review.claim_call(db, call_id, "zhangqa", at)
    review.submit_review(db, call_id, "zhangqa", parse_scorecard(form), at)
    try:
        yield url, db, call_id
    finally:
        db.dispose()


@pytest.fixture
def console(seeded: tuple[str, Database, str], tmp_path: Path) -> Iterator[str]:
    with running_console(seeded[0], tmp_path / "console.log") as base:
        yield base


def log_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录 Log in").click()


def test_library_and_weekly_summary(console: str, page: Page,
                                    seeded: tuple[str, Database, str],
                                    tmp_path: Path) -> None:
    _, db, call_id = seeded
    log_in(page, console, "zhangqa")
    page.get_by_role("link", name="录音库 Library").click()
    expect(page.locator(".empty-title")).to_have_text("暂无录音")
    page.goto(f"{console}/qa/calls/{call_id}")
    form = page.locator("#library-form")
    form.get_by_label("优秀录音 Exemplary").check()
    form.get_by_label("备注 Note").fill("开场白和价格说明都很清楚")
    form.get_by_label("标签 Tags").fill("开场白, 价格说明")
    shot(page, "lib-01-mark-on-review-page")
    form.get_by_role("button", name="收入录音库 Keep in the library").click()
    expect(page.locator("#library")).to_contain_text("优秀录音 exemplary")
    expect(page.locator("#library-remove")).to_be_visible()

    page.goto(f"{console}/qa/library")
    page.get_by_role("link", name="价格说明 1").click()
    row = page.locator(f'#library-entries tr[data-call-id="{call_id}"]')
    expect(row).to_contain_text("开场白和价格说明都很清楚")
    shot(page, "lib-02-library-by-tag")
    row.get_by_role("link", name="播放 Play").click()
    wait_until(page, "document.getElementById('qa-audio').readyState >= 1")
    page.evaluate("document.getElementById('qa-audio').play()")
    wait_until(page, "document.getElementById('qa-audio').currentTime > 0.3")
    shot(page, "lib-03-played-from-library")
    with db.session() as session:
        [entry] = session.scalars(select(LibraryEntry))
        assert (entry.call_id, entry.kind, sorted(t.tag for t in entry.tags)) == (
            call_id, "exemplary", ["价格说明", "开场白"])

    page.get_by_role("button", name="退出 Log out").click()
    log_in(page, console, "lisup")
    page.goto(f"{console}/supervisor/weekly?week=2030-W19")
    rules = page.locator("#weekly-qa_rules")
    expect(rules.locator("tr", has_text="规范话术 Approved script")).to_contain_text("0.0%")
    expect(rules.locator("tr", has_text="本人确认 Right person")).to_contain_text("100.0%")
    shot(page, "weekly-01-client-summary")
    for link, suffix in (("#weekly-pdf", ".pdf"), ("#weekly-xlsx", ".xlsx")):
        # The PDF embeds its fonts: a few seconds on a quiet machine, more on a busy one.
        with page.expect_download(timeout=120_000) as download:
            page.locator(link).click(timeout=120_000)
        saved = tmp_path / f"week{suffix}"
        download.value.save_as(saved)
        assert download.value.suggested_filename == f"all-weekly-2030-W19{suffix}"
        assert saved.stat().st_size > 1000
    book = load_workbook(tmp_path / "week.xlsx")
    assert "质检结果（按规则）" in book.sheetnames
