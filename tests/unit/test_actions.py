"""The Rasa SDK actions with a real Tracker and CollectingDispatcher on a real SQLite db."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import actions as act
from actions import runtime
from bot import callrecord
from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.store import CallRepo, ConsentLedger, ContactRepo, Database, DncRepo
from bot.store.base import utcnow
from bot.store.ledger_signer import LedgerSigner
from bot.store.models import Call, Callback, Consent, Escalation, SurveyAnswer

REPO = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((REPO / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'actions.db'}"
    monkeypatch.setenv("WAIHU_DATABASE_URL", url)
    runtime.database.cache_clear()
    database = runtime.database()
    database.upgrade()
    yield database
    database.dispose()
    runtime.database.cache_clear()


class Conversation:
    """Runs the actions the way Rasa would: slots carried from turn to turn."""

    def __init__(self, db: Database, campaign: str, **contact: Any) -> None:
        self.db = db
        campaign_id = save_campaign(db, load_definition(REPO / "examples" / "campaigns" /
                                                          f"{campaign}.yml"))
        with db.session() as session:
            person = ContactRepo(session).add(campaign_id, "13812345678", name="张伟",
                                              gender="male", **contact)
            attempt = CallRepo(session).start_attempt(campaign_id, person.id)
            callrecord.record_dial_result(session, attempt.call_id, "answered", utcnow())
            self.call_id = attempt.call_id
        self.campaign_id, self.contact_id = campaign_id, person.id
        self.slots: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.classified: list[dict[str, Any]] = []
        self.private_answer = False  # the action marked its question's answer as private

    def run(self, action: act.Action, intent: str, text: str = "", confidence: float = 1.0,
            entities: list[dict[str, Any]] | None = None,
            metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        message = {"intent": {"name": intent, "confidence": confidence}, "text": text,
                   "entities": entities or [], "metadata": metadata or {}}
        self.events.append({"event": "user", "text": text, "parse_data": message})
        tracker = Tracker(self.call_id, dict(self.slots), message, list(self.events), False,
                          None, None, "action_listen")
        dispatcher = CollectingDispatcher()
        events = action.run(dispatcher, tracker, DOMAIN)
        # Rasa says the responses (data/rules/moves.yml); the action only tells the channel
        # what the classifier made of a customer's turn, and that an answer is private.
        customs = [m["custom"] for m in dispatcher.messages]
        self.classified = [c["classified"] for c in customs if "classified" in c]
        self.private_answer = any(c.get("private_answer") for c in customs)
        assert len(self.classified) <= 1 and len(customs) <= 2
        self.events += [{"event": "bot", "text": None, "data": {"custom": c}} for c in customs]
        for event in events:
            if event["event"] == "slot":
                self.slots[event["name"]] = event["value"]
        ask_events = act.ActionAsk().run(dispatcher, Tracker(
            self.call_id, dict(self.slots), message, list(self.events), False, None, None,
            action.name()), DOMAIN)
        for event in ask_events:
            if event["event"] == "slot":
                self.slots[event["name"]] = event["value"]
        return events + ask_events

    def start(self) -> list[dict[str, Any]]:
        return self.run(act.ActionStartCall(), "call_started", "/call_started",
                        metadata={"call_id": self.call_id})

    def say(self, intent: str, text: str = "", **kw: Any) -> list[dict[str, Any]]:
        return self.run(act.ActionDialogue(), intent, text, **kw)

    def call(self) -> Call:
        with self.db.session() as session:
            call = session.get(Call, self.call_id)
            assert call is not None
            return call


def test_the_consent_binds_its_turn_audio_span_and_phone_hash(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    for intent, words in (("affirm", "是我"), ("affirm", "可以"), ("agree", "好的我同意")):
        conv.say(intent, words)
    with db.session() as session:  # the channel writes the turn before it sends it
        turn = CallRepo(session).add_turn(conv.call_id, "customer", "确认",
                                          input_mode="speech", asr_confidence=0.93)
    conv.say("agree", "确认", metadata={"input_mode": "speech", "asr_confidence": 0.93,
                                       "audio_start_ms": 61_240, "audio_end_ms": 62_010})
    with db.session() as session:
        [consent] = session.scalars(select(Consent)).all()
        assert (consent.turn_seq, consent.turn_text) == (turn.seq, "确认")
        assert (consent.audio_start_ms, consent.audio_end_ms) == (61_240, 62_010)
        assert consent.phone_hash == LedgerSigner.load().phone_hash("13812345678")
        assert ConsentLedger(session).verify().ok


def test_call_started_fills_the_wording_slots_and_greets(db: Database) -> None:
    conv = Conversation(db, "marketing")
    events = conv.start()
    assert SlotSet("customer_title", "张先生") in events
    assert SlotSet("product", "来电提醒服务") in events
    assert SlotSet("price", "每月5元") in events
    assert any(e["name"] == "trial_end" and e["value"].endswith("日") for e in events
               if e["event"] == "slot")
    assert SlotSet("lead", "greeting") in events
    assert conv.slots["question"] == "identity"
    assert conv.call().stage == "identity"


def test_consent_goes_into_the_ledger_with_script_hash_and_disclosures(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    conv.say("affirm", "是我")
    conv.say("affirm", "可以")
    assert conv.slots["lead"] == "pitch"
    conv.say("agree", "好的我同意")
    assert conv.slots["question"] == "readback"
    conv.say("agree", "确认", metadata={"input_mode": "speech", "asr_confidence": 0.93})
    call = conv.call()
    # no ID check in this campaign: "是我" is the verification it asks for
    assert (call.outcome, call.verified, call.pitched, call.script_completed) == (
        "consented", True, True, True)
    with db.session() as session:
        [consent] = session.scalars(select(Consent)).all()
        assert consent.call_id == conv.call_id and consent.contact_id == conv.contact_id
        assert consent.utterance == "确认" and consent.asr_confidence == 0.93
        assert consent.input_mode == "speech" and consent.product == "来电提醒服务"
        assert set(consent.disclosures or ()) == {"features", "price", "trial_end", "usage",
                                                  "cancel"}
        assert consent.script_hash == act.approved_script_hash(
            load_definition(REPO / "examples/campaigns/marketing.yml"), DOMAIN)
        assert ConsentLedger(session).verify().ok


def test_ambiguous_answers_never_reach_the_ledger(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    conv.say("affirm", "是我")
    conv.say("affirm", "嗯")
    conv.say("agree", "我同意")
    # a spoken confirmation heard badly, then "嗯", then silence: nothing is consent
    conv.say("agree", "确认", metadata={"input_mode": "speech", "asr_confidence": 0.4})
    assert conv.slots["question"] == "keyed_confirm"
    conv.say("affirm", "嗯")
    conv.say("silence_timeout", "/silence_timeout")
    conv.say("silence_timeout", "/silence_timeout")
    with db.session() as session:
        assert session.scalars(select(Consent)).all() == []
    assert conv.call().outcome == "no_response"


def test_a_confirmation_begun_before_the_read_back_never_reaches_the_ledger(
        db: Database) -> None:
    """The channel's `before_question` (said while the dialogue was thinking, or to the
    agent across a hand-back) reaches the flow: no consent rests on it."""
    conv = Conversation(db, "marketing")
    conv.start()
    conv.say("affirm", "是我")
    conv.say("affirm", "可以")
    conv.say("agree", "好的我同意")
    conv.say("agree", "确认", metadata={"input_mode": "speech", "asr_confidence": 0.93,
                                      "before_question": True})
    assert conv.slots["question"] == "keyed_confirm"
    with db.session() as session:
        assert session.scalars(select(Consent)).all() == []


def test_id_verification_against_the_salted_hash(db: Database) -> None:
    conv = Conversation(db, "second_confirmation", id_last4="123X",
                        fields={"trial_end": "2026-12-01"})
    events = conv.start()
    assert SlotSet("trial_end", "2026年12月1日") in events
    conv.say("affirm", "是我")
    assert conv.slots["question"] == "id_last4"
    conv.say("inform_digits", "幺二三叉", entities=[{"entity": "digits", "value": "幺二三叉"}])
    assert conv.call().verified
    assert conv.slots["question"] == "permission_confirm"


def test_id_verification_fails_after_two_tries(db: Database) -> None:
    conv = Conversation(db, "second_confirmation", id_last4="1234")
    conv.start()
    conv.say("affirm", "是我")
    conv.say("dtmf", "/dtmf", entities=[{"entity": "digits", "value": "9999"}],
             metadata={"input_mode": "dtmf"})
    assert conv.slots["question"] == "id_retry"
    conv.say("inform_digits", "八八八八")
    assert conv.call().outcome == "verification_failed"


def test_the_id_question_marks_its_answer_private_and_the_agent_sees_it_masked(
        db: Database) -> None:
    conv = Conversation(db, "second_confirmation", id_last4="1234",
                        fields={"trial_end": "2026-12-01"})
    conv.start()
    assert not conv.private_answer
    conv.say("affirm", "是我")
    assert conv.slots["question"] == "id_last4" and conv.private_answer
    conv.say("inform_digits", "是5678", entities=[{"entity": "digits", "value": "5678"}])
    assert conv.slots["question"] == "id_retry" and conv.private_answer
    conv.say("inform_digits", "一二三四", entities=[{"entity": "digits", "value": "一二三四"}])
    assert conv.slots["question"] == "permission_confirm" and not conv.private_answer
    conv.run(act.ActionEscalate(), "request_human", "转人工，我住3号楼")
    with db.session() as session:
        [escalation] = session.scalars(select(Escalation)).all()
    assert [t["text"] for t in escalation.context["history"]] == [
        "/call_started", "是我", "是****", "****", "转人工，我住3号楼"]


def test_do_not_call_is_stored_with_who_and_why(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    conv.run(act.ActionDoNotCall(), "do_not_call", "以后别再打了")
    assert conv.slots["lead"] == "end_dnc"
    with db.session() as session:
        assert DncRepo(session).is_blocked("13812345678")
        [entry] = DncRepo(session).active()
        assert (entry.kind, entry.source, entry.added_by, entry.reason) == (
            "do_not_call", "customer", "bot", "以后别再打了")
    assert conv.call().outcome == "do_not_call"


def test_escalation_carries_context_and_pauses_the_conversation(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    conv.say("affirm", "是我")
    events = conv.run(act.ActionEscalate(), "request_human", "转人工")
    assert ConversationPaused() in events
    with db.session() as session:
        [escalation] = session.scalars(select(Escalation)).all()
        assert escalation.reason == "request_human"
        assert escalation.context["stage_before"] == "permission"
        assert escalation.context["customer_title"] == "张先生"
        assert [t["text"] for t in escalation.context["history"]][-2:] == ["是我", "转人工"]
    assert conv.call().outcome == "escalated"


def test_complaint_blacklists_the_number(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    conv.run(act.ActionEscalate(), "complain", "我要投诉")
    with db.session() as session:
        [entry] = DncRepo(session).active()
        assert (entry.kind, entry.source) == ("blacklist", "complaint")
    assert conv.call().outcome == "complaint"


def test_callback_is_scheduled(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    events = conv.say("busy_call_later", "明天上午十点再打")
    assert any(e.get("name") == "callback_time_text" and "明天上午10点" in e["value"]
               for e in events)
    with db.session() as session:
        [callback] = session.scalars(select(Callback)).all()
        assert callback.kind == "customer_request" and callback.due_at.hour in (2, 10)
        assert callback.requested_text == "明天上午十点再打"
    assert conv.call().outcome == "callback_requested"


def test_survey_answers_are_stored(db: Database) -> None:
    conv = Conversation(db, "survey")
    conv.start()
    conv.say("affirm", "是我")
    events = conv.say("affirm", "可以")
    assert SlotSet("survey_question", "请问您对本次宽带安装服务满意吗？") in events
    conv.say("inform_score", "不满意", entities=[{"entity": "score", "value": "2"}])
    conv.say("nlu_fallback", "师傅来晚了")
    conv.say("inform_score", "五分")
    conv.say("inform_score", "四分")
    conv.say("deny", "没有了")
    with db.session() as session:
        answers = {a.question_key: (a.score, a.answer_text)
                   for a in session.scalars(select(SurveyAnswer)).all()}
    assert answers == {"install": (2, None), "install_reason": (None, "师傅来晚了"),
                       "engineer": (5, None), "speed": (4, None), "open": (None, "没有了")}
    assert conv.call().outcome == "survey_completed"


def test_unknown_call_ends_politely(db: Database) -> None:
    tracker = Tracker("no-such-call", {}, {"intent": {"name": "call_started"},
                                           "metadata": {}}, [], False, None, None, None)
    events = act.ActionStartCall().run(CollectingDispatcher(), tracker, DOMAIN)
    assert SlotSet("lead", "end_goodbye") in events


def test_callback_time_follows_the_call_clock_given_at_call_started(db: Database) -> None:
    """A simulated call on a virtual clock: "明天" is the day after the call's `now`."""
    conv = Conversation(db, "marketing")
    conv.run(act.ActionStartCall(), "call_started", "/call_started",
             metadata={"call_id": conv.call_id, "now": "2031-03-04T09:30:00+08:00"})
    conv.say("busy_call_later", "明天上午十点再打")
    with db.session() as session:
        [callback] = session.scalars(select(Callback)).all()
    local = callback.due_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert (local.date().isoformat(), local.hour) == ("2031-03-05", 10)


def test_a_clock_without_time_zone_is_ignored(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.run(act.ActionStartCall(), "call_started", "/call_started",
             metadata={"call_id": conv.call_id, "now": "2031-03-04T09:30:00"})
    assert conv.call().summary["clock_offset_s"] == 0.0


def test_the_classified_intent_is_noted_on_the_customer_turn(db: Database) -> None:
    conversation = Conversation(db, "marketing")
    conversation.start()
    with db.session() as session:
        calls = CallRepo(session)
        calls.add_turn(conversation.call_id, "customer", "是我", input_mode="speech")
    conversation.run(act.ActionDialogue(), "silence_timeout", "/silence_timeout")  # no turn
    conversation.run(act.ActionDialogue(), "affirm", "是我", confidence=0.93)
    with db.session() as session:
        calls = CallRepo(session)
        calls.add_turn(conversation.call_id, "customer", "别再打了", input_mode="speech")
    conversation.run(act.ActionDoNotCall(), "do_not_call", "别再打了", confidence=0.88)
    with db.session() as session:
        turns = [(t.text, t.intent, t.intent_confidence)
                 for t in CallRepo(session).turns(conversation.call_id)
                 if t.speaker == "customer"]
    assert turns == [("是我", "affirm", 0.93), ("别再打了", "do_not_call", 0.88)]


FORGED_FLOW = {"stage": "final_confirm", "verified": True, "pitched": True,
               "sent": ["price", "trial_end", "cancel", "usage", "features"]}


def _consents(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(Consent)).all())


def test_a_forged_flow_slot_records_nothing(db: Database) -> None:
    """Whoever can post to the action server claims the last stage and keys 1: the flow
    state is the server's, so the call is still at the identity question."""
    conv = Conversation(db, "marketing")
    conv.start()
    conv.slots["flow"] = dict(FORGED_FLOW)
    conv.run(act.ActionDialogue(), "dtmf", '/dtmf{"digits": "1"}',
             entities=[{"entity": "digits", "value": "1"}], metadata={"input_mode": "dtmf"})
    call = conv.call()
    assert _consents(db) == 0
    assert call.outcome is None and call.stage != "final_confirm"
    assert call.flow_state is not None
    assert conv.slots["flow"]["stage"] == call.flow_state["stage"]  # the mirror is the server's


def test_call_started_again_does_not_reset_the_flow(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    conv.say("affirm", "是我")
    stage = conv.call().stage
    events = conv.start()
    assert conv.call().stage == stage != "identity"
    assert SlotSet("lead", "greeting") not in events


def test_a_message_after_the_call_ended_changes_nothing(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    with db.session() as session:
        callrecord.close(session, conv.call_id, ended_at=utcnow(), ended_by="bot")
    before = conv.call()
    conv.say("do_not_call", "别再打了")
    conv.say("request_human", "转人工")
    after = conv.call()
    assert (after.outcome, after.stage, after.flow_state) == (
        before.outcome, before.stage, before.flow_state)
    with db.session() as session:
        assert DncRepo(session).is_blocked("13812345678") is False
        assert session.scalars(select(Escalation)).all() == []


def test_a_message_after_the_lease_was_taken_back_changes_nothing(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    with db.session() as session:
        attempt = CallRepo(session).get_attempt(conv.call_id)
        assert attempt is not None
        attempt.completed_at = utcnow()
    conv.say("complain", "我要投诉")
    assert conv.call().outcome is None
    with db.session() as session:
        assert session.scalars(select(Escalation)).all() == []


def test_the_consent_is_stamped_on_the_call_clock(db: Database) -> None:
    """A simulated day: the sale and its call fall on the same (virtual) day."""
    conv = Conversation(db, "marketing")
    virtual = "2026-03-02T10:00:00+08:00"
    conv.run(act.ActionStartCall(), "call_started", "/call_started",
             metadata={"call_id": conv.call_id, "now": virtual})
    conv.say("affirm", "是我")
    conv.say("affirm", "可以")
    conv.say("agree", "好的我同意")
    conv.say("dtmf", '/dtmf{"digits": "1"}', entities=[{"entity": "digits", "value": "1"}],
             metadata={"input_mode": "dtmf"})
    with db.session() as session:
        entry = session.scalars(select(Consent)).one()
        stamped = entry.created_at.replace(tzinfo=entry.created_at.tzinfo or ZoneInfo("UTC"))
    gap = abs((stamped - datetime.fromisoformat(virtual)).total_seconds())
    assert gap < 60, stamped


def test_counters_the_flow_changes_in_place_are_saved(db: Database) -> None:
    """The second objection of a kind ends the offer: the count of the first must have
    been written back to calls.flow_state (a dict changed in place once compared equal to
    the stored one and was never saved)."""
    conv = Conversation(db, "marketing")
    conv.start()
    conv.say("affirm", "是我")
    conv.say("affirm", "可以")
    conv.say("distrust", "你们是骗子吧")
    assert conv.call().flow_state["objections"] == {"distrust": 1}  # type: ignore[index]
    conv.say("distrust", "我不信你们")
    call = conv.call()
    assert (call.outcome, call.decline_reason) == ("declined", "distrust")


def test_the_classification_goes_back_to_the_channel(db: Database) -> None:
    conv = Conversation(db, "marketing")
    conv.start()
    assert conv.classified == []  # /call_started is no customer turn
    conv.say("affirm", "是我", confidence=0.93)
    assert conv.classified == [{"intent": "affirm", "confidence": 0.93}]
    conv.run(act.ActionDialogue(), "silence_timeout", "/silence_timeout")
    assert conv.classified == []
