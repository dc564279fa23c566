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

Out: `CallerDone` when an utterance goes to be decoded, `Transcribed` when it is; every
other event passes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

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
    SpeechStarted,
    Transcribed,
    UtteranceTooShort,
)
from voice.call.timeline import Timeline

log = logging.getLogger("waihu.session")


class Transcription(Processor):
    def __init__(self, asr: AsrWorker, timeline: Timeline, *, pre_roll_ms: int,
                 accepting: Callable[[], bool] = lambda: True) -> None:
        super().__init__()
        self.asr = asr
        self.timeline = timeline
        self.accepting = accepting
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
        elif isinstance(event, SpeechEnded):
            await self._ended(event)
        elif isinstance(event, UtteranceTooShort):
            await self.stop()

    async def _started(self, event: SpeechStarted) -> None:
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

    async def _ended(self, event: SpeechEnded) -> None:
        if not self.accepting() and self._feeder is None:
            return  # said over a disclosure
        feeder, feed = self._feeder, self._feed
        self._feeder = self._feed = None
        if feeder is not None and feed is not None:
            feed.put_nowait(None)
            result: Awaitable[Transcript | None] = feeder
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

    async def stop(self) -> None:
        """Drop the utterance being fed to a streaming recogniser."""
        feeder, feed = self._feeder, self._feed
        self._feeder = self._feed = None
        if feeder is not None and feed is not None:
            feed.put_nowait(None)
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder
