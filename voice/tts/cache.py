"""Prompt cache: every fixed prompt is synthesised once and kept as an 8 kHz WAV on disk.

Keyed by sha256(voice id + normalised text), so changing the voice, its settings or the
front end's readings (``FRONTEND_VERSION`` is in the espeak voice id) makes new entries instead
of serving stale audio. A recorded human prompt, ``<recorded_dir>/<response name>.wav``, wins
over synthesis for that response.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
import wave
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypedDict

from voice.audio.frames import resample_linear
from voice.tts.espeak import SAMPLE_RATE, Synthesizer, read_wav, write_wav

log = logging.getLogger("waihu.tts")

_RESPONSE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class WarmReport(TypedDict):
    total: int  # distinct texts asked for
    cached: int  # already on disk
    synthesised: int
    failed: int
    seconds: float  # wall time of the whole warm-up
    slowest_seconds: float  # longest single synthesis
    errors: dict[str, str]  # text → error message


def normalise(text: str) -> str:
    """The cache's view of a prompt: surrounding and repeated whitespace do not matter."""
    return " ".join(text.split())


class PromptCache:
    def __init__(
        self,
        folder: Path,
        synthesizer: Synthesizer,
        *,
        recorded_dir: Path | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.folder = Path(folder)
        self.synthesizer = synthesizer
        self.recorded_dir = recorded_dir
        self._clock = clock

    def key(self, text: str) -> str:
        data = f"{self.synthesizer.voice_id}\n{normalise(text)}".encode()
        return hashlib.sha256(data).hexdigest()

    def path(self, text: str) -> Path:
        return self.folder / f"{self.key(text)}.wav"

    def recorded_path(self, response: str) -> Path | None:
        if self.recorded_dir is None:
            return None
        if not _RESPONSE_NAME.match(response):
            raise ValueError(f"bad response name {response!r}")
        return self.recorded_dir / f"{response}.wav"

    def get(self, text: str, response: str | None = None) -> bytes:
        """8 kHz 16-bit mono PCM for ``text``: the recorded prompt of ``response`` if there is
        one, else the cached synthesis, else a new synthesis (stored for next time)."""
        if response is not None:
            recorded = self.recorded_path(response)
            if recorded is not None and recorded.exists():
                rate, pcm = read_wav(recorded)
                return resample_linear(pcm, rate, SAMPLE_RATE)
        cached = self._read_cached(text)
        if cached is not None:
            return cached
        pcm, _ = self._synthesize(text)
        return pcm

    def warm(self, texts: Iterable[str]) -> WarmReport:
        """Synthesise every text not cached yet (ahead of a campaign, never on a call).

        A failing text is reported in ``errors`` and the others still get done.
        """
        start = self._clock()
        report = WarmReport(total=0, cached=0, synthesised=0, failed=0, seconds=0.0,
                            slowest_seconds=0.0, errors={})
        seen: set[str] = set()
        for text in texts:
            key = self.key(text)
            if key in seen:
                continue
            seen.add(key)
            report["total"] += 1
            if self.path(text).exists():
                report["cached"] += 1
                continue
            try:
                _, seconds = self._synthesize(text)
            except Exception as exc:  # one bad prompt must not stop the warm-up
                report["failed"] += 1
                report["errors"][text] = f"{type(exc).__name__}: {exc}"
                log.warning("tts.warm_failed key=%s error=%s", key[:12], exc)
                continue
            report["synthesised"] += 1
            report["slowest_seconds"] = max(report["slowest_seconds"], seconds)
        report["seconds"] = self._clock() - start
        log.info("tts.warmed total=%d cached=%d synthesised=%d failed=%d seconds=%.2f",
                 report["total"], report["cached"], report["synthesised"], report["failed"],
                 report["seconds"])
        return report

    def _read_cached(self, text: str) -> bytes | None:
        path = self.path(text)
        try:
            rate, pcm = read_wav(path)
        except FileNotFoundError:
            return None
        except (wave.Error, EOFError, ValueError) as exc:
            log.warning("tts.cache_corrupt path=%s error=%s", path.name, exc)
            return None
        return resample_linear(pcm, rate, SAMPLE_RATE)

    def _synthesize(self, text: str) -> tuple[bytes, float]:
        start = self._clock()
        pcm = self.synthesizer.synthesize(text)
        seconds = self._clock() - start
        self.folder.mkdir(parents=True, exist_ok=True)
        # Write then rename: another gateway warming the same folder never reads half a file.
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".wav")
        os.close(fd)
        try:
            write_wav(Path(tmp), pcm)
            os.replace(tmp, self.path(text))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.info("tts.synthesised key=%s voice=%s seconds=%.3f audio_seconds=%.2f",
                 self.key(text)[:12], self.synthesizer.voice_id, seconds,
                 len(pcm) / 2 / SAMPLE_RATE)
        return pcm, seconds
