"""Rasa or the action server stops in the middle of a real call (issue 13, items 6 and 9).

A virtual customer (SimPhone, real SIP and RTP) answers a marketing call placed by the
gateway (baresip, Whisper, TTS) with the real Rasa server and action server (RasaStack).
While the bot asks its first question, the test stops Rasa (SIGSTOP to its process group:
it accepts connections and never answers) or kills the action server (SIGKILL to its
process group: Rasa then answers without the actions).  The customer hears the failure
line (a span of bot speech as long as the prompt's audio, after the fault), the call is
`failed` (never `hung_up_early`), and the contact is due again under the campaign's policy
for `failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.campaigns.definition import Trunk, load_definition
from bot.campaigns.registry import save_campaign, start_campaign
from bot.demo import add_persona_contacts, calling_day
from bot.events import CallEvent, InProcessBus
from bot.personas import Persona, Turn
from bot.services import RasaStack
from bot.store import CallRepo, Database
from bot.store.models import Call, Contact
from voice.gateway import CallReport, Gateway, GatewayConfig
from voice.health import HealthConfig
from voice.session import SessionConfig
from voice.simulate import virtual_customers
from voice.stack import VoiceSettings, voice_parts
from voice.tts.warm import warm_campaign

pytestmark = [pytest.mark.rasa, pytest.mark.sip]

ROOT = Path(__file__).resolve().parents[2]
PERSONA = Persona(id="answers_then_waits", dial="answer", ring_s=0.5,
                  turns=(Turn("say", "是的，我是"), Turn("silent_s", 40)))
FAILURE_TEXT = SessionConfig().failure_text


def stop_rasa(stack: RasaStack) -> None:
    os.killpg(stack.processes[1].popen.pid, signal.SIGSTOP)  # type: ignore[union-attr]


def kill_actions(stack: RasaStack) -> None:
    os.killpg(stack.processes[0].popen.pid, signal.SIGKILL)  # type: ignore[union-attr]


async def one_call(db: Database, stack: RasaStack, var: Path, stopped: str,
                   fault: Callable[[], None]) -> tuple[CallReport, object, int, int, object]:
    defn = load_definition(ROOT / "examples" / "campaigns" / "marketing.yml")
    start, _ = calling_day(defn, date.today())
    campaign_id = save_campaign(db, defn)
    by_contact = add_persona_contacts(db, campaign_id, [PERSONA], date.today())
    [(contact_id, _)] = by_contact.items()
    with db.session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        number = contact.phone
    bus = InProcessBus()
    # the shared var/: the customers' voice is synthesised once, like `waihu simulate`'s
    async with virtual_customers({number: PERSONA}, ROOT / "var") as phone, \
            voice_parts(VoiceSettings(var=ROOT / "var")) as parts:
        defn = defn.model_copy(update={"trunk": Trunk(uri=f"sip:{{number}}@127.0.0.1:"
                                                          f"{phone.port}")})
        save_campaign(db, defn)
        await asyncio.to_thread(warm_campaign, db, defn.name, parts.cache, now=start)
        failure_pcm = await parts.tts.speech(FAILURE_TEXT)  # warmed: no synthesis here
        start_campaign(db, defn.name, start)
        bot_turns: list[CallEvent] = []

        def on_event(event: CallEvent) -> None:
            if event.name == "turn.bot":
                bot_turns.append(event)
                if len(bot_turns) == 2:  # the greeting, then the first question
                    fault()
        bus.subscribe(on_event)
        async with aiohttp.ClientSession() as http:
            gateway = Gateway(db, parts.telephony, parts.asr, parts.tts,
                              stack.endpoint.channel(http),
                              GatewayConfig(gateway_id="faults", capacity=1,
                                            ring_timeout_s=20,
                                            session=SessionConfig(recordings_dir=var),
                                            health=HealthConfig(
                                                actions_url=stack.actions_url)),
                              clock=lambda: start, events=bus)
            # the gateway's watch sees the real services up (Rasa's /status takes the token)
            assert await gateway.health.check(), gateway.health.snapshot()
            [job] = gateway.dialer.claim(start, 1)
            report = await asyncio.wait_for(gateway.place_call(job, start), 120)
            # … and sees which one went
            await gateway.health.check()
            down = gateway.health.down
        record = await asyncio.wait_for(phone.completed.get(), 30)
    assert down == (["rasa"] if stopped == "rasa_stopped" else ["actions"]), down
    return report, record, len(failure_pcm) // 16, contact_id, start


def check_failed_politely(db: Database, report: CallReport, record: object,
                          failure_ms: int, contact_id: int, start: object) -> None:
    assert report.session is not None and report.session.ended_by == "failure", report
    heard = [s for s in record.bot_speech if s.end_ms is not None]  # type: ignore[attr-defined]
    assert heard, "the customer heard nothing"
    # The last utterance: spans less than 0.8 s apart are one (Kokoro pauses at commas long
    # enough for the customer's ear to split 抱歉，系统繁忙，… into several spans).
    first = len(heard) - 1
    while first > 0 and heard[first].start_ms - heard[first - 1].end_ms < 800:
        first -= 1
    last = heard[-1].end_ms - heard[first].start_ms
    # the last thing the customer heard is the failure line, whole
    assert abs(last - failure_ms) < max(400, failure_ms * 0.2), (last, failure_ms)
    with db.session() as session:
        call = session.get(Call, report.call_id)
        assert call is not None and call.outcome == "failed" and call.grade is None
        turns = [(t.speaker, t.text) for t in CallRepo(session).turns(report.call_id)]
        assert turns[-1] == ("bot", FAILURE_TEXT), turns
        contact = session.get(Contact, contact_id)
        assert contact is not None
        assert (contact.status, contact.last_result) == ("pending", "failed")
        assert contact.next_attempt_at is not None
        due = contact.next_attempt_at
        due = due if due.tzinfo else due.replace(tzinfo=start.tzinfo)  # type: ignore[attr-defined]
        assert due - start >= timedelta(minutes=30)  # type: ignore[operator]


@pytest.mark.parametrize("fault", ["rasa_stopped", "actions_killed"])
def test_the_customer_hears_the_failure_line_and_is_called_again(fault: str) -> None:
    var = Path(tempfile.mkdtemp(prefix="waihu-fault-"))
    url = f"sqlite:///{var / 'faults.db'}"
    db = Database(url)
    db.upgrade()
    stack = RasaStack(url).start()
    try:
        action = stop_rasa if fault == "rasa_stopped" else kill_actions
        result = asyncio.run(one_call(db, stack, var, fault, lambda: action(stack)))
        check_failed_politely(db, *result)
    finally:
        if stack.processes and stack.processes[1].popen is not None:
            with contextlib.suppress(ProcessLookupError):  # stopped: no SIGTERM taken
                os.killpg(stack.processes[1].popen.pid, signal.SIGCONT)
        stack.stop()
        db.dispose()
        shutil.rmtree(var, ignore_errors=True)
