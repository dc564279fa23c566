"""Persona files: how a virtual customer answers a call (format in DESIGN.md).

Parsing only; the text client (bot/textcall.py) and the SIP simphone play them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.yamlfile import read_yaml

DIAL_BEHAVIOURS = {
    "answer": "answered", "busy": "busy", "no_answer": "no_answer", "reject": "rejected",
    "announce:invalid_number": "invalid_number", "announce:suspended": "suspended",
    "announce:powered_off": "powered_off",
}
TurnKind = Literal["say", "dtmf", "silent_s", "barge_in", "hangup"]


class PersonaError(ValueError):
    """A persona file that cannot be played."""


@dataclass(frozen=True)
class Turn:
    kind: TurnKind
    value: Any


@dataclass(frozen=True)
class Persona:
    id: str
    dial: str = "answer"
    ring_s: float = 1.0
    turns: tuple[Turn, ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def dial_result(self) -> str:
        """What the dialer will see: `answered`, `busy`, `invalid_number`, …"""
        return DIAL_BEHAVIOURS[self.dial]


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
        turns.append(Turn(kind, value))
    expect = data.get("expect") or {}
    if not isinstance(expect, dict):
        raise PersonaError(f"{source}: expect must be a mapping such as {{outcome: consented}}")
    return Persona(id=str(data["id"]), dial=dial, ring_s=float(data.get("ring_s", 1.0)),
                   turns=tuple(turns), expect=expect, source=source)


def load_persona(path: str | Path) -> Persona:
    return parse_persona(read_yaml(path, PersonaError, "persona"), str(path))


def load_personas(folder: str | Path) -> list[Persona]:
    paths = sorted(Path(folder).glob("*.yml")) + sorted(Path(folder).glob("*.yaml"))
    if not paths:
        raise PersonaError(f"{folder}: no persona files (*.yml)")
    return [load_persona(p) for p in paths]
