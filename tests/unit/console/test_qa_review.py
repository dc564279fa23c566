"""The QA reviewer's pages (issue 15 item 4) under aiohttp's test client: who may open them,
CSRF, claims (conflict, expiry), the recording route (roles, ranges) and the scorecard's
submission recording the verdict and the non-compliant sale's follow-up call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import accounts
from bot.store import Database
from bot.store.models import AuditEntry, Callback, QaClaim, QaReview

from .conftest import PASSWORD, Clock, Factory, csrf_of, log_in
from .qa_helpers import sampled_call

Client = TestClient[web.Request, web.Application]


async def logged_in(make_client: Factory, name: str) -> Client:
    client: Client = await make_client()
    assert (await log_in(client, name)).status == 303
    return client


async def post(client: Client, path: str, data: dict[str, Any] | None = None) -> Any:
    token = await csrf_of(client, "/qa")
    return await client.post(path, data={"csrf_token": token, **(data or {})},
                             allow_redirects=False)


def every_checkpoint() -> dict[str, str]:
    from bot.qa.scorecard import RULES, checkpoint_field
    return {checkpoint_field(r, c): "on" for r in RULES for c in r.checkpoints}


async def test_roles_list_and_page(make_client: Factory, users: dict[str, accounts.UserInfo],
                                   sqlite_db: Database, tmp_path: Path) -> None:
    _, call_id = sampled_call(sqlite_db, tmp_path)
    for role in ("qa", "supervisor", "admin"):
        client = await logged_in(make_client, role)
        listing = await client.get("/qa")
        assert listing.status == 200 and call_id in await listing.text()
        page = await client.get(f"/qa/calls/{call_id}")
        text = await page.text()
        assert page.status == 200
        assert "138****5678" in text and "13812345678" not in text  # masked, also in turns
        assert 'data-start-ms="10500"' in text and 'data-kind="long_silence"' in text
    agent = await logged_in(make_client, "agent")
    for path in ("/qa", f"/qa/calls/{call_id}", f"/qa/calls/{call_id}/recording"):
        assert (await agent.get(path, allow_redirects=False)).status == 403
    anonymous: Client = await make_client()
    assert (await anonymous.get(f"/qa/calls/{call_id}/recording",
                                allow_redirects=False)).status in (303, 401)
    qa = await logged_in(make_client, "qa")
    assert (await qa.get("/qa/calls/not-a-sampled-call")).status == 404


async def test_recording_serves_ranges(make_client: Factory,
                                       users: dict[str, accounts.UserInfo],
                                       sqlite_db: Database, tmp_path: Path) -> None:
    _, call_id = sampled_call(sqlite_db, tmp_path)
    whole = (tmp_path / f"{call_id}.wav").read_bytes()
    qa = await logged_in(make_client, "qa")
    full = await qa.get(f"/qa/calls/{call_id}/recording")
    assert full.status == 200 and full.headers["Content-Type"] == "audio/wav"
    assert full.headers.get("Accept-Ranges") == "bytes" and await full.read() == whole
    part = await qa.get(f"/qa/calls/{call_id}/recording", headers={"Range": "bytes=100-199"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert await part.read() == whole[100:200]
    (tmp_path / f"{call_id}.wav").unlink()  # a file gone: no path from anywhere else
    assert (await qa.get(f"/qa/calls/{call_id}/recording")).status == 404


async def test_csrf_refused(make_client: Factory, users: dict[str, accounts.UserInfo],
                            sqlite_db: Database, tmp_path: Path) -> None:
    _, call_id = sampled_call(sqlite_db, tmp_path)
    qa = await logged_in(make_client, "qa")
    for action in ("claim", "review"):
        refused = await qa.post(f"/qa/calls/{call_id}/{action}", data={"csrf_token": "x"},
                                allow_redirects=False)
        assert refused.status == 403
    with sqlite_db.session() as session:
        assert session.scalars(select(QaClaim)).all() == []
        assert session.scalars(select(QaReview)).all() == []


async def test_claim_conflict_and_expiry(make_client: Factory, clock: Clock,
                                         users: dict[str, accounts.UserInfo],
                                         passwords: accounts.Passwords,
                                         sqlite_db: Database, tmp_path: Path) -> None:
    accounts.create_user(sqlite_db, passwords, "qa2", "qa", PASSWORD, actor="test")
    _, call_id = sampled_call(sqlite_db, tmp_path)
    first, second = await logged_in(make_client, "qa"), await logged_in(make_client, "qa2")
    claimed = await post(first, f"/qa/calls/{call_id}/claim")
    assert claimed.status == 303
    refused = await post(second, f"/qa/calls/{call_id}/claim")
    assert refused.status == 409 and "qa" in await refused.text()
    # the second reviewer cannot submit without the claim either
    stolen = await post(second, f"/qa/calls/{call_id}/review", every_checkpoint())
    assert stolen.status == 409
    clock.advance(minutes=29)
    assert (await post(second, f"/qa/calls/{call_id}/claim")).status == 409
    clock.advance(minutes=2)  # the first claim expired
    assert (await post(second, f"/qa/calls/{call_id}/claim")).status == 303
    late = await post(first, f"/qa/calls/{call_id}/review", every_checkpoint())
    assert late.status == 409
    with sqlite_db.session() as session:
        [claim] = session.scalars(select(QaClaim)).all()
        assert claim.reviewer == "qa2"
        assert session.scalars(select(QaReview)).all() == []
        assert len(session.scalars(select(AuditEntry).where(
            AuditEntry.action == "qa.claimed")).all()) == 2


async def test_non_compliant_scorecard_schedules_the_followup(
        make_client: Factory, users: dict[str, accounts.UserInfo], sqlite_db: Database,
        tmp_path: Path) -> None:
    contact_id, call_id = sampled_call(sqlite_db, tmp_path)
    qa = await logged_in(make_client, "qa")
    assert (await post(qa, f"/qa/calls/{call_id}/claim")).status == 303
    page = await (await qa.get(f"/qa/calls/{call_id}")).text()
    assert 'id="qa-scorecard"' in page
    form = every_checkpoint()
    del form["cp.approved_script.cancel_stated"]
    form["comment.approved_script"] = "未说明取消方式"
    done = await post(qa, f"/qa/calls/{call_id}/review", form)
    assert done.status == 303
    with sqlite_db.session() as session:
        [review] = session.scalars(select(QaReview)).all()
        assert (review.reviewer, review.compliant) == ("qa", False)
        assert "approved_script" in (review.notes or "")
        [callback] = session.scalars(select(Callback).where(
            Callback.contact_id == contact_id, Callback.kind == "qa_followup")).all()
        assert callback.call_id == call_id
        [audit] = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "qa.reviewed")).all()
        assert audit.actor == "user:qa" and audit.subject == call_id
        card = audit.detail["scorecard"]
        assert card["compliant"] is False and card["failed_rules"] == ["approved_script"]
        assert card["points"] == card["total"] - 10
        assert session.scalars(select(QaClaim)).all() == []  # released
    listing = await (await qa.get("/qa")).text()
    assert "不合规 non-compliant" in listing


async def test_instant_fail_needs_a_reason_and_compliant_has_no_followup(
        make_client: Factory, users: dict[str, accounts.UserInfo], sqlite_db: Database,
        tmp_path: Path) -> None:
    _, call_id = sampled_call(sqlite_db, tmp_path)
    qa = await logged_in(make_client, "qa")
    await post(qa, f"/qa/calls/{call_id}/claim")
    bad = await post(qa, f"/qa/calls/{call_id}/review",
                     {**every_checkpoint(), "instant_fail": "on"})
    assert bad.status == 400
    ok = await post(qa, f"/qa/calls/{call_id}/review", every_checkpoint())
    assert ok.status == 303
    with sqlite_db.session() as session:
        [review] = session.scalars(select(QaReview)).all()
        assert review.compliant is True
        assert session.scalars(select(Callback).where(
            Callback.kind == "qa_followup")).all() == []
