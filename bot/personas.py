"""Persona files: how a virtual customer answers a call (format in DESIGN.md).

Parsing only, in `bot/` because both halves read it: the text client (bot/textcall.py)
and the SIP simphone (voice/simphone) play them.

    id: consents_after_price
    dial: answer        # see below
    ring_s: 1.5         # ringing before the answer (or the announcement after it)
    turns:              # each one is said after the bot has stopped speaking (not hangup,
                        # which follows the previous turn at once)
      - say: 是的，我是
      - say: [不是…, pause_s: 0.5, 我是他家人]   # words with a pause in the middle
      - dtmf: "1"
      - silent_s: 8
      - barge_in: 等一下  # said while the bot is still speaking
      - hangup: true
    answers:            # what the customer says when the bot asks back (optional)
      转接人工: 对，转人工  # the bot's words contain 转接人工 → say 对，转人工
    expect: {outcome: consented}   # checked by `waihu simulate`

`dial` is one of

- `answer` — ring `ring_s`, answer, play the turns;
- `busy` (486), `no_answer` (rings until cancelled), `reject` (603);
- `announce:KIND` — the carrier announcement of KIND as early media (183), then a final
  status: `invalid_number` (空号, 404), `suspended` (停机, 480), `powered_off` (关机, 480),
  `busy` (正在通话中, 486);
- `announce_answered:KIND` — the same announcements, but the exchange answers first (200 OK
  after `ring_s`), plays the announcement as ordinary call audio and hangs up (BYE): the
  gateway must recognise it from what it hears and report KIND, not an answered call.

A `say` or `barge_in` is a string, or a list of strings and `pause_s: N` entries for a caller
who stops mid-sentence and goes on (YAML's flow list keeps it on one line, as above; a block
list works too).  It must begin and end with words, pauses between 0 and 5 s, never two in a
row.  The pause is silence between the words as the line carries them: the synthesised
pieces' own silence at a pause is trimmed away (voice/simphone/playback.py), so `pause_s: 0.5`
is 500 ms below the speech level, what an endpointer on the far end hears as the pause.
`Turn.value` is then the words joined (a comma where a piece has no punctuation of its own),
what a text client sends; `Turn.parts` keeps the words and the pauses (seconds, as floats)
for the simphone.  Used by bench/turns.py (examples/personas-pauses/) to count the answers
the gateway's endpointing cuts in the middle.

`answers` is for the questions a script cannot place: the bot asks back when it doubts
what it heard ("您是要转接人工客服吗？" after a request for a person heard at low
confidence), which depends on the recogniser, not on the persona.  When the bot's words
since the customer last spoke contain a cue, the customer says its reply before going on
with the turns (and also once the turns are done), at most `MAX_ANSWERS` times a call, as
a real customer would answer the question they were asked.  `Persona.answer_to` is the one
place that decides; the simphone and the text client both ask it.

The dial result the dialer should see (`Persona.dial_result`) is `answered`, `busy`,
`no_answer`, `rejected` or the announcement's KIND.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.yamlfile import read_yaml

ANNOUNCED = ("invalid_number", "suspended", "powered_off", "busy")
DIAL_BEHAVIOURS = {
    "answer": "answered", "busy": "busy", "no_answer": "no_answer", "reject": "rejected",
    **{f"announce:{kind}": kind for kind in ANNOUNCED},
    **{f"announce_answered:{kind}": kind for kind in ANNOUNCED},
}
TurnKind = Literal["say", "dtmf", "silent_s", "barge_in", "hangup"]


class PersonaError(ValueError):
    """A persona file that cannot be played."""


MAX_PAUSE_S = 5.0
MAX_ANSWERS = 2  # asked back more often than this, the customer stops answering
PUNCTUATION = "，。、？！…,.?!~ "


@dataclass(frozen=True)
class Turn:
    kind: TurnKind
    value: Any
    # Words (str) and pauses (float, seconds) in the order spoken, for a say/barge_in with
    # a pause in it; empty for all others (then `value` is the whole utterance).
    parts: tuple[str | float, ...] = ()

    @property
    def spoken(self) -> tuple[str | float, ...]:
        """What the simphone plays: the words and pauses (a plain utterance is one piece)."""
        return self.parts or (str(self.value),)


@dataclass(frozen=True)
class Persona:
    id: str
    dial: str = "answer"
    ring_s: float = 1.0
    turns: tuple[Turn, ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    answers: tuple[tuple[str, str], ...] = ()  # (cue in the bot's words, the reply)

    def answer_to(self, bot_words: str) -> str | None:
        """The reply to what the bot just said, if it asked something in `answers`."""
        for cue, reply in self.answers:
            if cue in bot_words:
                return reply
        return None

    @property
    def dial_result(self) -> str:
        """What the dialer will see: `answered`, `busy`, `invalid_number`, …"""
        return DIAL_BEHAVIOURS[self.dial]

    @property
    def announcement(self) -> str | None:
        """The announcement KIND of `announce:KIND` / `announce_answered:KIND`, else None."""
        mode, _, kind = self.dial.partition(":")
        return kind if mode in ("announce", "announce_answered") else None


def parse_persona(data: Any, source: str = "persona") -> Persona:
    if not isinstance(data, dict) or not data.get("id"):
        raise PersonaError(f"{source}: a persona needs an `id`")
    dial = str(data.get("dial", "answer"))
    if dial not in DIAL_BEHAVIOURS:
        raise PersonaError(f"{source}: dial must be one of {', '.join(DIAL_BEHAVIOURS)}, "
                           f"not {dial!r}")
    turns = []
    for n, raw in enumerate(data.get("turns") or [], start=1):
        if not isinstance(raw, dict) or len(raw) != 1:
            raise PersonaError(f"{source}: turn {n} must have exactly one of "
                               "say, dtmf, silent_s, barge_in, hangup")
        (kind, value), = raw.items()
        if kind not in ("say", "dtmf", "silent_s", "barge_in", "hangup"):
            raise PersonaError(f"{source}: turn {n}: unknown kind {kind!r}")
        if kind == "dtmf" and not str(value).strip("0123456789*#"):
            value = str(value)
        elif kind == "dtmf":
            raise PersonaError(f"{source}: turn {n}: dtmf must be digits, * or #")
        elif kind in ("say", "barge_in") and isinstance(value, list):
            parts = parse_spoken(value, f"{source}: turn {n}")
            turns.append(Turn(kind, join_words(parts), parts))
            continue
        turns.append(Turn(kind, value))
    expect = data.get("expect") or {}
    if not isinstance(expect, dict):
        raise PersonaError(f"{source}: expect must be a mapping such as {{outcome: consented}}")
    return Persona(id=str(data["id"]), dial=dial, ring_s=float(data.get("ring_s", 1.0)),
                   turns=tuple(turns), expect=expect, source=source,
                   answers=parse_answers(data.get("answers"), source))


def parse_answers(raw: Any, source: str) -> tuple[tuple[str, str], ...]:
    """`{转接人工: 对}` → `(("转接人工", "对"),)`: cues and replies are plain words."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PersonaError(f"{source}: answers must map words of the bot's question to a "
                           "reply, such as {转接人工: 对}")
    pairs = []
    for cue, reply in raw.items():
        if not (isinstance(cue, str) and cue.strip() and isinstance(reply, str)
                and reply.strip()):
            raise PersonaError(f"{source}: answers: {cue!r}: the cue and the reply must "
                               "both be words")
        pairs.append((cue.strip(), reply.strip()))
    return tuple(pairs)


def parse_spoken(items: list[Any], where: str) -> tuple[str | float, ...]:
    """`[不是…, pause_s: 0.5, 我是他家人]` → `("不是…", 0.5, "我是他家人")`; see the module
    docstring for the rules."""
    parts: list[str | float] = []
    for item in items:
        if isinstance(item, dict) and set(item) == {"pause_s"}:
            try:
                pause = float(item["pause_s"])
            except (TypeError, ValueError):
                raise PersonaError(f"{where}: pause_s must be a number of seconds") from None
            if not 0 < pause <= MAX_PAUSE_S:
                raise PersonaError(f"{where}: pause_s must be > 0 and <= {MAX_PAUSE_S:g}, "
                                   f"not {pause:g}")
            if not parts or not isinstance(parts[-1], str):
                raise PersonaError(f"{where}: a pause must follow words")
            parts.append(pause)
        elif isinstance(item, str | int) and not isinstance(item, bool) and str(item).strip():
            if parts and isinstance(parts[-1], str):
                raise PersonaError(f"{where}: two pieces of words in a row: join them, or put "
                                   "a pause_s between them")
            parts.append(str(item).strip())
        else:
            raise PersonaError(f"{where}: a spoken list holds words and `pause_s: N` "
                               f"entries, not {item!r}")
    if not parts or not isinstance(parts[-1], str):
        raise PersonaError(f"{where}: a spoken list must end with words")
    return tuple(parts)


def join_words(parts: tuple[str | float, ...]) -> str:
    """The words of a spoken list as one utterance, for text clients: a comma where the
    pause was, unless the piece before it ends with punctuation of its own."""
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
        elif text[-1] not in PUNCTUATION:
            text += "，"
    return text


def load_persona(path: str | Path) -> Persona:
    return parse_persona(read_yaml(path, PersonaError, "persona"), str(path))


def load_personas(folder: str | Path) -> list[Persona]:
    paths = sorted(Path(folder).glob("*.yml")) + sorted(Path(folder).glob("*.yaml"))
    if not paths:
        raise PersonaError(f"{folder}: no persona files (*.yml)")
    return [load_persona(p) for p in paths]
