"""Helpers for the experiments: free ports, a Debian `baresip` peer driven over
ctrl_tcp, and a kamailio proxy. Everything binds 127.0.0.1 only; every
process started here is killed by its own PID."""

import array
import asyncio
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time

LOOP = "127.0.0.1"


def free_port(kind=socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOOP, 0))
        port = s.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind((LOOP, port))
        except OSError:
            s.close()
            continue
        s.close()
        t.close()
        return port


def rms(pcm: bytes) -> float:
    a = array.array("h")
    a.frombytes(pcm[: len(pcm) // 2 * 2])
    if not a:
        return 0.0
    return math.sqrt(sum(x * x for x in a) / len(a))


def tone(freq: float, seconds: float, rate=8000, amp=8000) -> bytes:
    n = int(seconds * rate)
    a = array.array("h", (int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))
    return a.tobytes()


def dominant_freq(pcm: bytes, rate=8000, candidates=(440, 1000, 1500, 2000)) -> dict:
    """Goertzel power at a few frequencies (no numpy needed)."""
    a = array.array("h")
    a.frombytes(pcm[: len(pcm) // 2 * 2])
    out = {}
    n = len(a)
    for f in candidates:
        k = 2 * math.cos(2 * math.pi * f / rate)
        s1 = s2 = 0.0
        for x in a:
            s0 = x + k * s1 - s2
            s2, s1 = s1, s0
        out[f] = math.sqrt(max(0.0, s1 * s1 + s2 * s2 - k * s1 * s2)) / max(1, n)
    return out


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


class DebianBaresip:
    """Debian's baresip 1.0.0 as an independent SIP peer."""

    def __init__(self, workdir, user="callee", wav=None, answermode="auto", extra_account=""):
        self.dir = workdir
        self.user = user
        if wav and not os.path.exists(wav):  # 20 s tone, 8 kHz mono 16-bit
            os.makedirs(os.path.dirname(wav), exist_ok=True)
            freq = "2000" if "2000" in os.path.basename(wav) else "1000"
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", wav, "synth", "20",
                            "sine", freq, "vol", "0.5"], check=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        rtp_lo = 30000 + (self.sip_port % 200) * 100
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(os.path.join(workdir, "snd"))
        with open(os.path.join(workdir, "config"), "w") as f:
            f.write(
                BARESIP_CONFIG.format(
                    sip_port=self.sip_port,
                    ctrl_port=self.ctrl_port,
                    wav=wav,
                    sink=f"sink{self.sip_port}",
                    snd_path=os.path.join(workdir, "snd"),
                    rtp_lo=rtp_lo,
                    rtp_hi=rtp_lo + 99,
                )
            )
        with open(os.path.join(workdir, "accounts"), "w") as f:
            f.write(
                f"<sip:{user}@127.0.0.1:{self.sip_port}>;regint=0;answermode={answermode};"
                f"audio_codecs=PCMA/8000/1,PCMU/8000/1;ptime=20{extra_account}\n"
            )
        self.proc = None
        self.events = []
        self._reader = None
        self._writer = None
        self._task = None
        self._waiters = []

    @property
    def uri(self):
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    async def start(self):
        self.log = open(os.path.join(self.dir, "baresip.log"), "w")
        self.proc = subprocess.Popen(
            ["baresip", "-f", self.dir],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                self._reader, self._writer = await asyncio.open_connection(LOOP, self.ctrl_port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("baresip ctrl_tcp did not come up")
        self._task = asyncio.create_task(self._read_loop())

    async def _read_loop(self):
        buf = b""
        while True:
            chunk = await self._reader.read(4096)
            if not chunk:
                return
            buf += chunk
            while b":" in buf:
                ln, _, rest = buf.partition(b":")
                n = int(ln)
                if len(rest) < n + 1:
                    break
                msg = json.loads(rest[:n])
                buf = rest[n + 1 :]
                msg["_t"] = time.monotonic()
                self.events.append(msg)
                for pred, fut in list(self._waiters):
                    if not fut.done() and pred(msg):
                        fut.set_result(msg)

    async def command(self, command, params="", token="t"):
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        return await self.wait(lambda m: m.get("response") and m.get("token") == token, 5)

    async def wait(self, pred, timeout):
        for m in self.events:
            if pred(m):
                return m
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.remove((pred, fut))

    def event_types(self):
        return [(m.get("type"), m.get("param")) for m in self.events if m.get("event")]

    async def stop(self):
        if self._writer:
            self._writer.close()
        if self._task:
            self._task.cancel()
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class Kamailio:
    """Debian kamailio 5.6 as a loopback proxy from kamailio.cfg.tmpl."""

    def __init__(self, workdir, **ports):
        self.dir = workdir
        self.port = free_port()
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        tmpl = open(os.path.join(os.path.dirname(__file__), "kamailio.cfg.tmpl")).read()
        subs = {"KPORT": self.port, "CALLEE_PORT": 9, "EARLY_PORT": 9, "RING_PORT": 9,
                "AGENT_PORT": 9}
        subs.update({k.upper(): v for k, v in ports.items()})
        for k, v in subs.items():
            tmpl = tmpl.replace("{" + k + "}", str(v))
        self.cfg = os.path.join(workdir, "kamailio.cfg")
        with open(self.cfg, "w") as f:
            f.write(tmpl)
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "kamailio.log"), "w")
        # -DD: stay in the foreground (children still fork); -E: log to stderr
        self.proc = subprocess.Popen(
            ["kamailio", "-f", self.cfg, "-DD", "-E", "-m", "32", "-M", "4",
             "-P", os.path.join(self.dir, "k.pid"), "-Y", self.dir],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "INFO: <core>" in open(os.path.join(self.dir, "kamailio.log")).read() or \
               self.proc.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError("kamailio exited: " + open(os.path.join(self.dir, "kamailio.log")).read()[-2000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
