"""ASR: the caller's utterances into transcripts, off the event loop.

A streaming engine (Vosk) is fed while the caller speaks, so only `finish()` is left at
the end of speech; a batch engine (Whisper) gets the VAD's utterance, pre- and post-roll
included, at once.  Engine calls go through `voice.asr.base.AsrWorker` (its thread pool);
engine output leaves this stage as our own `Transcribed` event, pushed from the decode's
task when it is done, followed by nothing else: the announcement screen decides what it is.

This stage owns the frames not yet given to a recogniser (the pre-roll a streaming engine
gets at the start: the VAD confirms a start a few frames late), the hints of the current
question (fixed per utterance at its start), and the decodes under way, which keep the
silence timer waiting and which a hang-up waits for.  While a disclosure plays
(`accepting()` is False) the caller's words are no answer and are not decoded.

Adaptive endpointing: where the question expects a short answer (yes/no, a score) and
`end_at_pause` is wired, a pause (`SpeechPaused`, shorter than the end silence) starts a
decode of the utterance so far.  If that comes back as one of the question's hint phrases,
heard clearly, while the caller is still silent, the utterance ends there (`end_at_pause`
asks the endpointing, which cuts at the next frame) and that decode is its transcript; if
the pause reaches the end silence first, the decode under way is awaited instead of a new
one.  Speech after the pause drops it.  Free answers and digits wait for the full silence.

Out: `CallerDone` when an utterance goes to be decoded, `Transcribed` when it is; every
other event passes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voice.asr.base import AsrWorker, Hints, Transcript
from voice.audio.frames import FRAME_MS
from voice.call.events import (
    CallerAudio,
    CallerDone,
    CallerInput,
    Event,
    ListenFor,
    Processor,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    Transcribed,
    UtteranceTooShort,
)
from voice.call.timeline import Timeline

log = logging.getLogger("waihu.session")


SHORT_ANSWERS = ("yes_no", "score")  # the questions whose answer may end at a pause
EARLY_MIN_CONFIDENCE = 0.6  # a pause decode must be at least this sure to end the turn


@dataclass
class _PauseDecode:
    """The decode of an utterance up to a pause; `pause` tells which pause it belongs to."""

    pause: int
    task: asyncio.Task[Transcript | None]
    end_ms: int


class Transcription(Processor):
    def __init__(self, asr: AsrWorker, timeline: Timeline, *, pre_roll_ms: int,
                 accepting: Callable[[], bool] = lambda: True,
                 end_at_pause: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.asr = asr
        self.timeline = timeline
        self.accepting = accepting
        self.end_at_pause = end_at_pause  # None: every utterance waits for the full silence
        self._pause = 0  # counts pauses and restarts: a pause decode is for one pause only
        self._pause_decode: _PauseDecode | None = None
        self._ending_at_pause = False
        self.hints = Hints()
        self._utterance_hints = self.hints
        self._start_ms = 0
        self._pre_roll: deque[bytes] = deque(maxlen=max(1, pre_roll_ms // FRAME_MS))
        self._feed: asyncio.Queue[bytes | None] | None = None
        self._feeder: asyncio.Task[Transcript | None] | None = None
        self._decoding = 0  # utterances in ASR
        self.tasks: set[asyncio.Task[None]] = set()  # decodes and their delivery

    def listen_for(self, listen: ListenFor) -> None:
        self.hints = listen.hints

    @property
    def busy(self) -> bool:
        """An utterance is being fed or decoded: the silence timer waits."""
        return self._feeder is not None or self._decoding > 0

    async def process(self, event: Event) -> None:
        if isinstance(event, CallerAudio):
            await self.push(event)
            if self._feed is not None:
                self._feed.put_nowait(event.pcm)
            else:
                self._pre_roll.append(event.pcm)
            return
        await self.push(event)
        if isinstance(event, SpeechStarted):
            await self._started(event)
        elif isinstance(event, SpeechPaused):
            self._paused(event)
        elif isinstance(event, SpeechEnded):
            await self._ended(event)
        elif isinstance(event, UtteranceTooShort):
            self._drop_pause_decode()
            await self.stop()

    async def _started(self, event: SpeechStarted) -> None:
        self._drop_pause_decode()
        self._start_ms = event.at_ms
        if not self.accepting():
            return  # a disclosure is playing: this utterance is not an answer
        await self.stop()
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

    def _paused(self, event: SpeechPaused) -> None:
        """A pause in a short answer: decode what was said so far, in case it is all."""
        self._drop_pause_decode()
        if (self.end_at_pause is None or self._utterance_hints.expect not in SHORT_ANSWERS
                or not self.accepting()):
            return
        pause = self._pause
        task = asyncio.create_task(self.asr.transcribe(event.audio, self._utterance_hints))
        self._pause_decode = _PauseDecode(pause, task, event.at_ms)
        task.add_done_callback(lambda done: self._pause_decoded(pause, done))

    def _pause_decoded(self, pause: int, task: asyncio.Task[Transcript | None]) -> None:
        if pause != self._pause or task.cancelled() or task.exception() is not None:
            return
        transcript = task.result()
        if (transcript is not None and self.end_at_pause is not None and not transcript.unclear
                and transcript.text in self._utterance_hints.phrases
                and transcript.confidence >= EARLY_MIN_CONFIDENCE):
            self._ending_at_pause = True
            self.end_at_pause()

    def _drop_pause_decode(self) -> None:
        """The caller spoke again (or a new utterance began): the pause was not the end."""
        self._pause += 1
        self._ending_at_pause = False
        if self._pause_decode is not None:
            self._pause_decode.task.cancel()  # skipped if queued; a running one ends unused
            self._pause_decode = None

    def _pause_result(self, ended: SpeechEnded) -> Awaitable[Transcript | None] | None:
        """The decode of the pause this utterance ended in, if nothing was voiced since (the
        VAD reports no restart inside an utterance: the same last voiced frame tells)."""
        decode, self._pause_decode = self._pause_decode, None
        if decode is None or decode.pause != self._pause or decode.end_ms != ended.at_ms:
            if decode is not None:
                decode.task.cancel()
            return None
        return decode.task

    async def _ended(self, event: SpeechEnded) -> None:
        if not self.accepting() and self._feeder is None:
            return  # said over a disclosure
        at_pause = self._pause_result(event)
        if at_pause is not None:
            log.info("asr.end_at_pause call_id=%s early=%s", self.timeline.call_id,
                     self._ending_at_pause)
        self._ending_at_pause = False
        self._pause += 1
        feeder, feed = self._feeder, self._feed
        self._feeder = self._feed = None
        result: Awaitable[Transcript | None]
        if at_pause is not None:  # decoded at the pause: nothing new was said since
            if feeder is not None and feed is not None:
                feed.put_nowait(None)
                feeder.cancel()
            result = at_pause
        elif feeder is not None and feed is not None:
            feed.put_nowait(None)
            result = feeder
        else:  # a batch engine gets the utterance with its pre- and post-roll at once
            result = self.asr.transcribe(event.audio, self._utterance_hints)
        await self.push(CallerDone(self.timeline.now_ms()))
        self._decoding += 1
        task = asyncio.create_task(self._deliver(result, self._start_ms, event.at_ms))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, result: Awaitable[Transcript | None], start_ms: int,
                       end_ms: int) -> None:
        try:
            transcript = await result
        except Exception:
            log.exception("asr.failed call_id=%s", self.timeline.call_id)
            transcript = None
        finally:
            self._decoding -= 1
        log.info("asr.final call_id=%s engine=%s unclear=%s confidence=%.2f decode_ms=%.0f",
                 self.timeline.call_id, transcript.engine if transcript else "-",
                 CallerInput.kind_heard(transcript) == "unclear",
                 transcript.confidence if transcript else 0.0,
                 transcript.decode_ms if transcript else 0.0)
        await self.push(Transcribed(transcript, start_ms, end_ms))

    async def settle(self, timeout: float | None = None) -> None:
        """Until the decodes under way are delivered (or *timeout*)."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)

    async def forget(self) -> None:
        """The caller's audio went elsewhere for a while (a bridge): the utterance under
        way, its pause decode and the frames kept for pre-roll are dropped."""
        self._drop_pause_decode()
        self._pre_roll.clear()
        await self.stop()

    async def stop(self) -> None:
        """Drop the utterance being fed to a streaming recogniser."""
        feeder, feed = self._feeder, self._feed
        self._feeder = self._feed = None
        if feeder is not None and feed is not None:
            feed.put_nowait(None)
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder
