"""Run sample campaigns with virtual customers (text mode) and report the figures.

Each persona of a campaign's folder becomes one contact; its dial behaviour becomes the
dial result and its turns are sent, as text, through the real Rasa server and action
server. Until the voice gateway lands this is what `waihu demo` runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.reports.figures import campaign_figures
from bot.store import ContactRepo, Database
from bot.store.models import Campaign
from bot.textcall import RasaClient, TextCall, play_persona
from voice.simphone.persona import Persona, load_personas

log = logging.getLogger("waihu.demo")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEMO_ID_LAST4 = "1234"  # every virtual customer's ID card ends in 1234
_NAMES = [("张伟", "male"), ("王芳", "female"), ("李娜", "female"), ("刘强", "male"),
          ("陈静", "female"), ("杨洋", "male"), ("赵敏", "female"), ("黄磊", "male"),
          ("周杰", "male"), ("吴婷", "female"), ("徐明", "male"), ("孙丽", "female")]
_REGIONS = ["北京", "上海", "广州", "成都", "武汉", "杭州"]


@dataclass(frozen=True)
class PersonaResult:
    persona: str
    campaign: str
    call_id: str
    dial_result: str
    outcome: str | None
    decline_reason: str | None
    confirmation_result: str | None
    expect: dict[str, Any]

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
                **self.observed, "expect": self.expect, "ok": self.ok}


def add_persona_contacts(db: Database, campaign_id: int, personas: list[Persona],
                         today: date) -> dict[int, Persona]:
    """One contact per persona, with a made-up name, age and region."""
    by_contact: dict[int, Persona] = {}
    with db.session() as session:
        contacts = ContactRepo(session)
        for n, persona in enumerate(personas):
            name, gender = _NAMES[n % len(_NAMES)]
            phone = f"139{campaign_id:04d}{n:04d}"
            contact = contacts.by_phone(campaign_id, phone) or contacts.add(
                campaign_id, phone, name=name, gender=gender, age=22 + (n * 7) % 50,
                region=_REGIONS[n % len(_REGIONS)], id_last4=DEMO_ID_LAST4,
                fields={"persona": persona.id,
                        "trial_end": (today + timedelta(days=3)).isoformat()})
            by_contact[contact.id] = persona
    return by_contact


async def run_personas(db: Database, rasa_url: str, campaign_id: int,
                       by_contact: dict[int, Persona], concurrency: int = 4
                       ) -> list[PersonaResult]:
    """Dial every contact once and let its persona answer; results in contact order."""
    gate = asyncio.Semaphore(concurrency)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        name = campaign.name

    async def one(client: RasaClient, contact_id: int, persona: Persona) -> PersonaResult:
        async with gate:
            call_id, call = TextCall.dial(client, db, campaign_id, contact_id,
                                          persona.dial_result)
            observed: dict[str, Any] = {"outcome": None, "decline_reason": None,
                                        "confirmation_result": None}
            if call is not None:
                observed = await play_persona(call, persona)
            return PersonaResult(persona.id, name, call_id, persona.dial_result,
                                 observed["outcome"], observed["decline_reason"],
                                 observed["confirmation_result"], dict(persona.expect))

    async with aiohttp.ClientSession() as http:
        client = RasaClient(rasa_url, http)
        return list(await asyncio.gather(
            *(one(client, cid, p) for cid, p in sorted(by_contact.items()))))


async def run_campaign(db: Database, rasa_url: str, campaign_file: Path,
                       personas_dir: Path) -> tuple[list[PersonaResult], dict[str, Any]]:
    defn = load_definition(campaign_file)
    campaign_id = save_campaign(db, defn)
    by_contact = add_persona_contacts(db, campaign_id, load_personas(personas_dir),
                                      date.today())
    results = await run_personas(db, rasa_url, campaign_id, by_contact)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        figures = campaign_figures(session, campaign)
    return results, figures


def sample_campaigns() -> list[tuple[Path, Path]]:
    """(campaign file, persona folder) for every sample campaign, main one first."""
    order = ["marketing", "notification", "survey", "second_confirmation"]
    return [(EXAMPLES / "campaigns" / f"{kind}.yml", EXAMPLES / "personas" / kind)
            for kind in order]


def demo(args: Any) -> int:
    """`waihu demo`: every sample campaign through Rasa and the actions, then the report.

    Uses a fresh SQLite database (var/demo.db) unless --database is given. Exit code 1 if a
    persona's `expect` did not hold.
    """
    from bot.reports.figures import format_figures
    from bot.services import RasaStack

    url = args.database or f"sqlite:///{EXAMPLES.parent / 'var' / 'demo.db'}"
    if not args.database:
        (EXAMPLES.parent / "var").mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            (EXAMPLES.parent / "var" / f"demo.db{suffix}").unlink(missing_ok=True)
    db = Database(url)
    db.upgrade()
    chosen = [(c, p) for c, p in sample_campaigns() if not args.only or c.stem == args.only]
    print("starting the Rasa server and the action server (about 30 s)…", file=sys.stderr)
    failures = 0
    with RasaStack(url) as stack:
        for campaign_file, personas_dir in chosen:
            results, figures = asyncio.run(run_campaign(db, stack.rasa_url, campaign_file,
                                                        personas_dir))
            failures += sum(not r.ok for r in results)
            if args.json:
                for result in results:
                    print(json.dumps(result.as_json(), ensure_ascii=False))
                print(json.dumps({"report": figures}, ensure_ascii=False))
                continue
            print()
            for r in results:
                mark = "ok  " if r.ok else "FAIL"
                print(f"{mark} {r.persona:<24} {r.dial_result:<15} {r.outcome or '-':<20} "
                      f"{r.decline_reason or r.confirmation_result or ''}"
                      + ("" if r.ok else f"   expected {r.expect}"))
            print()
            print(format_figures(figures))
    if failures:
        print(f"\n{failures} virtual customer(s) did not get the expected result",
              file=sys.stderr)
    return 1 if failures else 0
