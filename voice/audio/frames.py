"""20 ms telephony frames, level, splitting, resampling and the stereo call recorder.

PCM everywhere is 16-bit signed little-endian mono unless stated otherwise.
"""

from __future__ import annotations

import hashlib
import math
import sys
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_MS = 20
SAMPLE_WIDTH = 2
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_WIDTH  # 320
SILENCE_FRAME = bytes(FRAME_BYTES)

_BIG_ENDIAN = sys.byteorder == "big"


@dataclass(frozen=True, slots=True)
class Frame:
    """One 20 ms frame of 8 kHz PCM; `timestamp_ms` is its start on the call timeline."""

    pcm: bytes
    timestamp_ms: int
    # What the leg added over its own audio in this frame (a supervisor's voice,
    # `Leg.mix_in`; voice/audio/mixing.py), so that the one who said it can be sent the
    # frame without it (mix-minus).
    mixed_in: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.pcm) != FRAME_BYTES:
            raise ValueError(f"a frame holds {FRAME_BYTES} bytes, got {len(self.pcm)}")
        if self.timestamp_ms < 0:
            raise ValueError(f"frame timestamp must be >= 0, got {self.timestamp_ms}")


def samples(pcm: bytes) -> array[int]:
    """16-bit LE PCM bytes → array('h') in host order."""
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
    values = array("h", pcm)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def to_pcm(values: array[int]) -> bytes:
    """array('h') in host order → 16-bit LE PCM bytes."""
    if _BIG_ENDIAN:
        values = array("h", values)
        values.byteswap()
    return values.tobytes()


def rms(pcm: bytes) -> float:
    """Root mean square of the samples (0.0 for empty input); full scale is 32768."""
    values = samples(pcm)
    if not values:
        return 0.0
    return math.sqrt(math.fsum(v * v for v in values) / len(values))


def dbfs(pcm: bytes) -> float:
    """Level in dB relative to full scale (32768); silence gives -120.0."""
    level = rms(pcm)
    return 20.0 * math.log10(level / 32768.0) if level > 0 else -120.0


def split_frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Cut PCM into frames of `frame_bytes`; the last one is padded with silence."""
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
    frames = [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] = frames[-1] + bytes(frame_bytes - len(frames[-1]))
    return frames


def _lowpass_taps(cutoff: float, taps: int) -> list[float]:
    """Hamming-windowed sinc low-pass, `cutoff` as a fraction of the sample rate, unity DC gain."""
    middle = (taps - 1) / 2
    kernel = []
    for n in range(taps):
        t = n - middle
        ideal = 2 * cutoff if t == 0 else math.sin(2 * math.pi * cutoff * t) / (math.pi * t)
        window = 0.54 - 0.46 * math.cos(2 * math.pi * n / (taps - 1))
        kernel.append(ideal * window)
    total = math.fsum(kernel)
    return [k / total for k in kernel]


def _fir(values: list[float], kernel: list[float]) -> list[float]:
    half = len(kernel) // 2
    padded = [0.0] * half + values + [0.0] * half
    rev = kernel[::-1]
    width = len(kernel)
    return [math.fsum(map(float.__mul__, rev, padded[i : i + width])) for i in range(len(values))]


def resample_linear(
    pcm: bytes, src_rate: int, dst_rate: int = SAMPLE_RATE, *, taps: int = 63
) -> bytes:
    """Resample mono PCM by linear interpolation.

    When downsampling (e.g. TTS at 22 050 Hz → 8 kHz) the signal is first low-pass filtered
    with a `taps`-tap Hamming-windowed-sinc FIR whose cutoff is 0.45 × `dst_rate` (3.6 kHz for
    8 kHz output), so content above the new Nyquist frequency is attenuated rather than folded
    back into the speech band. A windowed sinc was chosen over a moving average because a
    moving average has weak stop-band attenuation (first side lobe only ~13 dB down) and dulls
    the 2–3.4 kHz band that matters for intelligibility. Upsampling needs no filter.
    Pure Python: ~0.1–0.3 s per second of 22 kHz audio, meant for prompts synthesised ahead
    of time, not for the per-frame hot path.
    """
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} → {dst_rate}")
    values = samples(pcm)
    if src_rate == dst_rate or not values:
        return to_pcm(values) if values else b""
    source: list[float] = [float(v) for v in values]
    if dst_rate < src_rate:
        source = _fir(source, _lowpass_taps(0.45 * dst_rate / src_rate, taps))
    out_len = (len(source) * dst_rate) // src_rate
    last = len(source) - 1
    out = array("h", bytes(2 * out_len))
    for i in range(out_len):
        pos = i * src_rate / dst_rate
        j = int(pos)
        frac = pos - j
        a = source[j]
        b = source[j + 1] if j < last else a
        value = round(a + (b - a) * frac)
        out[i] = max(-32768, min(32767, value))
    return to_pcm(out)


class StereoRecorder:
    """Collects caller (left) and bot (right) 20 ms frames on one call timeline.

    A frame goes into slot `timestamp_ms // 20`; slots with no frame are silence, so the two
    channels stay aligned however irregularly frames arrive. A later frame for the same slot
    and channel replaces the earlier one. `write` produces an 8 kHz 16-bit stereo WAV whose
    length is the last filled slot of either channel.
    """

    def __init__(self) -> None:
        self._caller: dict[int, bytes] = {}
        self._bot: dict[int, bytes] = {}

    def add_caller(self, frame: Frame) -> None:
        self._caller[frame.timestamp_ms // FRAME_MS] = frame.pcm

    def add_bot(self, frame: Frame) -> None:
        self._bot[frame.timestamp_ms // FRAME_MS] = frame.pcm

    @property
    def duration_ms(self) -> int:
        slots = max([*self._caller, *self._bot], default=-1) + 1
        return slots * FRAME_MS

    def _channel(self, frames: dict[int, bytes], slots: int) -> array[int]:
        return samples(b"".join(frames.get(i, SILENCE_FRAME) for i in range(slots)))

    def stereo_pcm(self) -> bytes:
        """Interleaved L/R 16-bit LE PCM of the whole timeline."""
        slots = self.duration_ms // FRAME_MS
        left = self._channel(self._caller, slots)
        right = self._channel(self._bot, slots)
        both = array("h", bytes(4 * len(left)))
        both[0::2] = left
        both[1::2] = right
        return to_pcm(both)

    def write(self, path: Path | str) -> str:
        """Write the stereo WAV and return the sha256 hex digest of the file."""
        target = Path(path)
        with wave.open(str(target), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(SAMPLE_WIDTH)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(self.stereo_pcm())
        return hashlib.sha256(target.read_bytes()).hexdigest()
