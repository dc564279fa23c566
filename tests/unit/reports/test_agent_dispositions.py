"""The campaign report's agent dispositions: how the calls the bot handed over really
ended, from what the agents recorded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.agents import desk
from bot.agents.presence import PresenceEvent
from bot.reports.document import campaign_report
from bot.reports.export import export
from bot.reports.figures import campaign_figures, format_figures
from bot.store import CampaignRepo, Database
from bot.store.ledger import ConsentLedger
from bot.store.models import Call, Escalation
from tests.unit.agents.seeding import CAMPAIGN, T0, add_agent, add_campaign, escalate


def _escalated(db: Database, phone: str, minute: int) -> tuple[int, str]:
    escalation = escalate(db, phone, at=T0 + timedelta(minutes=minute))
    with db.session() as session:
        call = session.get(Call, escalation.call_id)
        assert call is not None
        call.outcome, call.ended_at = "escalated", T0 + timedelta(minutes=minute, seconds=90)
    return escalation.id, escalation.call_id


def _taken(db: Database, agent_id: int, escalation_id: int, call_id: str, minute: int,
           disposition: str | None) -> None:
    at = T0 + timedelta(minutes=minute)
    with db.session() as session:
        offer = desk.offer_next(session, escalation_id, at).offer
        assert offer is not None and offer.agent_id == agent_id
        desk.answer_offer(session, offer.id, "accepted", at + timedelta(seconds=3))
        desk.end_call(session, agent_id, call_id, at + timedelta(seconds=60))
        if disposition is not None:
            desk.record_disposition(session, escalation_id, agent_id, disposition,
                                    at + timedelta(seconds=80))
        else:
            desk.expire_wrap_up(session, agent_id, at + timedelta(minutes=5))


def test_the_dispositions_of_escalated_calls(db: Database, tmp_path: Path) -> None:
    add_campaign(db)
    with db.session() as session:
        agent_id = add_agent(session, "alice")
        desk.change_presence(session, agent_id, PresenceEvent("log_in"), T0)
    sold = _escalated(db, "13800000001", 1)
    _taken(db, agent_id, *sold, 1, "sale")
    resolved = _escalated(db, "13800000002", 10)
    _taken(db, agent_id, *resolved, 10, "resolved")
    unrecorded = _escalated(db, "13800000003", 20)
    _taken(db, agent_id, *unrecorded, 20, None)  # wrap-up ran out, nothing recorded
    _escalated(db, "13800000004", 30)  # nobody took it
    escalate(db, "13800000005", at=T0 + timedelta(minutes=40))  # the call is not over
    handed_back = _escalated(db, "13800000006", 50)  # the bot confirmed the agent's sale
    _taken(db, agent_id, *handed_back, 50, "sale")
    with db.session() as session:
        escalation = session.get(Escalation, handed_back[0])
        call = session.get(Call, handed_back[1])
        assert escalation is not None and call is not None
        escalation.status, call.outcome = "returned_to_bot", "consented"
        ConsentLedger(session).append(
            call_id=call.id, contact_id=call.contact_id, campaign_id=call.campaign_id,
            product="彩铃", script_hash="a" * 64, disclosures=["price"], utterance="确认办理",
            input_mode="dtmf", asr_confidence=None, closed_by="agent:alice")

    with db.session() as session:
        campaign = CampaignRepo(session).by_name(CAMPAIGN)
        assert campaign is not None
        fig = campaign_figures(session, campaign)
    assert fig["agent_dispositions"] == {
        "escalated_calls": 5, "recorded": 3, "not_recorded": 2,
        "by_disposition": {"resolved": 1, "sale": 2, "callback": 0, "complaint": 0,
                           "wrong_person": 0, "other": 0},
        "sales_without_consent": 1}  # the first sale was never confirmed by the customer
    assert ("坐席处理结果 agent dispositions: resolved 1, sale 2, not recorded 2, "
            "sale without a consent in the ledger 1") in format_figures(fig)

    [table] = [t for t in campaign_report(fig).tables if t.key == "agent_dispositions"]
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["成交 sale"] == [2, 0.4] and rows["未记录 not recorded"] == [2, 0.4]
    assert rows["其中成交无同意记录 of which sales without a ledger consent"] == [1, 0.2]
    html = tmp_path / "report.html"
    export(fig, "html", html)
    assert "坐席处理结果 Agent dispositions" in html.read_text(encoding="utf-8")


def test_no_table_without_escalated_calls(db: Database) -> None:
    add_campaign(db)
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(CAMPAIGN)
        assert campaign is not None
        fig = campaign_figures(session, campaign)
    assert fig["agent_dispositions"]["escalated_calls"] == 0
    assert "agent_dispositions" not in {t.key for t in campaign_report(fig).tables}
    assert "坐席处理结果" not in format_figures(fig)
