"""The paraphrase set (examples/personas-variants): every sample persona said in other
everyday words, three times, with the same expectation.

The whole set runs with `make variants` (about an hour through the voice path here); this
test keeps the file set honest: three variants of every sample persona, the same
expectation and turn kinds, and no longer utterance copied from the training data or the
hints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.personas import load_personas

ROOT = Path(__file__).resolve().parents[2]
ORIGINALS = ROOT / "examples" / "personas"
VARIANTS = ROOT / "examples" / "personas-variants"
TYPES = ["marketing", "notification", "survey", "second_confirmation"]



def _plain(text: str) -> str:
    return re.sub(r"[\s，。,.!?？！、…]+", "", text)


def _trained_and_hinted() -> set[str]:
    """Every NLU training example and every ASR hint of domain.yml, punctuation removed."""
    said: set[str] = set()
    for path in (ROOT / "data" / "nlu").glob("*.yml"):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            for line in (item.get("examples") or "").splitlines():
                if line.strip().startswith("- "):
                    said.add(_plain(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1",
                                           line.strip()[2:])))
    domain = (ROOT / "domain.yml").read_text(encoding="utf-8")
    for hints in re.findall(r'"hints": \[([^\]]*)\]', domain):
        said |= {_plain(hint) for hint in re.findall(r'"([^"]+)"', hints)}
    return said


@pytest.mark.parametrize("kind", TYPES)
def test_every_sample_persona_has_three_variants_with_its_expectation(kind: str) -> None:
    trained = _trained_and_hinted()
    variants = {p.id: p for p in load_personas(VARIANTS / kind)}
    for original in load_personas(ORIGINALS / kind):
        mine = [variants.pop(f"{original.id}_v{n}") for n in (1, 2, 3)]
        for variant in mine:
            assert Path(variant.source).stem == variant.id
            assert variant.expect == original.expect, variant.id
            assert variant.dial_result == original.dial_result, variant.id
            assert [t.kind for t in variant.turns] == [t.kind for t in original.turns], \
                variant.id
            for turn, said in zip(variant.turns, original.turns, strict=True):
                if turn.kind == "dtmf":
                    assert turn.value == said.value, variant.id
                if turn.kind in ("say", "barge_in"):
                    words = _plain(str(turn.value))
                    assert words != _plain(str(said.value)), (variant.id, words)
                    # Short replies (你讲, 说吧) are everyone's and may well be trained on; a
                    # longer one found word for word no longer tests unscripted words.
                    assert len(words) < 5 or words not in trained, (variant.id, words)
    assert variants == {}, f"variants of no sample persona: {sorted(variants)}"
