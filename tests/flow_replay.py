"""Replay a conversation's intents through the call flow with a sample campaign's script."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from actions import context, flow
from bot.campaigns.definition import load_definition

CAMPAIGNS = Path(__file__).resolve().parents[1] / "examples" / "campaigns"
ID_LAST4 = "1234"  # what the sample contacts' ID cards end in
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def replay(campaign: str, turns: list[tuple[str, str, dict[str, str]]]
           ) -> list[tuple[str, str]]:
    """(lead, question) for the start of the call and after each (intent, text, entities)."""
    script = context.build_script(load_definition(CAMPAIGNS / f"{campaign}.yml"),
                                  can_verify_id=True)
    state = flow.FlowState()
    moves = []
    for turn in [None, *turns]:
        dialogue = flow.CallFlow(script, state, now=NOW,
                                 check_id=lambda digits: digits == ID_LAST4)
        if turn is None:
            step = dialogue.start()
        else:
            intent, text, entities = turn
            step = dialogue.handle(flow.Reply(
                intent, text="" if text.startswith("/") else text, entities=entities,
                input_mode="dtmf" if intent == "dtmf" else "text"))
        state = dialogue.state
        moves.append((step.lead, step.question))
    return moves
