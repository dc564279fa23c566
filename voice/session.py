"""CallSession: one answered call between a telephony leg and the Rasa dialogue.

Audio frames come in from the leg, go through the VAD/endpointing state machine
(`voice.audio.vad`) and, while the caller speaks, into an ASR recogniser (off the event
loop).  A finished utterance, a keyed entry, a silence timeout or an unclear utterance
becomes one message to Rasa (sender = call id); the bot's replies are spoken from the
prompt cache and their `custom` payloads obeyed (DESIGN.md, "Contracts"):

- `listen` sets the next turn's ASR hints, DTMF length and silence timeout;
- `barge_in: false` marks a disclosure: the caller cannot cut it off; if they talk over
  it, it is said again at once, and if they talk over the repeat too, Rasa is told
  (`disclosures_interrupted`) so that no consent can rest on it;
- anything else the caller interrupts stops within one or two frames (`stop_playback`);
- `hangup` ends the call after the words are out, `transfer` hands it to an agent (a
  two-leg bridge by default, so the recording goes on; or a blind REFER).

Every frame in and out goes into a `StereoRecorder` (caller left, bot right), written
with its sha256 when the call ends however it ends; every turn goes into the transcript
with its offset on the call timeline, ASR confidence and input mode.  Turns and other call
events are published on the event bus (`bot.events`); the transcript is written by a
`bot.transcript.TranscriptSink` subscribed to it (one worker thread per call, in order,
off the event loop); the session waits for it before it reports its result.

Some exchanges answer (200 OK) and then play the carrier announcement (空号, 停机, 关机,
正在通话中).  Until the caller's first words have been taken as a reply, anything they say
that starts within `announcement_window_s` of the answer is checked with
`classify_announcement(…, answered=True)`; an announcement ends the session at once
(`ended_by="announcement"`, `SessionResult.announcement` = the dial result it means) and
nothing of it goes to Rasa.  The gateway then records that dial result instead of an
answered call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from bot import callrecord, channel, events
from bot.channel import BotReply, BotSegment, DialogueChannel, TurnMeta
from bot.events import CallEvent, EventBus, InProcessBus
from bot.store import Database, EscalationRepo
from bot.transcript import TranscriptSink
from voice.asr.announce import Announcement, classify_announcement
from voice.asr.base import AsrWorker, Hints, Recognizer, Transcript
from voice.audio.frames import FRAME_MS, Frame, StereoRecorder
from voice.audio.vad import SpeechEnded, SpeechStarted, UtteranceTooShort, Vad, VadParams
from voice.telephony.base import DialRequest, Direction, Dtmf, Hangup, Leg, Telephony

log = logging.getLogger("waihu.session")

InputKind = Literal["speech", "dtmf", "silence", "unclear"]


class Speech(Protocol):
    """Text → 8 kHz PCM (voice.tts.worker.TtsWorker): cached prompts at once, others off
    the loop."""

    async def speech(self, text: str) -> bytes: ...


@dataclass(frozen=True)
class SessionConfig:
    vad: VadParams = field(default_factory=lambda: VadParams(
        min_speech_ms=60, end_silence_ms=600, min_utterance_ms=200, max_utterance_s=12.0))
    listen_timeout_s: float = 6.0  # when the bot's `listen` gives none
    dtmf_interdigit_s: float = 3.0
    max_call_s: float = 300.0
    agent_uri: str | None = None  # where `transfer` goes; None: no agents, say sorry
    transfer_mode: Literal["bridge", "refer"] = "bridge"
    agent_answer_s: float = 20.0
    no_agent_text: str = "抱歉，现在坐席繁忙，我们会尽快给您回电，再见。"
    failure_text: str = "抱歉，系统繁忙，我们稍后再联系您，再见。"
    # Requests a caller may make at any question (escalation, do-not-call, complaint): added
    # to every list of expected answers, or the engine forces them onto the question's
    # phrases or mishears them (转人工 → 拽人拱啊 at "现在方便吗？").
    control_phrases: tuple[str, ...] = ("转人工", "人工客服", "别再打了", "我要投诉")
    recordings_dir: Path = Path("var/recordings")
    # Caller speech starting this long after the answer, before any reply was taken, is
    # checked for a carrier announcement (0: never).
    announcement_window_s: float = 8.0
    # After an announcement: how long to let a request already sent to Rasa (/call_started)
    # finish, so that its actions do not write to the call after the gateway dropped it.
    announcement_settle_s: float = 10.0
    # After the caller hangs up: how long their last words (an utterance or keyed digits
    # the hang-up cut short, a decode under way) may take to be decoded and reach Rasa.
    hangup_settle_s: float = 10.0


@dataclass(frozen=True)
class CallerInput:
    kind: InputKind
    text: str = ""
    transcript: Transcript | None = None
    at_ms: int = 0  # call timeline: when the caller started
    end_ms: int = 0


@dataclass
class SessionResult:
    call_id: str
    ended_by: callrecord.EndedBy
    turns: int
    recording_path: str | None
    recording_sha256: str | None
    duration_ms: int
    # measurements (ms on the call timeline), for the benchmark and logs
    first_audio_ms: float | None = None  # answer → first bot audio frame written
    response_gaps_ms: list[float] = field(default_factory=list)  # caller end → bot audio
    barge_in_stops_ms: list[float] = field(default_factory=list)  # speech start → stop
    error: str | None = None
    announcement: Announcement | None = None  # the far end was a carrier announcement
    announcement_text: str | None = None  # what it said (the transcript)
    transcript_failures: int = 0  # turns the database did not take (logged)


class CallSession:
    """Run with `await CallSession(...).run()` once the leg is answered."""

    def __init__(self, *, call_id: str, leg: Leg, dialogue: DialogueChannel, asr: AsrWorker,
                 tts: Speech, db: Database, metadata: dict[str, Any],
                 config: SessionConfig | None = None, telephony: Telephony | None = None,
                 call_start: datetime | None = None, greeting: str | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 events: EventBus | None = None) -> None:
        self.call_id = call_id
        self.leg = leg
        self.dialogue = dialogue
        self.asr = asr
        self.tts = tts
        self.db = db
        self.metadata = metadata
        self.config = config or SessionConfig()
        self.telephony = telephony
        # The campaign's first words, known before Rasa answers /call_started: they start
        # on the first frame after the answer while the dialogue gets going.
        self.greeting = greeting
        self.call_start = call_start or datetime.now(UTC)  # the call's (maybe virtual) clock
        self._clock = clock
        self._t0 = clock()
        self.vad = Vad(self.config.vad)
        self.recorder = StereoRecorder()
        self.inputs: asyncio.Queue[CallerInput] = asyncio.Queue()
        self.hints = Hints()
        self.dtmf_max = 0
        self._digits = ""
        self._digit_timer: asyncio.TimerHandle | None = None
        self._speaking: BotSegment | None = None  # segment going out now
        self._talked_over = False  # caller spoke during the current disclosure
        self._barged = asyncio.Event()
        self._caller_speaking = False
        self._speech_start_ms = 0
        self._recognizer: Recognizer | None = None
        self._feed: asyncio.Queue[bytes | None] | None = None
        self._feeder: asyncio.Task[Transcript | None] | None = None
        self._pre_roll: deque[bytes] = deque(maxlen=max(1, self.config.vad.pre_roll_ms // FRAME_MS))
        self._accept_input = False  # False while a disclosure plays
        self._last_caller_end_ms: float | None = None
        self._listen_timeout = self.config.listen_timeout_s
        self._pending_interrupted: list[str] = []
        self._utterance_hints = self.hints
        self._decoding = 0  # utterances in ASR
        self._tasks: set[asyncio.Task[None]] = set()
        self._audio_task: asyncio.Task[None] | None = None
        self._turns = 0
        self._replied = False  # a caller input has been taken as a reply
        self._announced = asyncio.Event()  # the far end was heard to be an announcement
        self._requests: set[asyncio.Future[list[dict[str, Any]]]] = set()  # sent to Rasa
        self._unsent: list[tuple[str, dict[str, Any]]] = []  # taken, but the caller had gone
        self.events = events or InProcessBus()
        self.transcript = TranscriptSink(db, call_id).attach(self.events)
        self.result = SessionResult(call_id, "bot", 0, None, None, 0)
        leg.on_frame(self._record)

    # -- timeline ------------------------------------------------------------------
    def now_ms(self) -> float:
        return (self._clock() - self._t0) * 1000.0

    def _at(self, ms: float) -> datetime:
        return self.call_start + timedelta(milliseconds=ms)

    def _record(self, direction: Direction, frame: Frame) -> None:
        if direction == "rx":
            self.recorder.add_caller(frame)
        else:
            self.recorder.add_bot(frame)
            if self.result.first_audio_ms is None and any(frame.pcm):
                self.result.first_audio_ms = self.now_ms()
            if self._last_caller_end_ms is not None and any(frame.pcm):
                self.result.response_gaps_ms.append(self.now_ms() - self._last_caller_end_ms)
                self._last_caller_end_ms = None

    # -- the call ------------------------------------------------------------------
    async def run(self) -> SessionResult:
        log.info("call.session_started call_id=%s", self.call_id)
        self._audio_task = asyncio.create_task(self._audio_in(), name=f"in-{self.call_id}")
        workers = [self._audio_task,
                   asyncio.create_task(self._leg_events(), name=f"events-{self.call_id}")]
        try:
            await asyncio.wait_for(self._converse_or_announcement(), self.config.max_call_s)
        except _Announced:
            self.result.ended_by = "announcement"
        except TimeoutError:
            self.result.ended_by = "timeout"
            log.warning("call.max_duration call_id=%s", self.call_id)
            self._system_turn("通话超过最长时长，系统挂机")
        except _CallerHungUp:
            if await self._announced_before_hangup():
                self.result.ended_by = "announcement"
            else:
                self.result.ended_by = "caller"
                await self._hear_out()
        except Exception as exc:  # keep recording, transcript and outcome whatever failed
            self.result.ended_by = "failure"
            self.result.error = f"{type(exc).__name__}: {exc}"
            log.exception("call.session_failed call_id=%s", self.call_id)
            self._system_turn(f"系统故障：{type(exc).__name__}")
            await self._say_failure()
        finally:
            for task in [*workers, *self._tasks]:
                task.cancel()
            await self._stop_asr()
            if not self.leg.closed.is_set():
                await self.leg.hangup()
            await self._settle_requests()
            await self._finish()
        return self.result

    async def _converse_or_announcement(self) -> None:
        """The conversation, unless the far end turns out to be a carrier announcement."""
        converse = asyncio.create_task(self._converse(), name=f"converse-{self.call_id}")
        announced = asyncio.create_task(self._announced.wait())
        try:
            await asyncio.wait({converse, announced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            announced.cancel()
            if not converse.done():
                converse.cancel()
                await asyncio.wait({converse})
        if converse.cancelled() and self._announced.is_set():
            raise _Announced
        converse.result()  # its outcome, or what it raised

    async def _announced_before_hangup(self) -> bool:
        """The far end hung up: if its words may still turn out to be an announcement (an
        exchange that says it and hangs up), let them reach ASR and the check first."""
        if self._announced.is_set():
            return True
        if self._replied or not self._screening(self._speech_start_ms):
            return False
        await self._drain_audio()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.config.announcement_settle_s)
        return self._announced.is_set()

    async def _drain_audio(self) -> None:
        """The leg has closed: take the frames it still holds, then end the utterance the
        hang-up cut short (its decode starts; it is in `_tasks`)."""
        if self._audio_task is not None:
            self._audio_task.cancel()
            await asyncio.wait({self._audio_task})
        while not self.leg.rx.empty():
            await self._on_audio(self.leg.rx.get_nowait().pcm)
        for event in self.vad.flush():
            if isinstance(event, SpeechEnded):
                await self._on_speech_ended(event)

    async def _hear_out(self) -> None:
        """The caller hung up: what they said or keyed last still counts.  The utterance or
        digits the hang-up cut short are decoded, written to the transcript and sent to Rasa
        (metadata `caller_hung_up`), so that a survey answer, a callback time or a refusal
        said just before hanging up is recorded; what the bot would answer is not said.
        An unclear utterance is written but not sent.  Then Rasa gets `/caller_hung_up`
        (a do-not-call request it was asking back about stands).  Bounded by `hangup_settle_s`;
        never raises."""
        async def send(message: str, meta: dict[str, Any]) -> None:
            await self.transcript.flush()  # its turn is written: the action notes it
            replies = await self.dialogue.send(self.call_id, message,
                                               {**meta, "caller_hung_up": True})
            self._turns += 1
            log.info("rasa.after_hangup call_id=%s message=%s", self.call_id,
                     channel.shown(message))
            if BotReply.parse(replies).transfer is not None:
                self._set_escalation("failed")
                self._system_turn("客户已挂机，未能转接坐席")

        try:
            async with asyncio.timeout(self.config.hangup_settle_s):
                await self._drain_audio()
                if self._digit_timer is not None:
                    self._digit_timer.cancel()
                self._flush_digits()
                if self._tasks:  # decodes under way
                    await asyncio.wait(set(self._tasks))
                if self._requests:  # an answer already taken, still with Rasa
                    await asyncio.wait(set(self._requests))
                unsent, self._unsent = self._unsent, []
                for message, meta in unsent:  # taken as a reply as the caller went
                    await send(message, meta)
                while not self.inputs.empty():  # one by one: each turn, then its message
                    got = self.inputs.get_nowait()
                    message, meta = self._message(got)
                    if got.kind in ("speech", "dtmf"):
                        await send(message, meta)
                await send(channel.CALLER_HUNG_UP, {})  # a request being confirmed back stands
        except Exception:
            log.exception("call.last_words_lost call_id=%s", self.call_id)

    async def _settle_requests(self) -> None:
        """Requests still with Rasa: after an announcement they may finish (their actions
        must not write to the call once the gateway has dropped it); else they are
        cancelled."""
        if self._requests and self.result.ended_by == "announcement":
            await asyncio.wait(set(self._requests), timeout=self.config.announcement_settle_s)
        for request in list(self._requests):
            request.cancel()

    async def _converse(self) -> None:
        meta = {**self.metadata, "input_mode": "speech"}
        started = asyncio.create_task(self._ask(channel.CALL_STARTED, meta))
        if self.greeting:
            try:
                await self._speak(BotReply([BotSegment(self.greeting)]))
            except BaseException:
                started.cancel()
                raise
        reply = await started
        if self.greeting and reply.segments and reply.segments[0].text == self.greeting:
            reply.segments.pop(0)  # already said
        while True:
            await self._speak(reply)
            if reply.transfer is not None:
                self._publish(events.ESCALATION_REQUESTED, self.now_ms(),
                              reason=str(reply.transfer.get("reason") or "request_human"))
                await self._handoff(reply.transfer)
                return
            if reply.hangup:
                self.result.ended_by = "bot"
                return
            message, meta = self._message(await self._listen(reply.listen))
            reply = await self._ask(message, meta)

    async def _ask(self, message: str, metadata: dict[str, Any]) -> BotReply:
        if self.leg.closed.is_set():
            self._unsent.append((message, metadata))  # `_hear_out` sends it
            raise _CallerHungUp
        await self.transcript.flush()  # the action notes its intent on the customer's turn
        self._turns += 1
        started = self._clock()
        # Shielded: a session cut short by an announcement lets the request finish.
        request = asyncio.ensure_future(self.dialogue.send(self.call_id, message, metadata))
        self._requests.add(request)
        request.add_done_callback(self._request_done)
        replies = await asyncio.shield(request)
        reply = BotReply.parse(replies)
        log.info("rasa.reply call_id=%s message=%s segments=%d ms=%.0f", self.call_id,
                 channel.shown(message), len(reply.segments),
                 (self._clock() - started) * 1000)
        return reply

    def _request_done(self, request: asyncio.Future[list[dict[str, Any]]]) -> None:
        self._requests.discard(request)
        if not request.cancelled() and request.exception() is not None:
            log.debug("rasa.request_failed call_id=%s error=%r", self.call_id,
                      request.exception())

    # -- speaking ------------------------------------------------------------------
    async def _speak(self, reply: BotReply) -> None:
        """Say the segments in order; returns early if the caller barges in."""
        if reply.listen is not None:  # the hints are known before the caller can answer
            self._set_listen(reply.listen)
        interrupted: list[str] = []
        for segment in reply.segments:
            if self.leg.closed.is_set():
                raise _CallerHungUp
            pcm = await self.tts.speech(segment.text)
            start_ms = self.now_ms()
            if segment.disclosure:
                talked_over = await self._play(segment, pcm)
                if talked_over:  # said again once; a second talk-over goes to Rasa
                    self._system_turn("客户插话，重复声明")
                    if await self._play(segment, pcm):
                        interrupted.extend(segment.disclosure)
                        self._publish(events.DISCLOSURE_INTERRUPTED, start_ms,
                                      disclosures=list(segment.disclosure))
            elif await self._play(segment, pcm):
                self._bot_turn(segment.text + "（被打断）", start_ms)
                break
            self._bot_turn(segment.text, start_ms)
        self._pending_interrupted = interrupted

    async def _play(self, segment: BotSegment, pcm: bytes) -> bool:
        """Play one segment to its end.  True if the caller barged in (an ordinary segment
        is then cut off) or talked over it (a disclosure, which plays on)."""
        self._speaking = segment
        self._talked_over = False
        self._accept_input = not segment.disclosure
        self._barged.clear()
        self.leg.play(pcm)
        try:
            while self.leg.playing and not self.leg.closed.is_set():
                if segment.disclosure and self._caller_speaking:
                    self._talked_over = True
                if self._barged.is_set() and not segment.disclosure:
                    return True
                # asyncio.timeout, not wait_for: no task per frame per call (Python 3.11)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FRAME_MS / 1000):
                        await self._barged.wait()
            return self._talked_over or self._barged.is_set()
        finally:
            self._speaking = None
            self._accept_input = True

    def _barge_in(self, why: str) -> None:
        segment = self._speaking
        if segment is None:
            return
        if segment.disclosure:
            self._talked_over = True
            return
        started = self.now_ms()
        self.leg.stop_playback()
        self._barged.set()
        self.result.barge_in_stops_ms.append(self.now_ms() - started)
        log.info("call.barge_in call_id=%s by=%s", self.call_id, why)

    async def _say_failure(self) -> None:
        if self.leg.closed.is_set():
            return
        with contextlib.suppress(Exception):
            pcm = await self.tts.speech(self.config.failure_text)
            self.leg.play(pcm)
            for _ in range(int(30_000 / FRAME_MS)):
                if not self.leg.playing or self.leg.closed.is_set():
                    break
                await asyncio.sleep(FRAME_MS / 1000)

    # -- listening -----------------------------------------------------------------
    def _set_listen(self, listen: dict[str, Any]) -> None:
        self.hints = Hints.from_listen(listen).with_control(self.config.control_phrases)
        self.dtmf_max = int(listen.get("dtmf_max") or 0)
        self._listen_timeout = float(listen.get("timeout_s") or self.config.listen_timeout_s)

    def _busy(self) -> bool:
        """The caller is saying or keying something: the silence timer waits."""
        return (self._caller_speaking or self._feeder is not None or self._decoding > 0
                or bool(self._digits))

    async def _listen(self, listen: dict[str, Any] | None) -> CallerInput:
        """The caller's next input, or `silence` after the turn's timeout of nothing (the
        timer runs only while the caller is neither speaking nor keying)."""
        if listen is None:
            self._set_listen({})
        timeout = self._listen_timeout
        deadline = self._clock() + timeout
        while True:
            if self.leg.closed.is_set():
                raise _CallerHungUp
            if self._busy():
                deadline = self._clock() + timeout
            remaining = deadline - self._clock()
            if remaining <= 0:
                return CallerInput("silence", at_ms=int(self.now_ms()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.05)):
                    return await self.inputs.get()

    def _message(self, got: CallerInput) -> tuple[str, dict[str, Any]]:
        interrupted = tuple(self._pending_interrupted)
        if got.kind != "silence":
            self._replied = True  # no announcement check from now on
        if got.kind == "dtmf":
            self._customer_turn(f"[按键 {got.text}]", got, "dtmf", None)
            return (channel.dtmf_message(got.text),
                    TurnMeta("dtmf", disclosures_interrupted=interrupted).to_dict())
        meta = TurnMeta("speech", disclosures_interrupted=interrupted)
        if got.kind == "silence":
            self._system_turn("客户无应答", got.at_ms)
            return channel.SILENCE_TIMEOUT, meta.to_dict()
        transcript = got.transcript
        confidence = transcript.confidence if transcript else None
        if got.kind == "unclear":
            shown = f"[听不清] {transcript.raw}" if transcript and transcript.raw else "[听不清]"
            self._customer_turn(shown, got, "speech", confidence)
            return channel.ASR_UNCLEAR, meta.to_dict()
        snapped = bool(transcript and transcript.snapped)
        meta = TurnMeta("speech", asr_confidence=confidence, asr_snapped=snapped,
                        disclosures_interrupted=interrupted)
        self._customer_turn(got.text, got, "speech", confidence, snapped)
        return got.text, meta.to_dict()

    # -- audio in: VAD, barge-in, ASR ----------------------------------------------
    async def _audio_in(self) -> None:
        while True:
            await self._on_audio((await self.leg.rx.get()).pcm)

    async def _on_audio(self, pcm: bytes) -> None:
        for event in self.vad.feed(pcm):
            if isinstance(event, SpeechStarted):
                await self._on_speech_started(event)
            elif isinstance(event, SpeechEnded):
                await self._on_speech_ended(event)
            elif isinstance(event, UtteranceTooShort):
                self._caller_speaking = False
                await self._stop_asr()
        if self._feed is not None:
            self._feed.put_nowait(pcm)
        else:
            self._pre_roll.append(pcm)

    async def _on_speech_started(self, event: SpeechStarted) -> None:
        self._caller_speaking = True
        self._speech_start_ms = event.at_ms
        self._barge_in("speech")
        if not self._accept_input:
            return  # a disclosure is playing: this utterance is not an answer
        await self._stop_asr()
        self._utterance_hints = self.hints
        if self.asr.engine.streaming:  # decode while the caller speaks
            self._feed = asyncio.Queue()
            for pcm in self._pre_roll:
                self._feed.put_nowait(pcm)
            self._feeder = asyncio.create_task(self._stream(self._feed, self.hints))
        self._pre_roll.clear()

    async def _stream(self, feed: asyncio.Queue[bytes | None], hints: Hints
                      ) -> Transcript | None:
        recognizer = await self.asr.open(hints)
        pending: list[bytes] = []
        while True:
            pcm = await feed.get()
            if pcm is None:
                break
            pending.append(pcm)
            if feed.empty():  # batch up whatever queued while the last feed ran
                await self.asr.feed(recognizer, b"".join(pending))
                pending.clear()
        if pending:
            await self.asr.feed(recognizer, b"".join(pending))
        return await self.asr.finish(recognizer)

    async def _on_speech_ended(self, event: SpeechEnded) -> None:
        self._caller_speaking = False
        if not self._accept_input and self._feeder is None:
            return  # said over a disclosure
        feeder, feed = self._feeder, self._feed
        self._feeder = self._feed = None
        if feeder is not None and feed is not None:
            feed.put_nowait(None)
            result: Awaitable[Transcript | None] = feeder
        else:  # a batch engine gets the utterance with its pre- and post-roll at once
            result = self.asr.transcribe(event.audio, self._utterance_hints)
        self._last_caller_end_ms = self.now_ms()
        self._decoding += 1
        task = asyncio.create_task(self._deliver(result, self._speech_start_ms, event.at_ms))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, result: Awaitable[Transcript | None], start_ms: int,
                       end_ms: int) -> None:
        try:
            transcript = await result
        except Exception:
            log.exception("asr.failed call_id=%s", self.call_id)
            transcript = None
        finally:
            self._decoding -= 1
        kind: InputKind = ("unclear" if transcript is None or transcript.unclear
                           or not transcript.text else "speech")
        log.info("asr.final call_id=%s engine=%s unclear=%s confidence=%.2f decode_ms=%.0f",
                 self.call_id, transcript.engine if transcript else "-", kind == "unclear",
                 transcript.confidence if transcript else 0.0,
                 transcript.decode_ms if transcript else 0.0)
        if transcript is not None and await self._is_announcement(transcript, start_ms):
            return
        self.inputs.put_nowait(CallerInput(kind, transcript.text if transcript else "",
                                           transcript, start_ms, end_ms))

    def _screening(self, start_ms: float) -> bool:
        """Could words that started at *start_ms* still be a carrier announcement?"""
        return (not self._replied and not self._announced.is_set()
                and start_ms <= self.config.announcement_window_s * 1000)

    async def _is_announcement(self, transcript: Transcript, start_ms: int) -> bool:
        if not self._screening(start_ms):
            return False
        heard = transcript.raw or transcript.text

        def classify() -> Announcement | None:  # pinyin and opencc load on first use
            return (classify_announcement(heard, answered=True)
                    or classify_announcement(transcript.text, answered=True))
        kind = await asyncio.to_thread(classify)
        if kind is None or not self._screening(start_ms):
            return False
        self.result.announcement, self.result.announcement_text = kind, heard
        log.info("call.announcement call_id=%s result=%s at_ms=%d heard=%r", self.call_id,
                 kind, start_ms, heard)
        self._announced.set()
        return True

    async def _stop_asr(self) -> None:
        feeder, feed = self._feeder, self._feed
        self._feeder = self._feed = None
        if feeder is not None and feed is not None:
            feed.put_nowait(None)
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder

    # -- control events: DTMF and hang-up -----------------------------------------
    async def _leg_events(self) -> None:
        while True:
            event = await self.leg.events.get()
            if isinstance(event, Dtmf):
                self._on_digit(event.digit)
            elif isinstance(event, Hangup):
                log.info("call.hangup call_id=%s by=%s reason=%s", self.call_id, event.by,
                         event.reason)
                return

    def _on_digit(self, digit: str) -> None:
        self._barge_in("dtmf")
        if not self._accept_input:
            return
        if self._digit_timer is not None:
            self._digit_timer.cancel()
        self._digit_timer = None
        if digit == "#":
            self._flush_digits()
            return
        self._digits += digit
        if self.dtmf_max <= 1 or len(self._digits) >= self.dtmf_max:
            self._flush_digits()
        else:
            loop = asyncio.get_running_loop()
            self._digit_timer = loop.call_later(self.config.dtmf_interdigit_s,
                                                self._flush_digits)

    def _flush_digits(self) -> None:
        if self._digits:
            now = int(self.now_ms())
            self.inputs.put_nowait(CallerInput("dtmf", self._digits, None, now, now))
            self._last_caller_end_ms = self.now_ms()
        self._digits = ""
        self._digit_timer = None

    # -- transfer to an agent -------------------------------------------------------
    async def _handoff(self, transfer: dict[str, Any]) -> None:
        reason = str(transfer.get("reason") or "request_human")
        uri = self.config.agent_uri
        if uri is None or self.telephony is None:
            await self._no_agent(reason, "no agent configured")
            return
        headers = {"X-Waihu-Call-Id": self.call_id, "X-Waihu-Reason": reason}
        if self.config.transfer_mode == "refer":
            ok = await self.leg.transfer(uri)
            self._set_escalation("connected" if ok else "failed")
            self._system_turn(f"转接坐席（{'成功' if ok else '失败'}，REFER）")
            self.result.ended_by = "transfer" if ok else "bot"
            if not ok:
                await self._no_agent(reason, "REFER refused")
            return
        agent = await self.telephony.dial(DialRequest(uri, f"{self.call_id}-agent",
                                                      headers=headers))
        outcome = await agent.wait_answer(self.config.agent_answer_s)
        if outcome.result != "answered":
            await agent.hangup()
            await self._no_agent(reason, f"agent {outcome.result}")
            return
        self._set_escalation("connected")
        self._system_turn("已接通坐席")
        log.info("call.bridged call_id=%s", self.call_id)
        self._publish(events.CALL_BRIDGED, self.now_ms(), agent=uri)
        self._accept_input = False
        if self._audio_task is not None:
            self._audio_task.cancel()  # the bridge reads the caller's frames from now on
        await self.leg.bridge(agent)
        self.result.ended_by = "bridge_ended"

    async def _no_agent(self, reason: str, why: str) -> None:
        log.warning("call.no_agent call_id=%s reason=%s why=%s", self.call_id, reason, why)
        self._set_escalation("failed")
        self._system_turn(f"转接失败：{why}")
        pcm = await self.tts.speech(self.config.no_agent_text)
        await self._play(BotSegment(self.config.no_agent_text), pcm)
        self._bot_turn(self.config.no_agent_text, self.now_ms())
        self.result.ended_by = "bot"

    def _set_escalation(self, status: str) -> None:
        with self.db.session() as session:
            EscalationRepo(session).mark_for_call(self.call_id, status)

    # -- transcript and recording -------------------------------------------------
    def _publish(self, name: str, offset_ms: float, **data: Any) -> None:
        at_ms = int(offset_ms)
        self.events.publish(CallEvent(name, self.call_id, at_ms, self._at(at_ms), data))

    def _bot_turn(self, text: str, start_ms: float) -> None:
        self._publish(events.TURN_BOT, start_ms, text=text, end_offset_ms=int(self.now_ms()))

    def _customer_turn(self, text: str, got: CallerInput, mode: str,
                       confidence: float | None, snapped: bool = False) -> None:
        self._publish(events.TURN_CUSTOMER, got.at_ms, text=text, input_mode=mode,
                      asr_confidence=confidence, asr_snapped=snapped,
                      end_offset_ms=got.end_ms or got.at_ms)

    def _system_turn(self, text: str, at_ms: float | None = None) -> None:
        self._publish(events.TURN_SYSTEM, self.now_ms() if at_ms is None else at_ms, text=text)

    async def _finish(self) -> None:
        """Recording and outcome, whatever happened, after every turn queued before them
        (all on the transcript writer's thread); returns once they are written.  Never
        raises."""
        duration = self.recorder.duration_ms
        self.result.duration_ms = duration
        self.result.turns = self._turns
        self.transcript.submit(self._write_recording, "recording")
        self.transcript.submit(lambda: self._close_call(duration), "finish")
        await self.transcript.close()
        self.result.transcript_failures = self.transcript.failures
        log.info("call.session_ended call_id=%s by=%s turns=%d duration_ms=%d recording=%s",
                 self.call_id, self.result.ended_by, self._turns, duration,
                 self.result.recording_path)

    def _write_recording(self) -> None:
        folder = self.config.recordings_dir / self.call_start.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.call_id}.wav"
        digest = self.recorder.write(path)
        self.result.recording_path, self.result.recording_sha256 = str(path), digest

    def _close_call(self, duration: int) -> None:
        """The call's row once the audio has ended (on the writer's thread)."""
        with self.db.session() as session:
            callrecord.close(session, self.call_id, ended_at=self._at(duration),
                             ended_by=self.result.ended_by,
                             recording_path=self.result.recording_path,
                             recording_sha256=self.result.recording_sha256,
                             error=self.result.error)


class _CallerHungUp(Exception):
    """The far end hung up during the conversation."""


class _Announced(Exception):
    """The far end was heard to be a carrier announcement."""
