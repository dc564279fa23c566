"""RTP for the simphone: packets (RFC 3550), DTMF events (RFC 4733) and a paced G.711 session.

`RtpPacket` and `DtmfEvent` are pure dataclasses with `parse` / `__bytes__`. `RtpSession` is
the transport: it sends one 20 ms packet per tick on absolute deadlines (silence when nothing
is queued, so the far end's jitter buffer and RTP timeout stay happy), plays queued PCM,
replaces audio by RFC 4733 events while a digit is sent, and decodes what it receives into
20 ms PCM frames for the caller's callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from voice.audio.frames import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SILENCE_FRAME, split_frames
from voice.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

log = logging.getLogger("waihu.simphone.rtp")

RTP_VERSION = 2
PT_PCMU = 0
PT_PCMA = 8
DTMF_EVENTS = "0123456789*#ABCD"  # RFC 4733 §3.2: events 0-15
FRAME_S = FRAME_MS / 1000

CODECS: dict[int, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    PT_PCMA: (alaw_encode, alaw_decode),
    PT_PCMU: (ulaw_encode, ulaw_decode),
}


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: bytes = b""  # the whole header extension (profile, length, data), as received
    padding: int = 0  # number of padding bytes, the last of which holds the count

    HEADER = struct.Struct("!BBHII")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < 12:
            raise ValueError(f"RTP packet of {len(data)} bytes is shorter than its 12-byte header")
        first, second, sequence, timestamp, ssrc = cls.HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise ValueError(f"RTP version {first >> 6}, expected 2")
        offset = 12
        count = first & 0x0F
        if len(data) < offset + 4 * count:
            raise ValueError(f"RTP packet truncated in its {count} CSRCs")
        csrc = struct.unpack_from(f"!{count}I", data, offset)
        offset += 4 * count
        extension = b""
        if first & 0x10:
            if len(data) < offset + 4:
                raise ValueError("RTP packet truncated in its header extension")
            words = struct.unpack_from("!H", data, offset + 2)[0]
            end = offset + 4 + 4 * words
            if len(data) < end:
                raise ValueError("RTP header extension longer than the packet")
            extension, offset = data[offset:end], end
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or offset + padding > len(data):
                raise ValueError(f"bad RTP padding count {padding}")
        payload = data[offset:len(data) - padding]
        return cls(second & 0x7F, sequence, timestamp, ssrc, payload, bool(second & 0x80),
                   tuple(csrc), extension, padding)

    def __bytes__(self) -> bytes:
        first = (RTP_VERSION << 6) | (0x20 if self.padding else 0) \
            | (0x10 if self.extension else 0) | len(self.csrc)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        head = self.HEADER.pack(first, second, self.sequence & 0xFFFF,
                                self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF)
        pad = bytes(self.padding - 1) + bytes([self.padding]) if self.padding else b""
        return (head + struct.pack(f"!{len(self.csrc)}I", *self.csrc) + self.extension
                + self.payload + pad)


@dataclass(frozen=True)
class DtmfEvent:
    """The 4-byte RFC 4733 telephone-event payload."""

    event: int
    end: bool
    volume: int  # 0..63, as -dBm0
    duration: int  # in timestamp units (samples at 8 kHz)

    @classmethod
    def parse(cls, data: bytes) -> DtmfEvent:
        if len(data) < 4:
            raise ValueError(f"telephone-event payload of {len(data)} bytes, expected 4")
        event, flags, duration = struct.unpack_from("!BBH", data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise ValueError(f"DTMF volume {self.volume} is outside 0..63")
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | self.volume,
                           min(self.duration, 0xFFFF))

    @property
    def digit(self) -> str:
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else f"#{self.event}"


def dtmf_payloads(digit: str, duration_ms: int = 100, volume: int = 10,
                  end_repeats: int = 3) -> list[DtmfEvent]:
    """The event payloads of one digit, one per 20 ms packet (RFC 4733 §2.5.1): the duration
    grows by a packet's worth each time, and the final (end) packet is sent `end_repeats`
    times. All of them share the event's start timestamp; the first carries the marker."""
    if len(digit) != 1 or digit.upper() not in DTMF_EVENTS:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    event = DTMF_EVENTS.index(digit.upper())
    packets = max(1, -(-duration_ms // FRAME_MS))
    out = [DtmfEvent(event, False, volume, FRAME_SAMPLES * n) for n in range(1, packets)]
    final = DtmfEvent(event, True, volume, FRAME_SAMPLES * packets)
    return out + [final] * end_repeats


@dataclass(frozen=True)
class ReceivedFrame:
    """20 ms of decoded PCM: `arrival` (clock seconds) of the packet that completed it, and
    `media_ms`, its position on the sender's timeline counted from the first packet."""

    pcm: bytes
    arrival: float
    media_ms: int


@dataclass
class Playback:
    """One queued utterance. `started`/`ended` are clock times of its first frame's send and
    the end of its last frame (send time + 20 ms); `done` resolves when it has all gone out
    or was stopped (then `interrupted` is true)."""

    label: str
    frames: list[bytes]
    done: asyncio.Future[None]
    started: float | None = None
    ended: float | None = None
    interrupted: bool = False
    sent: int = 0


@dataclass
class _Digit:
    payloads: list[DtmfEvent]
    done: asyncio.Future[None]
    gap_frames: int
    timestamp: int | None = None
    started: float | None = None
    ended: float | None = None
    index: int = 0


class RtpSession(asyncio.DatagramProtocol):
    """One call's RTP stream on a UDP socket of its own.

    `on_frame(ReceivedFrame)` is called for every 20 ms of received audio, `on_digit(str)` on
    the end of every received RFC 4733 event, `on_sent(pcm, sent_at, slot)` for every frame
    sent (silence included; `slot` counts 20 ms ticks since `start`).
    """

    def __init__(self, payload_type: int = PT_PCMA, dtmf_payload_type: int | None = 101, *,
                 clock: Callable[[], float] = time.monotonic,
                 on_frame: Callable[[ReceivedFrame], None] | None = None,
                 on_digit: Callable[[str], None] | None = None,
                 on_sent: Callable[[bytes, float, int], None] | None = None) -> None:
        if payload_type not in CODECS:
            raise ValueError(f"RTP payload type {payload_type} is not G.711 (0 or 8)")
        self.payload_type = payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self._encode, self._decode = CODECS[payload_type]
        self._clock = clock
        self.on_frame = on_frame
        self.on_digit = on_digit
        self.on_sent = on_sent
        self.remote: tuple[str, int] | None = None
        self.ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts0 = secrets.randbits(32)
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: asyncio.Task[None] | None = None
        self._queue: deque[Playback] = deque()
        self._digits: deque[_Digit] = deque()
        self._rx_buffer = b""
        self._rx_first_ts: int | None = None
        self._rx_samples = 0
        self._rx_last_event: tuple[int, int] | None = None  # (timestamp, event) already reported
        self.started_at: float | None = None
        self.packets_sent = 0
        self.packets_received = 0
        self.late_ticks = 0

    # --- socket ---------------------------------------------------------------------------

    async def open(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    @property
    def local_address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("RTP session is not open")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except ValueError as exc:
            log.debug("rtp.bad_packet from=%s error=%s", addr, exc)
            return
        self.packets_received += 1
        arrival = self._clock()
        if packet.payload_type == self.dtmf_payload_type:
            self._received_event(packet)
        elif packet.payload_type == self.payload_type:
            self._received_audio(packet, arrival)

    def _received_audio(self, packet: RtpPacket, arrival: float) -> None:
        if self._rx_first_ts is None:
            self._rx_first_ts = packet.timestamp
        pcm = self._decode(packet.payload)
        # Position of this packet's first sample on the sender's timeline (wraps at 2^32).
        offset = (packet.timestamp - self._rx_first_ts) & 0xFFFFFFFF
        if not self._rx_buffer:
            self._rx_samples = offset
        self._rx_buffer += pcm
        while len(self._rx_buffer) >= FRAME_BYTES:
            frame, self._rx_buffer = self._rx_buffer[:FRAME_BYTES], self._rx_buffer[FRAME_BYTES:]
            media_ms = self._rx_samples * 1000 // 8000
            self._rx_samples += FRAME_SAMPLES
            if self.on_frame is not None:
                self.on_frame(ReceivedFrame(frame, arrival, media_ms))

    def _received_event(self, packet: RtpPacket) -> None:
        try:
            event = DtmfEvent.parse(packet.payload)
        except ValueError:
            return
        key = (packet.timestamp, event.event)
        if event.end and key != self._rx_last_event:  # the end packet comes three times
            self._rx_last_event = key
            if self.on_digit is not None:
                self.on_digit(event.digit)

    # --- sending --------------------------------------------------------------------------

    def start(self, remote: tuple[str, int]) -> None:
        """Begin sending to `remote`, one packet every 20 ms."""
        self.remote = remote
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())

    def play(self, pcm: bytes, label: str = "") -> Playback:
        """Queue PCM (8 kHz 16-bit mono) after whatever is queued; await `.done`."""
        item = Playback(label, split_frames(pcm), asyncio.get_running_loop().create_future())
        if not item.frames:
            item.done.set_result(None)
        else:
            self._queue.append(item)
        return item

    def stop_playback(self) -> None:
        """Drop everything queued (barge-in); the utterance on air stops after this frame."""
        while self._queue:
            item = self._queue.popleft()
            item.interrupted = True
            if not item.done.done():
                item.done.set_result(None)

    async def send_dtmf(self, digits: str, duration_ms: int = 100,
                        gap_ms: int = 100) -> tuple[float, float]:
        """Send RFC 4733 events for `digits` (audio pauses meanwhile); return the clock times
        of the first event packet and of the end of the last one."""
        if self.dtmf_payload_type is None:
            raise RuntimeError("the far end did not offer telephone-event")
        loop = asyncio.get_running_loop()
        queued = [_Digit(dtmf_payloads(d, duration_ms), loop.create_future(),
                         max(0, gap_ms // FRAME_MS)) for d in digits]
        self._digits.extend(queued)
        for item in queued:
            await item.done
        first, last = queued[0].started, queued[-1].ended
        assert first is not None and last is not None
        return first, last

    async def _send_loop(self) -> None:
        t0 = self.started_at = self._clock()
        slot = 0
        marker = True
        while True:
            delay = t0 + slot * FRAME_S - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -3 * FRAME_S:
                # The loop stalled: skip the lost ticks instead of bursting them out.
                skipped = int(-delay / FRAME_S)
                slot += skipped
                self.late_ticks += skipped
            now = self._clock()
            timestamp = self._ts0 + slot * FRAME_SAMPLES
            if self._digits:
                self._send_digit_tick(self._digits[0], timestamp, now, slot)
                marker = True
            else:
                pcm = self._next_audio(now)
                self._send(RtpPacket(self.payload_type, self._seq, timestamp, self.ssrc,
                                     self._encode(pcm), marker))
                marker = False
                if self.on_sent is not None:
                    self.on_sent(pcm, now, slot)
            slot += 1

    def _next_audio(self, now: float) -> bytes:
        if not self._queue:
            return SILENCE_FRAME
        item = self._queue[0]
        if item.started is None:
            item.started = now
        pcm = item.frames[item.sent]
        item.sent += 1
        if item.sent == len(item.frames):
            self._queue.popleft()
            item.ended = now + FRAME_S
            if not item.done.done():
                item.done.set_result(None)
        return pcm

    def _send_digit_tick(self, digit: _Digit, timestamp: int, now: float, slot: int) -> None:
        assert self.dtmf_payload_type is not None
        if digit.index < len(digit.payloads):
            if digit.timestamp is None:
                digit.timestamp, digit.started = timestamp, now
            payload = digit.payloads[digit.index]
            self._send(RtpPacket(self.dtmf_payload_type, self._seq, digit.timestamp, self.ssrc,
                                 bytes(payload), digit.index == 0))
            if payload.end and digit.ended is None:
                digit.ended = now + FRAME_S
        else:  # the pause after a digit: plain silence keeps the stream going
            self._send(RtpPacket(self.payload_type, self._seq, timestamp, self.ssrc,
                                 self._encode(SILENCE_FRAME)))
        if self.on_sent is not None:
            self.on_sent(SILENCE_FRAME, now, slot)
        digit.index += 1
        if digit.index >= len(digit.payloads) + digit.gap_frames:
            self._digits.popleft()
            if not digit.done.done():
                digit.done.set_result(None)

    def _send(self, packet: RtpPacket) -> None:
        self._seq = (self._seq + 1) & 0xFFFF
        if self._transport is not None and self.remote is not None:
            self._transport.sendto(bytes(packet), self.remote)
            self.packets_sent += 1

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        self.stop_playback()
        for digit in self._digits:
            if not digit.done.done():
                digit.done.cancel()
        self._digits.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None


__all__ = [
    "DTMF_EVENTS", "PT_PCMA", "PT_PCMU", "DtmfEvent", "Playback", "ReceivedFrame",
    "RtpPacket", "RtpSession", "dtmf_payloads",
]
