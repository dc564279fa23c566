"""`waihu simulate`: virtual customers as real calls through the whole voice path.

Every persona of a folder becomes a contact of the campaign, whose trunk is pointed at a
`SimPhone` on 127.0.0.1 that answers each dialled number as its persona would.  The real
dialer claims the contacts on a virtual clock (one calling day, retries included, as in
`waihu demo`'s text mode), the gateway dials them over SIP (baresip), the caller's audio
goes through VAD and ASR, the text to the real Rasa server and action server, and the
bot's replies come back as TTS audio over RTP.  One JSON line per persona: dial result,
outcome, decline reason, whether `expect` held.

Several folders run as one job (one per campaign type, each with the sample campaign named
like the folder); `--text` plays the same personas as text calls (`bot.demo.text_calls`: no
SIP or audio), so that what the classifier and the flow make of the words can be told
apart from what the recogniser heard; `--summary` adds the held rates and the failures
(`bot.expectations`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp

from bot import events
from bot.campaigns.definition import CampaignDefinition, Trunk
from bot.campaigns.dialer import CallJob
from bot.campaigns.registry import pause_campaign, save_campaign, start_campaign
from bot.channel import RasaEndpoint
from bot.demo import (
    PersonaResult,
    Placer,
    SampleCalls,
    add_persona_contacts,
    calling_day,
    dial_campaign,
    load_sample,
    text_calls,
)
from bot.events import CallEvent, EventBus, InProcessBus
from bot.expectations import heard_turns, summarise
from bot.personas import Persona, load_personas
from bot.reports.figures import campaign_figures
from bot.store import Database, default_url
from bot.store.models import Campaign, Contact
from voice.gateway import Gateway, GatewayConfig
from voice.session import SessionConfig
from voice.stack import VoiceSettings, voice_parts
from voice.tts.warm import warm_campaign

log = logging.getLogger("waihu.simulate")

ROOT = Path(__file__).resolve().parents[1]
# The virtual agent: answers a transfer and listens; it hangs up after 20 s of silence
# (SimPhoneOptions.idle_hangup_s), which ends the bridged call.
AGENT_NUMBER = "95000"
AGENT = Persona(id="agent", dial="answer", ring_s=1.0)


class BotWords:
    """What the bot has said on each call, from the call events: the virtual customers
    answer the bot's questions back (`Persona.answers`) from it."""

    def __init__(self, bus: EventBus) -> None:
        self.said: dict[str, list[str]] = {}
        bus.subscribe(self._turn, names=[events.TURN_BOT])

    def _turn(self, event: CallEvent) -> None:
        self.said.setdefault(event.call_id, []).append(str(event.data.get("text", "")))

    def __call__(self, call_id: str) -> list[str]:
        return self.said.get(call_id, [])


@contextlib.asynccontextmanager
async def virtual_customers(personas_by_number: dict[str, Persona], var: Path,
                            bot_words: BotWords | None = None) -> AsyncIterator[Any]:
    """A SimPhone on a free 127.0.0.1 port answering each number as its persona."""
    from voice.simphone.phone import SimPhone

    phone = SimPhone(personas_by_number, host="127.0.0.1", port=0,
                     cache_dir=var / "tts" / "cache", record_dir=var / "simphone",
                     bot_words=bot_words)
    await asyncio.to_thread(phone.prepare)  # every persona phrase synthesised up front
    await phone.start()
    try:
        yield phone
    finally:
        await phone.close()


def voice_placer(gateway: Gateway, by_contact: dict[int, Persona],
                 campaign: str) -> Placer:
    async def place(job: CallJob, now: Any) -> PersonaResult:
        persona = by_contact[job.contact_id]
        report = await gateway.place_call(job, now)
        observed = gateway.call_outcome(job.call_id)
        return PersonaResult(persona.id, campaign, job.call_id, report.dial_result,
                             observed["outcome"], observed["decline_reason"],
                             observed["confirmation_result"], dict(persona.expect))
    return place


def _numbers(db: Database, by_contact: dict[int, Persona]) -> Iterator[tuple[str, Persona]]:
    with db.session() as session:
        for contact_id, persona in by_contact.items():
            contact = session.get(Contact, contact_id)
            assert contact is not None
            yield contact.phone, persona


async def simulate_campaign(db: Database, rasa: RasaEndpoint, defn: CampaignDefinition,
                            personas: list[Persona], var: Path, *, today: date,
                            asr_engine: str = "auto", concurrency: int | None = None,
                            session_config: SessionConfig | None = None
                            ) -> tuple[list[PersonaResult], dict[str, Any]]:
    """One sample campaign through the voice path; results per persona, then the figures."""
    start, end = calling_day(defn, today)
    campaign_id = save_campaign(db, defn)
    by_contact = add_persona_contacts(db, campaign_id, personas, today)
    numbers = dict(_numbers(db, by_contact))
    numbers[AGENT_NUMBER] = AGENT  # transfers go to a virtual agent on the same SimPhone
    settings = VoiceSettings(var=var, asr_engine=asr_engine)
    bus = InProcessBus()
    async with (virtual_customers(numbers, var, BotWords(bus)) as phone,
                voice_parts(settings) as stack):
        trunk = Trunk(uri=f"sip:{{number}}@127.0.0.1:{phone.port}")
        defn = defn.model_copy(update={"trunk": trunk})
        save_campaign(db, defn)  # the trunk now points at the virtual customers
        warmed = await asyncio.to_thread(warm_campaign, db, defn.name, stack.cache, now=start,
                                         contacts=True)  # "请问您是王女士本人吗" too
        log.info("simulate.prompts campaign=%s prompts=%s synthesised=%s seconds=%s",
                 defn.name, warmed["prompts"], warmed["synthesised"], warmed["seconds"])
        start_campaign(db, defn.name, start)
        config = GatewayConfig(gateway_id="simulate", lease_s=900, capacity=concurrency or 4,
                               ring_timeout_s=25.0,
                               session=session_config or SessionConfig(
                                   recordings_dir=var / "recordings",
                                   agent_uri=f"sip:{AGENT_NUMBER}@127.0.0.1:{phone.port}"))
        try:
            async with aiohttp.ClientSession() as http:
                gateway = Gateway(db, stack.telephony, stack.asr, stack.tts,
                                  rasa.channel(http), config, events=bus)
                results = await dial_campaign(
                    db, gateway.dialer, campaign_id, by_contact, start, end,
                    voice_placer(gateway, by_contact, defn.name),
                    concurrency=config.capacity)
        finally:
            pause_campaign(db, defn.name)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        figures = campaign_figures(session, campaign)
    return results, figures


def voice_calls(asr_engine: str, var: Path, concurrency: int | None) -> SampleCalls:
    """Each sample campaign through `simulate_campaign`: `SampleCalls` for the demo and
    for `waihu simulate`."""
    async def calls(db: Database, rasa: RasaEndpoint, defn: CampaignDefinition,
                    personas: list[Persona], today: date
                    ) -> tuple[list[PersonaResult], dict[str, Any]]:
        return await simulate_campaign(db, rasa, defn, personas, var, today=today,
                                       asr_engine=asr_engine, concurrency=concurrency)
    return calls


def demo_calls(asr_engine: str) -> SampleCalls:
    """`waihu demo`'s voice calls: six calls at once, files under var/."""
    return voice_calls(asr_engine, ROOT / "var", 6)


def _runs(args: Any, today: date) -> list[tuple[str, CampaignDefinition, list[Persona]]]:
    """(folder name, campaign, personas) for each `--personas` folder; the campaign is
    `--campaign` (one folder only) or the sample campaign named like the folder."""
    folders = [Path(folder) for folder in args.personas]
    if args.campaign and len(folders) > 1:
        raise ValueError("--campaign goes with one --personas folder; several folders each "
                         "run with the sample campaign named like the folder")
    runs = []
    for folder in folders:
        campaign = Path(args.campaign or ROOT / "examples" / "campaigns" / f"{folder.name}.yml")
        if not campaign.exists():
            raise ValueError(f"no campaign file {campaign}; give --campaign")
        runs.append((folder.name, load_sample(campaign, today), load_personas(folder)))
    names = [defn.name for _, defn, _ in runs]
    if len(set(names)) < len(names):
        raise ValueError(f"two folders would run campaign {max(names, key=names.count)}: "
                         "each folder needs a campaign of its own")
    return runs


def simulate(args: Any) -> int:
    """`waihu simulate --personas DIR [DIR …] [--campaign FILE.yml] [--text] [--summary]`."""
    from bot.services import RasaStack

    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    today = date.today()
    try:
        runs = _runs(args, today)
    except ValueError as exc:
        print(f"waihu simulate: {exc}", file=sys.stderr)
        return 2
    url = default_url(args.database, scratch="simulate")
    db = Database(url)
    db.upgrade()
    for _, defn, _ in runs:  # all first: a consent's follow-up goes to another one
        save_campaign(db, defn)
    text = getattr(args, "text", False)
    place_calls = text_calls if text else voice_calls(args.asr, var, args.concurrency)
    count = sum(len(personas) for _, _, personas in runs)
    stack_parts = "Rasa and the action server" if text else \
        "Rasa, the action server and the voice stack"
    print(f"starting {stack_parts} for {count} virtual customers "
          f"({'text' if text else 'voice'} calls)…", file=sys.stderr)
    groups: dict[str, list[PersonaResult]] = {}
    with RasaStack(url) as stack:
        for name, defn, personas in runs:
            results, figures = asyncio.run(place_calls(db, stack.endpoint, defn, personas,
                                                       today))
            groups[name] = results
            for result in results:
                print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
            if getattr(args, "report", False):
                print(json.dumps({"report": figures}, ensure_ascii=False, default=str))
    failed = [r for results in groups.values() for r in results if not r.ok]
    if getattr(args, "summary", False):
        heard = heard_turns(db, [r.call_id for r in failed])
        print(json.dumps({"summary": summarise(groups, heard)}, ensure_ascii=False))
    if failed:
        print(f"{len(failed)} persona(s) did not meet `expect`: "
              f"{', '.join(r.persona for r in failed)}", file=sys.stderr)
    return 1 if failed else 0
