"""The call's timeline and its voice on the event bus.

Every stage measures on one clock (ms since the session started, from an injected
monotonic clock) and stamps what it publishes with the call's own date (`call_start`,
virtual in a simulation).  Turns and other call events go out on the bus (`bot.events`);
the transcript writer (`bot.transcript.TranscriptSink`) is one subscriber.
"""

from __future__ import annotations

from bot import events
from bot.channel import BotReply
from bot.events import CallTimeline
from voice.call.events import CallerInput


class Timeline(CallTimeline):
    """The call's timeline with the turn events the voice stages publish."""

    def bot_turn(self, text: str, start_ms: float) -> None:
        self.publish(events.TURN_BOT, start_ms, text=text, end_offset_ms=int(self.now_ms()))

    def customer_turn(self, text: str, got: CallerInput, mode: str,
                      confidence: float | None, snapped: bool = False) -> None:
        self.publish(events.TURN_CUSTOMER, got.at_ms, text=text, input_mode=mode,
                     asr_confidence=confidence, asr_snapped=snapped,
                     end_offset_ms=got.end_ms or got.at_ms)

    def classified(self, reply: BotReply) -> None:
        """What the classifier made of the customer's last turn, if Rasa's answer says."""
        if reply.classified:
            self.publish(events.TURN_CLASSIFIED, self.now_ms(), **reply.classified)

    def system_turn(self, text: str, at_ms: float | None = None) -> None:
        self.publish(events.TURN_SYSTEM, self.now_ms() if at_ms is None else at_ms, text=text)
