"""Every text a campaign can say, from domain.yml and the sample campaigns."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from actions.context import wording_slots
from bot.campaigns.definition import CampaignDefinition, load_definition
from bot.campaigns.registry import save_campaign
from bot.store import CampaignRepo, ContactRepo, Database
from voice.tts.prompts import (
    ContactWording,
    Template,
    campaign_prompts,
    contact_slot_values,
    load_campaign_slot_values,
    load_templates,
    plan_prompts,
)

REPO = Path(__file__).resolve().parents[3]
CAMPAIGNS = REPO / "examples" / "campaigns"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ZHANG = ContactWording("张伟", "男", {"trial_end": "2026-12-01"})
LI = ContactWording("李娜", "女", {"trial_end": "2026-12-01"})
WANG = ContactWording("王芳", "女", {"plan": "畅享套餐38元", "order_no": "DD20261101003"})


def _defn(name: str) -> CampaignDefinition:
    return load_definition(CAMPAIGNS / f"{name}.yml")


def test_templates_cover_every_text_variation_of_domain_yml() -> None:
    templates = load_templates()
    names = {t.response for t in templates}
    assert {"utter_greeting", "utter_notice", "utter_callback_confirm"} <= names
    greeting = next(t for t in templates if t.response == "utter_greeting")
    assert greeting.slots == ("company",)
    assert greeting.fill({"company": "示例通信"}) == "您好，这里是示例通信客服中心。"


def test_all_variations_and_only_texts() -> None:
    domain = {"responses": {
        "utter_a": [{"text": "甲{x}"}, {"text": "乙{x}{x}"}],
        "utter_b": [{"custom": {"hangup": True}}],
    }}
    assert [(t.response, t.text, t.slots) for t in load_templates(domain)] == [
        ("utter_a", "甲{x}", ("x",)), ("utter_a", "乙{x}{x}", ("x",)),
    ]


def test_marketing_texts_per_contact_and_fixed_ones_once() -> None:
    defn = _defn("marketing")
    prompts = campaign_prompts(defn, contact_slot_values(defn, [ZHANG, WANG, ZHANG], NOW))
    assert prompts["请问您是张先生本人吗？"] == "utter_ask_identity"
    assert prompts["请问您是王女士本人吗？"] == "utter_ask_identity"
    assert prompts["您好，这里是示例通信客服中心。"] == "utter_greeting"
    assert prompts["来电提醒服务的资费是每月5元。"] == "utter_disclose_price"
    # A marketing trial runs 30 days from the day of the call (unless a contact has its own).
    assert prompts["现在开通可以免费试用到2026年12月20日，试用期内取消不收任何费用，"
                   "到期不取消将按每月5元收费。"] == "utter_disclose_trial"
    assert ("现在开通可以免费试用到2026年12月1日，试用期内取消不收任何费用，"
            "到期不取消将按每月5元收费。") in prompts
    assert list(prompts.values()).count("utter_ask_identity") == 2
    assert list(prompts.values()).count("utter_goodbye") == 1
    assert not any("{" in text or "None" in text for text in prompts)


def test_texts_are_exactly_the_templates_filled_with_wording_slots() -> None:
    defn = _defn("second_confirmation")
    slots = wording_slots(defn, name="欧阳娜娜", gender="女", fields={"trial_end": "2027-01-31"},
                          now=NOW)
    prompts = campaign_prompts(defn, [slots])
    expected = "您正在试用的来电提醒服务将于2027年1月31日到期，到期后将按每月5元收费。"
    assert prompts[expected] == "utter_trial_reminder"
    assert "请问您是欧阳女士本人吗？" in prompts


def test_dynamic_and_unused_responses_are_left_out_and_listed() -> None:
    defn = _defn("notification")
    plan = plan_prompts(defn, contact_slot_values(defn, [ZHANG], NOW))
    assert plan.dynamic == ["utter_callback_confirm"]
    # A notification has no product: the marketing script is never said.
    assert {"utter_disclose_price", "utter_ask_consent", "utter_survey_question"} <= set(
        plan.unused)
    assert "utter_callback_confirm" not in plan.texts.values()
    assert plan.texts["您孩子报名的周六上午数学课，从下周起改到周日上午九点，上课地点不变。"] == (
        "utter_notice")
    assert not any(r in plan.texts.values() for r in plan.unused)


def test_survey_questions_come_from_the_definition() -> None:
    defn = _defn("survey")
    prompts = campaign_prompts(defn, contact_slot_values(defn, [], NOW))
    questions = [t for t, r in prompts.items() if r == "utter_survey_question"]
    assert questions == [
        "请问您对本次宽带安装服务满意吗？请回答满意、一般或者不满意。",
        "请您为安装师傅的服务态度打分。请用1到5分打分，5分表示非常满意。",
        "请您为宽带的上网速度打分。请用1到5分打分，5分表示非常满意。",
    ]
    assert prompts["最后，您对我们的服务还有什么意见或建议吗？"] == "utter_survey_open"
    # Without contacts the untitled address is used.
    assert "请问您是机主本人吗？" in prompts


def test_unknown_slot_makes_a_template_dynamic() -> None:
    templates = [Template("utter_x", "好的，{company}"), Template("utter_y", "{digits}，对吗？")]
    defn = _defn("marketing")
    plan = plan_prompts(defn, contact_slot_values(defn, [ZHANG], NOW), templates)
    assert plan.texts == {"好的，示例通信": "utter_x"}
    assert plan.dynamic == ["utter_y"]


@pytest.mark.parametrize("name", ["marketing", "notification", "second_confirmation", "survey"])
def test_every_sample_campaign_has_its_fixed_prompts(name: str) -> None:
    defn = _defn(name)
    plan = plan_prompts(defn, contact_slot_values(defn, [ZHANG, LI], NOW, days=2))
    assert 30 <= len(plan.texts) <= 80
    assert plan.dynamic == ["utter_callback_confirm"]


def test_days_give_one_trial_end_per_calling_day() -> None:
    defn = _defn("marketing")
    values = contact_slot_values(defn, [WANG], NOW, days=3)
    assert [v["trial_end"] for v in values] == ["2026年12月20日", "2026年12月21日",
                                                "2026年12月22日"]


def test_load_campaign_slot_values_from_the_database(db: Database) -> None:
    defn = _defn("second_confirmation")
    save_campaign(db, defn)
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(defn.name)
        assert campaign is not None
        repo = ContactRepo(session)
        for i, (name, gender, end) in enumerate([("张伟", "男", "2026-12-01"),
                                                 ("张强", "男", "2026-12-01"),
                                                 ("李娜", "女", "2026-12-02")]):
            repo.add(campaign.id, f"1380000000{i}", name=name, gender=gender,
                     fields={"trial_end": end, "order_no": f"DD{i}"})
    loaded, values = load_campaign_slot_values(db, defn.name, NOW)
    assert loaded == defn
    # 张伟 and 张强 are both 张先生 with the same trial end: one set of slot values.
    assert sorted((v["customer_title"], v["trial_end"]) for v in values) == [
        ("张先生", "2026年12月1日"), ("李女士", "2026年12月2日")]
    with pytest.raises(LookupError, match="no campaign named 'nope'"):
        load_campaign_slot_values(db, "nope", NOW)


def test_campaign_without_contacts_still_has_slot_values(db: Database) -> None:
    defn = _defn("notification")
    save_campaign(db, defn)
    _, values = load_campaign_slot_values(db, defn.name, NOW)
    assert [v["customer_title"] for v in values] == ["机主"]
