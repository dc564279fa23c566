"""Fixtures for tests against real SIP peers on 127.0.0.1 (see tests/sip_peers.py).

Peers are started by factories and stopped, by PID, when the test ends.  Test modules call
`require_sip_peers()` at import so they are skipped when the Debian binaries or
baresip-python are missing (a skip here, in the conftest, would break collection instead).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.sip_peers import (
    DebianBaresip,
    EarlyMediaUas,
    Kamailio,
    Route,
    binaries_missing,
    speech_wav,
    tone_wav,
)

if TYPE_CHECKING:
    from voice.telephony.baresip_telephony import BaresipTelephony

PEER_BINARIES = ("baresip", "kamailio", "sox", "espeak-ng")


def require_sip_peers() -> None:
    """Skip the calling test module unless the peers' binaries and baresip-python exist."""
    missing = binaries_missing(*PEER_BINARIES)
    if missing:
        pytest.skip(f"Debian binaries missing: {', '.join(missing)} (scripts/setup.sh "
                    "installs them)", allow_module_level=True)
    pytest.importorskip("baresip", reason="baresip-python is not installed")


BaresipFactory = Callable[..., Awaitable[DebianBaresip]]
KamailioFactory = Callable[..., Kamailio]


@pytest.fixture(scope="session")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Microphone WAVs for peers: 1000/2000 Hz tones and a Mandarin customer (espeak-ng)."""
    root = tmp_path_factory.mktemp("wavs")
    return {
        "tone1000": tone_wav(root / "tone1000.wav", 1000),
        "tone2000": tone_wav(root / "tone2000.wav", 2000),
        "speech": speech_wav(root / "speech.wav", "喂，你好，我是张先生，请问有什么事？"),
    }


@pytest.fixture
async def baresip_peer(tmp_path: Path, wavs: dict[str, Path]
                       ) -> AsyncIterator[BaresipFactory]:
    """`await baresip_peer(user="callee", wav="tone1000", answermode="auto")` -> started peer."""
    started: list[DebianBaresip] = []

    async def start(user: str = "callee", wav: str | Path = "tone1000",
                    answermode: str = "auto") -> DebianBaresip:
        path = wavs[wav] if isinstance(wav, str) else wav
        peer = DebianBaresip(tmp_path / f"baresip-{user}-{len(started)}", path, user=user,
                             answermode=answermode)
        started.append(peer)
        return await peer.start()

    yield start
    for peer in started:
        await peer.stop()


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[KamailioFactory]:
    """`kamailio(routes={...}, ring_ms=...)` -> started proxy (see `Kamailio`)."""
    started: list[Kamailio] = []

    def start(routes: dict[str, Route] | None = None, *, password: str = "secret",
              ring_ms: int = 3000, no_reply_ms: int = 2000) -> Kamailio:
        proxy = Kamailio(tmp_path / f"kamailio-{len(started)}", routes, password=password,
                         ring_ms=ring_ms, no_reply_ms=no_reply_ms)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
async def telephony() -> AsyncIterator[BaresipTelephony]:
    """The bot's SIP stack on a free 127.0.0.1 port, with trunk credentials bot/secret.

    One runtime per process, so one per test, closed (all legs hung up) afterwards.
    rtp_timeout is short so a vanished peer is noticed in the test's time.
    """
    from voice.telephony.baresip_telephony import BaresipTelephony  # loads the C library

    stack = BaresipTelephony(("127.0.0.1", 0), username="bot", password="secret",
                             rtp_timeout=2)
    await stack.start()
    yield stack
    await stack.close()


@pytest.fixture
async def early_media_uas() -> AsyncIterator[Callable[..., Awaitable[EarlyMediaUas]]]:
    """`await early_media_uas(announcement_pcm, final=(404, "Not Found"))` -> started UAS."""
    started: list[EarlyMediaUas] = []

    async def start(announcement: bytes, final: tuple[int, str] = (404, "Not Found"),
                    extra_headers: str = "") -> EarlyMediaUas:
        uas = EarlyMediaUas(announcement, final, extra_headers)
        started.append(uas)
        return await uas.start()

    yield start
    for uas in started:
        await uas.stop()
