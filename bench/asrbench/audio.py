"""The line between the customer and the gateway: noise at a chosen SNR, then G.711.

The signal power is measured over the speech, not the whole clip: 20 ms frames within
``ACTIVE_RANGE_DB`` of the loudest frame (Kokoro leaves ~0.4 s of silence before a reply and
~1 s after it, which would otherwise lower the measured power and the noise with it).  The
noise covers the whole clip, silences included, as line noise does.  Each clip's noise comes
from a generator seeded by the clip's name, so runs are reproducible and independent of
the order the clips are processed in.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from voice.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

SAMPLE_RATE = 8000
FRAME = SAMPLE_RATE // 50  # 20 ms
ACTIVE_RANGE_DB = 30.0

CODECS: dict[str, Callable[[bytes], bytes]] = {
    "pcma": lambda pcm: alaw_decode(alaw_encode(pcm)),
    "pcmu": lambda pcm: ulaw_decode(ulaw_encode(pcm)),
    "none": lambda pcm: pcm,
}


def samples(pcm: bytes) -> np.ndarray:
    """16-bit PCM → float64 samples in sample units (not scaled)."""
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)


def to_pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def speech_power(x: np.ndarray, active_range_db: float = ACTIVE_RANGE_DB) -> float:
    """Mean square of the frames within ``active_range_db`` of the loudest frame."""
    if not len(x):
        return 0.0
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME) if len(x) >= FRAME else \
        x.reshape(1, -1)
    power = (frames ** 2).mean(axis=1)
    loudest = float(power.max())
    if loudest <= 0.0:
        return 0.0
    return float(power[power >= loudest * 10 ** (-active_range_db / 10)].mean())


def seed_of(name: str, seed: int = 0) -> int:
    return zlib.crc32(name.encode()) ^ seed


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise: ``white``, or ``pink`` (power falling 3 dB per octave)."""
    white = rng.standard_normal(n)
    if kind == "white" or n < 2:
        out = white
    elif kind == "pink":
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n)
        freqs[0] = freqs[1]  # no infinite DC gain
        out = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    else:
        raise ValueError(f"unknown noise {kind!r} (white or pink)")
    power = float((out ** 2).mean())
    return out / np.sqrt(power) if power > 0 else out


def add_noise(pcm: bytes, snr_db: float, kind: str, seed: int) -> bytes:
    """``pcm`` with ``kind`` noise at ``snr_db`` below its speech power."""
    x = samples(pcm)
    signal = speech_power(x)
    if signal <= 0.0:
        return pcm
    scale = np.sqrt(signal / 10 ** (snr_db / 10))
    return to_pcm(x + scale * noise(kind, len(x), np.random.default_rng(seed)))


def line(pcm: bytes, codec: str, snr_db: float | None, kind: str, name: str,
         seed: int = 0) -> bytes:
    """What the gateway receives: the reply (with line noise, if ``snr_db``) through the
    codec's encoder and decoder."""
    if snr_db is not None:
        pcm = add_noise(pcm, snr_db, kind, seed_of(name, seed))
    return CODECS[codec](pcm)
