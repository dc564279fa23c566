"""The paraphrase set as text calls through the real Rasa server and action server: the
understanding (NLU and dialogue) holds for wordings nobody scripted, whatever a retrain
moved.  The NLU boundaries are close (不要 / 不需要 / 再想想 / 别打了), and a retrain
after new examples has moved earlier held cases across them (还没拿定主意 heard as
do_not_call, 同意接着用 as not_needed); the held-out gate counts intents, this counts
calls.  The same set through the voice path is `make variants` (ASR on top, about 45
minutes, not part of the tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bot.demo import PersonaResult, run_campaign
from bot.expectations import summarise
from bot.services import RasaStack
from bot.store import Database
from tests.e2e.test_persona_variants import ORIGINALS, TYPES, VARIANTS

pytestmark = pytest.mark.rasa

EXAMPLES = ORIGINALS.parent
HELD_AT_LEAST = 0.95  # issue 16's target for the voice path; text calls must meet it too


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('variants') / 'variants.db'}"
    Database(url).upgrade()
    with RasaStack(url) as stack:
        groups: dict[str, list[PersonaResult]] = {}
        for kind in TYPES:
            groups[kind], _ = asyncio.run(run_campaign(
                Database(url), stack.endpoint, EXAMPLES / "campaigns" / f"{kind}.yml",
                VARIANTS / kind))
        yield summarise(groups)


def test_no_persona_that_did_not_clearly_agree_consents(summary: dict) -> None:
    assert summary["unwanted_consents"] == 0


def test_the_paraphrased_personas_meet_their_expectations(summary: dict) -> None:
    failures = [f for group in summary["groups"].values() for f in group["failures"]]
    assert summary["run"] >= 100
    assert summary["held_rate"] >= HELD_AT_LEAST, failures
