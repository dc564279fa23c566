"""Campaign files: the samples are valid, mistakes get clear messages."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.campaigns.definition import CampaignFileError, load_definition, parse_definition

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "campaigns"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yml")), ids=lambda p: p.stem)
def test_sample_campaigns_are_valid(path: Path) -> None:
    defn = load_definition(path)
    assert defn.type == path.stem
    assert len(defn.wording_hash()) == 64


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


def test_wording_hash_changes_with_the_wording() -> None:
    defn = load_definition(EXAMPLES / "marketing.yml")
    data = defn.model_dump(mode="json")
    data["script"]["price"] = "每月6元"
    assert parse_definition(data).wording_hash() != defn.wording_hash()


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(CampaignFileError, match="cannot read"):
        load_definition(bad)


def _base(**extra: object) -> dict[str, object]:
    return {"name": "x", "type": "notification", "company": "c", "hotline": "1",
            "script": {"notice_text": "通知"}, **extra}


def test_defaults_follow_the_call_centre_rules() -> None:
    defn = parse_definition(_base())
    assert [(s.isoformat(), e.isoformat()) for s, e in defn.schedule.spans] == [
        ("09:00:00", "12:00:00"), ("14:00:00", "20:00:00")]
    assert defn.dialing.max_attempts == 3
    assert defn.dialing.retry_delay("busy") == timedelta(minutes=30)
    assert defn.dialing.retry_delay("no_answer") == timedelta(hours=2)
    assert defn.dialing.retry_delay("powered_off") == "next_day"
    assert defn.dialing.retry_delay("invalid_number") == "never"
    assert defn.dialing.marketing_cap_days == 5
    assert defn.zone.key == "Asia/Shanghai"


def test_retry_overrides_and_trunk_target() -> None:
    defn = parse_definition(_base(
        dialing={"retry": {"busy": "10m", "no_answer": "1d"}},
        trunk={"uri": "sip:{number}@gw.example.cn:5060", "prefix": "9"}))
    assert defn.dialing.retry_delay("busy") == timedelta(minutes=10)
    assert defn.dialing.retry_delay("no_answer") == timedelta(days=1)
    assert defn.dialing.retry_delay("rejected") == timedelta(hours=2)  # default kept
    assert defn.trunk.target("13800138000") == "sip:913800138000@gw.example.cn:5060"


@pytest.mark.parametrize(("extra", "message"), [
    ({"schedule": {"windows": ["9-12"]}}, "HH:MM-HH:MM"),
    ({"schedule": {"windows": ["12:00-09:00"]}}, "ends before it starts"),
    ({"schedule": {"windows": ["09:00-13:00", "12:00-20:00"]}}, "overlap"),
    ({"dialing": {"retry": {"busy": "soon"}}}, "30m, 2h, 1d, next_day or never"),
    ({"dialing": {"retry": {"engaged": "30m"}}}, "engaged"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"trunk": {"uri": "http://x"}}, "trunk.uri"),
    ({"trunk": {"password_env": "my pass"}}, "password_env"),
    ({"contacts": {"columns": ["name"], "required": ["age"]}}, "not in columns"),
    ({"contacts": {"custom": [{"key": "plan"}]}, "order": [{"key": "plan"}]}, "defined twice"),
    ({"grading": {"rules": [{"grade": "E"}]}}, "grading.rules.0.grade"),
])
def test_schedule_dialing_and_template_mistakes_are_named(extra: dict[str, object],
                                                          message: str) -> None:
    with pytest.raises(CampaignFileError, match=message):
        parse_definition(_base(**extra))


def test_window_to_midnight() -> None:
    defn = parse_definition(_base(schedule={"windows": ["18:00-24:00"]}))
    assert defn.schedule.spans[0][1] == time.max


def test_sample_marketing_campaign_carries_its_templates() -> None:
    defn = load_definition(EXAMPLES / "marketing.yml")
    assert [f.key for f in defn.list_fields] == ["plan", "order_no"]
    assert defn.follow_ups.second_confirmation == "vas-call-alert-confirm"
    assert defn.dialing.priority == 5
