"""Campaign files: the samples are valid, mistakes get clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.campaigns.definition import CampaignFileError, load_definition, parse_definition

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "campaigns"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yml")), ids=lambda p: p.stem)
def test_sample_campaigns_are_valid(path: Path) -> None:
    defn = load_definition(path)
    assert defn.type == path.stem
    assert len(defn.script_hash()) == 64


def test_missing_script_fields_are_named() -> None:
    with pytest.raises(CampaignFileError) as err:
        parse_definition({"name": "x", "type": "marketing", "company": "c", "hotline": "1",
                          "script": {"product": "p"}})
    message = str(err.value)
    for field in ("script.price", "script.cancel_method", "script.usage", "script.features"):
        assert field in message


def test_unknown_keys_and_bad_types_are_refused() -> None:
    with pytest.raises(CampaignFileError, match="scirpt"):
        parse_definition({"name": "x", "type": "notification", "company": "c", "hotline": "1",
                          "scirpt": {}})
    with pytest.raises(CampaignFileError, match="type"):
        parse_definition({"name": "x", "type": "spam", "company": "c", "hotline": "1"})


def test_survey_needs_two_to_five_questions() -> None:
    base = {"name": "s", "type": "survey", "company": "c", "hotline": "1"}
    with pytest.raises(CampaignFileError, match="survey"):
        parse_definition({**base, "survey": {"questions": [{"key": "a", "text": "满意吗"}]}})


def test_script_hash_changes_with_the_wording() -> None:
    defn = load_definition(EXAMPLES / "marketing.yml")
    data = defn.model_dump(mode="json")
    data["script"]["price"] = "每月6元"
    assert parse_definition(data).script_hash() != defn.script_hash()


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(CampaignFileError, match="cannot read"):
        load_definition(bad)
