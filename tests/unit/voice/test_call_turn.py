"""The dialogue turn with a fake channel: inputs in, Rasa's messages and the turns out."""

from __future__ import annotations

import asyncio
from typing import Any

from bot import events
from bot.events import CallEvent, InProcessBus
from tests.unit.voice.pipeline_helpers import run_processor
from voice.asr.base import Transcript
from voice.call.events import CallerDone, CallerHungUp, CallerInput, ListenFor
from voice.call.timeline import Timeline
from voice.call.turn import DialogueTurn


class FakeChannel:
    """A `bot.channel.DialogueChannel`: records what it was sent, answers from a script."""

    def __init__(self, *replies: list[dict[str, Any]]) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.flushed_before: list[bool] = []

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.sent.append((sender, message, dict(metadata or {})))
        return self.replies.pop(0) if self.replies else []


class Setup:
    def __init__(self, *replies: list[dict[str, Any]], busy: bool = False) -> None:
        self.bus = InProcessBus()
        self.published: list[CallEvent] = []
        self.bus.subscribe(self.published.append)
        self.channel = FakeChannel(*replies)
        self.closed = asyncio.Event()
        self.flushes = 0
        self.busy = busy
        self.turn = DialogueTurn(self.channel, Timeline("c1", self.bus), closed=self.closed,
                                 flush=self.flush, busy=lambda: self.busy, timeout_s=0.2)

    async def flush(self) -> None:
        self.flushes += 1

    def texts(self) -> list[tuple[str, str]]:
        return [(e.name, e.data["text"]) for e in self.published
                if e.name in events.TURN_EVENTS]


def heard(text: str, confidence: float = 0.9, snapped: bool = False) -> CallerInput:
    return CallerInput("speech", text, Transcript(text, confidence, "fake", raw=text,
                                                  snapped=snapped), 100, 700)


async def test_inputs_are_queued_and_other_events_pass() -> None:
    setup = Setup()
    out = await run_processor(setup.turn, [heard("是的"), CallerDone(700.0)])
    assert out == [CallerDone(700.0)]
    assert await setup.turn.listen() == heard("是的")


async def test_each_input_kind_becomes_its_message_and_turn() -> None:
    setup = Setup()
    turn = setup.turn
    turn.interrupted = ("price",)
    assert turn.message(heard("是的", 0.93, snapped=True)) == (
        "是的", {"input_mode": "speech", "asr_confidence": 0.93, "asr_snapped": True,
                 "disclosures_interrupted": ["price"],
                 "audio_start_ms": 100, "audio_end_ms": 700})  # for the consent ledger
    assert turn.message(CallerInput("dtmf", "1234", None, 5, 5)) == (
        '/dtmf{"digits": "1234"}', {"input_mode": "dtmf", "disclosures_interrupted": ["price"],
                                    "audio_start_ms": 5, "audio_end_ms": 5})
    unclear = CallerInput("unclear", "", Transcript("", 0.2, "fake", raw="嗯啊", unclear=True))
    assert turn.message(unclear)[0] == "/asr_unclear"
    assert turn.message(CallerInput("silence", at_ms=9))[0] == "/silence_timeout"
    assert setup.texts() == [
        (events.TURN_CUSTOMER, "是的"), (events.TURN_CUSTOMER, "[按键 1234]"),
        (events.TURN_CUSTOMER, "[听不清] 嗯啊"), (events.TURN_SYSTEM, "客户无应答")]
    assert turn.replied


async def test_silence_does_not_count_as_a_reply() -> None:
    setup = Setup()
    setup.turn.message(CallerInput("silence"))
    assert not setup.turn.replied


async def test_listen_times_out_as_silence_but_waits_while_the_caller_is_busy() -> None:
    setup = Setup(busy=True)
    setup.turn.listen_for(ListenFor(timeout_s=0.1))
    loop = asyncio.get_running_loop()
    began = loop.time()
    listening = asyncio.create_task(setup.turn.listen())
    await asyncio.sleep(0.3)
    assert not listening.done()  # the caller is speaking: no silence yet
    setup.busy = False
    got = await asyncio.wait_for(listening, 2)
    assert got.kind == "silence" and loop.time() - began >= 0.3


async def test_ask_flushes_the_transcript_then_sends_and_parses_the_reply() -> None:
    setup = Setup([{"text": "好的"}, {"custom": {"listen": {"expect": "yes_no"}}}])
    reply = await setup.turn.ask("是的", {"input_mode": "speech"})
    assert setup.flushes == 1
    assert setup.channel.sent == [("c1", "是的", {"input_mode": "speech"})]
    assert reply.texts == ["好的"] and reply.listen == {"expect": "yes_no"}
    assert setup.turn.turns == 1 and not setup.turn.requests


async def test_an_input_taken_after_the_hang_up_is_kept_for_the_hang_up_phase() -> None:
    setup = Setup([{"custom": {"transfer": {}}}])
    setup.closed.set()
    try:
        await setup.turn.ask("4", {"input_mode": "speech"})
    except CallerHungUp:
        pass
    else:
        raise AssertionError("a closed leg must end the conversation")
    assert setup.turn.unsent == [("4", {"input_mode": "speech"})] and not setup.channel.sent
    reply = await setup.turn.send_after_hangup("4", {"input_mode": "speech"})
    assert setup.channel.sent[-1][2] == {"input_mode": "speech", "caller_hung_up": True}
    assert reply.transfer == {}
