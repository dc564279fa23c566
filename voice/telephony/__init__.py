"""The telephony leg: our own small interface (`base`) and an in-memory fake (`fake`).

The real implementation, `voice.telephony.baresip_telephony.BaresipTelephony` (its legs in
`baresip_leg`, their audio in `leg_audio`, moved by the thread in `audio_clock`), is imported
from its module on purpose: importing this package does not load the baresip C library.
"""

from voice.telephony.base import (
    DIAL_RESULTS,
    Answered,
    DialOutcome,
    DialRequest,
    Direction,
    Dtmf,
    EarlyMedia,
    FrameListener,
    Hangup,
    HangupBy,
    Leg,
    LegEvent,
    Ringing,
    Telephony,
    classify_failure,
)
from voice.telephony.fake import FakeLeg, FakeTelephony, FarEnd

__all__ = [
    "DIAL_RESULTS",
    "Answered",
    "DialOutcome",
    "DialRequest",
    "Direction",
    "Dtmf",
    "EarlyMedia",
    "FakeLeg",
    "FakeTelephony",
    "FarEnd",
    "FrameListener",
    "Hangup",
    "HangupBy",
    "Leg",
    "LegEvent",
    "Ringing",
    "Telephony",
    "classify_failure",
]
