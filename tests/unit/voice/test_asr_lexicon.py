"""Misheard customer phrases put right from the NLU examples (voice/asr/lexicon.py), and
what `snap.interpret` reports for them."""

from __future__ import annotations

import pytest

from voice.asr.base import Hints
from voice.asr.lexicon import Lexicon, customer_lexicon, examples
from voice.asr.snap import interpret


@pytest.mark.parametrize(("heard", "meant"), [
    ("又空你说", "有空你说"),  # Whisper base on the line, 2026-12-04 (issue 16)
    ("还是停不清楚", "还是听不清楚"),
    ("直到了", "知道了"),
    ("那以后不想用了杂取消", "那以后不想用了咋取消"),  # 2026-12-05; 咋取消 in the NLU data since
])
def test_misheard_customer_phrases_are_put_right(heard: str, meant: str) -> None:
    assert customer_lexicon().repair(heard) == meant


@pytest.mark.parametrize("text", [
    "我们统一办",  # 统一 is a word of its own: never made into 同意
    "出了个事件",  # 出了 is not 楚了 (a piece of 清楚了, nobody's phrase)
    "我不同意", "我同意", "好的谢谢再见", "明天下午三点再打", "二零二六年", "1234",
])
def test_words_that_are_words_of_their_own_stay(text: str) -> None:
    assert customer_lexicon().repair(text) == text


def test_negation_never_appears_or_goes() -> None:
    lexicon = Lexicon(["我不要"])  # 不要 reads bu yao, like 布要 (no word)
    assert lexicon.repair("布要") == "布要"
    assert Lexicon(["有空"]).repair("又空") == "有空"


def test_phrases_are_whole_words_of_the_examples() -> None:
    lexicon = Lexicon(["清楚了"])
    assert "清楚了" in lexicon.phrases and "楚了" not in lexicon.phrases


def test_the_lexicon_is_what_customers_say_not_call_events() -> None:
    texts = list(examples())
    assert "有空你说" in texts or any("有空" in t for t in texts)
    assert not any("call_started" in t or "callstarted" in t for t in texts)
    assert all("[" not in t and "](" not in t for t in texts)  # annotations reduced


def test_a_repaired_reply_counts_as_snapped() -> None:
    repair = customer_lexicon().repair
    free = interpret("还是停不清楚", Hints(expect="free"), repair=repair)
    assert (free.text, free.snapped, free.repaired) == ("还是听不清楚", True, True)
    yes_no = interpret("又空你说", Hints(expect="yes_no", phrases=("不方便", "没时间")),
                       repair=repair)
    assert (yes_no.text, yes_no.normalized, yes_no.snapped) == ("有空你说", "又空你说", True)
    plain = interpret("有空你说", Hints(expect="free"), repair=repair)
    assert (plain.snapped, plain.repaired) == (False, False)
    assert interpret("又空你说", Hints(expect="free")).text == "又空你说"  # no repair given
