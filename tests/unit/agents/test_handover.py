"""The gateway's units of work on the desk (bot/agents/handover.py) on a real database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.agents import desk, handover
from bot.agents.presence import PresenceEvent
from bot.store import Database
from bot.store.models import Escalation
from tests.unit.agents.seeding import T0, add_agent, add_campaign, escalate


def test_a_campaign_without_agents_keeps_the_fixed_agent_uri(db: Database) -> None:
    add_campaign(db)
    escalation = escalate(db, "13800000001")
    with db.session(write=True) as session:
        assert handover.open_handover(session, escalation.call_id, "request_human") is None
        assert session.get(Escalation, escalation.id).status == "pending"  # type: ignore[union-attr]


def test_the_actions_escalation_is_used_and_offered(db: Database) -> None:
    add_campaign(db, offer_timeout_s=15, wait_limit_s=40)
    escalation = escalate(db, "13800000002")
    with db.session(write=True) as session:
        alice = add_agent(session, "alice")
        desk.change_presence(session, alice, PresenceEvent("log_in"), T0)
    with db.session(write=True) as session:
        found = handover.open_handover(session, escalation.call_id, "request_human")
    assert found is not None
    assert (found.escalation_id, found.offer_timeout_s, found.wait_limit_s) == (
        escalation.id, 15.0, 40.0)
    at = T0 + timedelta(seconds=5)
    with db.session(write=True) as session:
        offer = handover.offer_next(session, found.escalation_id, at)
    assert offer is not None and offer.agent_id == alice
    assert offer.sip_uri == "sip:alice@127.0.0.1" and offer.outcome is None
    # the console took it first: the gateway's timeout does not overwrite the answer
    with db.session(write=True) as session:
        desk.answer_offer(session, offer.offer_id, "accepted", at + timedelta(seconds=1))
    with db.session(write=True) as session:
        seen = handover.close_offer(session, offer.offer_id, "timed_out",
                                    at + timedelta(seconds=2))
        assert seen.outcome == "accepted"
        assert session.get(Escalation, found.escalation_id).status == "bridged"  # type: ignore[union-attr]


def test_a_transfer_without_a_stored_escalation_gets_one(db: Database) -> None:
    add_campaign(db)
    escalation = escalate(db, "13800000003")
    with db.session(write=True) as session:
        add_agent(session, "bob")
        session.get(Escalation, escalation.id).status = "failed"  # type: ignore[union-attr]
    with db.session(write=True) as session:
        found = handover.open_handover(session, escalation.call_id, "complaint")
    assert found is not None and found.escalation_id != escalation.id
    with db.session() as session:
        rows = session.scalars(select(Escalation).where(
            Escalation.call_id == escalation.call_id).order_by(Escalation.id)).all()
        assert [(r.reason, r.status) for r in rows] == [("request_human", "failed"),
                                                        ("complaint", "waiting")]
        assert rows[1].context["source"] == "gateway"
    with db.session(write=True) as session:  # nobody logged in: no offer, still waiting
        assert handover.offer_next(session, found.escalation_id, T0) is None
