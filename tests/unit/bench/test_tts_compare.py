"""bench/tts.py's comparison: what a different writing is (no error) and what a different
sound or value is (an error), numbers by value, and the wrong-number flags."""

from __future__ import annotations

import pytest

from bench.ttsbench.compare import (
    alignment,
    cer_counts,
    compared,
    edits,
    error_causes,
    number_errors,
    number_value,
    spoken,
    with_values,
)


@pytest.mark.parametrize(
    ("run", "value"),
    [
        ("一零零一零", "10010"),
        ("幺零零幺零", "10010"),
        ("一万零一十", "10010"),
        ("一千零一十", "1010"),
        ("二零二六", "2026"),
        ("两千零二十六", "2026"),
        ("十二", "12"),
        ("二十", "20"),
        ("两", "2"),
        ("〇", "0"),
        ("五十八点五", "58.5"),
        ("九点九", "9.9"),
        ("十二万", "120000"),
        ("一亿零一千", "100001000"),
    ],
)
def test_number_value(run: str, value: str) -> None:
    assert number_value(run) == value


@pytest.mark.parametrize(
    ("reference", "transcript"),
    [
        ("请问您是张先生本人吗？", "請問您是張先生本人嗎?"),  # traditional script
        ("按１确认", "按1確認"),  # full-width digit
        ("确认请按1。", "确认请按1键"),  # a key is said with 键 (the front end): 按1 = 按1键
        ("确认请按1。", "确认请按一键"),
        ("拨打10010咨询。", "拨打幺零零幺零咨询"),  # digits or words
        ("拨打10010咨询。", "拨打一万零一十咨询"),  # digit by digit or with units: one value
        ("试用到2026年12月1日", "试用到二零二六年十二月一日"),
        ("试用到2026年12月1日", "试用到两千零二十六年十二月一日"),
        ("每月5元", "每月五块钱"),  # a price in 块 or 元
        ("每月9.9元", "每月九块九"),
        ("下午2:00", "下午两点整"),  # 两 and 二 are one value
        ("热线4008001234", "热线400-800-1234"),  # digit groups
        ("热线4008001234", "热线400 800 1234"),
        ("热线4008001234", "热线400、800、1234"),
        ("试用到2026年12月1日", "试用到2026-12-01"),  # a date's hyphens are no digit groups
        ("优惠15%", "优惠百分之十五"),
        ("认真地听", "认真的听"),  # 的/地/得
        ("请她回电", "请他回电"),  # 他/她/它
        ("好的，再见。", "好的 再见"),  # punctuation and spaces
        ("QXLDTX", "qxldtx"),  # case
    ],
)
def test_a_different_writing_of_the_same_words_is_no_error(reference: str,
                                                           transcript: str) -> None:
    assert cer_counts(reference, transcript)[0] == 0
    assert number_errors(reference, transcript) == []


def test_a_number_heard_as_another_value_is_an_error_and_flagged() -> None:
    wrong, length = cer_counts("具体情况您可以拨打10010咨询。", "具體情況您可以撥打1010咨詢")
    assert (wrong, length) == (1, 16)  # one digit missing, in 具体情况您可以拨打10010咨询
    assert number_errors("拨打10010咨询。", "拨打1010咨询") == [
        {"said": "10010", "heard": "1010", "kind": "phone"}]
    # Said as a cardinal, the wrong value is still wrong: 一千零一十 is 1010.
    assert number_errors("拨打10010咨询。", "拨打一千零一十咨询") == [
        {"said": "10010", "heard": "1010", "kind": "phone"}]


@pytest.mark.parametrize(
    ("reference", "transcript", "kind", "heard"),
    [
        ("免费试用到2026年12月1日。", "免费试用到2026年12月7日", "date", "7"),
        ("免费试用到2026年12月20日。", "免费试用到2026年12月2日", "date", "2"),
        ("资费每月5元。", "资费每月50元", "price", "50"),
        ("资费每月5元。", "资费每月九元", "price", "9"),
        ("同意请按1；", "同意请案疑", "key", "-"),  # the key not heard at all
        ("不是请按2。", "不是请按啊键", "key", "-"),
        ("请用1到5分打分", "请用1到6分打分", "score", "6"),
        ("上午9:30上课", "上午9点20分上课", "time", "9.20"),
    ],
)
def test_each_kind_of_wrong_number_is_flagged(reference: str, transcript: str, kind: str,
                                              heard: str) -> None:
    [wrong] = number_errors(reference, transcript)
    assert (wrong["kind"], wrong["heard"]) == (kind, heard)
    assert cer_counts(reference, transcript)[0] >= 1


def test_a_misheard_measure_word_does_not_make_the_number_wrong() -> None:
    assert number_errors("请说身份证的后四位。", "请说身份证的后四维") == []
    assert cer_counts("后四位", "后四维") == (1, 3)  # the word is still an error


def test_numerals_inside_words_are_compared_alike_but_are_no_numbers() -> None:
    text, numbers = with_values("需要跟您确认一下，占用您一分钟")
    assert text == "需要跟您确认1下占用您1分钟"
    assert [(text[n.start:n.end], n.kind) for n in numbers] == [("1", "time")]
    assert cer_counts("确认一下", "确认以下") == (1, 4)  # 以 for 一 is an error


def test_homophones_are_errors_in_characters() -> None:
    assert cer_counts("示例通信", "势力通信") == (2, 4)
    assert edits("的地得", "得的地") == 0
    assert edits("核实", "合时") == 2


def test_spoken_reads_digits_as_the_front_end_does() -> None:
    assert spoken("拨打10010，每月5元。") == "拨打一零零一零每月五元"
    assert compared("拨打10010，每月5元。") == "拨打10010每月5元"


def test_errors_are_told_apart_by_what_the_judge_heard() -> None:
    # 势力 for 示例: same syllables and tones; 突进 for 通信, 中限 for 中心: other sounds.
    assert error_causes("您好，这里是示例通信客服中心。", "您好,这里是势力突进客服中限") == {
        "same_sound": 2, "tone": 0, "other_sound": 3, "missing": 0, "added": 0}
    assert error_causes("免费试用到", "免费使用到")["tone"] == 1  # shì / shǐ
    assert error_causes("拨打10010", "拨打1010")["missing"] == 1  # a zero not heard
    assert error_causes("请按1", "请按7")["other_sound"] == 1  # a digit is no tone
    assert error_causes("好的", "好的好的")["added"] == 0  # a decoder loop is dropped
    assert error_causes("好的再见", "好的吧再见")["added"] == 1


def test_alignment_pairs_each_character_with_what_was_heard_in_its_place() -> None:
    pairs = alignment("拨打10010", "播打1010")
    assert pairs[:3] == [("拨", "播"), ("打", "打"), ("1", "1")]
    assert sorted(pairs[3:5]) == [("0", ""), ("0", "0")]  # one of the two zeros is missing
    assert pairs[5:] == [("1", "1"), ("0", "0")]
    assert edits("拨打10010", "播打1010") == 2
