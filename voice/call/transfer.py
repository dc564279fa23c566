"""Transfer to an agent, when the bot's reply asks for one.

`transfer_mode: bridge` (the default) dials the agent with `X-Waihu-Call-Id` /
`X-Waihu-Reason` headers (the console finds the escalation's context by call id) and relays
frames both ways through the customer leg, so the recording goes on (and, given an
`AgentTranscriber`, the agent's words are transcribed: agent_side.py); `refer` sends a blind
REFER and the recording ends at the transfer.  No agent configured, an agent who does not
answer or a refused REFER: the bot apologises (`no_agent_text`) and the escalation is
marked `failed`.

A campaign with agents (``agent_campaigns`` rows) goes through the desk instead, in bridge
mode: the customer hears the holding line while the call is offered to one agent after
another (voice/call/desk_offer.py); nobody taking it within the campaign's wait limit ends
on the same apology.  There the agent may hand the call back to the bot to confirm a sale:
`run` then returns "handed_back" and the session gives the call back to the dialogue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from bot import callrecord, events
from bot.channel import BotSegment
from bot.store import Database, EscalationRepo
from voice.call.agent_side import AgentTranscriber
from voice.call.desk_offer import DatabaseDesk, DeskOffer, DeskPort
from voice.call.speaker import Speaker
from voice.call.timeline import Timeline
from voice.telephony.base import DialRequest, Leg, Telephony

log = logging.getLogger("waihu.session")
HandedBack = Literal["handed_back"]


class Handoff:
    def __init__(self, leg: Leg, telephony: Telephony | None, speaker: Speaker,
                 timeline: Timeline, db: Database, *, agent_uri: str | None,
                 mode: Literal["bridge", "refer"], answer_s: float, no_agent_text: str,
                 stop_listening: Callable[[], None] = lambda: None,
                 desk: DeskPort | None = None, holding_text: str = "",
                 desk_poll_s: float = 0.1,
                 agent_side: AgentTranscriber | None = None) -> None:
        self.leg = leg
        self.telephony = telephony
        self.speaker = speaker
        self.timeline = timeline
        self.db = db
        self.agent_uri = agent_uri
        self.mode = mode
        self.answer_s = answer_s
        self.no_agent_text = no_agent_text
        self.stop_listening = stop_listening  # the bridge reads the caller's frames
        self.desk = desk or DatabaseDesk(db)
        self.holding_text = holding_text
        self.desk_poll_s = desk_poll_s
        self.agent_side = agent_side  # None: the agent's words are not transcribed
        self._offer: DeskOffer | None = None  # the desk's offer under way

    def listening_agent(self) -> Leg | None:
        """The offered agent's phone while they listen in before taking over, if so."""
        return None if self._offer is None else self._offer.listening

    async def run(self, transfer: dict[str, Any]) -> callrecord.EndedBy | HandedBack:
        """Hand the call over; how it ended, or "handed_back" (the call is the bot's
        again)."""
        call_id = self.timeline.call_id
        reason = str(transfer.get("reason") or "request_human")
        if self.mode == "bridge" and self.telephony is not None:
            found = await self.desk.open(call_id, reason)
            if found is not None:
                offer = DeskOffer(self.leg, self.telephony, self.speaker, self.timeline,
                                  self.desk, holding_text=self.holding_text,
                                  answer_s=self.answer_s, poll_s=self.desk_poll_s,
                                  stop_listening=self.stop_listening,
                                  agent_side=self.agent_side)
                self._offer = offer
                try:
                    ended = await offer.run(found, reason)
                finally:
                    self._offer = None
                if ended == "no_agent":
                    return await self.no_agent(reason, offer.why)
                if ended == "handed_back":
                    return "handed_back"
                return "bridge_ended" if ended == "bridged" else "caller"
        uri = self.agent_uri
        if uri is None or self.telephony is None:
            return await self.no_agent(reason, "no agent configured")
        headers = {"X-Waihu-Call-Id": call_id, "X-Waihu-Reason": reason}
        if self.mode == "refer":
            ok = await self.leg.transfer(uri)
            self.set_escalation("connected" if ok else "failed")
            self.timeline.system_turn(f"转接坐席（{'成功' if ok else '失败'}，REFER）")
            return "transfer" if ok else await self.no_agent(reason, "REFER refused")
        agent = await self.telephony.dial(DialRequest(uri, f"{call_id}-agent",
                                                      headers=headers))
        outcome = await agent.wait_answer(self.answer_s)
        if outcome.result != "answered":
            await agent.hangup()
            return await self.no_agent(reason, f"agent {outcome.result}")
        self.set_escalation("connected")
        self.timeline.system_turn("已接通坐席")
        log.info("call.bridged call_id=%s", call_id)
        self.timeline.publish(events.CALL_BRIDGED, self.timeline.now_ms(), agent=uri)
        self.speaker.accepting_input = False
        self.stop_listening()
        side = None if self.agent_side is None else self.agent_side.follow(
            agent, self.timeline, customer=self.leg)
        try:
            await self.leg.bridge(agent)
        finally:
            if side is not None:  # the last words, before the call is closed
                await side.stop()
        return "bridge_ended"

    async def no_agent(self, reason: str, why: str) -> callrecord.EndedBy:
        log.warning("call.no_agent call_id=%s reason=%s why=%s", self.timeline.call_id,
                    reason, why)
        self.set_escalation("failed")
        self.timeline.system_turn(f"转接失败：{why}")
        pcm = await self.speaker.tts.speech(self.no_agent_text)
        await self.speaker.play(BotSegment(self.no_agent_text), pcm)
        self.timeline.bot_turn(self.no_agent_text, self.timeline.now_ms())
        return "bot"

    def set_escalation(self, status: str) -> None:
        with self.db.session() as session:
            EscalationRepo(session).mark_for_call(self.timeline.call_id, status)
