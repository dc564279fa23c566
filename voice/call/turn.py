"""The dialogue turn: the caller's input to Rasa, the bot's reply back.

It owns the conversation's side of the channel contract (`bot.channel`): the queue of
caller inputs, the silence timer of the current question, the message and `TurnMeta` each
input becomes, and the requests under way with Rasa (sender = call id).

- `listen` waits for the next input; after the question's timeout of nothing it is
  `silence`.  The timer pauses while the caller is busy (speaking, keying, being decoded:
  `busy()`), so a long answer is not cut off as silence.
- `message` turns an input into Rasa's message and metadata and publishes the customer's
  (or the system's) turn; from the first real input on, the far end is a person (`replied`:
  no more announcement checks).  The answer to a question that asks for the ID digits
  (the bot's reply said so: `BotReply.private_answer`) is published and logged with its
  digits masked; Rasa gets it in clear.
- `ask` flushes the transcript sink first (the action notes its intent on the customer's
  turn, so the turn must be written), then sends; the request is shielded, so a session cut
  short by an announcement can let it finish (`settle`).  An input taken as the caller hung
  up is kept (`unsent`) for the hang-up phase, which sends it with `send_after_hangup`.

Inputs and the question they answer: an input that began before the bot's reply was heard
(`asked_at()`: the reply's first audio) answers nothing in it, so its message says so
(`TurnMeta.before_question`: no consent rests on it, rule 4).  After a hand-back from an
agent, what the caller began saying before the bot's first words is not the bot's at all
(it was said to the agent, whose side of the call transcribed it): `ignore_before` drops
it, with a note on the timeline.

In: `CallerInput` (consumed into the queue); every other event passes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot import channel
from bot.channel import BotReply, DialogueChannel, TurnMeta
from bot.privacy import mask_id_digits
from voice.call.events import CallerHungUp, CallerInput, Event, ListenFor, Processor
from voice.call.timeline import Timeline

log = logging.getLogger("waihu.session")


class DialogueTurn(Processor):
    def __init__(self, dialogue: DialogueChannel, timeline: Timeline, *,
                 closed: asyncio.Event, flush: Callable[[], Awaitable[None]],
                 busy: Callable[[], bool] = lambda: False, timeout_s: float = 6.0,
                 asked_at: Callable[[], float | None] = lambda: None) -> None:
        super().__init__()
        self.dialogue = dialogue
        self.timeline = timeline
        self.closed = closed  # the leg's: set once the caller has gone
        self.flush = flush  # the transcript sink's
        self.busy = busy
        self.timeout_s = timeout_s
        self.inputs: asyncio.Queue[CallerInput] = asyncio.Queue()
        self.interrupted: tuple[str, ...] = ()  # disclosures talked over in the last reply
        self.replied = False  # a caller input has been taken as a reply
        self.turns = 0  # messages sent to Rasa
        self.requests: set[asyncio.Future[list[dict[str, Any]]]] = set()  # with Rasa now
        self.unsent: list[tuple[str, dict[str, Any]]] = []  # taken, but the caller had gone
        self.private_answer = False  # the last question asked for the ID digits
        self.asked_at = asked_at  # the last reply's first audio, ms on the call's clock
        self._not_before_ms = 0.0  # inputs begun earlier are dropped (`ignore_before`)
        self._ignored_why = ""

    def listen_for(self, listen: ListenFor) -> None:
        self.timeout_s = listen.timeout_s

    async def process(self, event: Event) -> None:
        if isinstance(event, CallerInput):
            if event.at_ms < self._not_before_ms:
                self._ignore(event)
            else:
                self.inputs.put_nowait(event)
            return
        await self.push(event)

    def ignore_before(self, at_ms: float, why: str) -> None:
        """Inputs that began before *at_ms* are no reply to the bot: those queued are
        dropped now, those still being decoded when they arrive; each is noted (*why*)."""
        self._not_before_ms, self._ignored_why = at_ms, why
        kept: list[CallerInput] = []
        while not self.inputs.empty():
            got = self.inputs.get_nowait()
            if got.at_ms < at_ms:
                self._ignore(got)
            else:
                kept.append(got)
        for got in kept:
            self.inputs.put_nowait(got)

    def _ignore(self, got: CallerInput) -> None:
        heard = f"[按键 {got.text}]" if got.kind == "dtmf" else got.text or "[听不清]"
        log.info("turn.input_ignored call_id=%s kind=%s at_ms=%d why=%s",
                 self.timeline.call_id, got.kind, got.at_ms, self._ignored_why)
        self.timeline.system_turn(f"{self._ignored_why}，不作为回答：{mask_id_digits(heard)}",
                                  got.at_ms)

    async def listen(self) -> CallerInput:
        """The caller's next input, or `silence` after the turn's timeout of nothing (the
        timer runs only while the caller is neither speaking nor keying)."""
        clock = self.timeline.clock
        timeout = self.timeout_s
        deadline = clock() + timeout
        while True:
            if self.closed.is_set():
                raise CallerHungUp
            if self.busy():
                deadline = clock() + timeout
            remaining = deadline - clock()
            if remaining <= 0:
                return CallerInput("silence", at_ms=int(self.timeline.now_ms()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.05)):
                    return await self.inputs.get()

    def message(self, got: CallerInput) -> tuple[str, dict[str, Any]]:
        """Rasa's message and metadata for *got*; its turn goes on the timeline."""
        interrupted = self.interrupted
        timeline = self.timeline
        shown = mask_id_digits if self.private_answer else str
        if got.kind != "silence":
            self.replied = True  # no announcement check from now on
        asked = self.asked_at()
        early = got.kind != "silence" and asked is not None and got.at_ms < asked
        if got.kind == "dtmf":
            timeline.customer_turn(shown(f"[按键 {got.text}]"), got, "dtmf", None)
            return (channel.dtmf_message(got.text),
                    TurnMeta("dtmf", disclosures_interrupted=interrupted,
                             before_question=early, audio_start_ms=got.at_ms,
                             audio_end_ms=got.end_ms or got.at_ms).to_dict())
        meta = TurnMeta("speech", disclosures_interrupted=interrupted)
        if got.kind == "silence":
            timeline.system_turn("客户无应答", got.at_ms)
            return channel.SILENCE_TIMEOUT, meta.to_dict()
        transcript = got.transcript
        confidence = transcript.confidence if transcript else None
        if got.kind == "unclear":
            heard = f"[听不清] {transcript.raw}" if transcript and transcript.raw else "[听不清]"
            timeline.customer_turn(shown(heard), got, "speech", confidence)
            return channel.ASR_UNCLEAR, meta.to_dict()
        snapped = bool(transcript and transcript.snapped)
        meta = TurnMeta("speech", asr_confidence=confidence, asr_snapped=snapped,
                        disclosures_interrupted=interrupted, before_question=early,
                        audio_start_ms=got.at_ms,
                        audio_end_ms=got.end_ms or got.at_ms)
        timeline.customer_turn(shown(got.text), got, "speech", confidence, snapped)
        return got.text, meta.to_dict()

    async def ask(self, message: str, metadata: dict[str, Any]) -> BotReply:
        call_id = self.timeline.call_id
        if self.closed.is_set():
            self.unsent.append((message, metadata))  # the hang-up phase sends it
            raise CallerHungUp
        await self.flush()  # the action notes its intent on the customer's turn
        self.turns += 1
        logged = channel.shown(message, private=self.private_answer)
        started = self.timeline.clock()
        # Shielded: a session cut short by an announcement lets the request finish.
        request = asyncio.ensure_future(self.dialogue.send(call_id, message, metadata))
        self.requests.add(request)
        request.add_done_callback(self._request_done)
        replies = await asyncio.shield(request)
        reply = BotReply.parse(replies)
        self.private_answer = reply.private_answer
        self.timeline.classified(reply)
        log.info("rasa.reply call_id=%s message=%s segments=%d ms=%.0f", call_id, logged,
                 len(reply.segments), (self.timeline.clock() - started) * 1000)
        return reply

    def _request_done(self, request: asyncio.Future[list[dict[str, Any]]]) -> None:
        self.requests.discard(request)
        if not request.cancelled() and request.exception() is not None:
            log.debug("rasa.request_failed call_id=%s error=%r", self.timeline.call_id,
                      request.exception())

    async def send_after_hangup(self, message: str, meta: dict[str, Any]) -> BotReply:
        """A last input, sent with `caller_hung_up` once its turn is written; what the bot
        answers is not said."""
        await self.flush()  # its turn is written: the action notes it
        replies = await self.dialogue.send(self.timeline.call_id, message,
                                           {**meta, "caller_hung_up": True})
        self.turns += 1
        log.info("rasa.after_hangup call_id=%s message=%s", self.timeline.call_id,
                 channel.shown(message, private=self.private_answer))
        reply = BotReply.parse(replies)
        self.timeline.classified(reply)
        return reply

    async def settle(self, timeout: float | None = None) -> None:
        """Until the requests with Rasa are answered (or *timeout*)."""
        if self.requests:
            await asyncio.wait(set(self.requests), timeout=timeout)

    def cancel(self) -> None:
        for request in list(self.requests):
            request.cancel()
