"""The held-out NLU set (tests/nlu_holdout.yml) is never trained on: the accuracy gate in
scripts/rasa_tests.sh means something only while no held-out text is also in data/nlu/."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HOLDOUT = REPO / "tests" / "nlu_holdout.yml"
TRAINING = sorted((REPO / "data" / "nlu").glob("*.yml"))

# [span](entity) or [span]{"entity": ..., "value": ...} -> span
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\(\w+\)|\{[^}]*\})")


def _examples(path: Path) -> list[tuple[str, str]]:
    """(text as the classifier sees it, intent) for every intent example in the file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for block in data.get("nlu") or []:
        if "intent" not in block:
            continue  # regex, lookup and synonym blocks are not examples
        for line in block["examples"].splitlines():
            text = line.strip().removeprefix("- ").strip()
            if text:
                out.append((_ANNOTATION.sub(r"\1", text), block["intent"]))
    return out


def _training() -> list[tuple[str, str]]:
    return [example for path in TRAINING for example in _examples(path)]


def test_no_held_out_example_is_trained_on() -> None:
    trained = {text for text, _ in _training()}
    leaked = [text for text, _ in _examples(HOLDOUT) if text in trained]
    assert not leaked, f"held-out examples also in data/nlu: {leaked}"


def test_held_out_examples_are_unique_and_of_trained_intents() -> None:
    held_out = _examples(HOLDOUT)
    repeated = [text for text, n in Counter(t for t, _ in held_out).items() if n > 1]
    assert not repeated, f"held-out examples given twice: {repeated}"
    untrained = {intent for _, intent in held_out} - {intent for _, intent in _training()}
    assert not untrained, f"held-out intents with no training data: {untrained}"


def test_no_training_example_has_two_intents() -> None:
    intents: dict[str, set[str]] = {}
    for text, intent in _training():
        intents.setdefault(text, set()).add(intent)
    both = {text: sorted(i) for text, i in intents.items() if len(i) > 1}
    assert not both, f"training examples under two intents: {both}"


def test_the_refusal_boundaries_are_held_out() -> None:
    """Several held-out examples for every intent whose boundary the call flow relies on."""
    counts = Counter(intent for _, intent in _examples(HOLDOUT))
    for intent in ("affirm", "agree", "deny", "undecided", "not_needed", "busy_call_later",
                   "too_expensive", "request_human", "complain", "do_not_call"):
        assert counts[intent] >= 8, (intent, counts[intent])
