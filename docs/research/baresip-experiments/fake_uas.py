"""A tiny scripted SIP UAS (UDP, 127.0.0.1) for what Debian baresip 1.0.0 cannot
do: send *early media* (183 + SDP + RTP) and then a final status -- the shape of an
operator announcement ("the number you dialled does not exist") before a 404/480.

Not a SIP stack: one INVITE at a time, enough for loopback tests.
"""

import asyncio
import audioop  # stdlib up to 3.12 (deprecated); fine for an experiment
import math
import random
import re
import struct
import time


def _hdr(msg, name):
    m = re.search(rf"^{name}:\s*(.*)$", msg, re.I | re.M)
    return m.group(1).strip() if m else ""


def _all_hdr(msg, name):
    return re.findall(rf"^{name}:\s*(.*)$", msg, re.I | re.M)


class FakeUAS(asyncio.DatagramProtocol):
    def __init__(self, early_s=1.0, final=(480, "Temporarily Unavailable"), freq=1500):
        self.early_s = early_s
        self.final = final
        self.freq = freq
        self.transport = None
        self.rtp = None
        self.log = []
        self.done = asyncio.Event()

    def connection_made(self, transport):
        self.transport = transport

    def _reply(self, req, addr, code, reason, body="", to_tag=None, extra=""):
        to = _hdr(req, "To") or _hdr(req, "t")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {code} {reason}"]
        for v in _all_hdr(req, "Via") or _all_hdr(req, "v"):
            lines.append(f"Via: {v}")
        lines += [
            f"From: {_hdr(req, 'From') or _hdr(req, 'f')}",
            f"To: {to}",
            f"Call-ID: {_hdr(req, 'Call-ID') or _hdr(req, 'i')}",
            f"CSeq: {_hdr(req, 'CSeq')}",
        ]
        if extra:
            lines.append(extra)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        self.transport.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), addr)
        self.log.append((time.monotonic(), f"sent {code}"))

    def datagram_received(self, data, addr):
        msg = data.decode(errors="replace")
        first = msg.split("\r\n", 1)[0]
        self.log.append((time.monotonic(), "got " + first))
        method = first.split(" ", 1)[0]
        if method == "INVITE":
            asyncio.get_running_loop().create_task(self._invite(msg, addr))
        elif method in ("BYE", "CANCEL"):
            self._reply(msg, addr, 200, "OK")
            self.done.set()

    async def _invite(self, req, addr):
        tag = "%08x" % random.getrandbits(32)
        self._reply(req, addr, 100, "Trying")
        body = req.split("\r\n\r\n", 1)[1]
        rhost = re.search(r"c=IN IP4 (\S+)", body).group(1)
        rport = int(re.search(r"m=audio (\d+)", body).group(1))
        loop = asyncio.get_running_loop()
        self.rtp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        lport = self.rtp.get_extra_info("sockname")[1]
        sdp = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {lport} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
        )
        contact = "Contact: <sip:fake@127.0.0.1:%d>" % self.transport.get_extra_info("sockname")[1]
        self._reply(req, addr, 183, "Session Progress", sdp, tag, contact)
        # early media: an A-law tone, 20 ms packets on the clock
        seq, ts, ssrc = random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
        n = int(self.early_s * 50)
        t0 = time.monotonic()
        for i in range(n):
            pcm = struct.pack("<160h", *(int(8000 * math.sin(2 * math.pi * self.freq * (i * 160 + k) / 8000)) for k in range(160)))
            pkt = struct.pack("!BBHII", 0x80, 8 | (0x80 if i == 0 else 0), (seq + i) & 0xFFFF,
                              (ts + i * 160) & 0xFFFFFFFF, ssrc) + audioop.lin2alaw(pcm, 2)
            self.rtp.sendto(pkt, (rhost, rport))
            await asyncio.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))
        code, reason = self.final
        self._reply(req, addr, code, reason, to_tag=tag)
        self.rtp.close()
        self.done.set()


async def start(early_s=1.0, final=(480, "Temporarily Unavailable")):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: FakeUAS(early_s, final), local_addr=("127.0.0.1", 0))
    return transport.get_extra_info("sockname")[1], transport, proto
