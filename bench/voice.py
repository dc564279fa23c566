"""Voice gateway benchmark: real SIP/RTP calls from the gateway's baresip stack to a SimPhone.

Each level runs N concurrent calls: `BaresipTelephony` dials a `SimPhone` (in its own
process, so its CPU is not counted as the gateway's), a `CallSession` per call holds the
conversation with an in-process scripted dialogue (no Rasa: the figures are the gateway's),
the real ASR engine and the prompt-cache TTS.  Prints one JSON document:

- greeting latency: answer → first bot audio heard by the phone (and gateway-side);
- response gap: end of the caller's utterance → first bot audio heard; overhead = gap minus
  the configured endpointing silence (`SessionConfig().vad.end_silence_ms`), counted from
  the last voiced frame of the utterance (the phrase's trailing quiet is added back);
- RTP: underruns (20 ms of bot audio that were due while the stack had nothing queued, as
  counted by the leg, plus the stack's `tx_starved_frames`), the stack's raw
  `tx_silence_frames` (idle silence the stack sends by itself), and the phone's packet
  arrival intervals;
- with `--capture`, the gateway's RTP send intervals as the kernel timestamped the packets
  on `lo` (a raw socket in a process of its own), free of the phone's own loop lag;
- CPU per call (gateway process CPU seconds / call-seconds, % of one core) and peak RSS;
- the event loop's lag (a 10 ms probe task) and the audio clock's tick lateness, and with
  `--loop-profile MS` every loop callback that ran longer than MS (wall and thread CPU
  time, so a GIL or CPU wait shows as wall ≫ CPU).

    .venv/bin/python bench/voice.py [--engines whisper,vosk] [--levels 1,10,auto]
                                    [--call-seconds 30] [--quick] [--rasa]
                                    [--loop-profile MS] [--cpu-load N] [--capture]
                                    [--rasa-levels 10,20,40 [--callee simphone|sipp]]

`auto` searches upward (10, 20, 30…) from the largest passing level and stops at the first
failing one (overhead p95 ≥ 300 ms, or a call that did not complete); the largest passing
level is `max_concurrent_calls`.  `--rasa` adds one run with the real Rasa server.
`--rasa-levels` measures the capacity of the box with the whole stack (real Rasa server and
action server; the callees SimPhones in their own process or SIPp: bench/voicebench/
capacity.py), level by level until one fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and would shadow `voice`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench.voicebench.run import main_async  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="whisper,vosk")
    parser.add_argument("--levels", default="1,10,auto")
    parser.add_argument("--call-seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="~1 minute: 1 and 10 calls, 12 s")
    parser.add_argument("--rasa", action="store_true", help="add a run with the real Rasa")
    parser.add_argument("--rasa-engine", default="whisper")
    parser.add_argument("--rasa-levels", default="", metavar="N,N,...",
                        help="the whole stack at these levels of concurrent calls")
    parser.add_argument("--callee", choices=("simphone", "sipp"), default="simphone",
                        help="who answers the --rasa-levels calls")
    parser.add_argument("--database", default=None,
                        help="database URL for --rasa-levels (default: a fresh SQLite file)")
    parser.add_argument("--loop-profile", type=float, default=None, metavar="MS",
                        help="record event-loop callbacks that run longer than MS")
    parser.add_argument("--cpu-load", type=int, default=0, metavar="N",
                        help="run N busy-loop processes during each level (a loaded machine)")
    parser.add_argument("--capture", action="store_true",
                        help="time the gateway's RTP packets on lo with kernel timestamps "
                             "(a raw socket: needs CAP_NET_RAW)")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.call_seconds = "1,10", 12.0
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(asyncio.run(main_async(args)), ensure_ascii=False, indent=1,
                     default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
