"""The virtual customers: a SimPhone in a process of its own, so that its CPU is not counted
as the gateway's; it reports its call records (each with `t0_monotonic`, the INVITE on the
monotonic clock, which the gateway's process shares), packet arrival jitter and CPU time."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.voicebench import CACHE_DIR
from bench.voicebench.stats import cpu_s, interval_stats
from bot.personas import Persona
from voice.tts.espeak import Synthesizer


def _phone_process(personas: dict[str, Persona], synthesizer: Synthesizer | None,
                   conn: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_phone_main(personas, synthesizer, conn))


async def _phone_main(personas: dict[str, Persona], synthesizer: Synthesizer | None,
                      conn: Any) -> None:
    from voice.simphone.phone import SimPhone, SimPhoneOptions

    class Phone(SimPhone):
        arrivals: dict[str, list[float]]
        t0s: dict[str, float]

        def _heard(self, call: Any, frame: Any) -> None:
            self.arrivals[call.number].append(frame.arrival)
            super()._heard(call, frame)

        def _finish(self, call: Any) -> None:
            self.t0s[call.invite.call_id] = call.t0
            super()._finish(call)

    phone = Phone(personas, synthesizer=synthesizer, cache_dir=CACHE_DIR,
                  options=SimPhoneOptions(idle_hangup_s=15.0, max_call_s=600.0))
    phone.arrivals = defaultdict(list)
    phone.t0s = {}
    await asyncio.to_thread(phone.prepare)
    await phone.start()
    cpu0 = cpu_s()
    conn.send(("ready", phone.port))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # "stop"
    await phone.close()
    jitter = {number: interval_stats(times) for number, times in phone.arrivals.items()}
    records = [{**r.to_json(), "t0_monotonic": phone.t0s.get(r.call_id)} for r in phone.records]
    conn.send(("done", records, jitter, cpu_s() - cpu0))


@dataclass
class PhoneProc:
    process: Any
    conn: Any
    port: int

    @classmethod
    async def start(cls, personas: dict[str, Persona], synth: Synthesizer | None) -> PhoneProc:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_phone_process, args=(personas, synth, child), daemon=True)
        process.start()
        msg = await asyncio.to_thread(parent.recv)
        return cls(process, parent, int(msg[1]))

    async def stop(self) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
        self.conn.send("stop")
        msg = await asyncio.wait_for(asyncio.to_thread(self.conn.recv), 30)
        await asyncio.to_thread(self.process.join, 10)
        return msg[1], msg[2], msg[3]
