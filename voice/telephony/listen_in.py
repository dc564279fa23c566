"""An agent listening in unheard: the customer's voice and the bot's, mixed, sent to the
agent's leg; nothing the agent says reaches the customer.

It hangs on the customer leg's `on_frame` listeners rather than reading its `rx` queue, so
the call session, the recorder and this tap all see every frame, and taking over later
(`Leg.bridge`, which reads `rx`) starts from live audio.  The bot's frames (tx) run up to
300 ms ahead of the customer's (rx) on a baresip leg (bot audio is queued ahead in the
stack), so they wait in a short queue and each customer frame takes the oldest one: the
agent hears both at a steady lag.  What the agent's phone sends piles up in its leg's `rx`
(the oldest dropped), which `stop` empties, so a take-over does not start with it.

A supervisor monitoring a call (voice/call/monitor.py) listens the same way and may also be
heard: `talk_to` mixes what the listener's phone sends into what other legs send
(`Leg.mix_in`): whisper, the agent's leg; barge, the customer's too (and on a bot-only call
the customer hears the supervisor over the bot).  What reaches the customer's leg is in
its tx frames, so the recording holds it.  The listener is sent those frames without
their own voice (mix-minus: each frame says what was mixed into it, `Frame.mixed_in`),
or a barging supervisor would hear themselves back ~0.3 s late.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from voice.audio.frames import SILENCE_FRAME, Frame
from voice.audio.mixing import minus, mix
from voice.telephony.base import Direction, Leg

BOT_QUEUE_FRAMES = 50  # 1 s of the bot's frames waiting for the customer's to pair with
Targets = Callable[[], Sequence[Leg]]


class ListenIn:
    """`start()` makes *listener* hear *customer*'s call; `stop()` ends that."""

    def __init__(self, customer: Leg, listener: Leg) -> None:
        self.customer = customer
        self.listener = listener
        self.frames_sent = 0
        self.frames_spoken = 0  # frames of the listener's mixed into other legs
        self._bot: deque[bytes] = deque(maxlen=BOT_QUEUE_FRAMES)
        self._on = False
        self._targets: Targets | None = None

    def start(self) -> None:
        if not self._on:
            self._on = True
            self.customer.on_frame(self._frame)

    def talk_to(self, targets: Targets | None) -> None:
        """From now on what the listener's phone sends goes into the legs *targets()* gives
        at each frame (asked each time: an agent bridged later is heard too); None: the
        listener is unheard again."""
        if targets is not None and self._targets is None:
            self.listener.on_frame(self._spoken)
        elif targets is None and self._targets is not None:
            self.listener.off_frame(self._spoken)
        self._targets = targets

    def stop(self) -> None:
        self.talk_to(None)
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
            mine = frame.mixed_in if frame.mixed_in is not None \
                and self._heard_by(self.customer) else None
            self._bot.append(frame.pcm if mine is None else minus(frame.pcm, mine))
            return
        bot = self._bot.popleft() if self._bot else SILENCE_FRAME
        self.listener.play(frame.pcm if bot == SILENCE_FRAME else mix(frame.pcm, bot))
        self.frames_sent += 1

    def _heard_by(self, leg: Leg) -> bool:
        """Whether the listener's voice goes into *leg* now (then what *leg* mixed in is
        theirs: one supervisor at a time talks on a call)."""
        return self._targets is not None and leg in self._targets()

    def _spoken(self, direction: Direction, frame: Frame) -> None:
        if direction != "rx" or self._targets is None:
            return
        for leg in self._targets():
            if not leg.closed.is_set():
                leg.mix_in(frame.pcm)
                self.frames_spoken += 1
