"""Both sides of a bridged call, transcribed: the agent's labelled as the agent.

While the customer is bridged to an agent (the desk's take-over in desk_offer.py, the fixed
agent URI in transfer.py), what the agent's phone sends goes through a VAD with the session's
parameters and the call's ASR with free-speech hints, and each utterance is published as a
``turn.agent`` on the call's timeline: the transcript writer stores it as a turn of speaker
``agent`` (bot/transcript.py) and the desk shows it as it shows the others.  The customer's
leg is followed the same way and published as ``turn.customer``: the session stops sending
the customer's words to the dialogue at the bridge, but the transcript (and the agent
figures, QA and a hand-back's read-back review) need what the customer said to the agent.

It hangs on the agent leg's ``on_frame`` listeners (``rx``: what the agent's phone sent), as
ListenIn does on the customer leg, so the bridge's relay, which reads the leg's ``rx``
queue, and this tap both see every frame.  The VAD is the pure state machine of
voice/audio/vad.py, fed synchronously per frame (a level and a few counts); decodes go to the
call's `AsrWorker`, off the event loop.  An utterance is placed on the call's timeline from
the moment its end is detected (the VAD's own frame count back to its start), so frames
arriving in bursts do not shift it.  An utterance the engine could not make out is logged,
not stored.  `stop` (when the bridge ends) closes an utterance under way and waits a little
for the decodes still running, so that the agent's last words are stored before the call's
transcript is closed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot import events
from voice.asr.base import AsrWorker, Hints, Transcript
from voice.audio.frames import Frame
from voice.audio.vad import SpeechEnded, Vad, VadEvent, VadParams
from voice.call.timeline import Timeline
from voice.telephony.base import Direction, Leg

log = logging.getLogger("waihu.session")
FREE = Hints()  # the agent answers no question of the bot's: no phrases to expect
SETTLE_S = 5.0  # at the end of the bridge: how long the last decodes may take


class AgentSide:
    """`start()` transcribes what *agent* says (a leg: the agent's, or the customer's with
    *turn* ``turn.customer``); `await stop()` ends that."""

    def __init__(self, agent: Leg, asr: AsrWorker, timeline: Timeline, vad: VadParams, *,
                 settle_s: float = SETTLE_S, turn: str = events.TURN_AGENT) -> None:
        self.agent = agent
        self.turn = turn
        self.asr = asr
        self.timeline = timeline
        self.vad = Vad(vad)
        self.settle_s = settle_s
        self.turns = 0  # agent turns published
        self.unclear = 0  # utterances the engine could not make out
        self.failures = 0  # decodes that raised
        self._decodes: set[asyncio.Task[None]] = set()
        self._on = False

    @property
    def call_id(self) -> str:
        return self.timeline.call_id

    def start(self) -> None:
        if not self._on:
            self._on = True
            self.agent.on_frame(self._frame)

    async def stop(self) -> None:
        if self._on:
            self._on = False
            self.agent.off_frame(self._frame)
            self._handle(self.vad.flush())  # the agent's last words, cut by the hang-up
        if self._decodes:
            done, late = await asyncio.wait(set(self._decodes), timeout=self.settle_s)
            for task in late:
                task.cancel()
            if late:
                log.warning("asr.bridged_dropped call_id=%s turn=%s decodes=%d after %.1f s",
                            self.call_id, self.turn, len(late), self.settle_s)

    def _frame(self, direction: Direction, frame: Frame) -> None:
        if direction == "rx" and self._on:
            self._handle(self.vad.feed(frame.pcm))

    def _handle(self, found: list[VadEvent]) -> None:
        for event in found:
            if isinstance(event, SpeechEnded):
                self._decode(event)

    def _decode(self, ended: SpeechEnded) -> None:
        # The VAD's clock (frames fed so far) mapped onto the call's at this moment.
        offset = self.timeline.now_ms() - self.vad.frame_index * self.vad.params.frame_ms
        start_ms = offset + ended.at_ms - ended.duration_ms
        task = asyncio.create_task(self._transcribe(ended.audio, start_ms,
                                                    offset + ended.at_ms))
        self._decodes.add(task)
        task.add_done_callback(self._decodes.discard)

    async def _transcribe(self, pcm: bytes, start_ms: float, end_ms: float) -> None:
        try:
            transcript: Transcript = await self.asr.transcribe(pcm, FREE)
        except Exception:
            self.failures += 1
            log.exception("asr.bridged_failed call_id=%s turn=%s", self.call_id, self.turn)
            return
        text = transcript.text.strip()
        if transcript.unclear or not text:
            self.unclear += 1
            log.info("asr.bridged_unclear call_id=%s turn=%s engine=%s", self.call_id,
                     self.turn, transcript.engine)
            return
        self.turns += 1
        log.info("asr.bridged_final call_id=%s turn=%s engine=%s confidence=%.2f "
                 "decode_ms=%.0f", self.call_id, self.turn, transcript.engine,
                 transcript.confidence, transcript.decode_ms)
        self.timeline.publish(self.turn, start_ms, text=text, input_mode="speech",
                              asr_confidence=transcript.confidence,
                              end_offset_ms=int(end_ms))


@dataclass(frozen=True)
class AgentTranscriber:
    """What a hand-over needs to transcribe the agent: the call's ASR and VAD parameters
    (the session's, so the agent's words are cut as the customer's are)."""

    asr: AsrWorker
    vad: VadParams
    settle_s: float = SETTLE_S

    def follow(self, agent: Leg, timeline: Timeline, customer: Leg | None = None
               ) -> BridgedSides:
        """Transcribe *agent* (and *customer*, if given) until `stop()`."""
        sides = [AgentSide(agent, self.asr, timeline, self.vad, settle_s=self.settle_s)]
        if customer is not None:
            sides.append(AgentSide(customer, self.asr, timeline, self.vad,
                                   settle_s=self.settle_s, turn=events.TURN_CUSTOMER))
        for side in sides:
            side.start()
        return BridgedSides(sides)


@dataclass(frozen=True)
class BridgedSides:
    sides: list[AgentSide]

    @property
    def agent(self) -> AgentSide:
        return self.sides[0]

    async def stop(self) -> None:
        """Both sides' last words stored (each waits for its own decodes)."""
        await asyncio.gather(*(side.stop() for side in self.sides))
