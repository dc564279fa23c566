"""A stereo call recording written as the call goes, and the repair of one a crash left.

The caller is the left channel, the bot the right one, 8 kHz 16-bit, on the call's timeline:
a frame belongs to slot `timestamp_ms // 20` and slots nobody filled are silence, exactly as
`voice.audio.frames.StereoRecorder` (which keeps a whole call in memory) lays them out.

- `StereoSlots` is the pure part: the last second or so of both channels, so that the
  frames of the two directions (which arrive in separate batches, the bot's up to 300 ms
  ahead) are interleaved once both are there.  Older slots are handed out in order as one
  block; a frame that comes for a slot already handed out becomes a `Patch` of that slot.
- `WavFile` is the file: a 44-byte header whose sizes always match what has been written
  (so even a file cut off by a crash is a playable WAV up to its last write), blocks written
  at their slot's offset, patches read-modify-written, `finish` fixes the header, renames
  `<name>.partial` to its final name and returns the sha256.  The writer holds an exclusive
  `flock` on the partial file for the life of the recording: the lock goes with the
  process, which is how `finalise_partial` tells a file a dead gateway left from one a live
  gateway is still writing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voice.audio.frames import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, SAMPLE_WIDTH, SILENCE_FRAME

HEADER_BYTES = 44
CHANNELS = 2
SLOT_BYTES = FRAME_BYTES * CHANNELS  # one 20 ms stereo slot: 640 bytes
BLOCK_ALIGN = SAMPLE_WIDTH * CHANNELS
PARTIAL_SUFFIX = ".partial"
CALLER, BOT = 0, 1  # channel index: left, right


def wav_header(data_bytes: int) -> bytes:
    """The canonical 44-byte PCM header of an 8 kHz 16-bit stereo WAV of *data_bytes*."""
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16,
                       1, CHANNELS, SAMPLE_RATE, SAMPLE_RATE * BLOCK_ALIGN, BLOCK_ALIGN,
                       SAMPLE_WIDTH * 8, b"data", data_bytes)


def interleave(left: bytes, right: bytes) -> bytes:
    """Two mono 16-bit LE channels of equal length → interleaved stereo (byte order kept)."""
    a, b = array("h", left), array("h", right)
    both = array("h", bytes(len(left) + len(right)))
    both[0::2] = a
    both[1::2] = b
    return both.tobytes()


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive stereo slots from `start_slot` on."""

    start_slot: int
    pcm: bytes


@dataclass(frozen=True, slots=True)
class Patch:
    """A frame that came after its slot was handed out: replaces one channel of it."""

    slot: int
    channel: int
    pcm: bytes


class StereoSlots:
    """Both channels' recent slots until they are old enough to be written together.

    Not thread-safe: the owner serialises calls."""

    def __init__(self) -> None:
        self._frames: tuple[dict[int, bytes], dict[int, bytes]] = ({}, {})
        self.written = 0  # slots before this one have been handed out
        self.newest = -1  # the last slot any frame filled

    def add(self, channel: int, timestamp_ms: int, pcm: bytes) -> Patch | None:
        slot = timestamp_ms // FRAME_MS
        self.newest = max(self.newest, slot)
        if slot < self.written:
            return Patch(slot, channel, pcm)
        self._frames[channel][slot] = pcm  # a later frame for a slot replaces the earlier
        return None

    def pending(self) -> int:
        """Slots filled or passed over that have not been handed out."""
        return self.newest + 1 - self.written

    def take(self, upto: int) -> Block | None:
        """Slots `written … upto-1` as one block (silence where no frame came)."""
        if upto <= self.written:
            return None
        left, right = self._frames
        slots = range(self.written, upto)
        block = Block(self.written, interleave(
            b"".join(left.pop(i, SILENCE_FRAME) for i in slots),
            b"".join(right.pop(i, SILENCE_FRAME) for i in slots)))
        self.written = upto
        return block

    def take_older_than(self, lag_slots: int) -> Block | None:
        return self.take(self.newest + 1 - lag_slots)

    def take_all(self) -> Block | None:
        return self.take(self.newest + 1)

    @property
    def duration_ms(self) -> int:
        return (self.newest + 1) * FRAME_MS


class WavFile:
    """One recording on disk, opened as `<final>.partial` and locked for its writer."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.partial = partial_path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(self._fd, wav_header(0))
        except BaseException:
            os.close(self._fd)
            raise
        self.data_bytes = 0

    def write(self, block: Block) -> None:
        """The block at its place on the timeline; the header then says the new length."""
        offset = block.start_slot * SLOT_BYTES
        _pwrite_all(self._fd, block.pcm, HEADER_BYTES + offset)
        end = offset + len(block.pcm)
        if end > self.data_bytes:
            self.data_bytes = end
            _pwrite_all(self._fd, wav_header(end), 0)

    def patch(self, patch: Patch) -> None:
        """One channel of a slot already written (a frame that came late)."""
        offset = HEADER_BYTES + patch.slot * SLOT_BYTES
        slot = os.pread(self._fd, SLOT_BYTES, offset).ljust(SLOT_BYTES, b"\0")
        samples = array("h", slot)
        samples[patch.channel::2] = array("h", patch.pcm)
        self.write(Block(patch.slot, samples.tobytes()))

    def sync(self) -> None:
        os.fsync(self._fd)

    def finish(self) -> str:
        """Header final, data on disk, renamed to the final name; its sha256."""
        self.sync()
        os.replace(self.partial, self.final)  # still locked: nobody else repairs it
        _sync_dir(self.final.parent)
        os.close(self._fd)
        return file_sha256(self.final)

    def close(self) -> None:
        """Give up the file (after a failure): it stays as a partial recording."""
        with contextlib.suppress(OSError):  # finish may have closed it already
            os.close(self._fd)


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + PARTIAL_SUFFIX)


def final_path(partial: Path) -> Path:
    return partial.with_name(partial.name.removesuffix(PARTIAL_SUFFIX))


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def finalise_partial(partial: Path, link: Callable[[Path, str], None] | None = None
                     ) -> tuple[Path, str] | None:
    """Repair a partial recording whose writer died: cut a torn last sample, set the
    header's sizes from the file's size, rename it to its final name and call *link(final
    path, sha256)* (the call's row, which may read the file).  Whatever *link* raises puts
    the file back under its partial name, for the next run to try again.  None if a live
    process still holds the file (its writer is recording)."""
    fd = os.open(partial, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        size = os.fstat(fd).st_size
        data = max(0, size - HEADER_BYTES)
        data -= data % BLOCK_ALIGN
        if size < HEADER_BYTES:
            os.ftruncate(fd, 0)
        else:
            os.ftruncate(fd, HEADER_BYTES + data)
        _pwrite_all(fd, wav_header(data), 0)
        os.fsync(fd)
        final, sha256 = final_path(partial), file_sha256(partial)
        os.replace(partial, final)  # still locked: a second recovery cannot race this one
        if link is not None:
            try:
                link(final, sha256)
            except BaseException:
                os.replace(final, partial)
                raise
        _sync_dir(final.parent)
    finally:
        os.close(fd)
    return final, sha256


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def _sync_dir(folder: Path) -> None:
    """The rename itself survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
