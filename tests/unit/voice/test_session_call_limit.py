"""The bot's call-length limit ends the bot's conversation, not an agent's call: once the
call is bridged to an agent it may last as long as they talk.  In-memory telephony."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.store import CallRepo, Database, EscalationRepo
from bot.store.models import Call
from tests.unit.voice.test_session import ScriptedAsr, ScriptedRasa, listen, start, tone
from voice.telephony.fake import FarEnd


async def test_a_bridged_call_outlasts_the_bots_call_length_limit(
        sqlite_db: Database, tmp_path: Path) -> None:
    far, agent = FarEnd(), FarEnd(answer_after_ms=100)
    rasa = ScriptedRasa([{"text": "正在为您转接人工"},
                         {"custom": {"transfer": {"reason": "request_human"}}}])
    session, task = await start(sqlite_db, far, rasa, ScriptedAsr(), tmp_path, agent=agent,
                                agent_uri="sip:agent@127.0.0.1", max_call_s=2.0)
    with sqlite_db.session() as s:
        call = s.get(Call, session.call_id)
        assert call is not None
        EscalationRepo(s).add(call.id, call.campaign_id, call.contact_id, "request_human", {})
    while agent.leg is None or not agent.heard:
        await asyncio.sleep(0.02)
    await asyncio.sleep(3.0)  # past the limit, customer and agent still talking
    assert not task.done()
    far.say(tone(400, 300))
    await asyncio.sleep(0.6)
    far.hang_up()
    result = await asyncio.wait_for(task, 10)

    assert result.ended_by == "bridge_ended"
    assert result.duration_ms > 3000
    with sqlite_db.session() as s:
        texts = [t.text for t in CallRepo(s).turns(session.call_id)]
    assert "通话超过最长时长，系统挂机" not in texts


async def test_the_limit_still_ends_the_bots_own_conversation(
        sqlite_db: Database, tmp_path: Path) -> None:
    rasa = ScriptedRasa([{"text": "您好"}, listen(timeout_s=30)])
    _, task = await start(sqlite_db, FarEnd(), rasa, ScriptedAsr(), tmp_path, max_call_s=1.5)
    result = await asyncio.wait_for(task, 10)
    assert result.ended_by == "timeout"
