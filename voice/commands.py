"""`waihu call` (one real call to any SIP endpoint) and `waihu run` (the services for real use).

Both start a Rasa server and action server on free local ports (bot.services.RasaStack),
the gateway's SIP stack, ASR engine and TTS worker (voice.stack), and the gateway.
`waihu call` obeys the dialer's rules (bot/campaigns/manual.py) unless `--force`d.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.campaigns.definition import load_definition
from bot.campaigns.dialer import CallJob, Dialer
from bot.campaigns.manual import (
    GATEWAY,
    RULE_TEXT,
    CallRefused,
    ContactDetails,
    claim_manual_call,
)
from bot.campaigns.registry import save_campaign
from bot.channel import RasaEndpoint
from bot.events import InProcessBus
from bot.store import CallRepo, Database, default_url
from voice.gateway import CallReport, Gateway, GatewayConfig
from voice.health import HealthConfig
from voice.session import SessionConfig
from voice.stack import VoiceSettings, voice_parts

log = logging.getLogger("waihu.voice")

ROOT = Path(__file__).resolve().parents[1]
_URI_USER = re.compile(r"^sips?:(?P<user>[^@;]+)@")


def _database(args: Any) -> Database:
    db = Database(default_url(args.database))
    db.upgrade()
    return db


def _session_config(args: Any) -> SessionConfig:
    return SessionConfig(agent_uri=getattr(args, "agent_uri", None),
                         transfer_mode=getattr(args, "transfer_mode", "bridge"),
                         recordings_dir=ROOT / "var" / "recordings")


def _settings(args: Any) -> VoiceSettings:
    return VoiceSettings(var=ROOT / "var", asr_engine=args.asr,
                         sip_host=getattr(args, "sip_host", "127.0.0.1"),
                         sip_port=getattr(args, "sip_port", 0),
                         outbound_proxy=getattr(args, "outbound_proxy", None),
                         recorded_prompts=getattr(args, "recorded_prompts", None))


# --- waihu call -----------------------------------------------------------------------------


def _one_job(db: Database, args: Any) -> CallJob:
    """A contact and an attempt for the number of the URI, leased to this command, with
    the number's lock; raises CallRefused when a dialing rule forbids the call."""
    defn = load_definition(args.campaign)
    campaign_id = save_campaign(db, defn)
    match = _URI_USER.match(args.uri)
    phone = match.group("user") if match and match.group("user").isdigit() else "10000000000"
    manual = claim_manual_call(
        db, campaign_id, defn, phone, args.uri, datetime.now(UTC),
        details=ContactDetails(args.name, args.gender, args.id_last4),
        force=getattr(args, "force", False))
    if manual.overridden:
        print("WARNING: --force: calling although "
              + "; ".join(RULE_TEXT[r] for r in manual.overridden)
              + f" (audited as call.forced, call {manual.job.call_id})", file=sys.stderr)
    return manual.job


def _release(db: Database, call_id: str) -> None:
    """End the call's lease and free its number, if the call did not get as far as the
    gateway's own completion (idempotent)."""
    Dialer(db, GATEWAY).complete(call_id, datetime.now(UTC))


async def _call(db: Database, rasa: RasaEndpoint, job: CallJob, args: Any) -> CallReport:
    async with voice_parts(_settings(args)) as parts, aiohttp.ClientSession() as http:
        await asyncio.to_thread(_warm, db, job.campaign_name, parts)
        gateway = Gateway(db, parts.telephony, parts.asr, parts.tts, rasa.channel(http),
                          GatewayConfig(gateway_id=GATEWAY, capacity=1,
                                        ring_timeout_s=args.ring_timeout,
                                        session=_session_config(args)))
        return await gateway.place_call(job)


def _warm(db: Database, campaign: str, parts: Any) -> None:
    from voice.tts.warm import warm_campaign

    warm_campaign(db, campaign, parts.cache)


def call(args: Any) -> int:
    """`waihu call SIP-URI --campaign FILE.yml`: prints dial result, outcome, transcript and
    the recording's path."""
    from bot.services import RasaStack

    db = _database(args)
    try:
        job = _one_job(db, args)
    except CallRefused as refused:
        print(f"waihu call: {refused}", file=sys.stderr)
        if args.json:
            print(json.dumps({"refused": list(refused.rules), "error": str(refused)},
                             ensure_ascii=False))
        return 3
    print(f"starting Rasa and the voice stack, then calling {args.uri} …", file=sys.stderr)
    try:
        with RasaStack(db.url.render_as_string(hide_password=False)) as stack:
            report = asyncio.run(_call(db, stack.endpoint, job, args))
    finally:
        _release(db, job.call_id)
    with db.session() as session:
        calls = CallRepo(session)
        record = calls.get_call(job.call_id)
        turns = [{"speaker": t.speaker, "text": t.text, "input_mode": t.input_mode,
                  "asr_confidence": t.asr_confidence, "intent": t.intent,
                  "intent_confidence": t.intent_confidence,
                  "at": t.started_at.isoformat() if t.started_at else None}
                 for t in calls.turns(job.call_id)]
        out = {**report.as_json(),
               "outcome": record.outcome if record else None,
               "decline_reason": record.decline_reason if record else None,
               "transcript": turns}
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"dial result: {out['dial_result']} (SIP {out['sip_status']})")
        print(f"outcome:     {out['outcome'] or '-'} {out['decline_reason'] or ''}")
        for turn in turns:
            heard = (f"  [ASR {turn['asr_confidence']:.2f}]"
                     if turn["asr_confidence"] is not None else "")
            understood = f"  → {turn['intent']}" if turn["intent"] else ""
            print(f"  {turn['speaker']:<8} {turn['text']}{heard}{understood}")
        if out.get("recording"):
            print(f"recording:   {out['recording']} (sha256 {out['recording_sha256']})")
    return 0 if report.error is None else 1


# --- waihu run ------------------------------------------------------------------------------


async def _serve(db: Database, rasa: RasaEndpoint, args: Any,
                 actions_url: str | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bus = InProcessBus()  # the gateway's calls, followed by the console's pages
    async with voice_parts(_settings(args)) as parts, aiohttp.ClientSession() as http, \
            _console(args, db, bus), _qa_schedule(args, db):
        gateway = Gateway(db, parts.telephony, parts.asr, parts.tts, rasa.channel(http),
                          GatewayConfig(capacity=args.capacity, session=_session_config(args),
                                        health=HealthConfig(actions_url=actions_url)),
                          events=bus)
        print(f"gateway {gateway.config.gateway_id} running: up to {args.capacity} calls; "
              "Ctrl-C stops dialling and lets the calls in progress finish", file=sys.stderr)
        await gateway.run(stop)


@contextlib.asynccontextmanager
async def _console(args: Any, db: Database, bus: InProcessBus) -> AsyncIterator[None]:
    """The web console beside the gateway (`waihu run`), unless --no-console."""
    if args.no_console:
        yield
        return
    from bot.console.command import settings_from
    from bot.console.server import running, startup_notes

    settings = settings_from(args, "console-")
    for note in startup_notes(settings, db):
        print(f"console: {note}", file=sys.stderr)
    async with running(settings, db, bus) as url:
        print(f"console on {url}/login", file=sys.stderr)
        yield


@contextlib.asynccontextmanager
async def _qa_schedule(args: Any, db: Database) -> AsyncIterator[None]:
    """The daily and weekly QA draws beside the gateway (`waihu run`, bot/qa/schedule.py),
    unless --no-qa-schedule."""
    if args.no_qa_schedule:
        yield
        return
    from bot.qa.schedule import scheduled_draws

    async with scheduled_draws(db, catch_up_days=args.qa_catch_up_days):
        print("QA samples drawn after midnight in each campaign's time zone (catching up "
              f"{args.qa_catch_up_days} days)", file=sys.stderr)
        yield


def run(args: Any) -> int:
    """`waihu run`: Rasa, actions, the gateway and its dialer loop until SIGINT/SIGTERM.

    The servers' secrets come from WAIHU_RASA_TOKEN and WAIHU_ACTIONS_TOKEN when set (so
    that an operator can use Rasa's HTTP API), else they are random for this run."""
    from bot.channel import TOKEN_ENV
    from bot.services import ACTIONS_TOKEN_ENV, RasaStack, env_token

    db = _database(args)
    with RasaStack(db.url.render_as_string(hide_password=False),
                   rasa_token=env_token(TOKEN_ENV),
                   actions_token=env_token(ACTIONS_TOKEN_ENV)) as stack:
        asyncio.run(_serve(db, stack.endpoint, args, stack.actions_url))
    return 0
