"""The weekly client summary's page and files (issue 15 item 7) under aiohttp's test client:
roles, the week and campaign chosen, the PDF and XLSX downloads with the same figures as
`waihu report --period weekly`."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from bot import accounts
from bot.store import Database

from ..reports.test_weekly import seed_week
from .conftest import Factory
from .test_qa_review import logged_in


async def test_weekly_page_and_files(make_client: Factory, users: dict[str, accounts.UserInfo],
                                     sqlite_db: Database) -> None:
    seed_week(sqlite_db)
    supervisor = await logged_in(make_client, "supervisor")
    page = await supervisor.get("/supervisor/weekly", params={"week": "2026-W47",
                                                              "campaign": "seed-marketing"})
    text = await page.text()
    assert page.status == 200
    assert "客户周报 2026-W47 · seed-marketing" in text
    assert 'id="weekly-qa_rules"' in text and "规范话术 Approved script" in text
    assert "66.7%" in text  # approved script passed 2 of 3
    assert 'href="/supervisor/weekly/report.pdf?week=2026-W47&amp;campaign=seed-marketing"' \
        in text

    pdf = await supervisor.get("/supervisor/weekly/report.pdf",
                               params={"week": "2026-W47", "campaign": "seed-marketing"})
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert (await pdf.read()).startswith(b"%PDF")
    assert "seed-marketing-weekly-2026-W47.pdf" in pdf.headers["Content-Disposition"]
    xlsx = await supervisor.get("/supervisor/weekly/report.xlsx", params={"week": "2026-W47"})
    assert xlsx.status == 200
    book = load_workbook(io.BytesIO(await xlsx.read()))
    rules = {row[0]: row[1:4] for row in book["质检结果（按规则）"].iter_rows(
        min_row=4, values_only=True)}
    assert rules["规范话术 Approved script"] == (3, 2, 1)

    # The default week is the last whole one; a bad week or campaign is said so.
    assert "客户周报 2030-W18" in await (await supervisor.get("/supervisor/weekly")).text()
    bad = await supervisor.get("/supervisor/weekly", params={"week": "2026-W99"})
    assert bad.status == 400 and "Not an ISO week" in await bad.text()
    nope = await supervisor.get("/supervisor/weekly", params={"campaign": "nope"})
    assert nope.status == 400 and "no campaign named" in await nope.text()
    assert (await supervisor.get("/supervisor/weekly/report.pdf",
                                 params={"campaign": "nope"})).status == 404


async def test_weekly_roles(make_client: Factory, users: dict[str, accounts.UserInfo],
                            sqlite_db: Database) -> None:
    admin = await logged_in(make_client, "admin")
    assert (await admin.get("/supervisor/weekly")).status == 200
    for role in ("qa", "agent"):
        client = await logged_in(make_client, role)
        for path in ("/supervisor/weekly", "/supervisor/weekly/report.xlsx"):
            assert (await client.get(path, allow_redirects=False)).status == 403
    anonymous = await make_client()
    assert (await anonymous.get("/supervisor/weekly/report.pdf",
                                allow_redirects=False)).status in (303, 401)
