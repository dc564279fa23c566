"""An agent listening in unheard: the customer's voice and the bot's, mixed, sent to the
agent's leg; nothing the agent says reaches the customer.

It hangs on the customer leg's `on_frame` listeners rather than reading its `rx` queue, so
the call session, the recorder and this tap all see every frame, and taking over later
(`Leg.bridge`, which reads `rx`) starts from live audio.  The bot's frames (tx) run up to
300 ms ahead of the customer's (rx) on a baresip leg (bot audio is queued ahead in the
stack), so they wait in a short queue and each customer frame takes the oldest one: the
agent hears both at a steady lag.  What the agent's phone sends piles up in its leg's `rx`
(the oldest dropped), which `stop` empties, so a take-over does not start with it.
"""

from __future__ import annotations

from array import array
from collections import deque

from voice.audio.frames import SILENCE_FRAME, Frame
from voice.telephony.base import Direction, Leg

BOT_QUEUE_FRAMES = 50  # 1 s of the bot's frames waiting for the customer's to pair with


def mix(a: bytes, b: bytes) -> bytes:
    """Two frames of 16-bit PCM added, clipped to the sample range."""
    left, right = array("h"), array("h")
    left.frombytes(a)
    right.frombytes(b)
    return array("h", (max(-32768, min(32767, x + y))
                       for x, y in zip(left, right, strict=False))).tobytes()


class ListenIn:
    """`start()` makes *listener* hear *customer*'s call; `stop()` ends that."""

    def __init__(self, customer: Leg, listener: Leg) -> None:
        self.customer = customer
        self.listener = listener
        self.frames_sent = 0
        self._bot: deque[bytes] = deque(maxlen=BOT_QUEUE_FRAMES)
        self._on = False

    def start(self) -> None:
        if not self._on:
            self._on = True
            self.customer.on_frame(self._frame)

    def stop(self) -> None:
        if self._on:
            self._on = False
            self.customer.off_frame(self._frame)
        self._bot.clear()
        while not self.listener.rx.empty():  # what the agent said while listening
            self.listener.rx.get_nowait()

    def _frame(self, direction: Direction, frame: Frame) -> None:
        if self.listener.closed.is_set():
            return
        if direction == "tx":
            self._bot.append(frame.pcm)
            return
        bot = self._bot.popleft() if self._bot else SILENCE_FRAME
        self.listener.play(frame.pcm if bot == SILENCE_FRAME else mix(frame.pcm, bot))
        self.frames_sent += 1
