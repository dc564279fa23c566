"""The campaign's `escalation:` section: defaults for a bank's outbound desk, clear errors."""

from __future__ import annotations

import pytest

from bot.campaigns.definition import CampaignFileError, parse_definition


def _campaign(**escalation: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "x", "type": "notification", "company": "c",
                               "hotline": "1", "script": {"notice_text": "通知"}}
    return {**base, "escalation": escalation} if escalation else base


def test_defaults() -> None:
    settings = parse_definition(_campaign()).escalation
    assert settings.model_dump() == {
        "strategy": "equal_share", "offer_timeout_s": 20, "wait_limit_s": 60,
        "wrap_up_max_s": 90, "service_level_s": 10,
        "escalate_on_failed_verification": False}


def test_every_setting_can_be_given() -> None:
    settings = parse_definition(_campaign(
        strategy="weight", offer_timeout_s=15, wait_limit_s=120, wrap_up_max_s=0,
        service_level_s=15, escalate_on_failed_verification=True)).escalation
    assert (settings.strategy, settings.offer_timeout_s, settings.wait_limit_s,
            settings.wrap_up_max_s, settings.service_level_s,
            settings.escalate_on_failed_verification) == ("weight", 15, 120, 0, 15, True)


@pytest.mark.parametrize(("given", "message"), [
    ({"strategy": "round_robin"}, r"escalation.strategy: Input should be 'equal_share', "
     r"'equal_results' or 'weight'"),
    ({"offer_timeout_s": 2}, "escalation.offer_timeout_s: Input should be greater than or "
     "equal to 5"),
    ({"wait_limit_s": 30, "offer_timeout_s": 40}, r"wait_limit_s \(30\) is shorter than one "
     r"offer \(offer_timeout_s 40\)"),
    ({"service_level_s": 30}, r"service_level_s \(30\) is longer than an offer rings "
     r"\(offer_timeout_s 20\)"),
    ({"wrap_up_max_s": -1}, "escalation.wrap_up_max_s"),
    ({"escalate_on_failed_verification": "maybe"}, "escalate_on_failed_verification"),
    ({"queue": "main"}, r"escalation.queue: Extra inputs are not permitted"),
])
def test_mistakes_are_named(given: dict[str, object], message: str) -> None:
    with pytest.raises(CampaignFileError, match=message):
        parse_definition(_campaign(**given))


def test_the_settings_are_not_part_of_the_wording() -> None:
    plain = parse_definition(_campaign())
    changed = parse_definition(_campaign(strategy="equal_results"))
    assert plain.wording_hash() == changed.wording_hash()
