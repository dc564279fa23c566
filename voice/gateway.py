"""The voice gateway: takes call jobs from the dialer and runs each as a real SIP call.

One `Gateway` per process owns the telephony stack, the ASR engine and the TTS worker.
For every `CallJob` it dials the campaign's trunk, turns the SIP result (and, when the far
end only played an announcement, what the announcement said) into the dial result,
stores it, runs a `CallSession` on an answered call and completes the job with the dialer,
whatever happened.  An answered call whose session heard a carrier announcement instead of
a person (`SessionResult.announcement`) is recorded as that dial result, like one played as
early media: the attempt gets the announcement's result, the call row and its transcript
are dropped (no conversation took place; the recording stays on disk and in the report).

`run()` is the production loop: claim up to `capacity` jobs, keep their leases renewed (a
lease the dialer no longer grants hangs the call up), reclaim other gateways' expired leases.

Faults are not the customer's: the gateway watches Rasa, the action server and the database
(`voice.health`, `gateway.health`) and claims no new call while one is down; the calls in
progress go on as far as they can.  A database error while claiming, renewing or completing
makes the loop back off (exponential, capped, jittered) and try again: it never exits
because of it, and a renewal that failed is not a lost lease (only a renewal the database
answered without the call is).  A call that ended in a failure is closed as `failed`
(`bot.callrecord`), and the dialer retries its contact like a failed dial.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot import callrecord, events
from bot.campaigns.definition import BotVoice, CampaignDefinition
from bot.campaigns.dialer import CallJob, Dialer
from bot.campaigns.registry import campaign_definition
from bot.channel import DialogueChannel
from bot.events import EventBus, InProcessBus
from bot.privacy import mask_phone
from bot.store import CallRepo, Database
from bot.store.models import Call, Campaign, Contact
from voice.asr.announce import ANNOUNCED_RESULTS, ANNOUNCEMENT_HINTS, classify_announcement
from voice.asr.base import AsrWorker, Hints
from voice.audio.frames import SAMPLE_RATE, rms
from voice.backoff import Backoff
from voice.health import HealthConfig, ServiceHealth, gateway_probes
from voice.session import CallSession, SessionConfig, SessionResult, Speech
from voice.telephony.base import DialOutcome, DialRequest, Leg, Telephony
from voice.tts.espeak import Synthesizer
from voice.tts.prompts import ContactWording, Template, contact_prompts, load_templates
from voice.tts.voices import synthesizer_for
from voice.tts.worker import TtsWorker, Voice

log = logging.getLogger("waihu.gateway")

_ANNOUNCEMENT_MIN_S = 0.8  # early media shorter than this is ringback, not words
_ANNOUNCED: tuple[str, ...] = ANNOUNCED_RESULTS  # busy too: the dialer retries it like a 486


class TrunkConfigError(RuntimeError):
    """The campaign's trunk cannot be used as configured (the message says why)."""


def _trunk_password(variable: str | None) -> str | None:
    """The trunk's digest password from the variable `password_env` names.  A trunk that
    names one which is not set would dial without it and fail with 401/407 on every call,
    or, worse, reach a trunk that does not challenge: refuse the dial instead."""
    if not variable:
        return None
    password = os.environ.get(variable)
    if not password:
        raise TrunkConfigError(f"the trunk's password variable {variable} is not set")
    return password


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class GatewayConfig:
    gateway_id: str = field(default_factory=lambda: f"gw-{socket.gethostname()}-{os.getpid()}")
    capacity: int = 10  # concurrent calls
    lease_s: int = 120
    ring_timeout_s: float = 40.0
    poll_s: float = 1.0
    session: SessionConfig = field(default_factory=SessionConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    # Waits between tries after a database error (claim, renew, complete): from
    # backoff_base_s doubling up to backoff_cap_s, jittered.
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 15.0
    # How long a claimed call may wait for its contact's prompts to be synthesised before it
    # is dialled anyway (its lease is not renewed until it is dialled).
    prepare_timeout_s: float = 60.0


@dataclass
class CallReport:
    """What happened to one job (printed by `waihu call` / `simulate`)."""

    call_id: str
    dial_result: str
    sip_status: int | None = None
    sip_reason: str = ""
    announcement: str | None = None  # what the early media said, if it was classified
    setup_ms: float | None = None
    session: SessionResult | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"call_id": self.call_id, "dial_result": self.dial_result,
                               "sip_status": self.sip_status}
        if self.announcement:
            out["announcement"] = self.announcement
        if self.session is not None:
            out.update(ended_by=self.session.ended_by, recording=self.session.recording_path,
                       recording_sha256=self.session.recording_sha256,
                       duration_ms=self.session.duration_ms)
        if self.error:
            out["error"] = self.error
        return out


class Gateway:
    def __init__(self, db: Database, telephony: Telephony, asr: AsrWorker, tts: Speech,
                 dialogue: DialogueChannel, config: GatewayConfig | None = None,
                 clock: Callable[[], datetime] = utcnow, events: EventBus | None = None,
                 voices: Callable[[BotVoice], Synthesizer] = synthesizer_for) -> None:
        self.db = db
        self.telephony = telephony
        self.asr = asr
        self.tts = tts
        self.dialogue = dialogue
        self.voices = voices  # a campaign's `voice` setting → its synthesizer
        self.config = config or GatewayConfig()
        self.clock = clock
        self.events = events or InProcessBus()  # every call's events (bot/events.py)
        self.dialer = Dialer(db, self.config.gateway_id, lease_s=self.config.lease_s)
        self.legs: dict[str, Leg] = {}
        # Rasa, the action server, the database, as last seen (the console reads it).
        self.health = ServiceHealth(
            gateway_probes(db, dialogue, self.config.health.actions_url), self.config.health)
        self._definitions: dict[int, CampaignDefinition] = {}
        self._greetings: dict[int, str | None] = {}
        self._voices: dict[int, Speech] = {}
        self._templates: list[Template] | None = None

    # -- one call ------------------------------------------------------------------
    async def place_call(self, job: CallJob, now: datetime | None = None) -> CallReport:
        """Dial the job, hold the conversation if answered, complete the job.  *now*: the
        call's clock (a simulation's virtual time); the wall clock by default."""
        started = now or self.clock()
        report = CallReport(job.call_id, "failed")
        try:
            await self._dial_and_talk(job, started, report)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            log.exception("gateway.call_failed call_id=%s", job.call_id)
            with contextlib.suppress(Exception), self.db.session() as session:
                attempt = CallRepo(session).get_attempt(job.call_id)
                if attempt is not None and attempt.dial_result is None:
                    callrecord.record_dial_result(session, job.call_id, "failed", started)
        finally:
            self.legs.pop(job.call_id, None)
            duration = report.session.duration_ms if report.session else 0
            end = max(started + timedelta(milliseconds=duration), started)
            await self._complete(job.call_id, report, end)
            self._publish_end(job.call_id, report, end, duration)
        return report

    async def _complete(self, call_id: str, report: CallReport, end: datetime) -> None:
        """Hand the attempt back to the dialer.  A call that failed (the session's failure,
        or an error here) is closed as one first (`callrecord` decides: `failed`), so that
        the completion does not take it for a hang-up.  A database error is retried with
        backoff for as long as the lease lasts; after that the lease expires and the
        dialer's reclaim closes the attempt the same way."""
        failed = report.error is not None or (
            report.session is not None and report.session.ended_by == "failure")
        backoff = self._backoff()
        deadline = asyncio.get_running_loop().time() + self.config.lease_s
        while True:
            try:
                if failed:
                    with self.db.session() as session:
                        callrecord.close(session, call_id, ended_at=end, ended_by="failure",
                                         error=report.error or (
                                             report.session.error if report.session else None))
                self.dialer.complete(call_id, end)
                return
            except SQLAlchemyError as exc:
                wait = backoff.next()
                if asyncio.get_running_loop().time() + wait > deadline:
                    log.error("gateway.complete_gave_up call_id=%s error=%s: the lease will "
                              "expire and be reclaimed", call_id, _short(exc))
                    return
                log.warning("gateway.complete_retry call_id=%s in_s=%.1f error=%s", call_id,
                            wait, _short(exc))
                await asyncio.sleep(wait)

    def _backoff(self) -> Backoff:
        return Backoff(self.config.backoff_base_s, self.config.backoff_cap_s)

    def _publish_end(self, call_id: str, report: CallReport, at: datetime,
                     duration_ms: int) -> None:
        """`call.ended` once the call record is complete: how it was dialled and ended."""
        ended = report.session.ended_by if report.session else None
        try:
            outcome = self.call_outcome(call_id)
        except SQLAlchemyError as exc:  # the record is the database's; the event goes out
            log.warning("gateway.outcome_unknown call_id=%s error=%s", call_id, _short(exc))
            outcome = {"outcome": None, "decline_reason": None, "confirmation_result": None}
        self.events.publish(events.call_event(
            events.CALL_ENDED, call_id, at, duration_ms, dial_result=report.dial_result,
            ended_by=ended, error=report.error, **outcome))

    async def _dial_and_talk(self, job: CallJob, now: datetime, report: CallReport) -> None:
        defn = self._definition(job.campaign_id)
        speech = self._speech(job.campaign_id)
        await self._prepare_prompts(job, defn, now, speech)
        trunk = defn.trunk if defn is not None else None
        password = _trunk_password(trunk.password_env) if trunk else None
        request = DialRequest(job.target, job.call_id, caller_id=job.caller_id,
                              headers={"X-Waihu-Call-Id": job.call_id},
                              username=trunk.username if trunk else None, password=password)
        log.info("gateway.dial call_id=%s campaign=%s phone=%s kind=%s attempt=%d",
                 job.call_id, job.campaign_name, mask_phone(job.phone), job.kind, job.attempt_no)
        leg = await self.telephony.dial(request)
        self.legs[job.call_id] = leg
        self.events.publish(events.call_event(
            events.CALL_DIALLED, job.call_id, now, campaign_id=job.campaign_id,
            contact_id=job.contact_id, campaign=job.campaign_name, kind=job.kind,
            attempt_no=job.attempt_no, phone=mask_phone(job.phone)))
        outcome = await leg.wait_answer(self.config.ring_timeout_s)
        result = outcome.result
        if result != "answered":
            result, report.announcement = await self._announced(job.call_id, outcome)
        report.dial_result, report.setup_ms = result, outcome.setup_ms
        report.sip_status, report.sip_reason = outcome.sip_status, outcome.reason
        with self.db.session() as session:
            callrecord.record_dial_result(session, job.call_id, result, now)
        log.info("gateway.dial_result call_id=%s result=%s sip=%s setup_ms=%s", job.call_id,
                 result, outcome.sip_status, outcome.setup_ms)
        if result != "answered":
            await leg.hangup()
            return
        self.events.publish(events.call_event(events.CALL_ANSWERED, job.call_id, now,
                                              setup_ms=outcome.setup_ms))
        call = CallSession(call_id=job.call_id, leg=leg, dialogue=self.dialogue,
                              asr=self.asr, tts=speech, db=self.db,
                              metadata=self._metadata(job, now), config=self.config.session,
                              telephony=self.telephony, call_start=now,
                              greeting=self._greeting(job.campaign_id, now),
                              events=self.events)
        report.session = await call.run()
        if report.session.ended_by == "announcement" and report.session.announcement:
            self._announced_after_answer(job.call_id, report, now)

    def _announced_after_answer(self, call_id: str, report: CallReport, now: datetime) -> None:
        """The answered call was a carrier announcement: its dial result is the
        announcement's, as if it had come as early media; no call (conversation) remains."""
        session = report.session
        assert session is not None and session.announcement is not None
        result = session.announcement
        with self.db.session() as db:
            callrecord.drop_answered(db, call_id, result,
                                     now + timedelta(milliseconds=session.duration_ms))
        report.dial_result, report.announcement = result, session.announcement_text
        log.info("gateway.dial_result call_id=%s result=%s sip=%s announced_after_answer=true "
                 "recording=%s", call_id, result, report.sip_status, session.recording_path)

    async def _announced(self, call_id: str, outcome: DialOutcome) -> tuple[str, str | None]:
        """Refine a failed dial by what its early media said (空号 / 停机 / 关机)."""
        audio = outcome.early_media
        if len(audio) < _ANNOUNCEMENT_MIN_S * SAMPLE_RATE * 2 or rms(audio) < 100:
            return outcome.result, None
        transcript = await self.asr.transcribe(audio, Hints("free", ANNOUNCEMENT_HINTS))
        heard = transcript.raw or transcript.text
        kind = classify_announcement(heard) or classify_announcement(transcript.text)
        log.info("gateway.announcement call_id=%s heard=%r result=%s sip=%s", call_id, heard,
                 kind, outcome.sip_status)
        if kind in _ANNOUNCED:
            return kind, heard
        return outcome.result, heard

    def _definition(self, campaign_id: int) -> CampaignDefinition | None:
        if campaign_id not in self._definitions:
            with self.db.session() as session:
                campaign = session.get(Campaign, campaign_id)
                if campaign is None:
                    return None
                self._definitions[campaign_id] = campaign_definition(campaign)
        return self._definitions[campaign_id]

    def _speech(self, campaign_id: int) -> Speech:
        """The TTS in the campaign's voice (its `voice` setting; espeak-ng where Kokoro is
        not prepared).  A TTS that is not a `TtsWorker` (tests' tones) speaks as it is."""
        if campaign_id not in self._voices:
            defn = self._definition(campaign_id)
            speech: Speech = self.tts
            if isinstance(self.tts, TtsWorker) and defn is not None:
                speech = self.tts.voice(self.voices(defn.voice))
            self._voices[campaign_id] = speech
        return self._voices[campaign_id]

    async def _prepare_prompts(self, job: CallJob, defn: CampaignDefinition | None,
                               now: datetime, speech: Speech) -> None:
        """Before the dial: every prompt of this contact ready to play (its own form of
        address and trial end synthesised now, in the TTS worker processes), so that nothing
        is synthesised while the customer waits.  Never fails the call: a prompt that could
        not be made is tried again when it is said (logged `tts.unprepared`)."""
        if defn is None or not isinstance(speech, Voice):
            return
        try:
            with self.db.session() as session:
                contact = session.get(Contact, job.contact_id)
                wording = (ContactWording(contact.name, contact.gender, dict(contact.fields or {}))
                           if contact is not None else ContactWording(None, None, {}))
            texts = contact_prompts(defn, wording, now.astimezone(defn.zone),
                                    self._all_templates())
            async with asyncio.timeout(self.config.prepare_timeout_s):
                ready = await speech.prepare(texts)
        except TimeoutError:  # the syntheses go on; a prompt not ready yet is waited for
            log.warning("tts.prepare_timeout call_id=%s seconds=%.0f: dialling anyway",
                        job.call_id, self.config.prepare_timeout_s)
            return
        except Exception:
            log.exception("tts.prepare_error call_id=%s", job.call_id)
            return
        log.info("tts.contact_ready call_id=%s prompts=%d synthesised=%d failed=%d seconds=%.2f",
                 job.call_id, ready["prompts"], ready["synthesised"], ready["failed"],
                 ready["seconds"])

    def _all_templates(self) -> list[Template]:
        if self._templates is None:
            self._templates = load_templates()
        return self._templates

    def _greeting(self, campaign_id: int, now: datetime) -> str | None:
        """`utter_greeting` with the campaign's wording: every script opens with it."""
        if campaign_id not in self._greetings:
            from actions.context import wording_slots

            defn = self._definition(campaign_id)
            template = next((t for t in self._all_templates()
                             if t.response == "utter_greeting"), None)
            text = None
            if defn is not None and template is not None:
                text = template.fill(wording_slots(defn, name=None, gender=None, fields={},
                                                   now=now))
            self._greetings[campaign_id] = text
        return self._greetings[campaign_id]

    @staticmethod
    def _metadata(job: CallJob, now: datetime) -> dict[str, Any]:
        return {"call_id": job.call_id, "campaign_id": job.campaign_id,
                "contact_id": job.contact_id, "campaign_type": job.campaign_type,
                "attempt_kind": job.kind, "now": now.isoformat()}

    def call_outcome(self, call_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            call = session.get(Call, call_id)
            if call is None:
                return {"outcome": None, "decline_reason": None, "confirmation_result": None}
            return {"outcome": call.outcome, "decline_reason": call.decline_reason,
                    "confirmation_result": call.confirmation_result}

    # -- the production loop -------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Claim and place calls until *stop* is set; then let the calls in progress end.
        Claims nothing while a watched service is down; backs off on database errors."""
        tasks: set[asyncio.Task[CallReport]] = set()
        renew_every = max(1.0, self.config.lease_s / 3)
        loop = asyncio.get_running_loop()
        last_renew = last_reclaim = loop.time()
        backoff = self._backoff()
        log.info("gateway.started id=%s capacity=%d", self.config.gateway_id,
                 self.config.capacity)
        from voice.call.recovery import recover_recordings  # partial files a crash left
        await recover_recordings(self.config.session.recordings_dir, self.db)
        await self.health.check()  # before the first claim
        watching = asyncio.create_task(self.health.watch(stop), name="health")
        try:
            while not stop.is_set():
                wait = self.config.poll_s
                try:
                    if loop.time() - last_reclaim > 60:
                        self.dialer.reclaim_expired(self.clock())
                        last_reclaim = loop.time()
                    if loop.time() - last_renew > renew_every and self.legs:
                        await self._renew()
                        last_renew = loop.time()
                    free = self.config.capacity - len(tasks)
                    if free > 0 and self.health.ok:
                        for job in self.dialer.claim(self.clock(), free):
                            task = asyncio.create_task(self.place_call(job), name=job.call_id)
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                    backoff.reset()
                except SQLAlchemyError as exc:
                    wait = backoff.next()
                    log.warning("gateway.database_error retry_in_s=%.1f calls_in_progress=%d "
                                "error=%s", wait, len(tasks), _short(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            log.info("gateway.stopping calls_in_progress=%d", len(tasks))
            while tasks:
                try:
                    await self._renew()
                    backoff.reset()
                except SQLAlchemyError as exc:
                    log.warning("gateway.database_error renewing=%d error=%s", len(self.legs),
                                _short(exc))
                    await asyncio.wait(tasks, timeout=backoff.next())
                    continue
                await asyncio.wait(tasks, timeout=renew_every)
        finally:
            watching.cancel()

    async def _renew(self) -> None:
        """Renew the leases of the calls up.  A call the database no longer grants lost its
        lease and is hung up; a database error raises (it says nothing about the leases)."""
        held = set(self.dialer.renew(list(self.legs), self.clock()))
        for call_id, leg in list(self.legs.items()):
            if call_id not in held:
                log.warning("gateway.lease_lost call_id=%s: hanging up", call_id)
                await leg.hangup()


def _short(exc: BaseException) -> str:
    """An error for one log line (a driver's message can run over many; bound parameters
    are hidden by the engine)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
