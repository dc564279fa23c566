"""The paraphrase set as text calls through the real Rasa server and action server: the
understanding (NLU and dialogue) holds for wordings nobody scripted, whatever a retrain
moved.  The NLU boundaries are close (不要 / 不需要 / 再想想 / 别打了), and a retrain
after new examples has moved earlier held cases across them (还没拿定主意 heard as
do_not_call, 同意接着用 as not_needed); the held-out gate counts intents, this counts
calls.  The same set through the voice path is `make variants` (ASR on top, about 45
minutes, not part of the tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date

import pytest

from bot.campaigns.definition import CampaignDefinition
from bot.channel import RasaEndpoint
from bot.demo import PersonaResult, load_sample, text_calls
from bot.expectations import summarise
from bot.personas import load_personas
from bot.store import Database
from tests.e2e.test_persona_variants import ORIGINALS, TYPES, VARIANTS

pytestmark = pytest.mark.rasa

EXAMPLES = ORIGINALS.parent
HELD_AT_LEAST = 0.95  # issue 16's target for the voice path; text calls must meet it too


def own_name(defn: CampaignDefinition) -> CampaignDefinition:
    """The sample under a name of this module's own, its second confirmation too: the run's
    database is shared, and test_text_calls runs the samples under their own names."""
    follow = defn.follow_ups.second_confirmation
    follow_ups = defn.follow_ups.model_copy(update={
        "second_confirmation": follow and f"variants-{follow}"})
    return defn.model_copy(update={"name": f"variants-{defn.name}", "follow_ups": follow_ups})


@pytest.fixture(scope="module")
def summary(rasa: RasaEndpoint, db_url: str, pause_running: Callable[[Database], None]
            ) -> dict:
    db = Database(db_url)  # the run's, which the shared action server writes to
    pause_running(db)  # the dialer claims from every running campaign
    today = date.today()
    groups: dict[str, list[PersonaResult]] = {}
    for kind in TYPES:
        defn = own_name(load_sample(EXAMPLES / "campaigns" / f"{kind}.yml", today))
        groups[kind], _ = asyncio.run(text_calls(db, rasa, defn,
                                                 load_personas(VARIANTS / kind), today))
    return summarise(groups)


def test_no_persona_that_did_not_clearly_agree_consents(summary: dict) -> None:
    assert summary["unwanted_consents"] == 0


def test_the_paraphrased_personas_meet_their_expectations(summary: dict) -> None:
    failures = [f for group in summary["groups"].values() for f in group["failures"]]
    assert summary["run"] >= 100
    assert summary["held_rate"] >= HELD_AT_LEAST, failures
