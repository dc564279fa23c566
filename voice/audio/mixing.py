"""Adding one voice over another: 16-bit PCM frames summed, and the `Overlay` a leg sends
over its own audio (a supervisor whispering to an agent or barging in on a call).

An overlay is a short queue of frames that a leg mixes into whatever it sends next (the
bot's audio, a bridged party's, or silence when it has nothing of its own).  It is kept
apart from the leg's play buffer on purpose: the speaker waits for `Leg.playing` to end
before the customer may answer, and a supervisor talking over a bot-only call must not
hold the bot's turn open.  It keeps only the newest `OVERLAY_FRAMES`: a voice arriving
faster than the leg sends is cut rather than left to lag further and further behind.

Mix-minus: each participant hears the mix without their own voice.  A leg sends what it
mixed into each frame along with it (`Overlay.mixed` → `Frame.mixed_in`), and whoever
passes that frame on to the voice's owner takes it out again (`minus`): a barging
supervisor, who hears the customer leg's frames, does not hear themselves ~0.3 s late.
"""

from __future__ import annotations

from array import array

from voice.audio.frames import FRAME_BYTES

OVERLAY_FRAMES = 10  # 200 ms: at most this much of the added voice waits to go out


def mix(a: bytes, b: bytes) -> bytes:
    """Two frames of 16-bit PCM added, clipped to the sample range."""
    left, right = array("h"), array("h")
    left.frombytes(a)
    right.frombytes(b)
    return array("h", (max(-32768, min(32767, x + y))
                       for x, y in zip(left, right, strict=False))).tobytes()


def minus(mixed: bytes, part: bytes) -> bytes:
    """*mixed* (from `mix`) without *part*: exact unless the mix clipped."""
    whole, taken = array("h"), array("h")
    whole.frombytes(mixed)
    taken.frombytes(part)
    return array("h", (max(-32768, min(32767, x - y))
                       for x, y in zip(whole, taken, strict=False))).tobytes()


class Overlay:
    """Frames waiting to be sent over a leg's own audio.  Not thread-safe: a leg whose audio
    moves on another thread (leg_audio.py) guards it with its own lock."""

    def __init__(self, limit_frames: int = OVERLAY_FRAMES) -> None:
        self._pcm = bytearray()
        self._limit = limit_frames * FRAME_BYTES
        self.frames_dropped = 0  # frames cut because the leg was not taking them

    def __bool__(self) -> bool:
        return len(self._pcm) >= FRAME_BYTES

    def add(self, pcm: bytes) -> None:
        self._pcm += pcm
        excess = len(self._pcm) - self._limit
        if excess > 0:
            cut = -(-excess // FRAME_BYTES) * FRAME_BYTES  # whole frames, the oldest
            del self._pcm[:cut]
            self.frames_dropped += cut // FRAME_BYTES

    def take(self) -> bytes | None:
        """The next whole frame on its own (the leg has nothing else to send), if any."""
        if len(self._pcm) < FRAME_BYTES:
            return None
        frame = bytes(self._pcm[:FRAME_BYTES])
        del self._pcm[:FRAME_BYTES]
        return frame

    def over(self, frame: bytes) -> bytes:
        """*frame* with the next overlay frame mixed in (unchanged when there is none)."""
        return self.mixed(frame)[0]

    def mixed(self, frame: bytes) -> tuple[bytes, bytes | None]:
        """*frame* with the next overlay frame mixed in, and that overlay frame (None, and
        *frame* unchanged, when there is none).  A frame sent alone (`take`) is all
        overlay."""
        added = self.take()
        return (frame, None) if added is None else (mix(frame, added), added)

    def clear(self) -> None:
        self._pcm.clear()
