"""Rasa SDK actions: the boundary between Rasa, the call flow and the database.

Each action reads the turn from the tracker, lets ``actions.flow.CallFlow`` decide, then
applies the decision in one unit of work (``bot.store``) and sends the responses and
control payloads (`custom`) back to Rasa. Served by ``python -m actions.server``
(actions/server.py: 127.0.0.1 and the shared secret).
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import context, flow, runtime
from actions.wording import PRIVATE_QUESTIONS
from bot import callrecord, channel
from bot.agents import handback
from bot.campaigns.definition import CampaignDefinition, canonical_json
from bot.campaigns.registry import campaign_definition
from bot.privacy import mask_id_digits, mask_phone
from bot.qa import complaints
from bot.store import (
    CallbackRepo,
    ConsentLedger,
    ContactRepo,
    DncRepo,
    EscalationRepo,
    SurveyRepo,
)
from bot.store.models import Call, Campaign, Contact, TranscriptTurn

log = logging.getLogger("waihu.actions")

_COMPLETING = {"consented", "notified", "survey_completed"}


class CallNotReady(RuntimeError):
    """The call, its campaign or its contact is not in the database."""


def _reply(tracker: Tracker) -> flow.Reply:
    message = tracker.latest_message or {}
    intent = (message.get("intent") or {}).get("name") or "nlu_fallback"
    entities = {e["entity"]: str(e["value"]) for e in message.get("entities") or []
                if "entity" in e and "value" in e}
    text = message.get("text") or ""
    if channel.is_event(text):  # "/dtmf{...}": a call event, not words the customer said
        text = entities.get("digits", "")
    meta = channel.TurnMeta.from_dict(message.get("metadata"),
                                      default_mode="dtmf" if intent == "dtmf" else "text")
    return flow.Reply(
        intent=intent,
        text=text,
        intent_confidence=float((message.get("intent") or {}).get("confidence") or 0.0),
        entities=entities,
        input_mode=meta.input_mode,
        asr_confidence=meta.asr_confidence,
        asr_snapped=meta.asr_snapped,
        interrupted=meta.disclosures_interrupted,
        before_question=meta.before_question,
    )


def _load(session: Session, call_id: str) -> tuple[Call, Campaign, Contact, CampaignDefinition]:
    call = session.get(Call, call_id)
    if call is None:
        raise CallNotReady(f"no call {call_id}")
    campaign = session.get(Campaign, call.campaign_id)
    contact = session.get(Contact, call.contact_id)
    if campaign is None or contact is None:
        raise CallNotReady(f"call {call_id} has no campaign or contact")
    return call, campaign, contact, campaign_definition(campaign)


def _now(defn: CampaignDefinition, call: Call, offset_s: float | None = None) -> datetime:
    """The call's clock in the campaign's zone: the wall clock, shifted by the offset the
    gateway gave at `/call_started` (metadata `now`; a simulation runs on a virtual clock, and
    "明天上午十点" must mean the day after the simulated call, not after the real one)."""
    if offset_s is None:
        offset_s = float((call.summary or {}).get("clock_offset_s") or 0.0)
    return datetime.now(ZoneInfo(defn.timezone)) + timedelta(seconds=offset_s)


def _clock_offset(meta: dict[str, Any]) -> float:
    """Seconds between the gateway's `now` (ISO 8601 with a zone) and the wall clock."""
    given = meta.get("now")
    if not given:
        return 0.0
    try:
        at = datetime.fromisoformat(str(given))
    except ValueError:
        log.warning("call.bad_clock now=%r", given)
        return 0.0
    if at.tzinfo is None:
        log.warning("call.bad_clock now=%r (no time zone)", given)
        return 0.0
    return (at - datetime.now(UTC)).total_seconds()


def approved_script_hash(defn: CampaignDefinition, domain: dict[str, Any]) -> str:
    """The approved script as the customer heard it (the ledger's ``script_hash``): the
    campaign's wording hash and the response templates."""
    responses = domain.get("responses") or {}
    body = {"campaign": defn.wording_hash(),
            "templates": {name: responses.get(name) for name in context.SCRIPT_RESPONSES}}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def _events(step: flow.Step, state: flow.FlowState) -> list[EventType]:
    """Slots for this turn: Rasa says the lead's responses, then action_ask asks."""
    state.question = step.question
    events: list[EventType] = [SlotSet(k, v) for k, v in step.slots.items()]
    events += [SlotSet("flow", state.to_slot()), SlotSet("lead", step.lead)]
    return events


def _history(tracker: Tracker, limit: int = 10) -> list[dict[str, Any]]:
    """The last customer turns, for the agent who takes an escalated call; an answer to
    the ID question (marked by `channel.private_answer_payload` in the bot's turn before
    it) with its digits masked."""
    turns: list[dict[str, Any]] = []
    private = False
    for event in tracker.events:
        if event.get("event") == "bot":
            custom = (event.get("data") or {}).get("custom") or {}
            private = private or bool(custom.get("private_answer"))
        elif event.get("event") == "user":
            text = event.get("text")
            turns.append({"text": mask_id_digits(text) if private and text else text,
                          "intent": ((event.get("parse_data") or {}).get("intent")
                                     or {}).get("name")})
            private = False
    return turns[-limit:]


class _CallAction(Action, ABC):
    """Shared run(): decide with the flow, apply effects, send messages.

    The flow's state is the server's (`calls.flow_state`), read and written back in the
    same unit of work as the effects it leads to; the `flow` slot the request carries is
    only a mirror and is never read.  A message for a call that has ended, or whose lease
    was taken back, changes nothing."""

    @abstractmethod
    def name(self) -> str: ...

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> list[EventType]:
        call_id = tracker.get_slot("call_id") or tracker.sender_id
        try:
            with runtime.database().session() as session:
                call, campaign, contact, defn = _load(session, call_id)
                state = _server_state(session, call)
                dialogue = flow.CallFlow(
                    context.build_script(defn, can_verify_id=bool(contact.id_last4_hash)),
                    state,
                    check_id=lambda digits: bool(
                        ContactRepo(session).check_id_last4(contact, digits)),
                    now=_now(defn, call),
                )
                step = self.decide(dialogue, tracker)
                _apply(session, step, dialogue.state, call, contact, defn, tracker)
                classified = _note_intent(session, call.id, tracker)
        except CallNotReady as exc:
            log.error("call.not_ready call_id=%s error=%s", call_id, exc)
            return _events(flow.Step(lead="end_goodbye"), flow.FlowState(stage="ended"))
        except CallClosed as exc:
            log.warning("call.message_after_end call_id=%s why=%s message=%s", call_id, exc,
                        channel.shown((tracker.latest_message or {}).get("text") or "",
                                      private=True))  # it may answer the ID question
            return _events(flow.Step(), exc.state)
        if classified is not None:  # the channel publishes it with the customer's turn
            dispatcher.utter_message(json_message=channel.classified_payload(*classified))
        if step.question in PRIVATE_QUESTIONS:  # the channel masks the answer
            dispatcher.utter_message(json_message=channel.private_answer_payload())
        return _events(step, dialogue.state)

    def decide(self, dialogue: flow.CallFlow, tracker: Tracker) -> flow.Step:
        return dialogue.handle(_reply(tracker))


class CallClosed(RuntimeError):
    """The call is over (or not started): a message for it must change nothing."""

    def __init__(self, why: str, state: flow.FlowState) -> None:
        super().__init__(why)
        self.state = state


def _server_state(session: Session, call: Call) -> flow.FlowState:
    """The call's flow state as the server holds it, if the call may still take a turn."""
    state = flow.FlowState.from_slot(call.flow_state)
    if call.flow_state is None:
        raise CallClosed("not started", state)
    if call.ended_at is not None:
        raise CallClosed("ended", state)
    if callrecord.lease_taken_back(session, call.id):  # the one owner of this decision
        raise CallClosed("lease taken back", state)
    return state


def _note_intent(session: Session, call_id: str, tracker: Tracker
                 ) -> tuple[str, float | None] | None:
    """What the classifier made of the customer's turn, noted on it; None for a call event
    that is no turn of its own."""
    intent = (tracker.latest_message or {}).get("intent") or {}
    if not intent.get("name") or intent["name"] in channel.NOT_A_TURN:
        return None
    raw = intent.get("confidence")
    name, confidence = str(intent["name"]), None if raw is None else round(float(raw), 4)
    callrecord.note_intent(session, call_id, name, confidence)
    return name, confidence


def _latest_customer_turn(session: Session, call_id: str) -> TranscriptTurn | None:
    return session.scalar(select(TranscriptTurn).where(
        TranscriptTurn.call_id == call_id, TranscriptTurn.speaker == "customer")
        .order_by(TranscriptTurn.seq.desc()).limit(1))


def _apply(session: Session, step: flow.Step, state: flow.FlowState, call: Call,
           contact: Contact, defn: CampaignDefinition, tracker: Tracker) -> None:
    before = flow.FlowState.from_slot(call.flow_state)
    state.question = step.question  # what action_ask will ask (the mirror slot says it too)
    callrecord.save_flow(session, call, state.to_slot(), stage=state.stage,
                         verified=state.verified, pitched=state.pitched,
                         summary={"product_questions": state.product_questions,
                                  "objections": dict(state.objections)})
    for effect in step.effects:
        if isinstance(effect, flow.Outcome):
            callrecord.record_outcome(
                session, call.id, effect.outcome, effect.decline_reason,
                confirmation_result=effect.confirmation_result,
                stage=state.stage, verified=state.verified, pitched=state.pitched,
                script_completed=effect.outcome in _COMPLETING
                or (effect.outcome == "declined" and state.pitched),
            )
            log.info("call.outcome call_id=%s outcome=%s reason=%s", call.id,
                     effect.outcome, effect.decline_reason)
        elif isinstance(effect, flow.RecordConsent):
            # The consenting input is this message: its span on the call's timeline comes
            # with it, and the channel wrote its turn before sending it.
            meta = channel.TurnMeta.from_dict((tracker.latest_message or {}).get("metadata"))
            turn = _latest_customer_turn(session, call.id)
            entry = ConsentLedger(session).append(
                call_id=call.id, contact_id=contact.id, campaign_id=call.campaign_id,
                product=defn.script.product or "",
                script_hash=approved_script_hash(defn, runtime.domain()),
                disclosures=list(effect.disclosures), utterance=effect.utterance,
                input_mode=effect.input_mode, asr_confidence=effect.asr_confidence,
                created_at=_now(defn, call),  # the call's clock, like its outcome
                turn_seq=None if turn is None else turn.seq,
                turn_text=None if turn is None else turn.text,
                audio_start_ms=meta.audio_start_ms, audio_end_ms=meta.audio_end_ms,
                closed_by=handback.closed_by(session, call.id) if effect.closed_by_agent
                else None,
            )
            log.info("consent.recorded call_id=%s entry=%s closed_by=%s", call.id,
                     entry.entry_hash[:12], entry.closed_by or "bot")
        elif isinstance(effect, flow.SaveSurveyAnswer):
            SurveyRepo(session).save_answer(call.id, effect.key, effect.question,
                                            score=effect.score, answer_text=effect.text)
        elif isinstance(effect, flow.AddDoNotCall) and effect.source == "complaint":
            # The complaint's record; it blacklists as the campaign's complaints.blacklist says
            complaints.record_call_complaint(session, call, contact, _reply(tracker).text,
                                             _now(defn, call))
        elif isinstance(effect, flow.AddDoNotCall):
            DncRepo(session).add(contact.phone, effect.kind, effect.reason, effect.source,
                                 added_by="bot", call_id=call.id)
            log.info("dnc.added call_id=%s phone=%s kind=%s", call.id,
                     mask_phone(contact.phone), effect.kind)
        elif isinstance(effect, flow.ScheduleCallback):
            CallbackRepo(session).schedule(call.campaign_id, contact.id, effect.due_at,
                                           "customer_request", call_id=call.id,
                                           requested_text=effect.said)
        elif isinstance(effect, flow.Escalate):
            EscalationRepo(session).add(call.id, call.campaign_id, contact.id, effect.reason, {
                "stage_before": before.stage,
                "customer_title": tracker.get_slot("customer_title"),
                "campaign": defn.name, "campaign_type": defn.type,
                "verified": state.verified, "pitched": state.pitched,
                "family_member": state.family,
                "history": _history(tracker),
            })
            log.info("call.escalated call_id=%s reason=%s", call.id, effect.reason)


class ActionStartCall(_CallAction):
    """`/call_started`: load the campaign and contact, fill the wording slots, greet."""

    def name(self) -> str:
        return "action_start_call"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> list[EventType]:
        meta = (tracker.latest_message or {}).get("metadata") or {}
        call_id = str(meta.get("call_id") or tracker.sender_id)
        try:
            with runtime.database().session() as session:
                call, _, contact, defn = _load(session, call_id)
                if call.flow_state is not None or call.ended_at is not None:
                    raise CallClosed("already started", flow.FlowState.from_slot(
                        call.flow_state))
                offset = _clock_offset(meta)
                slots = context.wording_slots(defn, name=contact.name, gender=contact.gender,
                                              fields=contact.fields or {},
                                              now=_now(defn, call, offset))
                dialogue = flow.CallFlow(context.build_script(
                    defn, can_verify_id=bool(contact.id_last4_hash)), flow.FlowState())
                step = dialogue.start()
                dialogue.state.question = step.question
                callrecord.start_flow(session, call, dialogue.state.to_slot(),
                                      stage=dialogue.state.stage, clock_offset_s=offset)
                log.info("call.started call_id=%s campaign=%s phone=%s", call.id, defn.name,
                         mask_phone(contact.phone))
        except (CallNotReady, LookupError) as exc:
            log.error("call.not_ready call_id=%s error=%s", call_id, exc)
            return _events(flow.Step(lead="end_goodbye"), flow.FlowState(stage="ended"))
        except CallClosed as exc:
            log.warning("call.start_refused call_id=%s why=%s", call_id, exc)
            return _events(flow.Step(), exc.state)
        ids = {"call_id": call_id, "campaign_id": float(call.campaign_id),
               "contact_id": float(contact.id)}
        return [SlotSet(k, v) for k, v in {**slots, **ids}.items()] + _events(step, dialogue.state)


class ActionAsk(Action):
    """After the lead: set `question` so that Rasa asks it (data/rules/moves.yml).

    A call handed to a human is paused here, once the transfer message has been said, so
    that Rasa stays silent while the agent talks.

    It reads the `flow` slot, the mirror the deciding action set earlier in the same Rasa
    turn, not the database: it writes nothing and records nothing, so a forged slot can only
    change the answer sent back to whoever forged it (and the turn needs no second read)."""

    def name(self) -> str:
        return "action_ask"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> list[EventType]:
        state = flow.FlowState.from_slot(tracker.get_slot("flow"))
        events: list[EventType] = [SlotSet("question", state.question)]
        if state.outcome in ("escalated", "complaint"):
            events.append(ConversationPaused())
        return events


class ActionDialogue(_CallAction):
    """Every reply that is not a global request: the flow decides by stage."""

    def name(self) -> str:
        return "action_dialogue"


class ActionEscalate(_CallAction):
    """`request_human` and `complain`: hand over to an agent with the call's context."""

    def name(self) -> str:
        return "action_escalate"


class ActionDoNotCall(_CallAction):
    """`do_not_call`: honoured at once and permanently."""

    def name(self) -> str:
        return "action_do_not_call"
