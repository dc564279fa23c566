"""Run sample campaigns with virtual customers and report the figures.

Each persona of a campaign's folder becomes one contact.  The campaign is started and the
real dialer works through one calling day on a virtual clock: it claims the due contacts
under leases, each persona answers (or not) as its file says, and the dialer reschedules
busy and unanswered numbers per the retry policy.  How the calls are placed is a
`SampleCalls` the caller passes in: text calls are this package's own (`text_calls`: the
dial behaviour becomes the dial result, the turns go as text through the real Rasa server
and action server); real SIP calls come from the voice package (`voice.simulate`), which the
`waihu` command line (`voice/cli.py`) wires in: voice depends on bot, never the reverse.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from sqlalchemy import func, select

from bot import callrecord
from bot.campaigns.compliance import next_window_start
from bot.campaigns.definition import CampaignDefinition, load_definition
from bot.campaigns.dialer import CallJob, Dialer
from bot.campaigns.registry import pause_campaign, save_campaign, start_campaign
from bot.channel import RasaChannel, RasaEndpoint
from bot.personas import Persona, load_personas
from bot.reports.export import export, render_text
from bot.reports.figures import campaign_figures
from bot.store import ContactRepo, Database, default_url
from bot.store.models import Campaign, Contact
from bot.textcall import TextCall, play_persona

log = logging.getLogger("waihu.demo")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEMO_ID_LAST4 = "1234"  # every virtual customer's ID card ends in 1234
_NAMES = [("张伟", "male"), ("王芳", "female"), ("李娜", "female"), ("刘强", "male"),
          ("陈静", "female"), ("杨洋", "male"), ("赵敏", "female"), ("黄磊", "male"),
          ("周杰", "male"), ("吴婷", "female"), ("徐明", "male"), ("孙丽", "female")]
_REGIONS = ["北京", "上海", "广州", "成都", "武汉", "杭州"]
_MAX_CLOCK_STEPS = 12  # retries and callbacks within one calling day


@dataclass(frozen=True)
class PersonaResult:
    """A persona's last call of the day, and how many attempts the dialer made."""

    persona: str
    campaign: str
    call_id: str
    dial_result: str
    outcome: str | None
    decline_reason: str | None
    confirmation_result: str | None
    expect: dict[str, Any]
    attempts: int = 1

    @property
    def observed(self) -> dict[str, Any]:
        return {"dial_result": self.dial_result, "outcome": self.outcome,
                "decline_reason": self.decline_reason,
                "confirmation_result": self.confirmation_result}

    @property
    def ok(self) -> bool:
        return all(self.observed.get(k) == v for k, v in self.expect.items())

    def as_json(self) -> dict[str, Any]:
        return {"persona": self.persona, "campaign": self.campaign, "call_id": self.call_id,
                **self.observed, "attempts": self.attempts, "expect": self.expect,
                "ok": self.ok}


def add_persona_contacts(db: Database, campaign_id: int, personas: list[Persona],
                         today: date) -> dict[int, Persona]:
    """One contact per persona, with a made-up name, age and region; contacts of a second
    confirmation have a trial ending in 3 days."""
    by_contact: dict[int, Persona] = {}
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        trial = campaign.type == "second_confirmation"
        contacts = ContactRepo(session)
        for n, persona in enumerate(personas):
            name, gender = _NAMES[n % len(_NAMES)]
            phone = f"139{campaign_id:04d}{n:04d}"
            contact = contacts.by_phone(campaign_id, phone) or contacts.add(
                campaign_id, phone, name=name, gender=gender, age=22 + (n * 7) % 50,
                region=_REGIONS[n % len(_REGIONS)], id_last4=DEMO_ID_LAST4,
                fields={"persona": persona.id,
                        **({"trial_end": (today + timedelta(days=3)).isoformat()}
                           if trial else {})})
            by_contact[contact.id] = persona
    return by_contact


def calling_day(defn: CampaignDefinition, today: date) -> tuple[datetime, datetime]:
    """The virtual day the demo dials on: from the first calling window after *today* to the
    end of that local day.  A fixed day makes the demo's figures the same on every run."""
    midnight = datetime.combine(today + timedelta(days=1), time(), tzinfo=defn.zone)
    start = next_window_start(defn, midnight)
    if start is None:
        raise ValueError(f"campaign {defn.name}: the schedule has no calling window left")
    local = start.astimezone(defn.zone)
    end = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=defn.zone)
    return start, end.astimezone(UTC)


Placer = Callable[[CallJob, datetime], Coroutine[Any, Any, PersonaResult]]


def text_placer(db: Database, client: RasaChannel, dialer: Dialer,
                by_contact: dict[int, Persona], campaign: str) -> Placer:
    """Each job as a text-mode call: the persona's dial behaviour is the dial result and its
    turns go to Rasa as text; the job is completed at the call's virtual time."""
    async def place(job: CallJob, now: datetime) -> PersonaResult:
        persona = by_contact[job.contact_id]
        call = TextCall.connect(client, db, job.call_id, persona.dial_result, now=now)
        observed: dict[str, Any] = {"outcome": None, "decline_reason": None,
                                    "confirmation_result": None}
        if call is not None:
            observed = await play_persona(call, persona)
        dialer.complete(job.call_id, now)
        return PersonaResult(persona.id, campaign, job.call_id, persona.dial_result,
                             observed["outcome"], observed["decline_reason"],
                             observed["confirmation_result"], dict(persona.expect))
    return place


async def dial_campaign(db: Database, dialer: Dialer, campaign_id: int,
                        by_contact: dict[int, Persona], start: datetime, end: datetime,
                        place: Placer, concurrency: int = 4) -> list[PersonaResult]:
    """Let the dialer work through one calling day on a virtual clock: keep up to
    *concurrency* calls going (each placed and completed by *place*), then move the clock
    to the next retry or callback until the day ends.  Results in contact order."""
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        name = campaign.name
    last: dict[int, PersonaResult] = {}
    attempts: dict[int, int] = {}
    now = start
    for _ in range(_MAX_CLOCK_STEPS):
        in_flight: dict[asyncio.Task[PersonaResult], CallJob] = {}
        claims = 0
        while True:
            free = concurrency - len(in_flight)
            for job in dialer.claim(now, free) if free > 0 else []:
                claims += 1
                if job.contact_id not in by_contact:
                    _nobody_answers(db, dialer, job, now)
                    continue
                in_flight[asyncio.create_task(place(job, now))] = job
            if claims > 2 * len(by_contact) + 4:
                raise RuntimeError(f"campaign {name}: contacts due again at "
                                   f"{now.isoformat()} right after their call; the dialer "
                                   "should space them")
            if not in_flight:
                break
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                job = in_flight.pop(task)
                attempts[job.contact_id] = attempts.get(job.contact_id, 0) + 1
                last[job.contact_id] = replace(task.result(), attempts=attempts[job.contact_id])
        due = _next_due(db, campaign_id)
        if due is None or due >= end:
            break
        now = max(due, now)
    return [last[cid] for cid in sorted(last)]


def _nobody_answers(db: Database, dialer: Dialer, job: CallJob, now: datetime) -> None:
    """A job for a contact without a persona (a follow-up another campaign's call made)."""
    with db.session() as session:
        callrecord.record_dial_result(session, job.call_id, "no_answer", now)
    dialer.complete(job.call_id, now)


def _next_due(db: Database, campaign_id: int) -> datetime | None:
    with db.session() as session:
        return session.scalar(select(func.min(Contact.next_attempt_at)).where(
            Contact.campaign_id == campaign_id, Contact.status == "pending"))


def load_sample(campaign_file: Path, today: date) -> CampaignDefinition:
    """The campaign file, with a notification deadline that has passed moved to 10 days
    from *today* (sample dates must not go stale)."""
    defn = load_definition(campaign_file)
    deadline = defn.script.deadline
    if deadline is not None and deadline <= today + timedelta(days=defn.dialing.notify_lead_days):
        script = defn.script.model_copy(update={"deadline": today + timedelta(days=10)})
        defn = defn.model_copy(update={"script": script})
    return defn


class SampleCalls(Protocol):
    """How the demo places one sample campaign's calls through a calling day: the result per
    persona, then the campaign figures."""

    def __call__(self, db: Database, rasa: RasaEndpoint, defn: CampaignDefinition,
                 personas: list[Persona], today: date
                 ) -> Coroutine[Any, Any, tuple[list[PersonaResult], dict[str, Any]]]: ...


async def text_calls(db: Database, rasa: RasaEndpoint, defn: CampaignDefinition,
                     personas: list[Persona], today: date
                     ) -> tuple[list[PersonaResult], dict[str, Any]]:
    """The campaign as text calls: create it, one contact per persona, start it, dial one
    calling day through the dialer, pause it; then the campaign figures."""
    campaign_id = save_campaign(db, defn)
    by_contact = add_persona_contacts(db, campaign_id, personas, today)
    start, end = calling_day(defn, today)
    start_campaign(db, defn.name, start)
    dialer = Dialer(db, "demo-text", lease_s=600)
    try:
        async with aiohttp.ClientSession() as http:
            place = text_placer(db, rasa.channel(http), dialer, by_contact, defn.name)
            results = await dial_campaign(db, dialer, campaign_id, by_contact, start, end,
                                          place)
    finally:
        pause_campaign(db, defn.name)  # so its follow-ups wait while other samples run
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        figures = campaign_figures(session, campaign)
    return results, figures


async def run_campaign(db: Database, rasa: RasaEndpoint, campaign_file: Path,
                       personas_dir: Path, today: date | None = None
                       ) -> tuple[list[PersonaResult], dict[str, Any]]:
    """A sample campaign file and its persona folder as text calls (`text_calls`)."""
    today = today or date.today()
    return await text_calls(db, rasa, load_sample(campaign_file, today),
                            load_personas(personas_dir), today)


def sample_campaigns() -> list[tuple[Path, Path]]:
    """(campaign file, persona folder) for every sample campaign, main one first."""
    order = ["marketing", "notification", "survey", "second_confirmation"]
    return [(EXAMPLES / "campaigns" / f"{kind}.yml", EXAMPLES / "personas" / kind)
            for kind in order]


def demo(args: Any, voice_calls: SampleCalls | None = None) -> int:
    """`waihu demo`: every sample campaign through Rasa and the actions, then the report.

    The calls are *voice_calls*, or text calls with --text.  Uses a fresh SQLite database
    (var/demo.db) unless --database or WAIHU_DATABASE_URL names one. Exit code 1 if a
    persona's `expect` did not hold, 2 if voice calls are asked for and none were given.
    """
    from bot.services import RasaStack

    mode = "text" if getattr(args, "text", False) else "voice"
    place_calls = text_calls if mode == "text" else voice_calls
    if place_calls is None:
        print("waihu demo: voice calls come with the voice package's command line "
              "(`waihu demo`, `python -m voice.cli demo`); --text runs text calls",
              file=sys.stderr)
        return 2
    url = default_url(args.database, scratch="demo")
    db = Database(url)
    db.upgrade()
    chosen = [(c, p) for c, p in sample_campaigns() if not args.only or c.stem == args.only]
    today = date.today()
    for campaign_file, _ in sample_campaigns():  # all first: follow-ups go to another one
        save_campaign(db, load_sample(campaign_file, today))
    print("starting the Rasa server and the action server (about 30 s)…", file=sys.stderr)
    failures = 0
    reports: list[Path] = []
    with RasaStack(url) as stack:
        for campaign_file, personas_dir in chosen:
            results, figures = asyncio.run(place_calls(
                db, stack.endpoint, load_sample(campaign_file, today),
                load_personas(personas_dir), today))
            failures += sum(not r.ok for r in results)
            reports += write_reports(figures, EXAMPLES.parent / "var" / "reports")
            if args.json:
                for result in results:
                    print(json.dumps(result.as_json(), ensure_ascii=False))
                print(json.dumps({"report": figures}, ensure_ascii=False, default=str))
                continue
            defn = load_sample(campaign_file, today)
            start, _ = calling_day(defn, today)
            print(f"\n{defn.name} ({mode} calls): one calling day from "
                  f"{start.astimezone(defn.zone):%Y-%m-%d %H:%M} {defn.timezone}"
                  " on a virtual clock (that day's retries and callbacks included)")
            for r in results:
                mark = "ok  " if r.ok else "FAIL"
                print(f"{mark} {r.persona:<24} {r.dial_result:<15} x{r.attempts} "
                      f"{r.outcome or '-':<20} {r.decline_reason or r.confirmation_result or ''}"
                      + ("" if r.ok else f"   expected {r.expect}"))
            print()
            print(render_text(figures))
    if not args.json:
        print("\nreports: " + ", ".join(str(path) for path in reports))
    if failures:
        print(f"\n{failures} virtual customer(s) did not get the expected result",
              file=sys.stderr)
    return 1 if failures else 0


def write_reports(figures: dict[str, Any], folder: Path) -> list[Path]:
    """The campaign report as HTML and PDF (charts with Chinese labels) in *folder*."""
    folder.mkdir(parents=True, exist_ok=True)
    return [export(figures, fmt, folder / f"{figures['campaign']}.{fmt}")
            for fmt in ("html", "pdf")]
