"""Normalising and snapping ASR text: pure functions, no model."""

from __future__ import annotations

import numpy as np
import pytest

from voice.asr.announce import ANNOUNCEMENT_HINTS, classify_announcement
from voice.asr.base import Hints
from voice.asr.snap import (
    SNAP_THRESHOLD,
    clauses,
    edit_distance,
    interpret,
    normalize,
    pinyin_distance,
    pinyin_key,
    score_by_sound,
    snap,
    without_restart,
)
from voice.asr.vosk_engine import segment
from voice.asr.whisper_engine import upsample

IDENTITY = ("是的我是", "不是", "你打错了")
OFFER = ("多少钱", "我不需要", "好的我同意", "我要投诉", "我考虑一下")


@pytest.mark.parametrize("raw, expected", [
    ("好的，我同意。", "好的我同意"),
    ("您撥打的電話已關機", "您拨打的电话已关机"),  # traditional → simplified
    ("我是４", "我是4"),  # full-width digit
    ("三分，三分，三分，三分", "三分"),  # a looping decode collapses
    ("天 天 天 天", "天"),
    ("  。，", ""),
    ("네 감사합니다", "네감사합니다"),  # Hangul survives (the Korean Vosk model in tests)
])
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("looped, said", [
    # Heard on real calls (Kokoro customers, G.711, Whisper base with the question's hints).
    ("是我呀是我呀", "是我呀"),
    ("你说的没事你说", "你说的没事"),
    ("不用了我已经有类似的了不用了", "不用了我已经有类似的了"),
    ("对我就是我就是", "对我就是"),
    ("不信我不信这个不信我不", "不信我不信这个"),
    ("我想跟真人说话我想跟真人", "我想跟真人说话"),
])
def test_a_decoder_loop_at_the_end_is_dropped(looped: str, said: str) -> None:
    assert without_restart(looped) == said
    assert normalize(looped) == said


@pytest.mark.parametrize("text", [
    "同意我同意",  # 同意，我同意: not a loop
    "我同意",
    "喂喂",
    "1212",  # an ID's last four
    "身份证后四位是3434",
    "好的我同意",
])
def test_answers_that_only_look_like_loops_stay(text: str) -> None:
    assert without_restart(text) == text


def test_clauses_drop_consecutive_repeats_only() -> None:
    assert clauses("五分，三分，三分。五分") == ["五分", "三分", "五分"]


def test_pinyin_key_is_toneless_and_spaced() -> None:
    assert pinyin_key("是的，我是") == "shi de wo shi"


def test_edit_distance() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "abc") == 0


def test_pinyin_distance_homophones_are_zero() -> None:
    assert pinyin_distance("是的我是", "事的我事") == 0.0
    assert 0 < pinyin_distance("不必", "不是") < SNAP_THRESHOLD


@pytest.mark.parametrize("heard, phrases, expected", [
    ("是的我是，", IDENTITY, "是的我是"),
    ("不费", IDENTITY, "不是"),  # Whisper's reading of espeak's 不是
    ("不必", IDENTITY, "不是"),
    ("我的我同意", OFFER, "好的我同意"),
    ("不需要", OFFER, "我不需要"),
    ("今天天气很好", OFFER, None),
    ("我是4", IDENTITY, None),
    ("", OFFER, None),
])
def test_snap(heard: str, phrases: tuple[str, ...], expected: str | None) -> None:
    assert snap(heard, phrases).phrase == expected


def test_snap_never_crosses_a_negation() -> None:
    # 我不同意 is 0.41 from 好的我同意 by sound alone: it must never become a consent.
    assert snap("我不同意", OFFER, threshold=0.6).phrase != "好的我同意"
    assert snap("我同意", ("不同意",), threshold=0.9).phrase is None
    assert snap("是我", ("不是",), threshold=0.9).phrase is None


def test_snap_reports_the_nearest_even_when_rejected() -> None:
    result = snap("我考虑考虑", ("多少钱", "我考虑一下"), threshold=0.1)
    assert result.phrase is None and result.nearest == "我考虑一下"
    assert result.distance > 0.1


def test_snap_without_phrases() -> None:
    assert snap("是的", ()).phrase is None


@pytest.mark.parametrize("raw, expected", [
    ("一二三四", "1234"), ("幺三五七。", "1357"), ("1,234", "1234"),
    ("后四位是三三八九", "3389"),  # 后四位 names the digits, is not one
])
def test_interpret_digits(raw: str, expected: str) -> None:
    meaning = interpret(raw, Hints("digits"))
    assert (meaning.text, meaning.unclear) == (expected, False)


def test_interpret_digits_without_digits_is_unclear() -> None:
    assert interpret("我不知道", Hints("digits")).unclear


@pytest.mark.parametrize("raw, expected", [
    ("五分", "5"), ("五分，三分，三分", "5"), ("给4分", "4"), ("非常满意", "5"), ("一般", "3"),
    ("三", "3"), ("不满意", "2"),
])
def test_interpret_score(raw: str, expected: str) -> None:
    meaning = interpret(raw, Hints("score"))
    assert (meaning.text, meaning.unclear) == (expected, False)


def test_interpret_score_snaps_to_a_hint_that_names_a_score() -> None:
    meaning = interpret("飞常满亿", Hints("score", ("非常满意", "一般", "不满意")))
    assert (meaning.text, meaning.snapped) == ("5", True)


def test_interpret_score_out_of_range_is_unclear() -> None:
    assert interpret("八分", Hints("score")).unclear
    assert interpret("你们是谁", Hints("score")).unclear


def test_interpret_yes_no_snaps_or_is_unclear() -> None:
    hints = Hints("yes_no", IDENTITY)
    snapped = interpret("不费。", hints)
    assert (snapped.text, snapped.snapped, snapped.unclear) == ("不是", True, False)
    exact = interpret("是的我是", hints)
    assert (exact.text, exact.snapped, exact.distance) == ("是的我是", False, 0.0)
    off_list = interpret("今天天气很好", hints)  # passed on as heard, never snapped
    assert (off_list.text, off_list.unclear, off_list.snapped) == ("今天天气很好", False, False)


def test_interpret_free_keeps_the_words() -> None:
    meaning = interpret("我想問一下，價格", Hints("free", OFFER))
    assert (meaning.text, meaning.snapped, meaning.unclear) == ("我想问一下价格", False, False)


def test_interpret_yes_no_without_hints_passes_text() -> None:
    assert interpret("对。", Hints("yes_no")).text == "对"


def test_interpret_empty_is_unclear() -> None:
    for expect in ("yes_no", "digits", "score", "free"):
        assert interpret(" 。", Hints(expect)).unclear  # type: ignore[arg-type]  # a literal


@pytest.mark.parametrize("text, expected", [
    ("您拨打的号码是空号，请查证后再拨", "invalid_number"),
    ("对不起，您拨打的号码不存在", "invalid_number"),
    ("您拨打的电话已停机", "suspended"),
    ("您拨打的号码已暂停服务", "suspended"),
    ("您撥打的電話已關機", "powered_off"),
    ("您拨打的用户暂时无法接通，请稍后再拨", "powered_off"),
    ("您拨打的电话不在服务区", "powered_off"),
    ("您拨打的电话已观机", "powered_off"),  # a homophone the engine may write
    ("喂，你好", None),
    ("", None),
])
def test_classify_announcement(text: str, expected: str | None) -> None:
    assert classify_announcement(text) == expected


def test_every_announcement_hint_classifies() -> None:
    assert all(classify_announcement(h) for h in ANNOUNCEMENT_HINTS)


def test_segment_longest_known_words_first() -> None:
    vocabulary = {"是的", "是", "的", "我", "不", "需要", "네", "필요", "없어요"}
    assert segment("是的我是", vocabulary.__contains__) == ["是的", "我", "是"]
    assert segment("我不需要", vocabulary.__contains__) == ["我", "不", "需要"]
    assert segment("필요 없어요", vocabulary.__contains__) == ["필요", "없어요"]
    assert segment("我要投诉", vocabulary.__contains__) is None
    assert segment("", vocabulary.__contains__) is None


def test_upsample_doubles_the_rate_and_interpolates() -> None:
    pcm = np.array([0, 1000, -1000], dtype="<i2").tobytes()
    out = upsample(pcm)
    assert out.dtype == np.float32 and len(out) == 6
    assert np.allclose(out * 32768, [0, 500, 1000, 0, -1000, -1000])
    assert len(upsample(b"")) == 0


@pytest.mark.parametrize("heard, phrases, expected", [
    # A long shared opening does not carry a different ending (0.35 apart in pinyin).
    ("我是他老婆", ("我是他家人", "我是他朋友"), None),
    ("谁吧", IDENTITY + ("你是谁",), None),  # two of three syllables wrong
    ("是他", ("是的", "是我", "不是"), "是的"),  # one syllable wrong
    ("我是我", ("是我", "不是"), "是我"),  # one syllable too many
])
def test_snap_allows_one_wrong_syllable_in_three(heard: str, phrases: tuple[str, ...],
                                                expected: str | None) -> None:
    assert snap(heard, phrases).phrase == expected


PERMISSION = ("方便", "好的", "可以", "好", "行", "嗯", "你说", "你问吧", "不方便", "不用了",
              "没时间", "在开车")
CONTROL = ("转人工", "人工客服", "别再打了", "我要投诉")


def test_final_particles_are_not_wrong_syllables() -> None:
    # Whisper base heard a Kokoro customer's 转人工 as 拽人拱啊 at "现在方便吗？".
    assert snap("拽人拱啊", PERMISSION + CONTROL).phrase == "转人工"
    assert snap("你说吧", PERMISSION).phrase == "你说"
    assert snap("拽人拱吗", PERMISSION + CONTROL).phrase is None  # 吗 asks: it counts


def test_control_phrases_join_lists_of_answers_only() -> None:
    yes_no = Hints("yes_no", PERMISSION).with_control(CONTROL)
    assert yes_no.phrases[:len(PERMISSION)] == PERMISSION and yes_no.phrases[-1] == "我要投诉"
    assert Hints("yes_no", ("转人工", "好")).with_control(CONTROL).phrases.count("转人工") == 1
    assert Hints("digits", ()).with_control(CONTROL) == Hints("digits", ())
    assert Hints("free", ()).with_control(CONTROL) == Hints("free", ())


def test_interpret_score_passes_a_control_request_through() -> None:
    hints = Hints("score", ("一分", "五分", "满意", "一般")).with_control(CONTROL)
    heard = interpret("转人工啊", hints)
    assert (heard.text, heard.unclear) == ("转人工", False)
    assert interpret("四分", hints).text == "4"


@pytest.mark.parametrize("raw, meant", [
    ("你是我本人", "嗯是我本人"), ("你对本人", "嗯对本人"), ("你本人了", "嗯本人了"),
    ("你是谁", "你是谁"), ("你说吧", "你说吧"), ("你打错了", "你打错了"),
])
def test_a_hum_heard_as_ni_before_a_yes(raw: str, meant: str) -> None:
    # Whisper base on G.711 writes the 嗯 of 嗯是我本人 as 你; the 你 of a question to the
    # caller stays.
    identity = Hints("yes_no", ("是的", "是我", "对", "嗯", "本人", "不是", "你打错了", "你是谁"))
    meaning = interpret(raw, identity)
    assert (meaning.text, meaning.normalized) == (meant, raw)


IDENTITY_HINTS = ("是的", "是我", "对", "嗯", "本人", "是本人", "我是本人", "是我本人", "不是",
                  "你打错了", "我是他家人", "我是他朋友", "你是谁")


def test_a_leading_hum_is_no_wrong_syllable() -> None:
    # Whisper base heard a Kokoro customer's 嗯是我本人啊 as 嗯是我的人啊 (2026-12-05):
    # counting the 嗯 as a wrong syllable left no room for the misheard 本.
    assert snap("嗯是我的人啊", IDENTITY_HINTS).phrase == "是我本人"
    assert snap("嗯是我本人", IDENTITY_HINTS).phrase == "是我本人"
    assert snap("嗯嗯", ("嗯嗯", "不要")).phrase == "嗯嗯"  # a hum alone is still itself
    # Still one wrong syllable in three, and never across a negation.
    assert snap("嗯是他的朋友", IDENTITY_HINTS).phrase != "是我本人"
    assert snap("嗯不是我本人", IDENTITY_HINTS).phrase != "是我本人"


@pytest.mark.parametrize("raw, expected", [
    # Whisper base on a Kokoro refusal, 2026-12-06: a digit instead of a comma before the loop.
    ("现在骗子这么多谁直到你们是真是假１现在骗子这么多谁直到你们是真是假",
     "现在骗子这么多谁直到你们是真是假"),
    ("现在骗子这么多谁直到你们是真是假１现在骗子这么多", "现在骗子这么多谁直到你们是真是假"),
    ("我按1确认", "我按1确认"),  # a digit said between words: nothing repeats after it
    ("后四位1234", "后四位1234"),
    ("幺二三四1二三四", "幺二三四1二三四"),  # only words can loop through a digit: 3 digit words
])
def test_a_digit_between_an_answer_and_its_loop_is_a_break(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("heard, expected", [
    ("抽合码就", 3), ("抽和把酒", 3),  # Whisper base on 凑合吧就 / 凑合吧, 2026-12-05/06
    ("一班吧", 3), ("我觉得还可以", 4),
    ("布满意", None),  # not 满意 (4) for what may be 不满意
    ("还臭铁吧", None), ("好的", None), ("是的", None), ("抽合3", None),
])
def test_a_scale_word_heard_with_confusable_sounds(heard: str, expected: int | None) -> None:
    assert score_by_sound(heard) == expected


def test_a_score_by_sound_counts_as_snapped() -> None:
    hints = Hints("score", ("一分", "五分", "满意", "一般", "凑合"))
    meaning = interpret("抽合码就", hints)
    assert (meaning.text, meaning.unclear, meaning.snapped) == ("3", False, True)
    assert interpret("四分", hints).snapped is False
