"""Fixtures of the SIP end-to-end tests (test_voice_interop.py and the desk, monitor and
hand-back tests built on it), and the Rasa stack and database the text-call modules share
with them (test_text_calls, test_understanding, test_variants_text, test_id_privacy,
test_handback_rasa).

Starting things was most of these tests' time, once per module: a Rasa server and action
server (~30-40 s), the espeak prompts of marketing.yml (10-30 s of synthesis) and the
phones' WAVs.  Those are now made once for the run (`rasa`, `voice_var`, `audio`, with the
database `db_url` the action server writes to).  Every test still makes its own campaign,
contacts, agents and gateway in that database, its own SIP stack (`parts`) and Debian
baresip phones (`peers`, stopped by PID at its end), and asserts only on its own call's
rows; a test's campaign is the only one running while it claims (sip_calls.campaign).
The text-call modules do the same: campaigns named for the module, `pause_running` before
they let a dialer claim, assertions on their own campaigns', contacts' and calls' rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from bot.campaigns.registry import pause_campaign
from bot.channel import RasaEndpoint
from bot.store import Database
from bot.store.models import Campaign
from tests.e2e.sip_calls import ESPEAK, MARKETING, Peers, compose_wav, spoken
from tests.sip_peers import tone
from voice.stack import VoiceParts, VoiceSettings, voice_parts
from voice.tts.voices import synthesizer_for
from voice.tts.warm import warm_campaign

if TYPE_CHECKING:
    from bot.services import RasaStack


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The phones' microphones, made once before any event loop runs.

    customer: silent through the bot's greeting, then 是我, then 不需要 (32 s in all: Debian
    baresip hangs up when its WAV ends).  caller_tone: 4 s of silence (the bot's transfer
    prompt) then a 1000 Hz tone; agent_tone: 2000 Hz.
    """
    root = tmp_path_factory.mktemp("voice-interop-audio")
    customer = compose_wav(root / "customer.wav",
                           [(7.0, spoken(root, "shi_wo", "是我")),
                            (19.0, spoken(root, "bu_xuyao", "不需要"))], 32.0)
    return {
        "customer": customer,
        "caller_tone": compose_wav(root / "caller_tone.wav", [(4.0, tone(1000, 12.0, 12000))],
                                   16.0),
        "agent_tone": compose_wav(root / "agent_tone.wav", [(0.0, tone(2000, 25.0, 12000))],
                                  25.0),
        "silence": compose_wav(root / "silence.wav", [], 25.0),
    }


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('voice-interop-db') / 'interop.db'}"
    Database(url).upgrade()
    return url


@pytest.fixture(scope="session")
def rasa_stack(db_url: str) -> Iterator[RasaStack]:
    """One real Rasa server and action server (~30-40 s to start) for the run's SIP and
    text-call tests; its action server writes to `db_url`."""
    from bot.services import RasaStack

    with RasaStack(db_url) as running:
        yield running


@pytest.fixture(scope="session")
def rasa(rasa_stack: RasaStack) -> RasaEndpoint:
    return rasa_stack.endpoint


@pytest.fixture(scope="session")
def pause_running() -> Callable[[Database], None]:
    """Pauses every running campaign of the shared database: a dialer claims from all of
    them, so a module that dials its own campaign must not find another module's."""
    def pause(db: Database) -> None:
        with db.session() as session:
            running = list(session.scalars(select(Campaign.name).where(
                Campaign.status == "running")))
        for name in running:
            pause_campaign(db, name)
    return pause


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    started = Peers(tmp_path / "peers")
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture(scope="session")
def voice_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prompt cache for the gateways."""
    return tmp_path_factory.mktemp("voice-interop-var")


@pytest.fixture
async def parts(voice_var: Path) -> AsyncIterator[VoiceParts]:
    """The gateway's SIP stack, ASR and TTS (~1 s), with the campaign's prompts synthesised
    beforehand as `waihu campaign start` does (else the gateway makes them when it claims
    the contact, before the dial): only the first test's warm-up synthesises, the others
    find the prompts in the run's cache.  One per test: baresip-python allows one SIP
    runtime per process, and other tests (tests/integration/sip, the fault tests) start
    their own."""
    async with voice_parts(VoiceSettings(var=voice_var)) as running:
        await asyncio.to_thread(warm_campaign, None, MARKETING, running.cache,
                                voices=lambda _: synthesizer_for(ESPEAK))
        yield running
