"""The recording library's pages (issue 15 item 6) under aiohttp's test client: the review
page's form marks a call (roles, CSRF, refusals), the library lists it by kind and tag with
a link to its review page, and taking it out."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot import accounts
from bot.store import Database
from bot.store.models import AuditEntry, LibraryEntry

from .conftest import Factory, csrf_of
from .qa_helpers import sampled_call
from .test_qa_review import logged_in, post


async def test_mark_list_and_remove(make_client: Factory, users: dict[str, accounts.UserInfo],
                                    sqlite_db: Database, tmp_path: Path) -> None:
    _, call_id = sampled_call(sqlite_db, tmp_path)
    qa = await logged_in(make_client, "qa")
    page = await (await qa.get(f"/qa/calls/{call_id}")).text()
    assert 'id="library-form"' in page and 'id="library-remove"' not in page
    done = await post(qa, f"/qa/calls/{call_id}/library",
                      {"kind": "exemplary", "note": "异议处理得好", "tags": "异议处理, 开场白"})
    assert done.status == 303 and done.headers["Location"] == f"/qa/calls/{call_id}#library"
    page = await (await qa.get(f"/qa/calls/{call_id}")).text()
    assert "优秀录音 exemplary" in page and 'id="library-remove"' in page
    assert ">异议处理得好</textarea>" in page

    for role in ("qa", "supervisor", "admin"):
        client = qa if role == "qa" else await logged_in(make_client, role)
        listing = await client.get("/qa/library")
        text = await listing.text()
        assert listing.status == 200 and f'href="/qa/calls/{call_id}#library"' in text
        assert "异议处理得好" in text
    by_tag = await (await qa.get("/qa/library", params={"tag": "开场白"})).text()
    assert f'data-call-id="{call_id}"' in by_tag
    other_kind = await (await qa.get("/qa/library", params={"kind": "problem"})).text()
    assert f'data-call-id="{call_id}"' not in other_kind and "暂无录音" in other_kind
    other_tag = await (await qa.get("/qa/library", params={"tag": "价格"})).text()
    assert f'data-call-id="{call_id}"' not in other_tag
    assert (await qa.get("/qa/library", params={"kind": "junk"})).status == 400

    supervisor = await logged_in(make_client, "supervisor")
    assert (await post(supervisor, f"/qa/calls/{call_id}/library/remove")).status == 303
    with sqlite_db.session() as session:
        assert session.scalars(select(LibraryEntry)).all() == []
        actions = [e.action for e in session.scalars(select(AuditEntry).where(
            AuditEntry.subject == call_id).order_by(AuditEntry.id))]
        assert actions == ["library.marked", "library.removed"]


async def test_refusals(make_client: Factory, users: dict[str, accounts.UserInfo],
                        sqlite_db: Database, tmp_path: Path) -> None:
    _, call_id = sampled_call(sqlite_db, tmp_path)
    form = {"kind": "problem", "note": "没有说明价格"}
    agent = await logged_in(make_client, "agent")
    assert (await agent.get("/qa/library", allow_redirects=False)).status == 403
    token = await csrf_of(agent, "/agent")  # a valid token: the role alone refuses
    for path in (f"/qa/calls/{call_id}/library", f"/qa/calls/{call_id}/library/remove"):
        refused = await agent.post(path, data={**form, "csrf_token": token},
                                   allow_redirects=False)
        assert refused.status == 403
    anonymous = await make_client()
    assert (await anonymous.get("/qa/library", allow_redirects=False)).status in (303, 401)

    qa = await logged_in(make_client, "qa")
    no_token = await qa.post(f"/qa/calls/{call_id}/library",
                             data={**form, "csrf_token": "forged"}, allow_redirects=False)
    assert no_token.status == 403
    assert (await qa.post(f"/qa/calls/{call_id}/library/remove", data={"csrf_token": "x"},
                          allow_redirects=False)).status == 403
    empty_note = await post(qa, f"/qa/calls/{call_id}/library", {"kind": "problem"})
    assert empty_note.status == 400 and "A note is needed" in await empty_note.text()
    assert (await post(qa, "/qa/calls/not-sampled/library", form)).status == 404
    with sqlite_db.session() as session:
        assert session.scalars(select(LibraryEntry)).all() == []
