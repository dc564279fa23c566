"""Which question a caller's input answers, through the whole session (in-memory leg, fake
Rasa and ASR, real SQLite): words begun before the bot's reply was heard are flagged
`before_question` (no consent rests on them), and after an agent hands the call back, what
the caller began saying before the read-back was said to the agent and answers nothing.

The bug behind the second test (the closing note of 2026-12-06): the customer's 是的, said to
the agent, straddled the hand-back; its tail was heard by the bot after it, waited in the
input queue through the whole read-back and was taken as its answer, a `deny`, and the sale
the agent had closed was declined.  The tail was also timed at the bridge's start, since the
endpointer's clock had stood still while the bridge read the caller's frames.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot import channel, events
from bot.agents.handover import Handover
from bot.events import CallEvent
from bot.store import CallRepo, Database
from tests.unit.voice.test_desk_offer import FakeDesk, until
from tests.unit.voice.test_session import (
    HANGUP,
    ScriptedAsr,
    ScriptedRasa,
    listen,
    start,
    tone,
    wait_bot_quiet,
)
from voice.asr.base import Transcript
from voice.telephony.fake import FarEnd

READ_BACK = "跟您确认一下，您要办理的是流量包"


class WordsByLength(ScriptedAsr):
    """Hears "同意" in an utterance of at least `long_ms`, "是的" in a shorter one (the
    bridge's own transcriber, which hears the customer too, decodes in between)."""

    def __init__(self, long_ms: int = 1300) -> None:
        super().__init__()
        self.long_ms = long_ms

    def heard(self, audio_ms: int) -> Transcript:
        text = "同意" if audio_ms >= self.long_ms else "是的"
        return Transcript(text, 0.9, "scripted", raw=text)


class SlowRasa(ScriptedRasa):
    """Takes `think_s` over the messages named in `slow` (the real one thinks too)."""

    def __init__(self, *replies: list[dict[str, Any]], slow: tuple[str, ...],
                 think_s: float) -> None:
        super().__init__(*replies)
        self.slow, self.think_s = slow, think_s
        self.thinking: list[str] = []  # the messages it has begun to think over

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.thinking.append(message)
        if message in self.slow:
            await asyncio.sleep(self.think_s)
        return await super().send(sender, message, metadata)


class Desk(FakeDesk):
    """One agent; the call opens a hand-over (the campaign has agents)."""

    async def open(self, call_id: str, reason: str) -> Handover | None:
        return Handover(7, "handback-unit", 5.0, 10.0)


def customer_turns(db: Database, call_id: str) -> list[str]:
    with db.session() as s:
        return [t.text for t in CallRepo(s).turns(call_id) if t.speaker == "customer"]


async def test_words_across_the_hand_back_are_no_answer_to_the_read_back(
        sqlite_db: Database, tmp_path: Path) -> None:
    far, agent = FarEnd(), FarEnd()
    rasa = SlowRasa([{"text": "正在为您转接"}, {"custom": {"transfer": {"reason": "sale"}}}],
                    [{"text": READ_BACK}, listen(timeout_s=4, hints=("同意", "是的"))],
                    [{"text": "已为您办理"}, HANGUP],
                    slow=(channel.AGENT_HANDBACK,), think_s=0.5)
    session, task = await start(sqlite_db, far, rasa, WordsByLength(), tmp_path,
                                agent=agent, desk_poll_s=0.02)
    desk = Desk({1: "sip:alice@127.0.0.1"})
    session.handoff.desk = desk
    seen: list[CallEvent] = []
    session.events.subscribe(seen.append)
    offer = await desk.wait_offer(1, timeout=10)
    desk.answer(offer.offer_id, "accepted")
    await until(lambda: [e for e in seen if e.name == events.CALL_BRIDGED], 5)
    await asyncio.sleep(0.5)
    # 是的 to the agent, 800 ms of it; the agent hands back 500 ms into it
    far.say(tone(800))
    await asyncio.sleep(0.5)
    desk.returned.add(7)
    handed_back_at = session.timeline.now_ms()
    await until(lambda: any(e.name == events.TURN_BOT and e.data.get("text") == READ_BACK
                            for e in seen), 10)  # published once it has been said
    await asyncio.sleep(0.3)
    asked = [m for m, _ in rasa.sent]
    assert asked[-1] == channel.AGENT_HANDBACK, f"taken as an answer: {asked}"
    far.say(tone(1500))  # 同意, to the read-back
    result = await asyncio.wait_for(task, 15)

    assert result.ended_by == "bot"
    message, meta = rasa.sent[-1]
    assert message == "同意" and not meta.get("before_question")
    # timed on the call's clock, where the recording holds it, not the bridge's start
    assert meta["audio_start_ms"] > handed_back_at + 500
    ignored = [e.data["text"] for e in seen if e.name == events.TURN_SYSTEM
               and "不作为回答" in str(e.data.get("text"))]
    assert ignored == ["坐席转回前客户所说，不作为回答：是的"]
    assert customer_turns(sqlite_db, session.call_id)[-1] == "同意"


async def test_words_said_while_the_dialogue_thinks_do_not_answer_its_next_question(
        sqlite_db: Database, tmp_path: Path) -> None:
    far = FarEnd()
    rasa = SlowRasa([{"text": "您好，请问您对这个优惠感兴趣吗？"}, listen(timeout_s=3)],
                    [{"text": "请问您是否同意开通？"}, listen(timeout_s=3)],
                    [{"text": "请您按1确认"}, listen(timeout_s=3)],
                    [{"text": "再见"}, HANGUP],
                    slow=("是的",), think_s=1.5)
    session, task = await start(sqlite_db, far, rasa, WordsByLength(), tmp_path)
    await wait_bot_quiet(far)
    far.say(tone(500))  # 是的: Rasa thinks 1.5 s over it
    await until(lambda: len(rasa.thinking) >= 2, 5)
    await asyncio.sleep(0.1)
    far.say(tone(1500))  # 同意, said before the consent question is asked
    await until(lambda: len(rasa.sent) >= 3, 10)
    await wait_bot_quiet(far)
    far.say(tone(1500))  # 同意, to the keyed question, after it was heard
    await asyncio.wait_for(task, 15)

    early, late = rasa.sent[2], rasa.sent[3]
    assert early[0] == "同意" and early[1]["before_question"] is True
    assert late[0] == "同意" and "before_question" not in late[1]
    assert "before_question" not in rasa.sent[1][1]  # 是的 came after its question
