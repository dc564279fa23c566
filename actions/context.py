"""From a campaign and a contact to what the flow needs: the Script and the wording slots."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from actions import flow
from bot.campaigns.definition import CampaignDefinition

# Two-character surnames that would otherwise be cut to their first character.
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容",
                      "尉迟", "公孙")

# Responses whose text is the approved script: their templates go into the script hash.
SCRIPT_RESPONSES = (
    "utter_disclose_features", "utter_disclose_price", "utter_disclose_trial",
    "utter_disclose_usage", "utter_disclose_cancel", "utter_ask_consent", "utter_readback",
    "utter_trial_reminder", "utter_ask_keep", "utter_readback_keep",
)


def customer_title(name: str | None, gender: str | None) -> str:
    """How the bot addresses the account holder: 张先生, 欧阳女士, or 机主 without a name."""
    if not name:
        return "机主"
    surname = name[:2] if name.startswith(_COMPOUND_SURNAMES) else name[0]
    honorific = {"male": "先生", "m": "先生", "男": "先生",
                 "female": "女士", "f": "女士", "女": "女士"}.get((gender or "").lower())
    return surname + honorific if honorific else name


def say_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def trial_end(defn: CampaignDefinition, fields: dict[str, Any], today: date) -> date | None:
    """The trial end the bot states: the contact's own (second confirmation), the campaign's
    fixed date, or today plus the trial length."""
    own = fields.get("trial_end")
    if own:
        return date.fromisoformat(str(own))
    if defn.script.trial_end:
        return defn.script.trial_end
    if defn.script.trial_days:
        return today + timedelta(days=defn.script.trial_days)
    return None


def build_script(defn: CampaignDefinition, *, can_verify_id: bool) -> flow.Script:
    survey = defn.survey
    return flow.Script(
        campaign_type=defn.type,
        verify_id=defn.verify_id and can_verify_id,
        has_trial=defn.has_trial,
        survey=tuple(flow.SurveyQuestion(q.key, q.text, q.scale)
                     for q in (survey.questions if survey else [])),
        open_question=survey.open_question if survey else flow.DEFAULT_OPEN_QUESTION,
        min_asr_confidence=defn.consent.min_asr_confidence,
        min_intent_confidence=defn.consent.min_intent_confidence,
        min_control_confidence=defn.understanding.min_control_confidence,
        escalate_on_failed_verification=defn.escalation.escalate_on_failed_verification,
    )


def wording_slots(defn: CampaignDefinition, *, name: str | None, gender: str | None,
                  fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Slot values that fill the response templates of domain.yml for this call."""
    script = defn.script
    end = trial_end(defn, fields, now.date())
    return {
        "campaign_type": defn.type,
        "company": defn.company,
        "hotline": defn.hotline,
        "customer_title": customer_title(name, gender),
        "product": script.product or "",
        "price": script.price or "",
        "trial_end": say_date(end) if end else "",
        "cancel_method": script.cancel_method or "",
        "usage": script.usage or "",
        "features": script.features or "",
        "notice_text": script.notice_text or "",
    }
