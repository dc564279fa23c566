"""A sampled call for the QA review tests: a consented call (campaign with the QA follow-up),
drawn into a constructed daily sample, with timed transcript turns and a real short stereo
WAV (left: the customer, right: the bot) named in its row."""

from __future__ import annotations

import math
import struct
import wave
from datetime import date, timedelta
from pathlib import Path

from bot.store import Database
from bot.store.models import Call, QaSample, QaSampleCall, TranscriptTurn

from ..campaigns.test_qa import consented_call

RATE = 8000
SECONDS = 12.0
# (speaker, text, start ms, end ms): a gap of 9 s between 1.5 s and 10.5 s is a long
# silence (bot/qa/flags.py flags it at the silence's start)
TURNS = (
    ("bot", "您好，请问是王先生吗？我的电话13812345678", 0, 1500),
    ("customer", "是的", 10500, 11200),
    ("bot", "好的，谢谢您", 11300, 11900),
)


def write_stereo_wav(path: Path, seconds: float = SECONDS) -> Path:
    """Left channel 440 Hz, right channel 660 Hz, 16-bit PCM."""
    frames = bytearray()
    for i in range(int(RATE * seconds)):
        t = i / RATE
        frames += struct.pack("<hh", int(8000 * math.sin(2 * math.pi * 440 * t)),
                              int(8000 * math.sin(2 * math.pi * 660 * t)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))
    return path


def sampled_call(db: Database, tmp_path: Path, *, recording: bool = True
                 ) -> tuple[int, str]:
    """(contact id, call id) of a consented call drawn into a daily QA sample (once per
    database)."""
    contact_id, call_id = consented_call(db)
    wav = write_stereo_wav(tmp_path / f"{call_id}.wav") if recording else None
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        call.recording_path = str(wav) if wav else None
        for seq, (speaker, text, start, end) in enumerate(TURNS, 1):
            session.add(TranscriptTurn(
                call_id=call_id, seq=seq, speaker=speaker, text=text,
                started_at=call.started_at + timedelta(milliseconds=start),
                ended_at=call.started_at + timedelta(milliseconds=end)))
        sample = QaSample(campaign_id=call.campaign_id, kind="daily",
                          period_start=date(2030, 5, 6), period_end=date(2030, 5, 6),
                          timezone="Asia/Shanghai", rule={}, population_size=1,
                          eligible_size=1, population_sha256="0" * 64, nonce="0" * 64,
                          seed="0" * 64, drawn_at=call.started_at, drawn_by="test")
        session.add(sample)
        session.flush()
        session.add(QaSampleCall(sample_id=sample.id, call_id=call_id, position=0,
                                 reason="always:consent"))
    return contact_id, call_id
