"""The DTMF collector between a source of keys and a sink; its timer is a fake sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.events import InProcessBus
from tests.unit.voice.pipeline_helpers import attach, run_processor
from voice.call.dtmf import DtmfCollector
from voice.call.events import CallerDone, CallerInput, Digit, HungUp, ListenFor
from voice.call.timeline import Timeline


class FakeSleep:
    """A sleep that lasts until the test says it ran out."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.ran_out = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.ran_out.wait()


def collector(dtmf_max: int, *, accepting: bool = True,
              sleep: FakeSleep | None = None) -> DtmfCollector:
    stage = DtmfCollector(Timeline("c1", InProcessBus()), interdigit_s=3.0,
                          accepting=lambda: accepting, sleep=sleep or FakeSleep())
    stage.listen_for(ListenFor(dtmf_max=dtmf_max))
    return stage


def inputs(out: Sequence[object]) -> list[str]:
    return [e.text for e in out if isinstance(e, CallerInput)]


async def test_dtmf_max_digits_are_one_input() -> None:
    out = await run_processor(collector(4), [Digit(d) for d in "123456"])
    assert inputs(out) == ["1234"]
    assert [type(e) for e in out] == [CallerInput, CallerDone]
    assert isinstance(out[0], CallerInput) and out[0].kind == "dtmf"


async def test_hash_ends_the_entry_and_is_not_kept() -> None:
    stage = collector(6)
    out = await run_processor(stage, [Digit("5"), Digit("6"), Digit("#")])
    assert inputs(out) == ["56"] and not stage.busy


async def test_without_dtmf_max_each_key_is_an_answer() -> None:
    out = await run_processor(collector(0), [Digit("1"), Digit("2")])
    assert inputs(out) == ["1", "2"]


async def test_the_interdigit_timer_ends_a_short_entry() -> None:
    sleep = FakeSleep()
    stage = collector(4, sleep=sleep)
    sink = attach(stage)
    for digit in "12":
        await stage.process(Digit(digit))
    await asyncio.sleep(0)
    assert stage.busy and sleep.asked[-1] == 3.0 and sink.events == []
    sleep.ran_out.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert inputs(sink.events) == ["12"] and not stage.busy


async def test_flush_takes_what_was_keyed_and_the_timer_is_cancelled() -> None:
    sleep = FakeSleep()
    stage = collector(4, sleep=sleep)
    sink = attach(stage)
    await stage.process(Digit("7"))
    stage.cancel_timer()
    await stage.flush()
    sleep.ran_out.set()
    await asyncio.sleep(0)
    assert inputs(sink.events) == ["7"]


async def test_keys_during_a_disclosure_are_no_answer_and_others_pass() -> None:
    out = await run_processor(collector(1, accepting=False), [Digit("1"), HungUp("remote")])
    assert out == [HungUp("remote")]
