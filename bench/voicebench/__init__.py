"""The voice gateway benchmark behind `bench/voice.py` (see that file for what it measures).

- `stats`: percentiles and distributions, process CPU and memory, packet-interval jitter;
- `machine`: other work on the machine (`--cpu-load`) and the event-loop probe;
- `wire`: the gateway's RTP send times as the kernel saw them on `lo` (`--capture`);
- `phone`: the far-end SimPhone in a process of its own;
- `dialogue`: the scripted dialogue that stands in for Rasa;
- `engines`: each ASR engine with its caller phrases and hints;
- `level`: one level (N concurrent calls) and its figures;
- `run`: the engines' levels (`auto` searching upward) and the JSON document;
- `rasa`: the run through the real Rasa server (`--rasa`).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / "var" / "tts" / "cache"
