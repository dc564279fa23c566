"""Turn gap and cut rate (issue 17 item 4): how soon the bot answers a short answer, and how
often it cuts off a caller who pauses mid-sentence, per endpointing mode.

Real SIP calls as in bench/voice.py (its `bench.voicebench` pieces): the gateway's baresip
stack dials a SimPhone in its own process, one `CallSession` per call with the real ASR
engine (Whisper: no Mandarin Vosk model here), the prompt-cache TTS and the scripted
dialogue standing in for Rasa, which asks five questions with the `listen` the campaigns
give them in domain.yml (identity, permission, score, consent: short answers; the reason for
declining: a free one).  The callers are the personas of examples/personas-pauses/: short
answers (是的, 对, 好的, 五分 …) and answers with a 300–700 ms pause in the middle
(`say: [不是…, pause_s: 0.5, 我是他家人]`, bot/personas.py).  Calls run one at a time by
default: this measures turn-taking, not capacity.

Modes: `adaptive` (the default `SessionConfig`: a short answer may end at a 250 ms pause once
its decode is a hint phrase) and `fixed` (`pause_ms=0`: every answer waits the full 600 ms
of silence, the old behaviour).

Everything is timed on the SimPhone's side, from its own audio: the caller's speech ends at
the end of the last speech frame of the utterance it played (`playback.compose` says where
each piece of words lies in it), and the bot's reply begins at the first frame of the next
bot speech span it hears.  `response_gap_ms` is the difference (p50/p95, short answers and
free answers apart).  A turn is **cut** when the bot starts speaking after the caller's first
words but before the end of the utterance (`bot_spoke`), when the dialogue got an answer
before the caller had finished (`ended_early`: that transcript can hold only the first part),
or when it got the utterance as two answers (`split`).  The cut rate is over the utterances
with a pause; cuts of plain utterances are counted too (a TTS comma can be a pause).  A split
answer moves the dialogue one question on: the call's later answers then meet the next
question's `listen`, and its last answer may go unsaid (the dialogue has said goodbye).

    .venv/bin/python bench/turns.py [--modes adaptive,fixed] [--personas pause_family,…]
                                    [--repeat 3] [--concurrency 1] [--detail]

`--detail` adds every turn (said, expect, gap, cut, heard) per mode.  Whisper only: the issue's
target is for Vosk, but `bench.voicebench.engines` knows only the Korean stand-in Vosk model
(no Mandarin one is obtainable here), which cannot hear these Mandarin callers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and would shadow `voice`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench.voicebench import CACHE_DIR  # noqa: E402
from bench.voicebench.dialogue import ScriptedDialogue  # noqa: E402
from bench.voicebench.stats import dist  # noqa: E402
from bot.personas import Persona, load_personas  # noqa: E402
from bot.yamlfile import read_yaml  # noqa: E402
from voice.audio.vad import VadParams  # noqa: E402
from voice.session import SessionConfig  # noqa: E402

PERSONAS_DIR = REPO / "examples" / "personas-pauses"
# The questions every persona answers, in order: the responses whose `listen` is used.
SCRIPT = ("utter_ask_identity", "utter_ask_permission_survey", "utter_survey_question",
          "utter_ask_consent", "utter_ask_decline_reason")
SHORT = ("yes_no", "score")


def modes() -> dict[str, VadParams]:
    """The endpointing modes compared: their one switch is `VadParams.pause_ms`."""
    vad = SessionConfig().vad
    return {"adaptive": vad, "fixed": replace(vad, pause_ms=0)}


def script_listens(domain: Path = REPO / "domain.yml") -> list[dict[str, Any]]:
    """The `listen` payload of each question of `SCRIPT`, as the campaigns send it."""
    responses = read_yaml(domain, ValueError, "domain")["responses"]
    return [dict(responses[name][0]["custom"]["listen"]) for name in SCRIPT]


# --- what happened in a turn (pure: tests build these timelines by hand) --------------------


@dataclass(frozen=True)
class Said:
    """One utterance the simphone played, in ms on its call timeline: each piece of words
    from its first to the end of its last speech frame."""

    text: str
    expect: str
    words_ms: tuple[tuple[float, float], ...]

    @property
    def paused(self) -> bool:
        return len(self.words_ms) > 1

    @property
    def speech_end_ms(self) -> float:
        return self.words_ms[-1][1]


@dataclass
class TurnResult:
    text: str
    expect: str
    paused: bool
    gap_ms: float | None = None  # the caller's end of speech → the bot's next speech
    cut: list[str] = field(default_factory=list)  # why the turn counts as cut
    heard: list[str] = field(default_factory=list)  # what the dialogue got for it


def judge(said: list[Said], bot_starts_ms: list[float],
          answers: list[tuple[float, str]]) -> list[TurnResult]:
    """Each utterance's gap and cut from the call's timeline: the utterances, the starts of
    the bot's speech spans and the answers the dialogue received (all ms, one timeline).
    An utterance's answers are those received from its first word until the next one."""
    out = []
    for i, s in enumerate(said):
        begin, end = s.words_ms[0][0], s.speech_end_ms
        until = said[i + 1].words_ms[0][0] if i + 1 < len(said) else math.inf
        mine = [(t, text) for t, text in answers if begin <= t < until]
        result = TurnResult(s.text, s.expect, s.paused, heard=[text for _, text in mine])
        if any(begin < b < end for b in bot_starts_ms):
            result.cut.append("bot_spoke")
        if any(t < end for t, _ in mine):
            result.cut.append("ended_early")
        if len(mine) > 1:
            result.cut.append("split")
        reply = next((b for b in sorted(bot_starts_ms) if end <= b < until), None)
        if reply is not None and not result.cut:
            result.gap_ms = round(reply - end, 1)
        out.append(result)
    return out


def summarise(results: list[TurnResult]) -> dict[str, Any]:
    """One mode's figures: gaps of uncut turns (short plain answers, free plain answers,
    answers with a pause) and the cut rate (over the answers with a pause)."""

    def gaps(chosen: list[TurnResult]) -> dict[str, Any]:
        return dist([r.gap_ms for r in chosen if r.gap_ms is not None])

    plain = [r for r in results if not r.paused]
    paused = [r for r in results if r.paused]
    cut = [r for r in paused if r.cut]
    return {
        "response_gap_ms": {
            "short_answers": gaps([r for r in plain if r.expect in SHORT]),
            "free_answers": gaps([r for r in plain if r.expect not in SHORT]),
            "paused_answers": gaps(paused),
        },
        "paused_utterances": len(paused),
        "cut": len(cut),
        "cut_rate": round(len(cut) / len(paused), 3) if paused else None,
        "cut_short_answers": sum(r.expect in SHORT for r in cut),
        "cut_free_answers": sum(r.expect not in SHORT for r in cut),
        "cut_plain_utterances": sum(bool(r.cut) for r in plain),
        "no_reply_heard": sum(r.gap_ms is None and not r.cut for r in results),
        "cuts": [{"said": r.text, "expect": r.expect, "why": r.cut, "heard": r.heard}
                 for r in results if r.cut],
    }


def call_turns(record: dict[str, Any], persona: Persona, listens: list[dict[str, Any]],
               audio: dict[str, bytes], answers_s: list[tuple[float, str]]) -> list[TurnResult]:
    """One call's turns from the simphone's record (`bench.voicebench.phone`: ms since the
    INVITE, `t0_monotonic`) and the dialogue's answers (monotonic seconds)."""
    from voice.simphone.playback import compose

    says = [o for o in record["own_audio"] if o["kind"] == "say"]
    said = []
    for n, (own, turn) in enumerate(zip(says, persona.turns, strict=False)):
        layout = compose(turn.spoken, audio)
        said.append(Said(str(turn.value), str(listens[n % len(listens)]["expect"]),
                         tuple((own["start_ms"] + a, own["start_ms"] + b)
                               for a, b in layout.words_ms)))
    t0 = record.get("t0_monotonic")
    answers = [] if t0 is None else [(round((t - t0) * 1000, 1), text) for t, text in answers_s]
    return judge(said, [s["start_ms"] for s in record["bot_speech"]], answers)


# --- the run ----------------------------------------------------------------------------------


async def run_mode(mode: str, vad: VadParams, calls: list[Persona], ctx: dict[str, Any],
                   concurrency: int, tag: int, detail: bool = False) -> dict[str, Any]:
    from bench.voicebench.level import CallStats, one_call
    from bench.voicebench.phone import PhoneProc

    listens = ctx["listens"]
    numbers = [f"1380{tag:02d}{i:05d}" for i in range(len(calls))]
    by_number = dict(zip(numbers, calls, strict=True))
    phone = await PhoneProc.start(by_number, None)  # the customers' voice: Kokoro if ready
    questions = max(len(p.turns) for p in calls) - 1  # the greeting asks the first
    dialogue = ScriptedDialogue(questions, (), listens)
    config = SessionConfig(vad=vad, recordings_dir=ctx["tmp"] / "recordings", max_call_s=240)
    gate = asyncio.Semaphore(concurrency)

    async def call(i: int, number: str) -> CallStats:
        async with gate:
            return await one_call(i, number, phone.port, 0.0, ctx["engine"],
                                  {**ctx, "dialogue": dialogue}, config)

    started, load = time.monotonic(), os.getloadavg()[0]
    stats = await asyncio.gather(*(call(i, n) for i, n in enumerate(numbers)),
                                 return_exceptions=True)
    wall = time.monotonic() - started
    records, _, _ = await phone.stop()
    by_call = {s.number: s for s in stats if isinstance(s, CallStats)}
    results: list[TurnResult] = []
    for record in records:
        stat = by_call.get(record["number"])
        if stat is None or not stat.answered:
            continue
        results += call_turns(record, by_number[record["number"]], listens, ctx["audio"],
                              dialogue.log.get(stat.call_id, []))
    failed = [repr(s) for s in stats if not isinstance(s, CallStats)]
    failed += [f"{s.call_id}: {s.ended_by} {s.error}" for s in stats
               if isinstance(s, CallStats) and (s.error or s.ended_by != "bot")]
    print(f"[{mode}] {len(calls)} calls in {wall:.0f} s", file=sys.stderr, flush=True)
    out: dict[str, Any] = {
        "pause_ms": vad.pause_ms, "end_silence_ms": vad.end_silence_ms, "calls": len(calls),
        "calls_failed": failed, "wall_s": round(wall, 1),
        "load_avg_1m_before_after": [round(load, 2), round(os.getloadavg()[0], 2)],
        **summarise(results)}
    if detail:
        out["turns"] = [asdict(r) for r in results]
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from bench.voicebench.engines import make_engine
    from bot.store import Database
    from voice.telephony.baresip_telephony import BaresipTelephony
    from voice.tts.cache import PromptCache
    from voice.tts.espeak import EspeakSynthesizer
    from voice.tts.kokoro import customer_voice
    from voice.tts.worker import TtsWorker

    personas = load_personas(args.personas_dir)
    if args.personas:
        wanted = args.personas.split(",")
        personas = [p for p in personas if p.id in wanted]
    chosen = {m: v for m, v in modes().items() if m in args.modes.split(",")}
    if not personas or not chosen:
        raise SystemExit("no personas or no modes chosen")
    tmp = Path(tempfile.mkdtemp(prefix="waihu-bench-turns-"))
    db = Database(f"sqlite:///{tmp / 'bench.db'}")
    db.upgrade()
    tts = TtsWorker(PromptCache(CACHE_DIR, EspeakSynthesizer()))
    await tts.warm_many(ScriptedDialogue(0, ()).texts() + [SessionConfig().failure_text])
    # The callers' words, synthesised here once in the simphone's voice: the phone process
    # loads them from the same cache, and `compose` lays them out as it plays them.
    voice_cache = PromptCache(CACHE_DIR, customer_voice())
    pieces = [str(p) for persona in personas for t in persona.turns for p in t.spoken
              if isinstance(p, str)]
    await asyncio.to_thread(voice_cache.warm, pieces)
    audio = {text: voice_cache.get(text) for text in pieces}
    engine = await make_engine(args.engine)
    telephony = BaresipTelephony(listen=("127.0.0.1", 0))
    await telephony.start()
    listens = script_listens()
    ctx = {"db": db, "tts": tts, "telephony": telephony, "tmp": tmp, "engine": engine,
           "listens": listens, "audio": audio}
    out: dict[str, Any] = {
        "benchmark": "turn gap and cut rate", "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "command": " ".join(["bench/turns.py", *sys.argv[1:]]),
        "asr": engine.asr.engine.describe(), "caller_voice": voice_cache.synthesizer.voice_id,
        "personas": [p.id for p in personas], "repeat": args.repeat,
        "questions": [f"{name} ({listen['expect']})"
                      for name, listen in zip(SCRIPT, listens, strict=True)],
        "modes": {},
    }
    try:
        for tag, (mode, vad) in enumerate(chosen.items()):
            calls = [p for _ in range(args.repeat) for p in personas]
            out["modes"][mode] = await run_mode(mode, vad, calls, ctx, args.concurrency, tag,
                                                args.detail)
    finally:
        await telephony.close()
        engine.asr.close()
        await tts.aclose()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="adaptive,fixed")
    parser.add_argument("--personas", default="", help="persona ids (default: all)")
    parser.add_argument("--personas-dir", type=Path, default=PERSONAS_DIR)
    parser.add_argument("--repeat", type=int, default=3, help="calls per persona and mode")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--engine", default="whisper", choices=["whisper"])
    parser.add_argument("--detail", action="store_true", help="every turn in the JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(asyncio.run(main_async(args)), ensure_ascii=False, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
