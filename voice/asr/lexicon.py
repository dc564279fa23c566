"""Homophones put right from what customers say: the words of the NLU examples.

Whisper on an 8 kHz line often writes a phrase a customer says every day with other
characters of the same sound: 有空你说 as 又空你说, 还是听不清楚 as 还是停不清楚, 先不急着定
as 先不及这定, 知道了 as 直到了.  Snapping (snap.py) only helps when the whole reply is
near one of the question's hints; these are longer or free answers, and the classifier
then reads the wrong characters.

`repair` replaces a run of 2–6 characters by a phrase of the customer lexicon (one or
more whole words in a row of an NLU example, data/nlu/, 2–6 characters: what customers
say, not what the personas say) when, and only when:

- the two read alike: the same toneless pinyin, syllable for syllable;
- what was heard is neither in the lexicon nor a word of the Chinese dictionary (jieba's):
  a real word (时间, 事件, 统一) is left alone, however it sounds, and so is anything
  inside it (a longer run known as it stands is kept whole before shorter ones are tried);
- negation is the same on both sides (a 不 never appears or goes away);
- no digit is involved.

The longest run wins, left to right.  A repaired reply is reported as snapped (snap.py),
so that consent never rests on it and a control request heard through it is confirmed
back (actions/flowcontrol.py), exactly as for a reply snapped to a hint.
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from voice.asr.snap import negates, normalize

NLU_DIR = Path(__file__).resolve().parents[2] / "data" / "nlu"
SHORTEST, LONGEST = 2, 6
_ANNOTATION = re.compile(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\{[^}]*\}")
_EXAMPLE = re.compile(r"^\s*-\s+(.+?)\s*$")
_HANZI = re.compile(r"^[\u3400-\u9fff]+$")
# Call events are "/intent" literals, not speech.
_NOT_SPEECH = frozenset({"events.yml"})


def syllables(text: str) -> list[str]:
    """Toneless pinyin, one syllable per character of an all-Hanzi *text* (read in context,
    so a polyphone takes its reading in the phrase)."""
    from pypinyin import Style, lazy_pinyin

    return [s.lower() for s in lazy_pinyin(text, style=Style.NORMAL, errors="default")]


def examples(folder: Path = NLU_DIR) -> Iterable[str]:
    """Every NLU example's words, annotations reduced to their text, normalised."""
    for path in sorted(folder.glob("*.yml")):
        if path.name in _NOT_SPEECH:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            found = _EXAMPLE.match(line)
            if found:
                text = _ANNOTATION.sub(lambda m: m.group(1) or m.group(2) or "", found[1])
                yield normalize(text)


@functools.cache
def dictionary() -> frozenset[str]:
    """The words of jieba's dictionary (about 350 000): what is a word of its own."""
    import jieba

    path = Path(os.path.dirname(jieba.__file__)) / "dict.txt"
    with path.open(encoding="utf-8") as lines:
        return frozenset(line.split(" ", 1)[0] for line in lines)


class Lexicon:
    """The customer phrases by reading: toneless pinyin → the most frequent phrase."""

    def __init__(self, texts: Iterable[str]) -> None:
        counts: Counter[str] = Counter()
        readings: dict[str, str] = {}
        for text in texts:
            for run in _hanzi_runs(text):
                sounds = syllables(run)
                if len(sounds) != len(run):
                    continue
                for start, end in _phrases(run):
                    phrase = run[start:end]
                    counts[phrase] += 1
                    readings[phrase] = " ".join(sounds[start:end])
        self.phrases = frozenset(counts)
        self.by_reading: dict[str, str] = {}
        for phrase, _ in counts.most_common():  # the most frequent reading holder first
            self.by_reading.setdefault(readings[phrase], phrase)

    def repair(self, text: str) -> str:
        """*text* with every misheard customer phrase written as customers write it."""
        out: list[str] = []
        for run, hanzi in _runs(text):
            out.append(self._repair_run(run) if hanzi else run)
        return "".join(out)

    def _repair_run(self, run: str) -> str:
        sounds = syllables(run)
        if len(sounds) != len(run):
            return run
        words = dictionary()
        out: list[str] = []
        i = 0
        while i < len(run):
            for size in range(min(LONGEST, len(run) - i), SHORTEST - 1, -1):
                heard = run[i:i + size]
                if heard in self.phrases or heard in words:
                    out.append(heard)  # a phrase or word of its own: kept whole
                    i += size
                    break
                phrase = self.by_reading.get(" ".join(sounds[i:i + size]))
                if phrase is not None and negates(phrase) == negates(heard):
                    out.append(phrase)
                    i += size
                    break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)


def _phrases(run: str) -> Iterable[tuple[int, int]]:
    """Where the phrases of an example run lie: one or more whole words in a row (jieba's
    cut), 2–6 characters.  Not any run of characters: 楚了 of 清楚了 is nobody's phrase,
    and would turn a heard 出了 into it."""
    import jieba

    bounds = [0]
    for word in jieba.lcut(run, HMM=False):
        bounds.append(bounds[-1] + len(word))
    for i, start in enumerate(bounds):
        for end in bounds[i + 1:]:
            if end - start > LONGEST:
                break
            if end - start >= SHORTEST:
                yield start, end


def _hanzi_runs(text: str) -> list[str]:
    return [run for run, hanzi in _runs(text) if hanzi]


def _runs(text: str) -> list[tuple[str, bool]]:
    """*text* cut into runs of Hanzi and of anything else, in order."""
    return [(m[0], bool(_HANZI.match(m[0])))
            for m in re.finditer(r"[\u3400-\u9fff]+|[^\u3400-\u9fff]+", text)]


@functools.cache
def customer_lexicon() -> Lexicon:
    """The lexicon of data/nlu/ (read once a process; the engines load it when they start)."""
    return Lexicon(examples())


def repair(text: str) -> str:
    return customer_lexicon().repair(text)
