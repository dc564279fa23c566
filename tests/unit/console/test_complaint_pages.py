"""The complaints pages (issue 15 item 5) under aiohttp's test client: who may read and who
may change them, CSRF, the filters, a supervisor's new complaint, the handling steps and
the blacklist decision, every change audited, numbers masked; and the agent's
``complaint`` disposition making a complaint's record."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import accounts
from bot.store import Database, DncRepo
from bot.store.models import AuditEntry, Complaint

from ..campaigns.test_qa import consented_call
from .conftest import Clock, Factory, csrf_of, log_in

Client = TestClient[web.Request, web.Application]


async def logged_in(make_client: Factory, name: str) -> Client:
    client: Client = await make_client()
    assert (await log_in(client, name)).status == 303
    return client


async def post(client: Client, path: str, data: dict[str, Any]) -> Any:
    token = await csrf_of(client, "/qa/complaints")
    return await client.post(path, data={"csrf_token": token, **data}, allow_redirects=False)


async def enter(client: Client, call_id: str) -> int:
    response = await post(client, "/qa/complaints", {
        "call_id": call_id, "words": "你们一天打三遍，我的号码13812345678", "severity": "high"})
    assert response.status == 303, await response.text()
    found = re.match(r"/qa/complaints/(\d+)\?done=recorded", response.headers["Location"])
    assert found
    return int(found.group(1))


def stored(db: Database, complaint_id: int) -> Complaint:
    with db.session() as session:
        found = session.get(Complaint, complaint_id)
        assert found is not None
        session.expunge(found)
        return found


async def test_roles_csrf_and_masking(make_client: Factory, users: dict[str, accounts.UserInfo],
                                      sqlite_db: Database) -> None:
    _, call_id = consented_call(sqlite_db)
    supervisor = await logged_in(make_client, "supervisor")
    complaint_id = await enter(supervisor, call_id)
    for role in ("qa", "supervisor", "admin"):
        client = await logged_in(make_client, role)
        listing = await client.get("/qa/complaints")
        text = await listing.text()
        assert listing.status == 200 and f'data-complaint-id="{complaint_id}"' in text
        assert 'href="/qa/complaints"' in text  # the menu's link
        page = await client.get(f"/qa/complaints/{complaint_id}")
        text = await page.text()
        assert page.status == 200 and "138****5678" in text and "13812345678" not in text
        assert ('id="complaint-decide"' in text) is (role != "qa")  # qa may only read
    agent = await logged_in(make_client, "agent")
    for path in ("/qa/complaints", f"/qa/complaints/{complaint_id}"):
        assert (await agent.get(path, allow_redirects=False)).status == 403
    qa = await logged_in(make_client, "qa")
    for client in (qa, agent):  # a reader and an outsider may not change anything
        refused = await post(client, f"/qa/complaints/{complaint_id}",
                             {"what": "decision", "value": "not_serious"})
        assert refused.status == 403
        assert (await post(client, "/qa/complaints", {"phone": "13812345678",
                                                      "words": "x"})).status == 403
    no_token = await supervisor.post(f"/qa/complaints/{complaint_id}",
                                     data={"what": "decision", "value": "not_serious"},
                                     allow_redirects=False)
    assert no_token.status == 403
    assert stored(sqlite_db, complaint_id).decision is None
    assert (await supervisor.get("/qa/complaints/999999")).status == 404
    assert (await supervisor.get("/qa/complaints?status=bogus")).status == 400


async def test_handling_decision_and_filters(make_client: Factory, clock: Clock,
                                             users: dict[str, accounts.UserInfo],
                                             sqlite_db: Database) -> None:
    _, call_id = consented_call(sqlite_db)
    supervisor = await logged_in(make_client, "supervisor")
    complaint_id = await enter(supervisor, call_id)
    again = await post(supervisor, "/qa/complaints", {"call_id": call_id, "words": "再来"})
    assert again.headers["Location"].startswith(f"/qa/complaints/{complaint_id}?")  # one a call
    with sqlite_db.session() as session:
        assert DncRepo(session).is_blocked("13812345678")  # the default: at once

    # resolving before contacting is refused and says why
    early = await post(supervisor, f"/qa/complaints/{complaint_id}",
                       {"what": "step", "value": "resolved", "answer": "x",
                        "root_cause": "value"})
    assert early.status == 409 and "cannot become resolved" in await early.text()
    clock.advance(days=2)  # past the contact deadline (and the session's lifetime)
    supervisor = await logged_in(make_client, "supervisor")
    overdue = await (await supervisor.get("/qa/complaints?overdue=1")).text()
    assert f'data-complaint-id="{complaint_id}" data-overdue="contact"' in overdue
    resolved_only = await (await supervisor.get("/qa/complaints?status=resolved")).text()
    assert f'data-complaint-id="{complaint_id}"' not in resolved_only
    for data in ({"what": "step", "value": "contacted", "answer": "已致歉，不再拨打"},
                 {"what": "step", "value": "resolved", "root_cause": "people"},
                 {"what": "severity", "value": "low"},
                 {"what": "decision", "value": "not_serious"}):
        response = await post(supervisor, f"/qa/complaints/{complaint_id}", data)
        assert response.status == 303, await response.text()
    assert response.headers["Location"].endswith("?done=lifted")
    done = stored(sqlite_db, complaint_id)
    assert (done.status, done.answer, done.root_cause, done.severity, done.decision,
            done.decided_by, done.contacted_by, done.resolved_by) == (
        "resolved", "已致歉，不再拨打", "people", "low", "not_serious", "supervisor",
        "supervisor", "supervisor")
    assert done.decided_at == clock.now
    with sqlite_db.session() as session:
        assert not DncRepo(session).is_blocked("13812345678")
        actions = [a.action for a in session.scalars(select(AuditEntry).where(
            AuditEntry.subject == f"complaint:{complaint_id}").order_by(AuditEntry.id))]
    assert actions == ["complaint.recorded", "complaint.contacted", "complaint.resolved",
                       "complaint.severity", "complaint.decided"]
    page = await (await supervisor.get(f"/qa/complaints/{complaint_id}")).text()
    assert "黑名单已解除 lifted" in page and "已致歉，不再拨打" in page
    assert (await (await supervisor.get("/qa/complaints?status=resolved")).text()).count(
        f'data-complaint-id="{complaint_id}"') == 1
    bad = await post(supervisor, f"/qa/complaints/{complaint_id}",
                     {"what": "decision", "value": "maybe"})
    assert bad.status == 409


async def test_entry_by_number_and_refusals(make_client: Factory,
                                            users: dict[str, accounts.UserInfo],
                                            sqlite_db: Database) -> None:
    consented_call(sqlite_db)
    admin = await logged_in(make_client, "admin")
    made = await post(admin, "/qa/complaints", {"phone": "138 1234 5678", "words": "乱扣费"})
    assert made.status == 303
    for data, why in (({"phone": "13900000000", "words": "x"}, "no contact"),
                      ({"words": "x"}, "give the call or the number"),
                      ({"call_id": "nope", "words": "x"}, "no call"),
                      ({"phone": "13812345678", "words": " "}, "what the customer said")):
        refused = await post(admin, "/qa/complaints", data)
        assert refused.status == 400 and why in await refused.text(), data
    with sqlite_db.session() as session:
        [made_row] = session.scalars(select(Complaint)).all()
        assert (made_row.source, made_row.call_id, made_row.created_by) == (
            "supervisor", None, "admin")


async def test_an_agents_complaint_disposition_records_the_complaint(
        sqlite_db: Database) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot.agents import desk
    from bot.agents.presence import PresenceEvent
    from bot.console import dispositions
    from tests.unit.agents.seeding import add_agent

    from .desk_helpers import CAMPAIGN, add_trial_campaign, take_call

    t0 = datetime(2030, 5, 6, 1, 0, tzinfo=UTC)
    add_trial_campaign(sqlite_db, wrap_up_max_s=60)
    with sqlite_db.session() as session:
        agent_id = add_agent(session, "alice", (CAMPAIGN,))
        desk.change_presence(session, agent_id, PresenceEvent("log_in"), t0)
    taken = take_call(sqlite_db, agent_id, t0 + timedelta(seconds=10))
    form = dispositions.parse_form({"escalation_id": str(taken.escalation_id),
                                    "disposition": "complaint", "notes": "嫌推销太频繁"},
                                   ZoneInfo("Asia/Shanghai"))
    for minute in (2, 3):  # saved, then sent again: still one complaint
        dispositions.save(sqlite_db, agent_id, "alice", form, t0 + timedelta(minutes=minute))
    with sqlite_db.session() as session:
        [made] = session.scalars(select(Complaint)).all()
        assert (made.source, made.call_id, made.words, made.created_by, made.status) == (
            "agent", taken.call_id, "嫌推销太频繁", "alice", "new")
        assert DncRepo(session).is_blocked("13812345678")  # the campaign's default
