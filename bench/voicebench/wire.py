"""`--capture`: RTP on the wire, the kernel timestamps of every packet on `lo`."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
from collections import defaultdict
from typing import Any

from bench.voicebench.stats import pct
from voice.audio.frames import FRAME_MS

SO_TIMESTAMPNS = 35  # Linux; not exported by the socket module
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4


def _capture_process(conn: Any) -> None:
    """Record the kernel arrival time of every RTP/G.711 packet on `lo`, per UDP flow, until
    told to stop.  Independent of both processes' Python loops (the phone's own arrival
    times include its event loop's lag)."""
    import select
    import socket
    import struct

    flows: dict[tuple[int, int], list[tuple[float, int]]] = defaultdict(list)
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
        sock.bind(("lo", 0))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError as exc:  # needs CAP_NET_RAW
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", None))
    while not conn.poll():
        if not select.select([sock], [], [], 0.2)[0]:
            continue
        data, ancillary, _, addr = sock.recvmsg(2048, 64)
        if addr[2] == PACKET_OUTGOING:  # lo shows every packet twice
            continue
        ihl = (data[14] & 0x0F) * 4
        if data[23] != 17:  # UDP
            continue
        udp = 14 + ihl
        rtp = data[udp + 8:]
        if len(rtp) != 12 + 160 or rtp[0] >> 6 != 2 or rtp[1] & 0x7F not in (0, 8):
            continue
        sport, dport = struct.unpack("!HH", data[udp:udp + 4])
        seq = struct.unpack("!H", rtp[2:4])[0]
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                flows[(sport, dport)].append((sec + nsec / 1e9, seq))
    conn.recv()
    conn.send(("done", {f"{a}>{b}": times for (a, b), times in flows.items()}))


def udp_ports(pid: int) -> set[int]:
    """The local UDP ports of a process's sockets (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as lines:
            for line in list(lines)[1:]:
                parts = line.split()
                if parts[9] in inodes:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


class WireCapture:
    """`--capture`: the gateway's RTP send timing as the kernel saw the packets."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_capture_process, args=(child,), daemon=True)
        self.ports: set[int] = set()
        self.error: str | None = None

    async def __aenter__(self) -> WireCapture:
        self.process.start()
        kind, detail = await asyncio.to_thread(self.conn.recv)
        if kind == "error":
            self.error = detail
        self._sampler = asyncio.create_task(self._sample_ports())
        return self

    async def _sample_ports(self) -> None:
        while True:  # the gateway's RTP sockets come and go with the calls
            self.ports |= await asyncio.to_thread(udp_ports, os.getpid())
            await asyncio.sleep(1.0)

    async def __aexit__(self, *exc: object) -> None:
        self._sampler.cancel()
        if self.error is None:
            self.conn.send("stop")
            _, self.flows = await asyncio.to_thread(self.conn.recv)
        await asyncio.to_thread(self.process.join, 5)

    def report(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        sent = []
        missed = 0
        for flow, packets in self.flows.items():
            if int(flow.split(">")[0]) not in self.ports:
                continue
            devs: list[float] = []
            late = 0
            for (t0, s0), (t1, s1) in zip(packets[5:], packets[6:], strict=False):
                if (s1 - s0) & 0xFFFF != 1:  # a packet the capture missed
                    missed += 1
                    continue
                devs.append(abs((t1 - t0) * 1000 - FRAME_MS))
                late += (t1 - t0) * 1000 > 2 * FRAME_MS
            sent.append({"p99_abs_dev_ms": pct(devs, 99), "over_40ms": late})
        p99 = [s["p99_abs_dev_ms"] for s in sent if s["p99_abs_dev_ms"] is not None]
        return {"streams": len(sent), "capture_missed": missed,
                "interval_p99_abs_dev_ms_worst_call": max(p99) if p99 else None,
                "interval_p99_abs_dev_ms_median_call": pct(p99, 50),
                "intervals_over_40ms": sum(s["over_40ms"] for s in sent)}
