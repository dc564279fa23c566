"""The ASR accuracy benchmark behind `bench/asr.py` (see that file for what it measures).

- `corpus`: the persona replies and, for each, the question it answers and the hints the
  gateway would listen with there (domain.yml's `listen` payloads plus the control phrases);
- `audio`: line noise at a given SNR (white or pink, seeded) and the G.711 round trip;
- `score`: exact match, hint-snap accuracy, character error rate, false snaps, timings.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / "var" / "tts" / "cache"  # the virtual customers' cache: shared, keyed by voice
