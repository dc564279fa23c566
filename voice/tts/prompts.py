"""Every text the bot can say in a campaign, so that all of it is synthesised before the calls.

The gateway receives bot replies from Rasa's REST channel as plain text, without the response
name, so the cache is keyed by text; this module works out those texts the way Rasa will
produce them: each response template of domain.yml (every variation) filled with the slot
values a call gets from the campaign definition and its contact (``actions.context``).

A template that needs a slot only known during the call (a callback time, a read-back of
digits) cannot be said ahead of time: it is *dynamic*, left out, and listed so the caller
can report it; the gateway synthesises those texts in a worker process when they come.
A template with a campaign slot that is empty in this campaign (``{product}`` in a survey)
is never said by its flow and is left out too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from sqlalchemy import select

from actions.context import wording_slots
from actions.flow import DEFAULT_OPEN_QUESTION, SCALE_HINTS
from bot.campaigns.definition import CampaignDefinition
from bot.campaigns.registry import campaign_definition
from bot.store import CampaignRepo, Database
from bot.store.models import Contact

DOMAIN_FILE = Path(__file__).resolve().parents[2] / "domain.yml"

# Rasa's own slot pattern (rasa.core.nlg.interpolator): "{name}" without braces or newlines.
_SLOT = re.compile(r"{([^\n{}]+?)}")

# Slots the flow sets from the campaign definition as it goes (actions/flow.py), not from
# wording_slots: the survey questions, their scale hints and the closing open question.
SURVEY_SLOTS = ("survey_question", "survey_scale_hint", "survey_open_question")


@dataclass(frozen=True)
class Template:
    response: str
    text: str

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_SLOT.findall(self.text)))

    def fill(self, values: Mapping[str, Any]) -> str:
        return _SLOT.sub(lambda m: str(values[m[1]]), self.text)


@dataclass
class PromptPlan:
    """The texts of a campaign (text → response name) and what could not be listed."""

    texts: dict[str, str] = field(default_factory=dict)
    dynamic: list[str] = field(default_factory=list)  # responses with in-call slots
    unused: list[str] = field(default_factory=list)  # responses with an empty campaign slot


def load_templates(domain: Path | Mapping[str, Any] = DOMAIN_FILE) -> list[Template]:
    """Every text variation of every response in ``domain`` (a domain.yml path or its data)."""
    data: Mapping[str, Any] = (domain if isinstance(domain, Mapping)
                               else yaml.safe_load(Path(domain).read_text(encoding="utf-8")))
    responses: Mapping[str, Any] = data.get("responses") or {}
    return [
        Template(name, str(variation["text"]))
        for name, variations in responses.items()
        for variation in variations or []
        if isinstance(variation, Mapping) and variation.get("text")
    ]


def survey_slot_values(definition: CampaignDefinition) -> list[dict[str, str]]:
    """The survey slot values the flow sets in this campaign, one dict per question asked."""
    survey = definition.survey
    if survey is None:
        return []
    return [{"survey_question": q.text, "survey_scale_hint": SCALE_HINTS[q.scale],
             "survey_open_question": survey.open_question or DEFAULT_OPEN_QUESTION}
            for q in survey.questions]


def plan_prompts(
    definition: CampaignDefinition,
    contacts_slot_values: Iterable[Mapping[str, Any]],
    templates: Sequence[Template] | None = None,
) -> PromptPlan:
    """Texts for every template filled from every contact's slot values (distinct texts only).

    ``contacts_slot_values`` are ``wording_slots(...)`` results, one per contact (and day,
    where the text depends on the date of the call); pass one even for a campaign without
    contacts yet, or only the texts without slots come out.
    """
    templates = load_templates() if templates is None else templates
    values = list(_distinct(contacts_slot_values))
    survey = survey_slot_values(definition)
    known = set(SURVEY_SLOTS).union(*(v.keys() for v in values))
    plan = PromptPlan()
    for template in templates:
        slots = template.slots
        if not set(slots) <= known:
            if template.response not in plan.dynamic:
                plan.dynamic.append(template.response)
            continue
        said = False
        for slot_values in _combinations(slots, values, survey):
            if all(str(slot_values.get(s) or "") for s in slots):
                plan.texts.setdefault(template.fill(slot_values), template.response)
                said = True
        if not said and template.response not in plan.unused:
            plan.unused.append(template.response)
    return plan


def campaign_prompts(
    definition: CampaignDefinition,
    contacts_slot_values: Iterable[Mapping[str, Any]],
    templates: Sequence[Template] | None = None,
) -> dict[str, str]:
    """Every text the bot can say in this campaign → the name of the response that says it."""
    return plan_prompts(definition, contacts_slot_values, templates).texts


def contact_prompts(
    definition: CampaignDefinition,
    contact: ContactLike,
    now: datetime,
    templates: Sequence[Template] | None = None,
) -> dict[str, str]:
    """Every text the bot can say to ``contact`` in a call at ``now`` (in the campaign's
    zone) → the response that says it: its own form of address and trial end, and the fixed
    texts.  The gateway makes sure of them when it claims the contact."""
    return plan_prompts(definition, contact_slot_values(definition, [contact], now),
                        templates).texts


def _combinations(slots: Sequence[str], contacts: list[dict[str, Any]],
                  survey: list[dict[str, str]]) -> Iterator[dict[str, Any]]:
    """The slot values to try for a template: only the sources it uses, so a template without
    contact slots is filled once, not once per contact."""
    uses_survey = any(s in SURVEY_SLOTS for s in slots)
    uses_contact = any(s not in SURVEY_SLOTS for s in slots)
    contact_rows = _distinct({s: c.get(s) for s in slots if s not in SURVEY_SLOTS}
                             for c in contacts) if uses_contact else iter([{}])
    for row in contact_rows:
        if not uses_survey:
            yield row
            continue
        for answers in survey:
            yield {**row, **answers}


def _distinct(rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    seen: set[tuple[tuple[str, str], ...]] = set()
    for row in rows:
        key = tuple(sorted((k, repr(v)) for k, v in row.items()))
        if key not in seen:
            seen.add(key)
            yield dict(row)


# --- contacts ------------------------------------------------------------------------------


class ContactLike(Protocol):
    @property
    def name(self) -> str | None: ...
    @property
    def gender(self) -> str | None: ...
    @property
    def fields(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ContactWording:
    """What the wording of a call reads from its contact."""

    name: str | None
    gender: str | None
    fields: dict[str, Any]


def contact_slot_values(
    definition: CampaignDefinition,
    contacts: Iterable[ContactLike],
    now: datetime,
    days: int = 1,
) -> list[dict[str, Any]]:
    """``wording_slots`` of every contact on each of ``days`` days from ``now`` (distinct).

    Several days because a trial that runs N days from the day of the call ends on a
    different date each day: warm before each calling day, or ahead for a few.
    A campaign without contacts still gets one set (the untitled ``机主`` address).
    """
    days_from_now = [now + timedelta(days=d) for d in range(max(1, days))]
    rows: list[ContactLike] = list(contacts) or [ContactWording(None, None, {})]
    return list(_distinct(
        wording_slots(definition, name=c.name, gender=c.gender, fields=c.fields or {}, now=day)
        for c in rows for day in days_from_now
    ))


def load_campaign_slot_values(
    db: Database, campaign: str, now: datetime | None = None, days: int = 1
) -> tuple[CampaignDefinition, list[dict[str, Any]]]:
    """The stored definition of campaign ``campaign`` (its name) and the distinct
    ``contact_slot_values`` of its contacts from ``now`` (default: the wall clock in the
    campaign's zone); ``LookupError`` if there is no such campaign."""
    with db.session() as session:
        row = CampaignRepo(session).by_name(campaign)
        if row is None:
            raise LookupError(f"no campaign named {campaign!r}")
        definition = campaign_definition(row)
        now = now or datetime.now(definition.zone)
        # Only the columns the wording reads, streamed and reduced as they come: a list can
        # have a million rows but only a few hundred distinct (title, trial end) wordings.
        result = session.execute(
            select(Contact.name, Contact.gender, Contact.fields)
            .where(Contact.campaign_id == row.id)
            .execution_options(yield_per=2000)
        )
        values = _distinct(
            slots
            for name, gender, fields in result
            for slots in contact_slot_values(
                definition, [ContactWording(name, gender, dict(fields or {}))], now, days)
        )
        # No contacts yet: the texts of an untitled (机主) contact still get warmed.
        return definition, list(values) or contact_slot_values(definition, [], now, days)
