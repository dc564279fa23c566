"""G.711 A-law / µ-law: reference values and exhaustive round trips."""

from __future__ import annotations

import struct

import pytest

from voice.audio import g711

ALL_SAMPLES = list(range(-32768, 32768))
ALL_PCM = struct.pack(f"<{len(ALL_SAMPLES)}h", *ALL_SAMPLES)


def _samples(pcm: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(pcm) // 2}h", pcm)


def test_silence_reference_values() -> None:
    assert g711.alaw_encode(b"\x00\x00") == b"\xd5"
    assert g711.ulaw_encode(b"\x00\x00") == b"\xff"
    assert _samples(g711.ulaw_decode(b"\xff")) == (0,)
    # µ-law "negative zero" also decodes to 0; A-law has no zero: 0xD5/0x55 are ±8
    assert _samples(g711.ulaw_decode(b"\x7f")) == (0,)
    assert _samples(g711.alaw_decode(b"\xd5\x55")) == (8, -8)


@pytest.mark.parametrize(
    ("sample", "alaw", "ulaw"),
    [
        (32767, 0xAA, 0x80),
        (-32768, 0x2A, 0x00),
        (1, 0xD5, 0xFF),
        (-1, 0x55, 0x7F),
        (100, 0xD3, 0xF2),
        (-100, 0x53, 0x72),
    ],
)
def test_encode_reference_values(sample: int, alaw: int, ulaw: int) -> None:
    pcm = struct.pack("<h", sample)
    assert g711.alaw_encode(pcm)[0] == alaw
    assert g711.ulaw_encode(pcm)[0] == ulaw


def test_full_scale_decode() -> None:
    assert _samples(g711.alaw_decode(b"\xaa\x2a")) == (32256, -32256)
    assert _samples(g711.ulaw_decode(b"\x80\x00")) == (32124, -32124)


def test_sign_symmetry_of_decode_tables() -> None:
    for code in range(128):
        assert g711.alaw_decode_sample(code) == -g711.alaw_decode_sample(code | 0x80)
        assert g711.ulaw_decode_sample(code) == -g711.ulaw_decode_sample(code | 0x80)


def _alaw_step(code: int) -> int:
    seg = ((code ^ 0x55) & 0x70) >> 4
    return 16 if seg < 2 else 16 << (seg - 1)


def _ulaw_step(code: int) -> int:
    seg = ((~code & 0xFF) & 0x70) >> 4
    return 8 << seg


def test_alaw_round_trip_every_sample_within_half_step() -> None:
    codes = g711.alaw_encode(ALL_PCM)
    decoded = _samples(g711.alaw_decode(codes))
    for x, y, code in zip(ALL_SAMPLES, decoded, codes, strict=True):
        assert abs(x - y) <= _alaw_step(code) // 2, (x, y, hex(code))


def test_ulaw_round_trip_every_sample_within_step() -> None:
    codes = g711.ulaw_encode(ALL_PCM)
    decoded = _samples(g711.ulaw_decode(codes))
    for x, y, code in zip(ALL_SAMPLES, decoded, codes, strict=True):
        step = _ulaw_step(code)
        if abs(x) <= g711.ULAW_CLIP:
            assert abs(x - y) <= step, (x, y, hex(code))
        else:  # clipped: decodes to the top value, still within one step
            assert abs(y) == 32124
            assert abs(x - y) <= step


def test_alaw_every_byte_round_trips() -> None:
    codes = bytes(range(256))
    assert g711.alaw_encode(g711.alaw_decode(codes)) == codes


def test_ulaw_every_byte_round_trips_except_negative_zero() -> None:
    codes = bytes(b for b in range(256) if b != 0x7F)
    assert g711.ulaw_encode(g711.ulaw_decode(codes)) == codes
    assert g711.ulaw_encode(g711.ulaw_decode(b"\x7f")) == b"\xff"


def test_monotonic_decode() -> None:
    """Decoded values of all codes, sorted by encoder order, rise with the input."""
    for encode, decode in (
        (g711.alaw_encode_sample, g711.alaw_decode_sample),
        (g711.ulaw_encode_sample, g711.ulaw_decode_sample),
    ):
        previous = -40000
        for x in range(-32768, 32768, 7):
            y = decode(encode(x))
            assert y >= previous
            previous = y


def test_odd_length_pcm_rejected() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        g711.alaw_encode(b"\x00\x00\x00")
    with pytest.raises(ValueError, match="even number of bytes"):
        g711.ulaw_encode(b"\x00")


def test_empty_input() -> None:
    assert g711.alaw_encode(b"") == b""
    assert g711.ulaw_decode(b"") == b""
