"""CallSession: one answered call between a telephony leg and the Rasa dialogue.

The call is a chain of small processors joined by typed events (`voice.call`, after
pipecat's frames); this module only wires them and runs the call's life:

    leg.rx ─CallerAudio─▶ Endpointing ─SpeechStarted/Ended─▶ Speaker (barge-in)
    leg.events ─Digit───────────────────────────────────────▶ │
        ▶ Transcription (ASR) ─Transcribed─▶ AnnouncementScreen ─CallerInput─▶
        ▶ DtmfCollector ─CallerInput(dtmf)─▶ DialogueTurn (queue) ─CallerDone─▶ Recorder

The conversation loop takes the next `CallerInput` from the dialogue turn (or `silence`
after the question's timeout), sends it to Rasa (sender = call id) and gives the bot's
`BotReply` to the speaker; its `custom` payloads are obeyed (DESIGN.md, "Contracts"):
`listen` sets the next turn's hints, DTMF length and silence timeout; `barge_in: false`
marks a disclosure the caller cannot cut off; `hangup` ends the call after the words are
out, `transfer` hands it to an agent (`voice.call.transfer`).

Every frame in and out goes into the recorder (caller left, bot right), written to disk as
the call goes and finished with its sha256 when the call ends however it ends; turns and
other call events are published on the event bus (`bot.events`); the transcript is written
by a `bot.transcript.TranscriptSink` subscribed to it (one worker thread per call, in order,
off the event loop); the session waits for it before it reports its result.

What the session itself owns is the call's life: the greeting said at the answer while
`/call_started` runs, the maximum duration (lifted once the call is bridged to an
agent), the end by a carrier announcement (nothing of
it goes to Rasa; a request already sent may finish), the caller's last words after a
hang-up (`_hear_out`), the failure path, and the recording and the call's row at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from bot import callrecord, channel, events
from bot.channel import BotReply, BotSegment, DialogueChannel
from bot.events import EventBus, InProcessBus
from bot.store import Database
from bot.transcript import TranscriptSink
from voice.asr.announce import Announcement
from voice.asr.base import AsrWorker
from voice.audio.vad import VadParams
from voice.call.agent_side import AgentTranscriber
from voice.call.announcement import AnnouncementScreen
from voice.call.asr import Transcription
from voice.call.dtmf import DtmfCollector
from voice.call.endpointing import Endpointing
from voice.call.events import (
    CallerAudio,
    CallerHungUp,
    CallerInput,
    Digit,
    HungUp,
    InputKind,
    ListenFor,
    chain,
)
from voice.call.monitor import CallMonitor, DatabaseMonitors
from voice.call.recorder import Recorder, recording_path
from voice.call.speaker import Speaker, Speech
from voice.call.timeline import Timeline
from voice.call.transfer import Handoff
from voice.call.turn import DialogueTurn
from voice.telephony.base import Dtmf, Hangup, Leg, Telephony

__all__ = ["CallSession", "CallerInput", "InputKind", "SessionConfig", "SessionResult",
           "Speech"]

log = logging.getLogger("waihu.session")


@dataclass(frozen=True)
class SessionConfig:
    # A short answer (yes/no, a score) may end at a 250 ms pause once its decode is one of
    # the question's hint phrases (voice/call/asr.py); every other waits 600 ms of silence.
    # `pause_ms=0` is the switch that turns this off (every answer waits the full silence:
    # the `fixed` mode of bench/turns.py).
    vad: VadParams = field(default_factory=lambda: VadParams(
        min_speech_ms=60, end_silence_ms=600, min_utterance_ms=200, max_utterance_s=12.0,
        pause_ms=250))
    listen_timeout_s: float = 6.0  # when the bot's `listen` gives none
    dtmf_interdigit_s: float = 3.0
    max_call_s: float = 300.0
    agent_uri: str | None = None  # where `transfer` goes; None: no agents, say sorry
    transfer_mode: Literal["bridge", "refer"] = "bridge"
    agent_answer_s: float = 20.0
    no_agent_text: str = "抱歉，现在坐席繁忙，我们会尽快给您回电，再见。"
    # Said while a campaign with agents offers the call to them (voice/call/desk_offer.py);
    # a fixed prompt, warmed with the campaign's.
    holding_text: str = "请稍等，正在为您转接人工客服"
    desk_poll_s: float = 0.1  # how often the gateway reads back an agent's answer to an offer
    # How often the call looks for a supervisor's request to monitor it (voice/call/monitor.py;
    # 0: never); a monitor under way is read back every `desk_poll_s`.
    monitor_poll_s: float = 0.5
    # Said when the call cannot go on (Rasa or the action server down, the database
    # failing): a fixed prompt, warmed with the campaign's (voice.tts.warm), so it plays
    # without Rasa.  The call is then `failed` and its contact retried.
    failure_text: str = "抱歉，系统繁忙，我们稍后再联系您，再见。"
    # How long the caller may wait for the bot's answer before the call fails (Rasa hung,
    # or too slow to hold a telephone conversation).
    dialogue_timeout_s: float = 8.0
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
        self.config = config = config or SessionConfig()
        self.telephony = telephony
        # The campaign's first words, known before Rasa answers /call_started: they start
        # on the first frame after the answer while the dialogue gets going.
        self.greeting = greeting
        self.events = events or InProcessBus()
        self.timeline = timeline = Timeline(call_id, self.events, call_start=call_start,
                                            clock=clock)
        self.call_start = timeline.call_start
        self.transcript = TranscriptSink(db, call_id).attach(self.events)
        self.result = SessionResult(call_id, "bot", 0, None, None, 0)

        def accepting() -> bool:  # no answer is taken while a disclosure plays
            return self.speaker.accepting_input

        self.endpointing = Endpointing(config.vad)
        self.speaker = Speaker(leg, tts, timeline,
                               caller_speaking=lambda: self.endpointing.speaking)
        self.transcription = Transcription(
            asr, timeline, pre_roll_ms=config.vad.pre_roll_ms, accepting=accepting,
            end_at_pause=self.endpointing.end_at_pause if config.vad.pause_ms else None)
        self.screen = AnnouncementScreen(call_id, window_s=config.announcement_window_s,
                                         replied=lambda: self.turn.replied)
        self.dtmf = DtmfCollector(timeline, interdigit_s=config.dtmf_interdigit_s,
                                  accepting=accepting)
        self.turn = DialogueTurn(dialogue, timeline, closed=leg.closed,
                                 flush=self.transcript.flush, busy=self._busy,
                                 timeout_s=config.listen_timeout_s,
                                 asked_at=lambda: self.speaker.reply_started_ms)
        self.recorder = Recorder(timeline, recording_path(
            config.recordings_dir, call_id, timeline.call_start)).attach(leg)
        chain(self.endpointing, self.speaker, self.transcription, self.screen, self.dtmf,
              self.turn, self.recorder)
        self.handoff = Handoff(leg, telephony, self.speaker, timeline, db,
                               agent_uri=config.agent_uri, mode=config.transfer_mode,
                               answer_s=config.agent_answer_s,
                               no_agent_text=config.no_agent_text,
                               stop_listening=self._bridging,
                               holding_text=config.holding_text,
                               desk_poll_s=config.desk_poll_s,
                               agent_side=AgentTranscriber(asr, config.vad))
        self.monitor = CallMonitor(leg, telephony if config.monitor_poll_s else None,
                                   timeline, DatabaseMonitors(db), poll_s=config.desk_poll_s,
                                   wait_s=config.monitor_poll_s,
                                   answer_s=config.agent_answer_s,
                                   agent=lambda: leg.peer or self.handoff.listening_agent())
        self._audio_task: asyncio.Task[None] | None = None
        self._limit: asyncio.Timeout | None = None  # the call-length limit, while it holds

    def _busy(self) -> bool:
        """The caller is saying or keying something: the silence timer waits."""
        return self.endpointing.speaking or self.transcription.busy or self.dtmf.busy

    def _listen_for(self, payload: dict[str, Any]) -> None:
        listen = ListenFor.from_payload(payload, control_phrases=self.config.control_phrases,
                                        default_timeout_s=self.config.listen_timeout_s)
        self.transcription.listen_for(listen)
        self.dtmf.listen_for(listen)
        self.turn.listen_for(listen)

    # -- the sources: the leg's frames and control events ----------------------------
    async def _audio_in(self) -> None:
        while True:
            frame = await self.leg.rx.get()
            await self.endpointing.process(CallerAudio(frame.pcm, frame.timestamp_ms))

    def _stop_audio(self) -> None:
        if self._audio_task is not None:
            self._audio_task.cancel()

    def _bridging(self) -> None:
        """The call goes to an agent: the bridge reads the caller's frames from now on, and
        the bot's call-length limit no longer applies (an agent's call may last long)."""
        self._stop_audio()
        if self._limit is not None:
            self._limit.reschedule(None)
            log.info("call.length_limit_lifted call_id=%s: bridged to an agent", self.call_id)

    async def _leg_events(self) -> None:
        while True:
            event = await self.leg.events.get()
            if isinstance(event, Dtmf):
                await self.speaker.process(Digit(event.digit))
            elif isinstance(event, Hangup):
                log.info("call.hangup call_id=%s by=%s reason=%s", self.call_id, event.by,
                         event.reason)
                await self.speaker.process(HungUp(event.by, event.reason))
                return

    # -- the call ------------------------------------------------------------------
    async def run(self) -> SessionResult:
        log.info("call.session_started call_id=%s", self.call_id)
        self._audio_task = asyncio.create_task(self._audio_in(), name=f"in-{self.call_id}")
        workers = [self._audio_task,
                   asyncio.create_task(self._leg_events(), name=f"events-{self.call_id}")]
        self.monitor.start()
        try:
            async with asyncio.timeout(self.config.max_call_s) as self._limit:
                await self._converse_or_announcement()
        except _Announced:
            self.result.ended_by = "announcement"
        except TimeoutError:
            self.result.ended_by = "timeout"
            log.warning("call.max_duration call_id=%s", self.call_id)
            self.timeline.system_turn("通话超过最长时长，系统挂机")
        except CallerHungUp:
            if await self._announced_before_hangup():
                self.result.ended_by = "announcement"
            else:
                self.result.ended_by = "caller"
                await self._hear_out()
        except Exception as exc:  # keep recording, transcript and outcome whatever failed
            self.result.ended_by = "failure"
            self.result.error = f"{type(exc).__name__}: {exc}"
            log.exception("call.session_failed call_id=%s", self.call_id)
            self.timeline.system_turn(f"系统故障：{type(exc).__name__}")
            if not self.leg.closed.is_set():  # the customer hears why the call ends
                said_at = self.timeline.now_ms()
                await self.speaker.say_failure(self.config.failure_text)
                self.timeline.bot_turn(self.config.failure_text, said_at)
        finally:
            for task in [*workers, *self.transcription.tasks]:
                task.cancel()
            self._stop_audio()  # the one started again after a hand-back
            self.dtmf.cancel_timer()
            await self.transcription.stop()
            if not self.leg.closed.is_set():
                await self.leg.hangup()
            await self.monitor.stop()
            await self._settle_requests()
            await self._finish()
        return self.result

    async def _converse_or_announcement(self) -> None:
        """The conversation, unless the far end turns out to be a carrier announcement."""
        converse = asyncio.create_task(self._converse(), name=f"converse-{self.call_id}")
        announced = asyncio.create_task(self.screen.heard.wait())
        try:
            await asyncio.wait({converse, announced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            announced.cancel()
            if not converse.done():
                converse.cancel()
                await asyncio.wait({converse})
        if converse.cancelled() and self.screen.heard.is_set():
            raise _Announced
        converse.result()  # its outcome, or what it raised

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
                self.timeline.publish(
                    events.ESCALATION_REQUESTED, self.timeline.now_ms(),
                    reason=str(reply.transfer.get("reason") or "request_human"))
                ended_by = await self.handoff.run(reply.transfer)
                if ended_by != "handed_back":
                    self.result.ended_by = ended_by
                    return
                reply = await self._handed_back()
                continue
            if reply.hangup:
                self.result.ended_by = "bot"
                return
            if reply.listen is None:
                self._listen_for({})
            message, meta = self.turn.message(await self.turn.listen())
            reply = await self._ask(message, meta)

    async def _handed_back(self) -> BotReply:
        """The agent gave the call back to confirm their sale (voice/call/desk_offer.py):
        the bot hears the caller again (the bridge read their frames), its call-length limit
        holds again from now, and the dialogue reads the sale back (`/agent_handback`).

        Listening starts afresh on the call's clock (nothing said to the agent runs on
        into an utterance, and what is said next is timed where the recording holds it),
        and what the caller began saying or keying before the read-back starts was said
        to the agent: it is no answer to the read-back (it would otherwise wait in the
        queue through it and be taken as the reply to its question)."""
        while not self.leg.rx.empty():  # what the bridge already carried to the agent
            self.leg.rx.get_nowait()
        self.endpointing.resume()
        await self.transcription.forget()
        self._audio_task = asyncio.create_task(self._audio_in(), name=f"in-{self.call_id}")
        if self._limit is not None:
            self._limit.reschedule(asyncio.get_running_loop().time() + self.config.max_call_s)
        reply = await self._ask(channel.AGENT_HANDBACK, {"input_mode": "speech"})
        self.turn.ignore_before(self.timeline.now_ms(), "坐席转回前客户所说")
        return reply

    async def _ask(self, message: str, meta: dict[str, Any]) -> BotReply:
        """Rasa's answer, or a `DialogueFault` when the dialogue cannot answer: no answer
        within `dialogue_timeout_s`, an answer that neither says nor ends anything, or an
        answer to a customer turn without the classification the deciding action sends
        with every one (the action server is down: Rasa then repeats its last words)."""
        try:
            async with asyncio.timeout(self.config.dialogue_timeout_s):
                reply = await self.turn.ask(message, meta)
        except TimeoutError:
            raise DialogueFault(f"no answer from Rasa within "
                                f"{self.config.dialogue_timeout_s:g} s") from None
        if not reply.segments and not reply.ends_call:
            raise DialogueFault("Rasa answered with nothing to say")
        if is_customer_turn(message) and reply.classified is None:
            raise DialogueFault("Rasa answered without the actions (is the action server up?)")
        return reply

    async def _speak(self, reply: BotReply) -> None:
        if reply.listen is not None:  # the hints are known before the caller can answer
            self._listen_for(reply.listen)
        self.turn.interrupted = tuple(await self.speaker.speak(reply))

    # -- after the far end hung up ---------------------------------------------------
    async def _announced_before_hangup(self) -> bool:
        """The far end hung up: if its words may still turn out to be an announcement (an
        exchange that says it and hangs up), let them reach ASR and the check first."""
        if self.screen.heard.is_set():
            return True
        if self.turn.replied or not self.screen.screening(self.endpointing.speech_start_ms):
            return False
        await self._drain_audio()
        await self.transcription.settle(self.config.announcement_settle_s)
        return self.screen.heard.is_set()

    async def _drain_audio(self) -> None:
        """The leg has closed: take the frames it still holds, then end the utterance the
        hang-up cut short (its decode starts)."""
        if self._audio_task is not None:
            self._audio_task.cancel()
            await asyncio.wait({self._audio_task})
        while not self.leg.rx.empty():
            frame = self.leg.rx.get_nowait()
            await self.endpointing.process(CallerAudio(frame.pcm, frame.timestamp_ms))
        await self.endpointing.flush()

    async def _hear_out(self) -> None:
        """The caller hung up: what they said or keyed last still counts.  The utterance or
        digits the hang-up cut short are decoded, written to the transcript and sent to Rasa
        (metadata `caller_hung_up`), so that a survey answer, a callback time or a refusal
        said just before hanging up is recorded; what the bot would answer is not said.
        An unclear utterance is written but not sent.  Then Rasa gets `/caller_hung_up`
        (a do-not-call request it was asking back about stands).  Bounded by `hangup_settle_s`;
        never raises."""
        async def send(message: str, meta: dict[str, Any]) -> None:
            if (await self.turn.send_after_hangup(message, meta)).transfer is not None:
                self.handoff.set_escalation("failed")
                self.timeline.system_turn("客户已挂机，未能转接坐席")

        try:
            async with asyncio.timeout(self.config.hangup_settle_s):
                await self._drain_audio()
                self.dtmf.cancel_timer()
                await self.dtmf.flush()
                await self.transcription.settle()  # decodes under way
                await self.turn.settle()  # an answer already taken, still with Rasa
                unsent, self.turn.unsent = self.turn.unsent, []
                for message, meta in unsent:  # taken as a reply as the caller went
                    await send(message, meta)
                while not self.turn.inputs.empty():  # one by one: each turn, then its message
                    got = self.turn.inputs.get_nowait()
                    message, meta = self.turn.message(got)
                    if got.kind in ("speech", "dtmf"):
                        await send(message, meta)
                await send(channel.CALLER_HUNG_UP, {})  # a request being confirmed back stands
        except Exception:
            log.exception("call.last_words_lost call_id=%s", self.call_id)

    async def _settle_requests(self) -> None:
        """Requests still with Rasa: after an announcement they may finish (their actions
        must not write to the call once the gateway has dropped it); else they are
        cancelled."""
        if self.result.ended_by == "announcement":
            await self.turn.settle(self.config.announcement_settle_s)
        self.turn.cancel()

    # -- the end: recording and the call's row --------------------------------------
    async def _finish(self) -> None:
        """Recording and outcome, whatever happened, after every turn queued before them
        (all on the transcript writer's thread); returns once they are written.  Never
        raises."""
        result, recorder = self.result, self.recorder
        duration = recorder.duration_ms
        result.duration_ms = duration
        result.turns = self.turn.turns
        result.first_audio_ms = recorder.first_audio_ms
        result.response_gaps_ms = recorder.response_gaps_ms
        result.barge_in_stops_ms = self.speaker.stops_ms
        if self.screen.found is not None:
            result.announcement = self.screen.found.kind
            result.announcement_text = self.screen.found.text
        self.transcript.submit(self._write_recording, "recording")
        self.transcript.submit(lambda: self._close_call(duration), "finish")
        await self.transcript.close()
        result.transcript_failures = self.transcript.failures
        log.info("call.session_ended call_id=%s by=%s turns=%d duration_ms=%d recording=%s",
                 self.call_id, result.ended_by, result.turns, duration, result.recording_path)

    def _write_recording(self) -> None:
        self.result.recording_path, self.result.recording_sha256 = self.recorder.finish()

    def _close_call(self, duration: int) -> None:
        """The call's row once the audio has ended (on the writer's thread)."""
        with self.db.session() as session:
            callrecord.close(session, self.call_id, ended_at=self.timeline.at(duration),
                             ended_by=self.result.ended_by,
                             recording_path=self.result.recording_path,
                             recording_sha256=self.result.recording_sha256,
                             error=self.result.error)


class _Announced(Exception):
    """The far end was heard to be a carrier announcement."""


class DialogueFault(RuntimeError):
    """The dialogue (Rasa, its actions, their database) cannot answer this call."""


def is_customer_turn(message: str) -> bool:
    """Words, keys or an unclear utterance: the deciding action classifies these (call
    events such as `/call_started` are no turn of their own)."""
    if not channel.is_event(message):
        return True
    name = message[1:].split("{", 1)[0]
    return name not in channel.NOT_A_TURN
