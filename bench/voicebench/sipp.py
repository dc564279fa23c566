"""SIPp (Debian's `sip-tester`) as the called customers: an independent load peer.

The gateway dials SIPp's UAS scenario, which rings for a random 0.5-8.5 s (so that the calls
of a level, dialled together, do not all speak at the same instant), answers with a G.711
A-law offer and, on the ACK, plays a pcap of a customer's answers (`play_pcap_audio`), then waits
for the gateway's BYE.  SIPp does not listen to the bot: the answers come at fixed moments
of the call (`caller_pcap`), spaced so that each falls after the bot's question in a
satisfied survey customer's call.  One SIPp process serves every call of a level; its own
CPU is tiny next to a SimPhone's, so the gateway, Rasa and the action server have the
machine to themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import struct
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from voice.audio.g711 import alaw_encode

SAMPLE_RATE = 8000
PACKET_SAMPLES = 160  # 20 ms of G.711
ALAW_SILENCE = b"\xd5" * PACKET_SAMPLES
PCMA = 8

# A satisfied survey customer (examples/personas/survey/satisfied.yml): identity,
# permission, satisfaction, two scores, anything else.  Each answer starts this many seconds
# after the call is answered: the bot's greeting and question before each take 4-7 s.
SURVEY_ANSWERS: tuple[tuple[float, str], ...] = (
    (6.0, "是我"), (14.0, "可以"), (22.0, "满意"), (30.0, "五分"), (38.0, "给四分吧"),
    (46.0, "没有了挺好的"))
CALL_SECONDS = 60.0  # the pcap's length: the bot hangs up before it ends
# Ringing before the answer, uniform in this range: one answer's spacing (8 s) apart, so the
# customers' answers are spread over time as real calls' are, not synchronised.
RING_MS = (500, 8500)

UAS_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="waihu customer (answers, plays its answers, waits for BYE)">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0
    ]]>
  </send>
  <pause distribution="uniform" min="{ring_min_ms}" max="{ring_max_ms}"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=sendrecv
    ]]>
  </send>
  <recv request="ACK" optional="false" rtd="true" crlf="true"/>
  <nop>
    <action>
      <exec play_pcap_audio="{pcap}"/>
    </action>
  </nop>
  <recv request="BYE" timeout="{bye_timeout_ms}" ontimeout="hangup"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0
    ]]>
  </send>
  <label id="hangup"/>
  <ResponseTimeRepartition value="10, 20, 30, 40, 50, 100, 150, 200"/>
</scenario>
"""


def caller_packets(answers: Sequence[tuple[float, bytes]], total_s: float) -> list[bytes]:
    """20 ms A-law payloads for *total_s* seconds: silence, with each answer's 8 kHz
    s16 PCM starting at its second (an answer still playing when the next is due delays it)."""
    frames: list[bytes] = []
    for at_s, pcm in sorted(answers, key=lambda a: a[0]):
        start = round(at_s * SAMPLE_RATE / PACKET_SAMPLES)
        frames.extend([ALAW_SILENCE] * max(0, start - len(frames)))
        coded = alaw_encode(pcm)
        coded += b"\xd5" * (-len(coded) % PACKET_SAMPLES)
        frames.extend(coded[i:i + PACKET_SAMPLES] for i in range(0, len(coded), PACKET_SAMPLES))
    total = round(total_s * SAMPLE_RATE / PACKET_SAMPLES)
    frames.extend([ALAW_SILENCE] * max(0, total - len(frames)))
    return frames


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_pcap(path: Path, payloads: Sequence[bytes], ssrc: int = 0x5741_4948) -> None:
    """A classic pcap (Ethernet, IPv4, UDP, RTP/PCMA) with one packet each 20 ms.  SIPp
    rewrites the addresses and ports; it sends the RTP as it is, at the capture's pace."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    for seq, payload in enumerate(payloads):
        rtp = struct.pack("!BBHII", 0x80, PCMA, seq & 0xFFFF,
                          (seq * PACKET_SAMPLES) & 0xFFFFFFFF, ssrc) + payload
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0,
                         src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        micros = seq * 20_000
        out.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame),
                               len(frame)) + frame)
    path.write_bytes(b"".join(out))


def read_pcap_payloads(path: Path) -> list[tuple[float, bytes]]:
    """(seconds, RTP payload) of each packet of a pcap written by `write_pcap`."""
    data = path.read_bytes()
    packets: list[tuple[float, bytes]] = []
    offset = 24
    while offset < len(data):
        secs, micros, length, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16:offset + 16 + length]
        packets.append((secs + micros / 1e6, frame[14 + 20 + 8 + 12:]))
        offset += 16 + length
    return packets


@dataclass
class SippCallee:
    """A running SIPp UAS on 127.0.0.1: `port` is where the trunk dials."""

    process: asyncio.subprocess.Process
    port: int
    workdir: Path
    stats: dict[str, str] = field(default_factory=dict)  # SIPp's own figures, after stop()

    async def stop(self) -> dict[str, str]:
        """End SIPp (its PID only) and return the last line of its statistics."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGUSR1)  # "quit after the calls in progress"
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        stats = sorted(self.workdir.glob("*_.csv"))
        errors = sorted(self.workdir.glob("*_errors.log"))
        out = {"returncode": str(self.process.returncode)}
        if stats:
            lines = stats[-1].read_text(errors="replace").splitlines()
            if len(lines) >= 2:
                out.update(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
        if errors:
            out["errors"] = errors[-1].read_text(errors="replace")[-2000:]
        return out


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def sipp_callee(answers: Sequence[tuple[float, bytes]], total_s: float = CALL_SECONDS,
                      ) -> AsyncIterator[SippCallee]:
    """SIPp answering every call with *answers* (seconds after the ACK, 8 kHz PCM)."""
    binary = shutil.which("sipp")
    if binary is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester: make setup)")
    workdir = Path(tempfile.mkdtemp(prefix="waihu-sipp-"))
    pcap = workdir / "caller.pcap"
    write_pcap(pcap, caller_packets(answers, total_s))
    scenario = workdir / "uas.xml"
    scenario.write_text(UAS_SCENARIO.format(pcap=pcap, bye_timeout_ms=int(total_s * 2000),
                                            ring_min_ms=RING_MS[0], ring_max_ms=RING_MS[1]))
    port, media_port = free_udp_port(), free_udp_port()
    process = await asyncio.create_subprocess_exec(
        binary, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port),
        "-mi", "127.0.0.1", "-mp", str(media_port), "-nostdin", "-trace_stat", "-fd", "5",
        "-trace_err", "-max_socket", "4096",
        cwd=workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    await asyncio.sleep(0.5)
    if process.returncode is not None:
        err = await process.stderr.read() if process.stderr else b""
        raise RuntimeError(f"sipp exited at start: {err.decode(errors='replace')[-500:]}")
    callee = SippCallee(process, port, workdir)
    try:
        yield callee
    finally:
        callee.stats = await callee.stop()
        shutil.rmtree(workdir, ignore_errors=True)
