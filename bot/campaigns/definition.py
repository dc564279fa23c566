"""Campaign definition files (YAML): the schema, its validation and the script hash.

A campaign file alone is enough to run a new product, notice or survey: its wording reaches
the bot through slots (actions/context.py), never through edits of data/ or domain.yml.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.yamlfile import read_yaml

CampaignType = Literal["notification", "survey", "marketing", "second_confirmation"]


class CampaignFileError(ValueError):
    """A campaign file that cannot be used, with every problem found in it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Script(_Strict):
    product: str | None = None
    price: str | None = Field(None, description="read as written, e.g. 每月5元")
    trial_days: int | None = Field(None, ge=1, le=365)
    trial_end: date | None = None
    cancel_method: str | None = None
    usage: str | None = None
    features: str | None = None
    notice_text: str | None = None
    deadline: date | None = None


class SurveyQuestion(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")
    text: str = Field(min_length=2)
    scale: Literal["score", "satisfaction"] = "score"


class Survey(_Strict):
    questions: list[SurveyQuestion] = Field(min_length=2, max_length=5)
    open_question: str = "最后，您对我们还有什么意见或建议吗？"


class Consent(_Strict):
    min_asr_confidence: float = Field(0.75, ge=0, le=1)
    min_intent_confidence: float = Field(0.8, ge=0, le=1)


class CampaignDefinition(_Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w\-.]+$")
    type: CampaignType
    company: str
    hotline: str
    timezone: str = "Asia/Shanghai"
    verify_id: bool = False
    script: Script = Script()
    survey: Survey | None = None
    consent: Consent = Consent()

    @model_validator(mode="after")
    def _fields_for_type(self) -> CampaignDefinition:
        needed = {
            "notification": ["notice_text"],
            "survey": [],
            "marketing": ["product", "price", "cancel_method", "usage", "features"],
            "second_confirmation": ["product", "price", "cancel_method", "usage", "features"],
        }[self.type]
        missing = [f"script.{name}" for name in needed if not getattr(self.script, name)]
        if self.type == "survey" and self.survey is None:
            missing.append("survey.questions")
        if missing:
            raise ValueError(f"a {self.type} campaign needs {', '.join(missing)}")
        return self

    @property
    def has_trial(self) -> bool:
        return bool(self.script.trial_days or self.script.trial_end)

    def script_hash(self) -> str:
        """Identifies the approved wording: changes whenever any script text changes."""
        body = self.model_dump(mode="json", include={"type", "company", "hotline", "script",
                                                     "survey"})
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def parse_definition(data: Any, source: str = "campaign") -> CampaignDefinition:
    """Validate a campaign dict; every problem is listed in one clear error."""
    if not isinstance(data, dict):
        raise CampaignFileError(f"{source}: expected a mapping of campaign settings")
    try:
        return CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        raise CampaignFileError(f"{source} is not a valid campaign:\n" + "\n".join(lines)) from None


def load_definition(path: str | Path) -> CampaignDefinition:
    return parse_definition(read_yaml(path, CampaignFileError, "campaign file"), str(path))
