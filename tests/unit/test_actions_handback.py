"""The actions' side of an agent's hand-back (actions/flowhandback.py, bot/agents/handback.py):
`/agent_handback` reopens the escalated call without pausing it, and the confirmation that
follows enters the consent ledger naming the agent who closed the sale."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import ConversationPaused
from sqlalchemy import select

from actions import actions as act
from bot.store import ConsentLedger, Database
from bot.store.base import utcnow
from bot.store.ledger import entry_hash
from bot.store.models import Agent, Consent, Escalation, EscalationOffer, User
from tests.unit.test_actions import Conversation, db  # noqa: F401  (the fixture)


def agent_took_and_handed_back(database: Database, call_id: str,
                               username: str = "alice") -> None:
    """What the desk stores when *username* took the call and pressed the hand-back."""
    with database.session() as session:
        [escalation] = session.scalars(select(Escalation).where(
            Escalation.call_id == call_id)).all()
        user = User(username=username, role="agent", password_hash="-")
        session.add(user)
        session.flush()
        session.add(Agent(user_id=user.id, sip_uri="sip:alice@127.0.0.1"))
        session.flush()
        now = utcnow()
        session.add(EscalationOffer(escalation_id=escalation.id, agent_id=user.id,
                                    offered_at=now, answered_at=now, outcome="accepted",
                                    strategy="equal_share", reason="only agent", snapshot={}))
        escalation.status = "returned_to_bot"


def key(conv: Conversation, digit: str) -> list[dict[str, Any]]:
    return conv.say("dtmf", f'/dtmf{{"digits": "{digit}"}}',
                    entities=[{"entity": "digits", "value": digit}],
                    metadata={"input_mode": "dtmf"})


def escalated_after_the_pitch(database: Database) -> Conversation:
    conv = Conversation(database, "marketing")
    conv.start()
    conv.say("affirm", "是我")
    conv.say("affirm", "可以")
    assert ConversationPaused() in conv.run(act.ActionEscalate(), "request_human", "转人工")
    assert conv.call().outcome == "escalated"
    return conv


def test_the_confirmation_after_a_hand_back_names_the_agent_in_the_ledger(
        db: Database) -> None:  # noqa: F811  (the fixture)
    conv = escalated_after_the_pitch(db)
    agent_took_and_handed_back(db, conv.call_id)
    events = conv.say("agent_handback", "/agent_handback")
    assert ConversationPaused() not in events
    assert (conv.slots["lead"], conv.slots["question"]) == ("handback", "readback")
    assert conv.classified == []  # a call event, no customer turn
    key(conv, "1")
    assert conv.slots["lead"] == "end_consent"
    with db.session() as session:
        [consent] = session.scalars(select(Consent)).all()
        assert consent.closed_by == "agent:alice" and consent.utterance == "DTMF 1"
        assert set(consent.disclosures or ()) == {"features", "price", "trial_end", "usage",
                                                  "cancel"}
        assert ConsentLedger(session).verify().ok  # closed_by is hashed and signed
        consent.closed_by = "agent:mallory"  # an edit (the trigger refuses UPDATE on
        session.expunge(consent)  # the table; here the hash alone is checked)
        assert entry_hash(consent) != consent.entry_hash
    assert conv.call().outcome == "consented"


def test_the_bots_own_sale_names_nobody(db: Database) -> None:  # noqa: F811
    conv = Conversation(db, "marketing")
    conv.start()
    for intent, words in (("affirm", "是我"), ("affirm", "可以"), ("agree", "好的我同意")):
        conv.say(intent, words)
    key(conv, "1")
    with db.session() as session:
        [consent] = session.scalars(select(Consent)).all()
        assert consent.closed_by is None
        assert ConsentLedger(session).verify().ok


def test_a_no_after_the_hand_back_is_a_decline(db: Database) -> None:  # noqa: F811
    conv = escalated_after_the_pitch(db)
    agent_took_and_handed_back(db, conv.call_id)
    conv.say("agent_handback", "/agent_handback")
    key(conv, "2")
    conv.say("not_needed", "用不上")
    call = conv.call()
    assert (call.outcome, call.decline_reason) == ("declined", "not_needed")
    with db.session() as session:
        assert session.scalars(select(Consent)).all() == []
