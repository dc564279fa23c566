"""Prompt cache: every fixed prompt is synthesised once and kept as an 8 kHz WAV on disk.

Keyed by sha256(voice id + normalised text), so changing the voice, its settings or the
front end's readings (``FRONTEND_VERSION`` is in the voice ids) makes new entries instead
of serving stale audio; one folder holds every campaign's voice (``voiced``). A recorded
human prompt, ``<recorded_dir>/<response name>.wav``, wins over synthesis for that response.

The gateway only knows the text of a bot reply (Rasa's REST channel sends no response name):
``warm`` given ``{text: response}`` remembers which response says each text, so ``get`` and
``lookup`` of the text alone still find the recorded prompt. Decoded PCM is kept in memory
(least recently used first out, bounded by bytes), so a warmed prompt is a dict lookup on the
call's hot path; ``lookup`` never synthesises.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
import wave
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
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


DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024
"""About 70 minutes of 8 kHz audio: every fixed prompt of several campaigns."""


def normalise(text: str) -> str:
    """The cache's view of a prompt: surrounding and repeated whitespace do not matter."""
    return " ".join(text.split())


class PcmMemory:
    """Decoded PCM by key, least recently used evicted first once over ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        # The event loop reads while an executor thread may be loading a file.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str) -> bytes | None:
        with self._lock:
            pcm = self._items.get(key)
            if pcm is not None:
                self._items.move_to_end(key)
            return pcm

    def put(self, key: str, pcm: bytes) -> None:
        if len(pcm) > self.max_bytes:
            return  # would evict everything else and then itself
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            self._items[key] = pcm
            self.bytes += len(pcm)
            while self.bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.bytes -= len(evicted)


class PromptCache:
    def __init__(
        self,
        folder: Path,
        synthesizer: Synthesizer,
        *,
        recorded_dir: Path | None = None,
        clock: Callable[[], float] = time.perf_counter,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
    ) -> None:
        self.folder = Path(folder)
        self.synthesizer = synthesizer
        self.recorded_dir = recorded_dir
        self._clock = clock
        self.memory = PcmMemory(memory_bytes)
        self._responses: dict[str, str] = {}  # normalised text → response name

    def voiced(self, synthesizer: Synthesizer) -> PromptCache:
        """This cache speaking with another voice (a campaign's): the same folder, recorded
        prompts, memory and text → response index.  Synthesised entries are keyed by voice,
        so voices never mix; a recorded prompt plays whatever the voice."""
        if synthesizer.voice_id == self.synthesizer.voice_id:
            return self
        other = copy.copy(self)  # shares memory and _responses: one index, one budget
        other.synthesizer = synthesizer
        return other

    def response_for(self, text: str) -> str | None:
        """The response that says ``text``, as recorded by ``warm``/``remember_responses``."""
        return self._responses.get(normalise(text))

    def remember_responses(self, texts: Mapping[str, str]) -> None:
        """Record which response says each text (so a recorded prompt can override it)."""
        for text, response in texts.items():
            if self.recorded_dir is not None:
                self.recorded_path(response)  # refuse a bad name now, not on a call
            self._responses[normalise(text)] = response

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
        """8 kHz 16-bit mono PCM for ``text``: the recorded prompt of ``response`` (or of the
        response ``warm`` recorded for this text) if there is one, else the cached synthesis,
        else a new synthesis (stored for next time). Blocking on a miss: not for the event
        loop (``voice.tts.worker.TtsWorker`` is)."""
        pcm = self.lookup(text, response)
        if pcm is not None:
            return pcm
        pcm, _ = self._synthesize(text)
        self.memory.put(self.key(text), pcm)
        return pcm

    def lookup(self, text: str, response: str | None = None) -> bytes | None:
        """Like ``get`` but never synthesises: memory, the recorded prompt, the disk cache,
        else ``None``. A warmed prompt is a dict lookup."""
        response = response if response is not None else self.response_for(text)
        recorded = self.recorded_path(response) if response is not None else None
        if recorded is not None:
            pcm = self.memory.get(f"recorded:{response}")
            if pcm is not None:
                return pcm
            pcm = self._read_pcm(recorded, "tts.recorded_unreadable")
            if pcm is not None:
                self.memory.put(f"recorded:{response}", pcm)
                return pcm
        key = self.key(text)
        pcm = self.memory.get(key)
        if pcm is not None:
            return pcm
        pcm = self._read_pcm(self.path(text), "tts.cache_corrupt")
        if pcm is not None:
            self.memory.put(key, pcm)
        return pcm

    def peek(self, text: str) -> bytes | None:
        """Memory only (no file access): what the event loop may call directly."""
        response = self.response_for(text)
        if response is not None and self.recorded_dir is not None:
            pcm = self.memory.get(f"recorded:{response}")
            if pcm is not None:
                return pcm
        return self.memory.get(self.key(text))

    def synthesize(self, text: str) -> tuple[bytes, float]:
        """Synthesise ``text`` now and store it on disk (not in memory): PCM and seconds taken.
        For worker processes, whose memory the gateway does not share."""
        return self._synthesize(text)

    def remember(self, text: str, pcm: bytes) -> None:
        """Keep ``text``'s PCM in memory (synthesised elsewhere, e.g. in a worker process that
        has written the disk entry already)."""
        self.memory.put(self.key(text), pcm)

    def is_recorded(self, text: str, response: str | None = None) -> bool:
        """A recorded prompt exists for ``text`` (through ``response`` or the text index)."""
        response = response if response is not None else self.response_for(text)
        recorded = self.recorded_path(response) if response is not None else None
        return recorded is not None and recorded.exists()

    def warm(self, texts: Iterable[str] | Mapping[str, str], *,
             load: bool = True) -> WarmReport:
        """Synthesise every text not cached yet (ahead of a campaign, never on a call).

        ``texts`` may map each text to the response that says it: the index is kept, and a
        text whose response has a recorded prompt is not synthesised (it counts as cached).
        With ``load`` every prompt ends up in memory, ready for the hot path.
        A failing text is reported in ``errors`` and the others still get done.
        """
        if isinstance(texts, Mapping):
            self.remember_responses(texts)
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
            if key in self.memory or self.is_recorded(text) or self.path(text).exists():
                report["cached"] += 1
                if load:
                    self.lookup(text)
                continue
            try:
                pcm, seconds = self._synthesize(text)
                if load:
                    self.memory.put(key, pcm)
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

    @staticmethod
    def _read_pcm(path: Path, unreadable: str) -> bytes | None:
        """8 kHz PCM from a WAV file; None if it is missing or broken (logged as
        *unreadable*): a broken recording or cache entry must not silence the prompt,
        synthesis takes over."""
        try:
            rate, pcm = read_wav(path)
        except FileNotFoundError:
            return None
        except (wave.Error, EOFError, ValueError) as exc:
            log.warning("%s path=%s error=%s", unreadable, path.name, exc)
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
