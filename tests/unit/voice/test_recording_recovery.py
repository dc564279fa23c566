"""A recording a killed gateway left: repaired, linked to its call, renamed.

The crash is real: a child process records a call and is killed with SIGKILL mid-call."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import pytest

from bot.store import CallRepo, Database
from bot.store.models import Call
from tests.conftest import seed_call
from voice.audio import wavstream
from voice.call.recovery import recover_recordings, recover_recordings_sync

ROOT = Path(__file__).resolve().parents[3]

RECORD_THEN_HANG = textwrap.dedent("""
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from bot.events import InProcessBus
    from voice.audio.frames import FRAME_BYTES, Frame
    from voice.call.recorder import Recorder, recording_path
    from voice.call.timeline import Timeline
    folder, call_id = Path(sys.argv[1]), sys.argv[2]
    rec = Recorder(Timeline(call_id, InProcessBus()),
                   recording_path(folder, call_id, datetime(2026, 3, 2, tzinfo=UTC)))
    pcm = (1000).to_bytes(2, "little") * (FRAME_BYTES // 2)
    for slot in range(300):  # 6 s of call, in real time
        rec.on_frame("rx", Frame(pcm, slot * 20))
        rec.on_frame("tx", Frame(bytes(FRAME_BYTES), slot * 20))
        time.sleep(0.02)
    print("mid-call", flush=True)
    time.sleep(60)
""")


def wav_frames(path: Path) -> int:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        return wav.getnframes()


def record_and_kill(folder: Path, call_id: str) -> Path:
    child = subprocess.Popen([sys.executable, "-c", RECORD_THEN_HANG, str(folder), call_id],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "mid-call"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    return folder / "2026-03-02" / f"{call_id}.wav"


def test_a_killed_gateways_recording_is_repaired_and_linked_to_its_call(
        sqlite_db: Database, tmp_path: Path) -> None:
    call = seed_call(sqlite_db)
    final = record_and_kill(tmp_path, call.id)
    partial = wavstream.partial_path(final)
    assert partial.exists() and not final.exists()
    # What the writer had flushed is already a WAV: at most ~2 s of the 6 s are missing.
    assert wav_frames(partial) >= 8000 * 4

    recovered = recover_recordings_sync(tmp_path, sqlite_db)

    assert [(r.call_id, r.path, r.linked) for r in recovered] == [(call.id, final, True)]
    assert not partial.exists()
    assert wav_frames(final) >= 8000 * 4
    with sqlite_db.session() as session:
        row = session.get(Call, call.id)
        assert row is not None and row.recording_path == str(final)
        assert row.recording_sha256 == hashlib.sha256(final.read_bytes()).hexdigest()
    assert recover_recordings_sync(tmp_path, sqlite_db) == []  # nothing left to do


def test_a_torn_write_is_cut_to_whole_samples_and_the_header_fixed(tmp_path: Path) -> None:
    partial = tmp_path / "day" / "c9.wav.partial"
    partial.parent.mkdir()
    partial.write_bytes(wavstream.wav_header(0) + b"\x01\x00\x02\x00" * 800 + b"\x07\x00\x08")
    final, sha256 = wavstream.finalise_partial(partial) or (None, "")
    assert final == tmp_path / "day" / "c9.wav"
    assert wav_frames(final) == 800
    assert final.stat().st_size == 44 + 3200
    assert sha256 == hashlib.sha256(final.read_bytes()).hexdigest()


def test_a_recording_that_cannot_be_linked_stays_partial_for_the_next_start(
        sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    call = seed_call(sqlite_db)
    partial = tmp_path / "2026-03-02" / f"{call.id}.wav.partial"
    partial.parent.mkdir()
    partial.write_bytes(wavstream.wav_header(0) + bytes(6400))

    from bot import callrecord

    def database_down(*args: object) -> bool:
        raise ConnectionError("database down")

    monkeypatch.setattr(callrecord, "attach_recording", database_down)
    assert recover_recordings_sync(tmp_path, sqlite_db) == []
    assert partial.exists()
    monkeypatch.undo()
    assert [r.linked for r in recover_recordings_sync(tmp_path, sqlite_db)] == [True]


async def test_a_recording_of_an_unknown_call_is_kept_unlinked(
        sqlite_db: Database, tmp_path: Path) -> None:
    partial = tmp_path / "2026-03-02" / "no-such-call.wav.partial"
    partial.parent.mkdir()
    partial.write_bytes(wavstream.wav_header(0) + bytes(640))
    recovered = await recover_recordings(tmp_path, sqlite_db)
    assert [(r.call_id, r.linked) for r in recovered] == [("no-such-call", False)]
    assert (tmp_path / "2026-03-02" / "no-such-call.wav").exists()
    assert await recover_recordings(tmp_path / "missing", sqlite_db) == []


def test_an_existing_recording_is_not_replaced(sqlite_db: Database, tmp_path: Path) -> None:
    call = seed_call(sqlite_db)
    with sqlite_db.session() as session:
        CallRepo(session).update_call(call.id, recording_path="/kept.wav",
                                      recording_sha256="a" * 64)
    partial = tmp_path / "2026-03-02" / f"{call.id}.wav.partial"
    partial.parent.mkdir()
    partial.write_bytes(wavstream.wav_header(0))
    assert [r.linked for r in recover_recordings_sync(tmp_path, sqlite_db)] == [False]
    with sqlite_db.session() as session:
        row = session.get(Call, call.id)
        assert row is not None and row.recording_path == "/kept.wav"


def test_a_consented_calls_recovered_recording_is_sealed_in_the_ledger(
        sqlite_db: Database, tmp_path: Path) -> None:
    """A consent, then the gateway dies: the reclaim closes the call without a recording;
    the recording recovered later is sealed (sha256 and length) like one at a close."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from bot import callrecord
    from bot.store import Consent, ConsentLedger
    from bot.store.ledger import RECORDING_SEAL
    from tests.unit.store.test_store_ledger import append

    call = seed_call(sqlite_db)
    with sqlite_db.session() as session:
        append(ConsentLedger(session), call)
        callrecord.close(session, call.id, ended_at=datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
                         ended_by="lease_expired")
    final = record_and_kill(tmp_path, call.id)
    [recovered] = recover_recordings_sync(tmp_path, sqlite_db)
    with sqlite_db.session() as session:
        # The reclaim's close sealed "no recording"; the recovered one gets its own seal.
        without, seal = session.scalars(select(Consent).where(Consent.kind == RECORDING_SEAL)
                                        .order_by(Consent.id)).all()
        assert without.recording_sha256 is None
        assert seal.recording_sha256 == recovered.sha256
        assert seal.recording_ms == wav_frames(final) * 1000 // 8000
        assert ConsentLedger(session).verify().ok
