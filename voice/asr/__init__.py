"""Speech recognition: the engine interface, engine choice, snapping and announcements.

Importing this package loads no model and imports neither faster-whisper nor vosk; the
engine classes are imported on first access (``voice.asr.WhisperEngine``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voice.asr.announce import ANNOUNCEMENT_HINTS, ANNOUNCEMENT_LISTEN, classify_announcement
from voice.asr.base import AsrEngine, AsrWorker, Expect, Hints, Recognizer, Transcript
from voice.asr.select import NoEngineError, choose_engine
from voice.asr.snap import SNAP_THRESHOLD, Interpretation, interpret, normalize

if TYPE_CHECKING:
    from voice.asr.vosk_engine import VoskEngine, VoskSettings
    from voice.asr.whisper_engine import WhisperEngine, WhisperSettings

__all__ = [
    "ANNOUNCEMENT_HINTS", "ANNOUNCEMENT_LISTEN", "SNAP_THRESHOLD", "AsrEngine", "AsrWorker",
    "Expect", "Hints", "Interpretation", "NoEngineError", "Recognizer", "Transcript",
    "VoskEngine", "VoskSettings", "WhisperEngine", "WhisperSettings", "choose_engine",
    "classify_announcement", "interpret", "normalize",
]

_LAZY = {
    "WhisperEngine": "voice.asr.whisper_engine", "WhisperSettings": "voice.asr.whisper_engine",
    "VoskEngine": "voice.asr.vosk_engine", "VoskSettings": "voice.asr.vosk_engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'voice.asr' has no attribute {name!r}")
