"""Real SIP peers on 127.0.0.1 for tests: Debian baresip, kamailio and a tiny early-media UAS.

Every peer binds 127.0.0.1 on free ports, writes its files into a directory the test gives it
(a `tmp_path`), waits a bounded time to come up, and is stopped by its own PID.

- `DebianBaresip` — Debian's `baresip` 1.0.0 as an independent phone: auto-answers (or rings
  until `accept`), plays a WAV as its microphone, records what it hears (`heard_pcm()`), and
  is driven over its ctrl_tcp socket (`command("dial", uri)`, `hangup`, `sndcode`, `transfer`,
  `accept`; events in `events`, `await wait_event("CALL_ESTABLISHED")`).
- `Kamailio` — a proxy answering 486/480/404/603 (+Q.850) by R-URI user, challenging `secure`
  with digest auth, and relaying named users to peers (408 when they only ring).
  See tests/sip/kamailio.cfg.tmpl.
- `EarlyMediaUas` — what neither can do: 183 + SDP + PCMA RTP of an announcement, then a
  final status (the operator announcement before a 404/480).
- Audio helpers: `tone`, `goertzel`, `write_wav`, `read_wav`, `speech_wav`, `tone_wav`.

Used by the telephony, simphone, interop and benchmark tests.  Needs the Debian packages
`baresip-core`, `kamailio`, `sox`, `espeak-ng` (scripts/setup.sh installs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import wave
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from voice.audio.frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, samples, to_pcm
from voice.simphone.rtp import CODECS, RtpPacket
from voice.simphone.sdp import Sdp, build_answer, negotiate
from voice.simphone.sip import (
    SipRequest,
    SipResponse,
    new_branch,
    new_tag,
    parse_headers,
    parse_message,
    response_to,
)
from voice.telephony.base import free_port

LOOP = "127.0.0.1"
TEMPLATES = Path(__file__).parent / "sip"


def binaries_missing(*names: str) -> list[str]:
    """Which of the given executables are not on PATH (for skip messages)."""
    return [name for name in names if shutil.which(name) is None]


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 3.0) -> None:
    """SIGTERM the process by its PID, SIGKILL it if it lingers, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


# -- audio ----------------------------------------------------------------------------------
def tone(freq: float, seconds: float, amp: int = 8000, rate: int = SAMPLE_RATE) -> bytes:
    """A sine tone as 16-bit LE mono PCM."""
    n = int(seconds * rate)
    values = array("h", (int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))
    return to_pcm(values)


def goertzel(pcm: bytes, freq: float, rate: int = SAMPLE_RATE) -> float:
    """Amplitude of *freq* in *pcm* (a full-scale-`A` sine at *freq* gives about A/2)."""
    values = samples(pcm[: len(pcm) // 2 * 2])
    n = len(values)
    if not n:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in values:
        s1, s2 = x + k * s1 - s2, s1
    return math.sqrt(max(0.0, s1 * s1 + s2 * s2 - k * s1 * s2)) / n


def write_wav(path: Path, pcm: bytes, rate: int = SAMPLE_RATE) -> Path:
    """Write 16-bit mono PCM as a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return path


def read_wav(path: Path) -> bytes:
    """The PCM of a 16-bit mono WAV; tolerates a header not yet finalised (still recording)."""
    data = path.read_bytes()
    try:
        with wave.open(str(path), "rb") as wav:
            pcm = wav.readframes(wav.getnframes())
        if pcm:
            return pcm
    except (wave.Error, EOFError):
        pass
    return data[44:]


def tone_wav(path: Path, freq: float, seconds: float = 20.0, amp: int = 16000) -> Path:
    """A tone WAV for a baresip peer's microphone (it hangs up when its WAV ends)."""
    return write_wav(path, tone(freq, seconds, amp))


def speech_wav(path: Path, text: str, seconds: float = 20.0, voice: str = "cmn") -> Path:
    """*text* spoken by espeak-ng, as an 8 kHz mono WAV padded with silence to *seconds*."""
    raw = path.with_suffix(".raw.wav")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, timeout=30)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path),
                    "pad", "0.3", str(seconds), "trim", "0", str(seconds)], check=True, timeout=30)
    raw.unlink()
    return path


# -- Debian baresip -------------------------------------------------------------------------
BARESIP_CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
net_interface\t\t127.0.0.1
audio_player\t\taubridge,{sink}
audio_source\t\taufile,{wav}
audio_alert\t\taubridge,{sink}
audio_srate\t\t8000
audio_channels\t\t1
rtp_ports\t\t{rtp_lo}-{rtp_hi}
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\tsndfile.so
module\t\t\taufile.so
module\t\t\taubridge.so
module_app\t\taccount.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}
snd_path\t\t{snd_path}
"""

Message = dict[str, Any]


class DebianBaresip:
    """Debian's `baresip` as an independent phone on 127.0.0.1, driven over ctrl_tcp.

    workdir: its config, accounts, log (`baresip.log`) and recordings (`snd/`).
    user: the account user; it answers 404 to any other R-URI user.
    wav: its microphone (8 kHz mono 16-bit WAV); it hangs up when the WAV ends.
    answermode: "auto" answers at once, "manual" rings until `command("accept")`,
        "early" sends 183 + SDP (but no audio, in 1.0.0).
    """

    def __init__(self, workdir: Path, wav: Path, user: str = "callee", answermode: str = "auto",
                 extra_account: str = "") -> None:
        self.dir = Path(workdir)
        self.user = user
        self.wav = Path(wav)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        self.snd_dir = self.dir / "snd"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.snd_dir.mkdir(parents=True)
        rtp_lo = 20000 + (self.sip_port % 400) * 100
        (self.dir / "config").write_text(BARESIP_CONFIG.format(
            sip_port=self.sip_port, ctrl_port=self.ctrl_port, wav=self.wav,
            sink=f"sink{self.sip_port}", snd_path=self.snd_dir, rtp_lo=rtp_lo,
            rtp_hi=rtp_lo + 99))
        (self.dir / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{self.sip_port}>;regint=0;answermode={answermode};"
            f"audio_codecs=PCMA/8000/1,PCMU/8000/1;ptime=20{extra_account}\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[Message] = []
        self._log: Any = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[Callable[[Message], bool], asyncio.Future[Message]]] = []
        self._token = 0

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    async def start(self, timeout: float = 5.0) -> DebianBaresip:
        self._log = open(self.dir / "baresip.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["baresip", "-f", str(self.dir)], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(LOOP, self.ctrl_port)
                break
            except OSError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeError(f"baresip did not come up; see {self.dir}/baresip.log"
                                       ) from exc
                await asyncio.sleep(0.05)
        self._task = asyncio.create_task(self._read_loop())
        return self

    async def _read_loop(self) -> None:
        assert self._reader is not None
        buf = b""
        while chunk := await self._reader.read(4096):
            buf += chunk
            while b":" in buf:  # netstrings: <len>:<json>,
                size, _, rest = buf.partition(b":")
                n = int(size)
                if len(rest) < n + 1:
                    break
                msg: Message = json.loads(rest[:n])
                buf = rest[n + 1 :]
                msg["_t"] = time.monotonic()
                self.events.append(msg)
                for pred, fut in list(self._waiters):
                    if not fut.done() and pred(msg):
                        fut.set_result(msg)

    async def command(self, command: str, params: str = "", timeout: float = 5.0) -> Message:
        """Send a ctrl_tcp command and return its response message."""
        assert self._writer is not None, "start() first"
        self._token += 1
        token = f"t{self._token}"
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        return await self.wait(lambda m: bool(m.get("response")) and m.get("token") == token,
                               timeout)

    async def wait(self, pred: Callable[[Message], bool], timeout: float) -> Message:
        """The first message (past or future) matching *pred*; TimeoutError after *timeout*."""
        for msg in self.events:
            if pred(msg):
                return msg
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.remove(entry)

    async def wait_event(self, kind: str, timeout: float = 5.0, param: str | None = None
                         ) -> Message:
        """Wait for an event such as CALL_ESTABLISHED, CALL_CLOSED, CALL_DTMF_START."""
        return await self.wait(lambda m: bool(m.get("event")) and m.get("type") == kind
                               and (param is None or m.get("param") == param), timeout)

    def event_types(self) -> list[tuple[str, str]]:
        return [(str(m.get("type")), str(m.get("param", ""))) for m in self.events
                if m.get("event")]

    def recordings(self, kind: str = "dec") -> list[Path]:
        """sndfile's recordings: "dec" = what it heard, "enc" = what it sent."""
        return sorted(self.snd_dir.glob(f"*-{kind}.wav"))

    def heard_pcm(self) -> bytes:
        """Everything it heard, all calls joined (8 kHz s16 mono)."""
        return b"".join(read_wav(path) for path in self.recordings("dec"))

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(_stop_process, self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None


# -- kamailio -------------------------------------------------------------------------------
Route = int | tuple[str, int]


class Kamailio:
    """Debian kamailio as a loopback proxy built from tests/sip/kamailio.cfg.tmpl.

    routes: R-URI user -> peer port, or -> (user to rewrite to, peer port), e.g.
        {"callee": b.sip_port, "timeout": ("ring", r.sip_port)}.
    password: the digest password of users `secure` (407, any username), `proxyauth` (407)
        and `wwwauth` (401), each relayed as `callee` once authenticated.
    username: the only digest username `proxyauth` and `wwwauth` accept.
    ring_ms / no_reply_ms: tm's fr_inv_timer / fr_timer, i.e. when ringing or silence becomes
        408 Request Timeout.
    """

    def __init__(self, workdir: Path, routes: dict[str, Route] | None = None,
                 password: str = "secret", ring_ms: int = 3000, no_reply_ms: int = 2000,
                 username: str = "bot") -> None:
        self.dir = Path(workdir)
        self.port = free_port()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        lines = []
        for user, target in (routes or {}).items():
            rewrite, port = (None, target) if isinstance(target, int) else target
            set_user = f'$rU = "{rewrite}"; ' if rewrite else ""
            lines.append(f'    else if ($rU == "{user}") {{ {set_user}'
                         f'$du = "sip:127.0.0.1:{port}"; }}')
        mpaths = glob.glob("/usr/lib/*/kamailio/modules/") + glob.glob("/usr/lib/kamailio/modules/")
        subs = {"KPORT": str(self.port), "ROUTES": "\n".join(lines), "PASSWORD": password,
                "USERNAME": username,
                "RING_MS": str(ring_ms), "NO_REPLY_MS": str(no_reply_ms),
                "MPATH": mpaths[0] if mpaths else "/usr/lib/x86_64-linux-gnu/kamailio/modules/"}
        cfg = (TEMPLATES / "kamailio.cfg.tmpl").read_text()
        cfg = re.sub(r"\{([A-Z_]+)\}", lambda m: subs.get(m.group(1), m.group(0)), cfg)
        self.cfg = self.dir / "kamailio.cfg"
        self.cfg.write_text(cfg)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def uri(self, user: str) -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"

    def start(self, timeout: float = 5.0) -> Kamailio:
        """Start it and wait until it answers SIP (an OPTIONS probe)."""
        self._log = open(self.dir / "kamailio.log", "wb")  # noqa: SIM115 - closed in stop()
        # -DD: no daemonising (its children still fork); -E: log to stderr
        self.proc = subprocess.Popen(
            ["kamailio", "-f", str(self.cfg), "-DD", "-E", "-m", "32", "-M", "4",
             "-P", str(self.dir / "k.pid"), "-Y", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((LOOP, 0))
            probe.settimeout(0.1)
            while True:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = (self.dir / "kamailio.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"kamailio did not come up:\n{log}")
                probe.sendto(bytes(_options(probe.getsockname()[1], self.port)),
                             (LOOP, self.port))
                try:
                    if _is_response(probe.recv(4096)):
                        return self
                except TimeoutError:
                    continue

    def stop(self) -> None:
        _stop_process(self.proc, timeout=5.0)  # the main process stops its children
        if self._log is not None:
            self._log.close()
            self._log = None


def _options(local_port: int, port: int) -> SipRequest:
    return SipRequest("OPTIONS", f"sip:probe@{LOOP}:{port}", [
        ("Via", f"SIP/2.0/UDP {LOOP}:{local_port};branch={new_branch()};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:probe@{LOOP}:{local_port}>;tag={new_tag()}"),
        ("To", f"<sip:probe@{LOOP}:{port}>"),
        ("Call-ID", f"{secrets.token_hex(8)}@probe"),
        ("CSeq", "1 OPTIONS"),
        ("Content-Length", "0"),
    ])


def _is_response(data: bytes) -> bool:
    try:
        return isinstance(parse_message(data), SipResponse)
    except ValueError:
        return False


# -- early-media UAS ------------------------------------------------------------------------
class EarlyMediaUas(asyncio.DatagramProtocol):
    """A scripted UAS for early media (not a SIP stack: one INVITE at a time, UDP, loopback).

    To an INVITE it answers 100, then 183 Session Progress with the SDP answer (G.711, PCMA
    when offered; 488 to an offer without it), sends *announcement* (8 kHz s16 PCM) as RTP in
    20 ms packets, then the *final* status (e.g. (404, "Not Found")) with *extra_headers*
    (e.g. 'Reason: Q.850;cause=1').  A CANCEL gets 200 and the INVITE 487.  `uri(user)` is
    its address; `requests` logs the request lines it got.  SIP, SDP and RTP are read and
    written by the simphone's `voice.simphone.sip` and `voice.simphone.rtp`.
    """

    def __init__(self, announcement: bytes, final: tuple[int, str] = (404, "Not Found"),
                 extra_headers: str = "") -> None:
        self.announcement = announcement
        self.final = final
        self.extra_headers = parse_headers(extra_headers)
        self.requests: list[str] = []
        self.done = asyncio.Event()
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._invite: asyncio.Task[None] | None = None
        self._cancelled = asyncio.Event()

    async def start(self) -> EarlyMediaUas:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(LOOP, 0))
        self.port = int(transport.get_extra_info("sockname")[1])
        return self

    def uri(self, user: str = "announce") -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._invite is not None:
            self._invite.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._invite
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            request = parse_message(data)
        except ValueError:
            return  # a keep-alive or garbage: nothing to answer
        if not isinstance(request, SipRequest):
            return
        self.requests.append(request.start_line)
        if request.method == "INVITE" and (self._invite is None or self._invite.done()):
            self._cancelled.clear()
            self._invite = asyncio.get_running_loop().create_task(
                self._run_invite(request, addr))
        elif request.method in ("BYE", "CANCEL"):
            self._reply(request, addr, 200)
            self._cancelled.set()

    def _reply(self, request: SipRequest, addr: tuple[str | Any, int], status: int,
               reason: str | None = None, *, body: bytes = b"", to_tag: str = "",
               headers: list[tuple[str, str]] | None = None) -> None:
        assert self._transport is not None
        response = response_to(request, status, reason, to_tag=to_tag, headers=headers or [],
                               body=body)
        self._transport.sendto(bytes(response), addr)

    async def _run_invite(self, request: SipRequest, addr: tuple[str | Any, int]) -> None:
        tag = new_tag()
        self._reply(request, addr, 100)
        try:
            offer = Sdp.parse(request.body)
            chosen = negotiate(offer)
        except ValueError:
            self._reply(request, addr, 488, to_tag=tag)
            return
        loop = asyncio.get_running_loop()
        rtp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                     local_addr=(LOOP, 0))
        try:
            rtp_port = rtp.get_extra_info("sockname")[1]
            sdp = build_answer(offer, chosen, LOOP, rtp_port, session_id=1)
            sip_port = self._transport.get_extra_info("sockname")[1] if self._transport else 0
            self._reply(request, addr, 183, body=sdp, to_tag=tag,
                        headers=[("Contact", f"<sip:uas@{LOOP}:{sip_port}>")])
            encode = CODECS[chosen.payload_type][0]
            seq, ts, ssrc = secrets.randbits(16), secrets.randbits(32), secrets.randbits(32)
            start = time.monotonic()
            for i, at in enumerate(range(0, len(self.announcement), FRAME_BYTES)):
                if self._cancelled.is_set():
                    break
                pcm = self.announcement[at : at + FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
                packet = RtpPacket(chosen.payload_type, seq + i, ts + i * FRAME_SAMPLES, ssrc,
                                   encode(pcm), marker=i == 0)
                rtp.sendto(bytes(packet), chosen.remote)
                await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
            if self._cancelled.is_set():
                self._reply(request, addr, 487, to_tag=tag)
            else:
                code, reason = self.final
                self._reply(request, addr, code, reason, to_tag=tag,
                            headers=self.extra_headers)
        finally:
            rtp.close()
            self.done.set()
