"""Benchmark the dialogue path: Rasa REST latency per message over whole scripted calls (with
the custom actions and the database), throughput with concurrent callers, server start-up,
model size, memory, and optionally training time. Prints one JSON object.

    .venv/bin/python bench/nlu.py [--calls 40] [--concurrency 8] [--train]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.campaigns.definition import load_definition  # noqa: E402
from bot.campaigns.registry import save_campaign  # noqa: E402
from bot.channel import RasaChannel, RasaEndpoint  # noqa: E402
from bot.demo import add_persona_contacts  # noqa: E402
from bot.personas import load_personas  # noqa: E402
from bot.services import MODEL, RASA_BIN, RasaStack  # noqa: E402
from bot.store import Database  # noqa: E402
from bot.textcall import TextCall, play_persona  # noqa: E402


class TimedClient(RasaChannel):
    """Records the wall time of every REST round trip."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.latencies_ms: list[float] = []

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        start = time.perf_counter()
        replies = await super().send(sender, message, metadata)
        self.latencies_ms.append((time.perf_counter() - start) * 1000)
        return replies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


async def run_calls(db: Database, rasa: RasaEndpoint, calls: int, concurrency: int
                    ) -> dict[str, Any]:
    defn = load_definition(REPO / "examples/campaigns/marketing.yml")
    campaign_id = save_campaign(db, defn)
    personas = [p for p in load_personas(REPO / "examples/personas/marketing")
                if p.dial == "answer"]
    chosen = [personas[i % len(personas)] for i in range(calls)]
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:
        client = TimedClient(rasa.url, http, token=rasa.token)

        async def one(contact_id: int, persona: Any) -> None:
            async with gate:
                _, call = TextCall.dial(client, db, campaign_id, contact_id)
                assert call is not None
                await play_persona(call, persona)

        # one contact per call (numbered by position), personas re-used round-robin
        by_contact = add_persona_contacts(db, campaign_id, chosen, date.today())
        start = time.perf_counter()
        await asyncio.gather(*(one(cid, p) for cid, p in by_contact.items()))
        elapsed = time.perf_counter() - start
    lat = client.latencies_ms
    return {"calls": len(by_contact), "messages": len(lat), "concurrency": concurrency,
            "latency_ms": {"p50": percentile(lat, 0.5), "p95": percentile(lat, 0.95),
                           "mean": round(statistics.fmean(lat), 1), "max": round(max(lat), 1)},
            "messages_per_s": round(len(lat) / elapsed, 1)}


def train_seconds() -> float:
    out = Path(tempfile.mkdtemp(prefix="waihu-train-"))
    start = time.perf_counter()
    subprocess.run([str(RASA_BIN), "train", "--force", "--out", str(out), "--quiet"],
                   cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"})
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return round(seconds, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=40, help="calls per phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--train", action="store_true", help="also time a full training")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="waihu-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    db = Database(url)
    db.upgrade()
    result: dict[str, Any] = {"model_mb": round(MODEL.stat().st_size / 1e6, 1)}
    start = time.perf_counter()
    with RasaStack(url) as stack:
        result["startup_s"] = round(time.perf_counter() - start, 1)
        sequential = asyncio.run(run_calls(db, stack.endpoint, args.calls // 2, 1))
        concurrent = asyncio.run(run_calls(db, stack.endpoint, args.calls, args.concurrency))
        rasa_proc, actions_proc = stack.processes[1].popen, stack.processes[0].popen
        assert rasa_proc and actions_proc
        result["rss_mb"] = {"rasa_server": rss_mb(rasa_proc.pid),
                            "action_server": rss_mb(actions_proc.pid)}
    result["sequential"] = sequential
    result["concurrent"] = concurrent
    if args.train:
        result["train_s"] = train_seconds()
    print(json.dumps(result, ensure_ascii=False))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
