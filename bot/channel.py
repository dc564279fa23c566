"""The Rasa channel contract, in one place (DESIGN.md, "Contracts").

Everything that talks to Rasa as the telephone's side of the conversation — the voice
session, text-mode calls, `waihu chat`, the benchmarks — and the actions that read what it
sent use this module:

- `RasaChannel`: the client of the telephone's channel (`credentials.yml`:
  waihu_rasa/channel.py, Rasa's REST channel closed without the token), with a timeout and
  the Rasa token; `RasaEndpoint`: where Rasa answers and its token, which `RasaStack`
  hands to whoever builds a channel;
- `BotReply.parse`: Rasa's answer as segments to say and the control that goes with them
  (`listen`, `barge_in: false` disclosures, `hangup`, `transfer`);
- the messages a call sends (`CALL_STARTED`, `dtmf_message`, …) and the metadata each one
  carries (`TurnMeta`: input mode, ASR confidence, snapping, interrupted disclosures, a
  hang-up);
- `classified_payload`: how the deciding action tells the channel what the classifier made
  of the customer's turn (`BotReply.classified`).

Rasa's REST channel sends a response's text and its `custom` part as two consecutive
entries, so a `custom` entry applies to the text entry just before it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

import aiohttp

from bot.privacy import mask_id_digits

InputMode = Literal["speech", "dtmf", "text"]
INPUT_MODES: tuple[InputMode, ...] = ("speech", "dtmf", "text")

# Call events sent as intents (DESIGN.md).
CALL_STARTED = "/call_started"
SILENCE_TIMEOUT = "/silence_timeout"
ASR_UNCLEAR = "/asr_unclear"
CALLER_HUNG_UP = "/caller_hung_up"
# The agent who took the call handed it back to the bot to confirm their sale.
AGENT_HANDBACK = "/agent_handback"
# Call events that are no customer turn of their own (no intent is noted on a turn).
NOT_A_TURN = frozenset({"call_started", "silence_timeout", "caller_hung_up",
                        "agent_handback"})
# What makes a paused conversation (actions/actions.py pauses it when the call goes to an
# agent) take messages again, as if the bot had just listened: Rasa ignores every message
# of a paused conversation, and its rules expect a turn to follow `action_listen`.
RESUME_EVENTS = ({"event": "resume"}, {"event": "action", "name": "action_listen"})

TOKEN_ENV = "WAIHU_RASA_TOKEN"


def dtmf_message(digits: str) -> str:
    return "/dtmf" + json.dumps({"digits": digits})


def is_event(message: str) -> bool:
    """A call event ("/dtmf{…}", "/call_started"), not words the customer said."""
    return message.startswith("/")


def shown(message: str, *, private: bool = False) -> str:
    """The message as logs may show it: call events as they are (keyed ID digits masked
    when it answers the ID question, *private*), the customer's words not at all (they
    may hold ID digits)."""
    if not is_event(message):
        return "<speech>"
    return mask_id_digits(message) if private else message


@dataclass(frozen=True)
class TurnMeta:
    """The metadata of one customer turn, as the channel sends it and the actions read it."""

    input_mode: InputMode = "text"
    asr_confidence: float | None = None
    asr_snapped: bool = False
    disclosures_interrupted: tuple[str, ...] = ()
    # Begun before the bot's last reply was heard: it answers nothing in it (no consent
    # rests on it, rule 4), e.g. words said while the dialogue was still thinking.
    before_question: bool = False
    caller_hung_up: bool = False
    # When the customer spoke (or keyed) it, in ms on the call's timeline (the recording's
    # clock): the consent ledger binds a consent to this span of the recording.
    audio_start_ms: int | None = None
    audio_end_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"input_mode": self.input_mode}
        if self.input_mode == "speech" and self.asr_confidence is not None:
            meta["asr_confidence"] = self.asr_confidence
            meta["asr_snapped"] = self.asr_snapped
        if self.disclosures_interrupted:
            meta["disclosures_interrupted"] = list(self.disclosures_interrupted)
        if self.before_question:
            meta["before_question"] = True
        if self.caller_hung_up:
            meta["caller_hung_up"] = True
        if self.audio_start_ms is not None and self.audio_end_ms is not None:
            meta["audio_start_ms"], meta["audio_end_ms"] = self.audio_start_ms, self.audio_end_ms
        return meta

    @classmethod
    def from_dict(cls, meta: dict[str, Any] | None, default_mode: InputMode = "text"
                  ) -> TurnMeta:
        meta = meta or {}
        mode = meta.get("input_mode")
        confidence = meta.get("asr_confidence")
        return cls(
            input_mode=mode if mode in INPUT_MODES else default_mode,
            asr_confidence=None if confidence is None else float(confidence),
            asr_snapped=bool(meta.get("asr_snapped")),
            disclosures_interrupted=tuple(str(d) for d in
                                          meta.get("disclosures_interrupted") or ()),
            before_question=bool(meta.get("before_question")),
            caller_hung_up=bool(meta.get("caller_hung_up")),
            audio_start_ms=_ms(meta.get("audio_start_ms")),
            audio_end_ms=_ms(meta.get("audio_end_ms")),
        )


def _ms(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def classified_payload(intent: str, confidence: float | None) -> dict[str, Any]:
    """The `custom` part the deciding action sends with its answer."""
    return {"classified": {"intent": intent, "confidence": confidence}}


def private_answer_payload() -> dict[str, Any]:
    """The `custom` part the deciding action sends when its question asks for the ID
    digits (the flow knows which question it asks): the channel masks the answer in the
    transcript, the call events and the logs (`BotReply.private_answer`); Rasa still gets
    it in clear, to check it."""
    return {"private_answer": True}


def call_started_meta(*, call_id: str, campaign_id: int, contact_id: int,
                      campaign_type: str, input_mode: InputMode,
                      now: datetime | None = None) -> dict[str, Any]:
    """`/call_started`'s metadata; *now* is the call's clock when it is not the wall
    clock (a simulated day), ISO 8601 with its zone."""
    meta: dict[str, Any] = {"call_id": call_id, "campaign_id": campaign_id,
                            "contact_id": contact_id, "campaign_type": campaign_type,
                            "input_mode": input_mode}
    if now is not None:
        meta["now"] = now.isoformat()
    return meta


@dataclass
class BotSegment:
    """One response the bot says; a disclosure (`barge_in: false`) carries its ids."""

    text: str
    disclosure: tuple[str, ...] = ()


@dataclass
class BotReply:
    """One Rasa answer: what to say and the control that goes with it."""

    segments: list[BotSegment] = field(default_factory=list)
    listen: dict[str, Any] | None = None
    hangup: bool = False
    transfer: dict[str, Any] | None = None
    # What the classifier made of the customer's turn ({"intent", "confidence"}), sent by
    # the deciding action, so that the channel can publish it with the turn.
    classified: dict[str, Any] | None = None
    # The question asks for ID digits: its answer is masked wherever it is shown
    # (bot.privacy.mask_id_digits).
    private_answer: bool = False

    @classmethod
    def parse(cls, replies: list[dict[str, Any]]) -> BotReply:
        reply = cls()
        for message in replies:
            if message.get("text"):
                reply.segments.append(BotSegment(str(message["text"])))
            custom = message.get("custom") or {}
            if custom.get("hangup"):
                reply.hangup = True
            if "transfer" in custom:
                reply.transfer = dict(custom["transfer"] or {})
            if "listen" in custom:
                reply.listen = dict(custom["listen"] or {})
            if "classified" in custom:
                reply.classified = dict(custom["classified"] or {})
            if custom.get("private_answer"):
                reply.private_answer = True
            if custom.get("barge_in") is False and reply.segments:
                ids = tuple(str(d) for d in custom.get("disclosure") or ()) or ("unnamed",)
                reply.segments[-1].disclosure = ids
        return reply

    @property
    def texts(self) -> list[str]:
        return [segment.text for segment in self.segments]

    @property
    def disclosures(self) -> list[str]:
        return [d for segment in self.segments for d in segment.disclosure]

    @property
    def ends_call(self) -> bool:
        return self.hangup or self.transfer is not None


class DialogueChannel(Protocol):
    """What a call needs of Rasa: send one message, get the bot's raw replies."""

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


class RasaChannel:
    """The telephone's channel (`credentials.yml`: waihu_rasa.channel): sender = call id.

    *token*: the Rasa token (default: `WAIHU_RASA_TOKEN`), which the channel and the HTTP
    API (`--auth-token`) ask for, sent as the `token` query parameter the way both take it."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, *,
                 timeout_s: float = 30.0, token: str | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/webhooks/waihu/webhook"
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.params = {"token": token} if token else None

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if message == AGENT_HANDBACK:
            await self._resume(sender)
        body = {"sender": sender, "message": message, "metadata": metadata or {}}
        async with self.session.post(self.url, json=body, params=self.params,
                                     timeout=self.timeout) as response:
            response.raise_for_status()
            replies: list[dict[str, Any]] = await response.json()
            return replies

    async def _resume(self, sender: str) -> None:
        """Resume the conversation Rasa paused at the hand-over (its HTTP API, which the
        gateway's Rasa runs with `--enable-api` and the same token)."""
        url = f"{self.base_url}/conversations/{quote(sender, safe='')}/tracker/events"
        async with self.session.post(url, json=list(RESUME_EVENTS), params=self.params,
                                     timeout=self.timeout) as response:
            response.raise_for_status()

    async def ask(self, sender: str, message: str,
                  metadata: dict[str, Any] | None = None) -> BotReply:
        return BotReply.parse(await self.send(sender, message, metadata))


@dataclass(frozen=True)
class RasaEndpoint:
    """Where Rasa answers, and the token it asks for (`RasaStack.endpoint`)."""

    url: str
    token: str | None = field(default=None, repr=False)

    def channel(self, session: aiohttp.ClientSession, **options: Any) -> RasaChannel:
        return RasaChannel(self.url, session, token=self.token, **options)
