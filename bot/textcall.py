"""Text-mode calls: the voice gateway's conversation with Rasa, without the audio.

A `TextCall` plays the gateway's part of the channel contract over the real Rasa REST
channel: sender = call id, `/call_started` with the call's metadata, call events as
"/intent" messages, control in `custom` payloads. It records the transcript turn by turn.
`waihu chat` drives it from the terminal, `waihu demo` from persona files.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot import callrecord, channel, events
from bot.channel import BotReply, DialogueChannel, TurnMeta
from bot.events import (
    CALL_ANSWERED,
    CALL_ENDED,
    CallTimeline,
    EventBus,
    InProcessBus,
    call_event,
)
from bot.personas import MAX_ANSWERS, Persona
from bot.privacy import mask_id_digits, mask_phone
from bot.store import CallRepo, Database
from bot.store.models import Call, Campaign, Contact
from bot.transcript import TranscriptSink

log = logging.getLogger("waihu.textcall")


class TextCall:
    """One answered call in text mode. Use `start()`, then `say()`/`key()`/`silence()`.

    Its turns are published on the event bus like a voice call's and written by a
    `TranscriptSink`; the call's timeline is the wall time since the answer, on the call's
    clock (*now*, virtual in a simulation)."""

    def __init__(self, client: DialogueChannel, db: Database, call_id: str,
                 now: datetime | None = None, events: EventBus | None = None) -> None:
        self.client = client
        self.db = db
        self.call_id = call_id
        self.now = now  # the call's clock when simulated (sent as `now` at /call_started)
        self.ended = False
        self._closed = False
        self.turns: list[BotReply] = []
        self.events = events or InProcessBus()
        self.timeline = CallTimeline(call_id, self.events, call_start=now)
        self.transcript = TranscriptSink(db, call_id).attach(self.events)

    @classmethod
    def dial(cls, client: DialogueChannel, db: Database, campaign_id: int, contact_id: int,
             dial_result: str = "answered") -> tuple[str, TextCall | None]:
        """Register the attempt with its dial result; a `TextCall` if it was answered."""
        with db.session() as session:
            call_id = CallRepo(session).start_attempt(campaign_id, contact_id,
                                                      gateway="text").call_id
        return call_id, cls.connect(client, db, call_id, dial_result)

    @classmethod
    def connect(cls, client: DialogueChannel, db: Database, call_id: str,
                dial_result: str = "answered", now: datetime | None = None,
                events: EventBus | None = None) -> TextCall | None:
        """Store the dial result of an attempt already made (by the dialer, or `dial`);
        a `TextCall` if it was answered.  *now*: a virtual clock for the conversation."""
        at = now or datetime.now(UTC)
        with db.session() as session:
            callrecord.record_dial_result(session, call_id, dial_result, at)
        bus = events or InProcessBus()
        if dial_result != "answered":
            bus.publish(call_event(CALL_ENDED, call_id, at, dial_result=dial_result,
                                   outcome=None))
            return None
        bus.publish(call_event(CALL_ANSWERED, call_id, at))
        return cls(client, db, call_id, now, bus)

    async def start(self) -> BotReply:
        with self.db.session() as session:
            call = session.get(Call, self.call_id)
            assert call is not None, self.call_id
            contact = session.get(Contact, call.contact_id)
            assert contact is not None
            campaign = session.get(Campaign, call.campaign_id)
            assert campaign is not None
            meta = channel.call_started_meta(
                call_id=self.call_id, campaign_id=call.campaign_id,
                contact_id=call.contact_id, campaign_type=campaign.type, input_mode="text",
                now=self.now)
            log.info("call.start call_id=%s phone=%s", self.call_id, mask_phone(contact.phone))
        return await self._exchange(channel.CALL_STARTED, meta, speaker=None)

    async def say(self, text: str) -> BotReply:
        return await self._exchange(text, TurnMeta().to_dict(), speaker=text)

    async def hear(self, text: str, confidence: float, *, snapped: bool = False) -> BotReply:
        """A spoken reply as the voice gateway sends it: the transcript, its acoustic
        confidence, and whether the recogniser snapped it to one of the bot's hints."""
        meta = TurnMeta("speech", asr_confidence=confidence, asr_snapped=snapped)
        return await self._exchange(text, meta.to_dict(), speaker=text, input_mode="speech",
                                    asr_confidence=confidence, asr_snapped=snapped)

    async def key(self, digits: str) -> BotReply:
        return await self._exchange(channel.dtmf_message(digits), TurnMeta("dtmf").to_dict(),
                                    speaker=f"[按键 {digits}]", input_mode="dtmf")

    async def silence(self) -> BotReply:
        return await self._exchange(channel.SILENCE_TIMEOUT, TurnMeta().to_dict(),
                                    speaker="[静音]", input_mode=None)

    async def hang_up(self) -> None:
        """The customer hangs up: Rasa hears of it (a do-not-call request being confirmed
        stands), then the call record closes the call (its outcome if the flow left
        none)."""
        if not self.ended:
            await self.client.send(self.call_id, channel.CALLER_HUNG_UP, TurnMeta().to_dict())
        self.ended = True
        await self._close("caller")

    def _publish(self, name: str, **data: Any) -> None:
        self.timeline.publish(name, **data)

    async def _exchange(self, message: str, meta: dict[str, Any], speaker: str | None,
                        input_mode: str | None = "text",
                        asr_confidence: float | None = None,
                        asr_snapped: bool = False) -> BotReply:
        if self.ended:
            raise RuntimeError(f"call {self.call_id} has ended")
        if speaker is not None:
            if self.turns and self.turns[-1].private_answer:  # it answers the ID question
                speaker = mask_id_digits(speaker)
            self._publish(events.TURN_CUSTOMER, text=speaker, input_mode=input_mode,
                          asr_confidence=asr_confidence, asr_snapped=asr_snapped)
            await self.transcript.flush()  # the action notes its intent on this turn
        turn = BotReply.parse(await self.client.send(self.call_id, message, meta))
        if turn.classified:
            self._publish(events.TURN_CLASSIFIED, **turn.classified)
        for text in turn.texts:
            self._publish(events.TURN_BOT, text=text)
        self.turns.append(turn)
        if turn.ends_call:
            self.ended = True
            await self._close("transfer" if turn.transfer is not None else "bot")
        else:
            await self.transcript.flush()
        return turn

    async def _close(self, ended_by: callrecord.EndedBy) -> None:
        if self._closed:
            return
        self._closed = True
        await self.transcript.flush()
        with self.db.session() as session:
            callrecord.close(session, self.call_id, ended_by=ended_by,
                             ended_at=self.timeline.at(self.timeline.now_ms()))
        await self.transcript.close()
        self._publish(CALL_ENDED, dial_result="answered", ended_by=ended_by,
                      **self.outcome())

    def outcome(self) -> dict[str, Any]:
        with self.db.session() as session:
            call = session.get(Call, self.call_id)
            assert call is not None
            return {"outcome": call.outcome, "decline_reason": call.decline_reason,
                    "confirmation_result": call.confirmation_result}


async def play_persona(call: TextCall, persona: Persona) -> dict[str, Any]:
    """Answer the call as the persona would, then return the call's outcome."""
    given = 0

    async def answer_back(reply: BotReply) -> None:
        """What the bot asked back, answered from the persona's `answers` (bot.personas)."""
        nonlocal given
        while not call.ended and given < MAX_ANSWERS:
            words = persona.answer_to("".join(reply.texts))
            if words is None:
                return
            given += 1
            reply = await call.say(words)

    await answer_back(await call.start())
    for turn in persona.turns:
        if call.ended:
            break
        if turn.kind in ("say", "barge_in"):
            await answer_back(await call.say(str(turn.value)))
        elif turn.kind == "dtmf":
            await answer_back(await call.key(str(turn.value)))
        elif turn.kind == "silent_s":
            await answer_back(await call.silence())
        elif turn.kind == "hangup":
            await call.hang_up()
    if not call.ended:  # the persona ran out of things to say: it hangs up
        await call.hang_up()
    return call.outcome()
