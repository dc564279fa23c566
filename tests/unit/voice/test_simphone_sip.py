"""Simphone protocol pieces: SIP parse/serialise, SDP offer/answer, RTP and RFC 4733 layout,
and the UAS transaction rules on a real 127.0.0.1 socket (a raw UDP client, a fake TTS)."""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.personas import parse_persona
from voice.audio.g711 import alaw_encode, ulaw_encode
from voice.simphone.phone import SimPhone, SimPhoneOptions, personas_by_number
from voice.simphone.rtp import (
    PT_PCMA,
    PT_PCMU,
    DtmfEvent,
    ReceivedFrame,
    RtpPacket,
    RtpSession,
    dtmf_payloads,
)
from voice.simphone.sdp import Sdp, build_answer, negotiate
from voice.simphone.sip import (
    SipRequest,
    SipResponse,
    SipUri,
    header_param,
    parse_headers,
    parse_message,
    response_to,
    split_list,
)
from voice.tts.espeak import Synthesizer

# A baresip 4.x INVITE as captured on loopback (ports and ids shortened), with a proxy's
# Record-Route added.
OFFER = (
    "v=0\r\n"
    "o=- 1994 3254 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 40662 RTP/AVP 0 8 101\r\n"
    "b=AS:64\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)
INVITE = (
    "INVITE sip:13800000001@127.0.0.1:5080 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKab1c2d3e;rport\r\n"
    "Record-Route: <sip:127.0.0.1:5090;lr>\r\n"
    "Contact: <sip:bot-0x1@127.0.0.1:5072;transport=udp>\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:13800000001@127.0.0.1:5080>\r\n"
    "From: <sip:bot@127.0.0.1>;tag=f00d1234\r\n"
    "Call-ID: 4c1b0d22e5a6f7a8\r\n"
    "CSeq: 27517 INVITE\r\n"
    "Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(OFFER)}\r\n"
    "\r\n" + OFFER
).encode()
RINGING = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKab1c2d3e;rport\r\n"
    b"From: <sip:bot@127.0.0.1>;tag=f00d1234\r\n"
    b"To: <sip:13800000001@127.0.0.1:5080>;tag=beef\r\n"
    b"Call-ID: 4c1b0d22e5a6f7a8\r\n"
    b"CSeq: 27517 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


# --- SIP messages -----------------------------------------------------------------------------


def test_request_round_trip_and_fields() -> None:
    request = SipRequest.parse(INVITE)
    assert bytes(request) == INVITE
    assert (request.method, request.uri) == ("INVITE", "sip:13800000001@127.0.0.1:5080")
    assert request.cseq == (27517, "INVITE")
    assert request.branch == "z9hG4bKab1c2d3e"
    assert request.from_tag == "f00d1234" and request.to_tag == ""
    assert request.body == OFFER.encode()
    assert SipUri.parse(request.uri).user == "13800000001"


def test_response_round_trip() -> None:
    response = parse_message(RINGING)
    assert isinstance(response, SipResponse)
    assert bytes(response) == RINGING
    assert (response.status, response.reason, response.to_tag) == (180, "Ringing", "beef")


def test_start_lines() -> None:
    request = SipRequest.parse(INVITE)
    assert request.start_line == "INVITE sip:13800000001@127.0.0.1:5080 SIP/2.0"
    assert INVITE.startswith(request.start_line.encode() + b"\r\n")
    response = SipResponse.parse(RINGING)
    assert response.start_line == "SIP/2.0 180 Ringing"
    assert RINGING.startswith(response.start_line.encode() + b"\r\n")


def test_header_lines_on_their_own() -> None:
    text = 'Reason: Q.850;cause=20;text="Subscriber absent"\r\nX-Note: a\n  b\n'
    assert parse_headers(text) == [("Reason", 'Q.850;cause=20;text="Subscriber absent"'),
                                   ("X-Note", "a b")]
    assert parse_headers("") == [] and parse_headers("\r\n") == []
    request = SipRequest("OPTIONS", "sip:a@b", parse_headers("CSeq: 1 OPTIONS\nl: 0"))
    assert request.cseq == (1, "OPTIONS") and request.get("content-length") == "0"
    assert SipRequest.parse(bytes(request)) == request
    with pytest.raises(ValueError, match="header line 2 is not `Name: value`"):
        parse_headers("Reason: Q.850;cause=1\nno colon here")
    with pytest.raises(ValueError, match="header line 1 is empty"):
        parse_headers("\nReason: x")


def test_compact_headers_and_lists() -> None:
    data = (b"BYE sip:a@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP h:1;branch=z9hG4bK1, "
            b"SIP/2.0/UDP h:2;branch=z9hG4bK2\r\ni: xyz\r\nf: <sip:b@h>;tag=1\r\n"
            b"t: \"A, B\" <sip:a@h>;tag=2\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n")
    request = SipRequest.parse(data)
    assert bytes(request) == data
    assert request.call_id == "xyz"
    assert request.get_all("via") == ["SIP/2.0/UDP h:1;branch=z9hG4bK1",
                                      "SIP/2.0/UDP h:2;branch=z9hG4bK2"]
    assert request.branch == "z9hG4bK1"
    assert request.to_tag == "2"
    assert split_list('"x,y" <sip:a>, <sip:b;lr>') == ['"x,y" <sip:a>', "<sip:b;lr>"]
    assert header_param("<sip:a@b;tag=no>;tag=yes", "tag") == "yes"


@pytest.mark.parametrize("data, message", [
    (INVITE[:INVITE.index(b"\r\n\r\n")], "no blank line"),
    (INVITE[:-5], "body truncated: Content-Length"),
    (b"INVITE sip:a@b SIP/3.0\r\nCSeq: 1 INVITE\r\n\r\n", "not a SIP request line"),
    (b"SIP/2.0 99 Odd\r\n\r\n", "not a SIP status line"),
    (b"SIP/2.0 700 Odd\r\n\r\n", "out of range"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n", "is not `Name: value`"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n", "Content-Length is not"),
    (b"  \r\n", "empty SIP datagram"),
])
def test_bad_messages_raise_precise_value_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_message(data)


def test_every_truncation_of_an_invite_is_rejected_or_shorter() -> None:
    for cut in range(len(INVITE)):
        try:
            message = parse_message(INVITE[:cut])
        except ValueError:
            continue
        raise AssertionError(f"truncated at {cut} parsed as {message!r}")


def test_uri_parsing() -> None:
    uri = SipUri.parse("sip:bob:pw@[::1]:5062;transport=udp;lr?subject=x")
    assert (uri.user, uri.host, uri.port, uri.loose_route) == ("bob", "::1", 5062, True)
    assert SipUri.parse("sip:127.0.0.1").address == ("127.0.0.1", 5060)
    for bad in ("tel:123", "sip:", "sip:a@h:port"):
        with pytest.raises(ValueError):
            SipUri.parse(bad)


def test_response_to_copies_dialog_headers_and_record_route() -> None:
    invite = SipRequest.parse(INVITE)
    ok = response_to(invite, 200, to_tag="beef", headers=[("Contact", "<sip:x@h>")],
                     body=b"v=0\r\n")
    again = SipResponse.parse(bytes(ok))
    assert again.get_all("via") == invite.get_all("via")
    assert again.get("from") == invite.get("from")
    assert again.to_tag == "beef" and again.call_id == invite.call_id
    assert again.get("cseq") == "27517 INVITE"
    assert again.get_all("record-route") == ["<sip:127.0.0.1:5090;lr>"]
    assert again.get("content-length") == "5" and again.body == b"v=0\r\n"
    trying = response_to(invite, 100, to_tag="beef")
    assert trying.to_tag == "" and not trying.get_all("record-route")
    assert response_to(invite, 486, to_tag="beef").reason == "Busy Here"


# --- SDP ------------------------------------------------------------------------------------


def test_negotiate_prefers_pcma_and_keeps_telephone_event() -> None:
    chosen = negotiate(Sdp.parse(OFFER.encode()))
    assert (chosen.codec, chosen.payload_type, chosen.dtmf_payload_type) == ("PCMA", 8, 101)
    assert chosen.remote == ("127.0.0.1", 40662)


def test_negotiate_pcmu_only_static_types_and_refusal() -> None:
    pcmu = Sdp.parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 96\r\n"
                     b"a=rtpmap:96 telephone-event/8000\r\n")
    chosen = negotiate(pcmu)
    assert (chosen.codec, chosen.payload_type, chosen.dtmf_payload_type) == ("PCMU", 0, 96)
    no_dtmf = negotiate(Sdp.parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\n"))
    assert no_dtmf.dtmf_payload_type is None and no_dtmf.codec == "PCMA"
    with pytest.raises(ValueError, match="no PCMA/PCMU"):
        negotiate(Sdp.parse(b"v=0\r\nc=IN IP4 h\r\nm=audio 4000 RTP/AVP 9\r\n"
                            b"a=rtpmap:9 G722/8000\r\n"))
    with pytest.raises(ValueError, match="no active audio"):
        negotiate(Sdp.parse(b"v=0\r\nc=IN IP4 h\r\nm=audio 0 RTP/AVP 8\r\n"))
    with pytest.raises(ValueError, match="must start with v=0"):
        Sdp.parse(b"c=IN IP4 h\r\n")


def test_answer_has_one_codec_dtmf_and_refuses_other_streams() -> None:
    offer = Sdp.parse(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5000 RTP/AVP 96\r\n"
                      b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
    chosen = negotiate(offer)
    answer = build_answer(offer, chosen, "127.0.0.1", 30000, session_id=7)
    text = answer.decode()
    assert "m=video 0 RTP/AVP 96\r\n" in text
    assert "m=audio 30000 RTP/AVP 8 101\r\n" in text
    assert "a=rtpmap:8 PCMA/8000" in text and "a=fmtp:101 0-15" in text
    assert "a=ptime:20" in text
    parsed = Sdp.parse(answer)
    assert parsed.audio().formats == (8, 101) and parsed.connection == "127.0.0.1"


# --- RTP and RFC 4733 -------------------------------------------------------------------------


def test_rtp_round_trip_with_csrc_extension_and_padding() -> None:
    packet = RtpPacket(8, 65535, 2**32 - 1, 0xDEADBEEF, b"\xd5" * 160, marker=True,
                       csrc=(1, 2), extension=b"\xbe\xde\x00\x01abcd", padding=4)
    data = bytes(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 2 and data[1] == 0x80 | 8
    assert RtpPacket.parse(data) == packet
    plain = RtpPacket(0, 1, 160, 5, b"\xff" * 160)
    assert len(bytes(plain)) == 172 and RtpPacket.parse(bytes(plain)) == plain


@pytest.mark.parametrize("data, message", [
    (b"\x80\x08\x00", "shorter than its 12-byte header"),
    (b"\x40" + bytes(11), "version 1"),
    (b"\x82" + bytes(11) + bytes(4), "CSRCs"),
    (b"\x90" + bytes(11) + b"\x00\x00\x00\x02", "extension longer"),
    (b"\xa0" + bytes(11) + b"\x00", "padding"),
])
def test_bad_rtp(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RtpPacket.parse(data)


def test_rfc4733_payload_layout() -> None:
    # event 5, end bit, volume 10, duration 800 → 05 8a 03 20 (RFC 4733 §2.3 figure 1)
    assert bytes(DtmfEvent(5, True, 10, 800)) == b"\x05\x8a\x03\x20"
    assert DtmfEvent.parse(b"\x0b\x0a\x00\xa0") == DtmfEvent(11, False, 10, 160)
    assert DtmfEvent(11, False, 10, 160).digit == "#"
    with pytest.raises(ValueError):
        DtmfEvent.parse(b"\x01\x02")


def test_dtmf_payloads_grow_and_repeat_the_end() -> None:
    payloads = dtmf_payloads("*", duration_ms=100)
    assert [p.event for p in payloads] == [10] * 7
    assert [p.duration for p in payloads] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.end for p in payloads] == [False] * 4 + [True] * 3
    with pytest.raises(ValueError):
        dtmf_payloads("x")


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[tuple[float, RtpPacket]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((time.monotonic(), RtpPacket.parse(data)))


async def _sink() -> tuple[asyncio.DatagramTransport, _Sink]:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    return transport, sink


def _tone(seconds: float, freq: float = 440.0, amp: float = 8000.0) -> bytes:
    n = int(8000 * seconds)
    return array("h", (round(amp * math.sin(2 * math.pi * freq * i / 8000))
                       for i in range(n))).tobytes()


async def test_rtp_session_paces_plays_and_sends_rfc4733() -> None:
    transport, sink = await _sink()
    session = RtpSession(PT_PCMA, 101)
    await session.open()
    try:
        session.start(transport.get_extra_info("sockname"))
        tone = _tone(0.2)
        playback = session.play(tone, "say")
        await asyncio.wait_for(playback.done, 2)
        first, last = await asyncio.wait_for(session.send_dtmf("1#", gap_ms=40), 3)
        assert last > first
        await asyncio.sleep(0.05)
    finally:
        await session.close()
        transport.close()
    packets = [p for _, p in sink.packets]
    times = [t for t, _ in sink.packets]
    # 20 ms pacing on absolute deadlines: the average interval is 20 ms, none bunched up.
    span = (times[-1] - times[0]) / (len(times) - 1)
    assert 0.018 < span < 0.022, span
    seqs = [p.sequence for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    audio = [p for p in packets if p.payload_type == PT_PCMA]
    assert packets[0].marker and all(len(p.payload) == 160 for p in audio)
    assert alaw_encode(tone[:320]) in {p.payload for p in audio}
    events = [p for p in packets if p.payload_type == 101]
    assert len(events) == 14  # two digits × (4 + 3 end packets)
    for digit_packets, event in ((events[:7], 1), (events[7:], 11)):
        assert {p.timestamp for p in digit_packets} == {digit_packets[0].timestamp}
        assert [p.marker for p in digit_packets] == [True] + [False] * 6
        assert {DtmfEvent.parse(p.payload).event for p in digit_packets} == {event}
    assert events[7].timestamp > events[0].timestamp
    assert session.late_ticks == 0


async def test_rtp_session_decodes_received_audio_and_digits() -> None:
    frames: list[ReceivedFrame] = []
    digits: list[str] = []
    session = RtpSession(PT_PCMU, 101, on_frame=frames.append, on_digit=digits.append)
    await session.open()
    loop = asyncio.get_running_loop()
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    remote_addr=session.local_address)
    try:
        tone = _tone(0.06)
        for i in range(3):
            sender.sendto(bytes(RtpPacket(PT_PCMU, i, 1000 + 160 * i, 9,
                                          ulaw_encode(tone[320 * i:320 * (i + 1)]))))
        for payload in dtmf_payloads("7"):
            sender.sendto(bytes(RtpPacket(101, 9, 5000, 9, bytes(payload))))
        sender.sendto(b"garbage")
        await asyncio.sleep(0.1)
    finally:
        sender.close()
        await session.close()
    assert [f.media_ms for f in frames] == [0, 20, 40]
    assert digits == ["7"]  # the end packet came three times, reported once


# --- the UAS on a socket ----------------------------------------------------------------------


class ToneSynth(Synthesizer):
    """0.3 s of a 500 Hz tone per phrase (fake TTS: the protocol is under test here)."""

    @property
    def voice_id(self) -> str:
        return "test-tone"

    def synthesize(self, text: str) -> bytes:
        return _tone(0.3, 500)


class RawPeer(asyncio.DatagramProtocol):
    """A bare SIP peer: sends what the test writes, queues what arrives."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[SipRequest | SipResponse] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait(parse_message(data))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    async def next(self, timeout: float = 2.0) -> SipRequest | SipResponse:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def response(self, status: int, timeout: float = 3.0) -> SipResponse:
        while True:
            message = await self.next(timeout)
            if isinstance(message, SipResponse) and message.status == status:
                return message

    async def request(self, method: str, timeout: float = 3.0) -> SipRequest:
        while True:
            message = await self.next(timeout)
            if isinstance(message, SipRequest) and message.method == method:
                return message


def _invite(number: str, phone_port: int, peer_port: int, *, call_id: str = "call-1",
            branch: str = "z9hG4bKinv1", record_route: str = "", sdp: str = "") -> bytes:
    body = sdp or OFFER.replace("40662", str(peer_port + 1))
    rr = f"Record-Route: {record_route}\r\n" if record_route else ""
    return (
        f"INVITE sip:{number}@127.0.0.1:{phone_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{peer_port};branch={branch};rport\r\n{rr}"
        f"Contact: <sip:bot@127.0.0.1:{peer_port}>\r\n"
        f"From: <sip:bot@127.0.0.1>;tag=caller1\r\nTo: <sip:{number}@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 10 INVITE\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def _in_dialog(method: str, invite: bytes, to_tag: str, cseq: str, branch: str) -> bytes:
    request = SipRequest.parse(invite)
    via = request.get("via").replace(request.branch, branch)
    return (
        f"{method} {request.uri} SIP/2.0\r\nVia: {via}\r\nFrom: {request.get('from')}\r\n"
        f"To: {request.get('to')};tag={to_tag}\r\nCall-ID: {request.call_id}\r\n"
        f"CSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


PERSONAS = {
    "1001": parse_persona({"id": "answers", "dial": "answer", "ring_s": 0.1,
                           "turns": [{"say": "喂"}, {"hangup": True}]}),
    "1002": parse_persona({"id": "rings", "dial": "no_answer"}),
    "1003": parse_persona({"id": "busy", "dial": "busy"}),
}


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[SimPhone]:
    options = SimPhoneOptions(t1=0.1, bot_silence_ms=200, idle_hangup_s=2.0, max_call_s=10)
    sim = SimPhone(PERSONAS, synthesizer=ToneSynth(), cache_dir=tmp_path / "tts",
                   options=options, report=tmp_path / "calls.jsonl")
    await sim.start()
    yield sim
    await sim.close()


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    loop = asyncio.get_running_loop()
    _, raw = await loop.create_datagram_endpoint(RawPeer, local_addr=("127.0.0.1", 0))
    yield raw
    assert raw.transport is not None
    raw.transport.close()


def _send(peer: RawPeer, phone: SimPhone, data: bytes) -> None:
    assert peer.transport is not None
    peer.transport.sendto(data, ("127.0.0.1", phone.port))


async def test_answer_retransmits_200_until_ack_and_sends_bye_along_the_route(
        phone: SimPhone, peer: RawPeer) -> None:
    # The Record-Route points at the peer itself, so the BYE must come back here with a Route.
    route = f"<sip:127.0.0.1:{peer.port};lr>"
    invite = _invite("1001", phone.port, peer.port, record_route=route)
    _send(peer, phone, invite)
    assert (await peer.response(100)).to_tag == ""
    ringing = await peer.response(180)
    tag = ringing.to_tag
    assert tag and ringing.get_all("record-route") == [route]
    _send(peer, phone, invite)  # a retransmitted INVITE: the last response again, no new call
    assert (await peer.response(180)).to_tag == tag
    ok = await peer.response(200)
    assert ok.to_tag == tag and ok.get("content-type") == "application/sdp"
    assert negotiate(Sdp.parse(ok.body)).codec == "PCMA"
    again = await peer.response(200, timeout=1)  # no ACK yet: T1 = 0.1 s retransmission
    assert bytes(again) == bytes(ok)
    _send(peer, phone, _in_dialog("ACK", invite, tag, "10 ACK", "z9hG4bKack1"))
    # The persona says its line after the bot's silence (the peer sends no RTP at all: the
    # idle timeout then hangs up), so expect a BYE within idle_hangup_s.
    bye = await peer.request("BYE", timeout=5)
    assert bye.uri == "sip:bot@127.0.0.1:" + str(peer.port)
    assert bye.get_all("route") == [route]
    assert bye.from_tag == tag and bye.to_tag == "caller1"
    assert bye.call_id == "call-1"
    assert bye.cseq[1] == "BYE"
    response = response_to(bye, 200)
    assert peer.transport is not None
    peer.transport.sendto(bytes(response), ("127.0.0.1", phone.port))
    record = await asyncio.wait_for(phone.completed.get(), 3)
    assert (record.persona, record.final_status, record.hangup_by) == ("answers", 200,
                                                                       "simphone")
    assert record.hangup_reason == "idle" and record.answered_ms is not None
    assert len(phone.records) == 1  # the retransmitted INVITE made no second call


async def test_cancel_gets_200_and_the_invite_487(phone: SimPhone, peer: RawPeer) -> None:
    invite = _invite("1002", phone.port, peer.port, call_id="call-2", branch="z9hG4bKinv2")
    _send(peer, phone, invite)
    tag = (await peer.response(180)).to_tag
    cancel = SipRequest.parse(invite)
    cancel_bytes = (
        f"CANCEL {cancel.uri} SIP/2.0\r\nVia: {cancel.get('via')}\r\n"
        f"From: {cancel.get('from')}\r\nTo: {cancel.get('to')}\r\nCall-ID: call-2\r\n"
        "CSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n").encode()
    _send(peer, phone, cancel_bytes)
    ok = await peer.response(200)
    assert ok.cseq == (10, "CANCEL")
    terminated = await peer.response(487)
    assert terminated.cseq == (10, "INVITE") and terminated.to_tag == tag
    assert (await peer.response(487, timeout=1)).to_tag == tag  # retransmitted until ACK
    _send(peer, phone, _in_dialog("ACK", invite, tag, "10 ACK", "z9hG4bKinv2"))
    record = await asyncio.wait_for(phone.completed.get(), 3)
    assert (record.final_status, record.hangup_by, record.hangup_reason) == (487, "caller",
                                                                             "cancel")


async def test_busy_unknown_number_and_no_g711(phone: SimPhone, peer: RawPeer) -> None:
    _send(peer, phone, _invite("1003", phone.port, peer.port, call_id="b", branch="z9hG4bKb"))
    assert (await peer.response(486)).to_tag
    _send(peer, phone, _invite("9999", phone.port, peer.port, call_id="u", branch="z9hG4bKu"))
    assert (await peer.response(404)).call_id == "u"
    g722 = ("v=0\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 9\r\n"
            "a=rtpmap:9 G722/8000\r\n")
    _send(peer, phone, _invite("1001", phone.port, peer.port, call_id="g", branch="z9hG4bKg",
                               sdp=g722))
    assert (await peer.response(488)).call_id == "g"
    bye = _in_dialog("BYE", _invite("1001", phone.port, peer.port, call_id="nope"), "x",
                     "11 BYE", "z9hG4bKnope")
    _send(peer, phone, bye)
    assert (await peer.response(481)).call_id == "nope"


def test_personas_by_number() -> None:
    personas = list(PERSONAS.values())
    mapping = personas_by_number({"555": "busy"}, personas)
    assert mapping["555"].dial == "busy"
    with pytest.raises(ValueError, match="unknown personas: ghost"):
        personas_by_number({"1": "ghost"}, personas)


def test_report_line_fields(tmp_path: Path) -> None:
    from voice.simphone.phone import CallRecord

    record = CallRecord(number="1", persona="p", dial="answer", dial_result="answered",
                        call_id="c", started_at="t")
    assert set(record.to_json()) >= {
        "number", "persona", "dial", "call_id", "answered_ms", "first_audio_ms",
        "greeting_latency_ms", "bot_speech", "own_audio", "hangup_by", "recording"}
