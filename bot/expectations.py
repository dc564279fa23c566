"""How many virtual customers got what their persona files expect: the summary of a run.

`waihu simulate --summary` prints it after the per-persona lines (one folder of personas
per campaign type, e.g. examples/personas-variants/<type>/).  Per folder and overall: the
personas run, the expectations held and their rate, each failure with what was expected
and what happened (and what the bot heard the customer say), and `unwanted_consents`:
consents of personas that were not expected to consent, which must be none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.demo import PersonaResult
from bot.store import CallRepo, Database


def unwanted_consent(result: PersonaResult) -> bool:
    """A consent from a persona whose file does not expect one (rule 4 broken)."""
    return result.outcome == "consented" and result.expect.get("outcome") != "consented"


def failure(result: PersonaResult, heard: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """What a persona expected, what the call gave (the non-empty fields), and the
    customer's turns as the bot heard and classified them."""
    observed = {key: value for key, value in result.observed.items() if value is not None}
    return {"persona": result.persona, "call_id": result.call_id, "expected": result.expect,
            "observed": observed, "attempts": result.attempts, "heard": list(heard)}


def _figures(results: Sequence[PersonaResult]) -> dict[str, Any]:
    held = sum(r.ok for r in results)
    return {"run": len(results), "held": held,
            "held_rate": round(held / len(results), 4) if results else None,
            "unwanted_consents": sum(unwanted_consent(r) for r in results)}


def summarise(groups: Mapping[str, Sequence[PersonaResult]],
              heard: Mapping[str, Sequence[dict[str, Any]]] | None = None
              ) -> dict[str, Any]:
    """Per group (a persona folder: one campaign type) and overall.  *heard*: the customer
    turns of failed calls by call id (`heard_turns`), shown with each failure."""
    heard = heard or {}
    per_group = {name: {**_figures(results),
                        "failures": [failure(r, heard.get(r.call_id, ()))
                                     for r in results if not r.ok]}
                 for name, results in groups.items()}
    everything = [r for results in groups.values() for r in results]
    return {**_figures(everything), "groups": per_group}


def heard_turns(db: Database, call_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The customer's turns of each call as the transcript holds them: the words the bot
    heard (speech after ASR, keys, events), their intent and confidences."""
    with db.session() as session:
        calls = CallRepo(session)
        return {call_id: [{"text": t.text, "intent": t.intent,
                           "intent_confidence": t.intent_confidence,
                           "input_mode": t.input_mode, "asr_confidence": t.asr_confidence}
                          for t in calls.turns(call_id) if t.speaker == "customer"]
                for call_id in call_ids}
