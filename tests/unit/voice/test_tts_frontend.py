"""The Chinese TTS front end: numbers, dates, money, phones as spoken, then pinyin for espeak."""

from __future__ import annotations

import pytest
from pypinyin import Style

from voice.tts.frontend import cardinal, digits, reading_spans, to_pinyin, to_speakable


@pytest.mark.parametrize(
    ("number", "spoken"),
    [
        (0, "零"),
        (5, "五"),
        (10, "十"),
        (12, "十二"),
        (20, "二十"),
        (58, "五十八"),
        (100, "一百"),
        (101, "一百零一"),
        (110, "一百一十"),
        (1001, "一千零一"),
        (1010, "一千零一十"),
        (2026, "二千零二十六"),
        (10000, "一万"),
        (10086, "一万零八十六"),
        (100010, "十万零一十"),
        (120000, "十二万"),
        (1000000, "一百万"),
        (20000005, "二千万零五"),
        (100000000, "一亿"),
        (100001000, "一亿零一千"),
        (-3, "负三"),
    ],
)
def test_cardinal(number: int, spoken: str) -> None:
    assert cardinal(number) == spoken


def test_digits_with_and_without_yao() -> None:
    assert digits("10010") == "一零零一零"
    assert digits("10010", yao=True) == "幺零零幺零"


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # Dates
        ("2026-12-05", "二零二六年十二月五日"),
        ("2026/1/5", "二零二六年一月五日"),
        ("2026年12月5日", "二零二六年十二月五日"),
        ("12月5日", "十二月五日"),
        ("2月2号", "二月二号"),
        ("试用到2027年1月31日", "试用到二零二七年一月三十一日"),
        # Times
        ("10:30", "十点三十分"),
        ("9:05", "九点零五分"),
        ("10:00", "十点整"),
        ("2:15", "两点十五分"),
        ("10点", "十点"),
        ("上午10点到12点", "上午十点到十二点"),
        # Money
        ("每月5元", "每月五元"),
        ("¥58.50", "五十八点五元"),
        ("￥58.5元", "五十八点五元"),
        ("58.5元", "五十八点五元"),
        ("58.00元", "五十八元"),
        ("10000元", "一万元"),
        ("1,000元", "一千元"),
        ("2元", "两元"),
        # Percentages and decimals
        ("15%", "百分之十五"),
        ("2.5%", "百分之二点五"),
        ("100％", "百分之一百"),
        ("3.14", "三点一四"),
        # Quantities
        ("30天", "三十天"),
        ("2个", "两个"),
        ("第2次", "第二次"),
        ("3-5天", "三到五天"),
        ("12个月", "十二个月"),
        # Phone numbers and hotlines: digit by digit, 幺 for 1, long ones in groups
        ("请拨打10010", "请拨打幺零零幺零"),
        ("10086", "幺零零八六"),
        ("95588", "九五五八八"),
        ("4008001234", "四零零，八零零，幺二三四"),
        ("13812345678", "幺三八，幺二三四，五六七八"),
        ("010-12345678", "零幺零，幺二三四，五六七八"),
        ("075512345678", "零七五五，幺二三四，五六七八"),
        ("400-800-1234", "四零零，八零零，幺二三四"),
        ("号码是13812345678", "号码是幺三八，幺二三四，五六七八"),
        # A key to press is said with 键 (a bare 按二。 was heard as 案案); not a quantity,
        # a range, a named key or a longer number after 按
        ("确认请按1。", "确认请按一键。"),
        ("同意请说“我同意”，或按1；不需要请按2。", "同意请说“我同意”，或按一键；不需要请按二键。"),
        ("请在按键上按1确认开通", "请在按键上按一键确认开通"),
        ("请按1键", "请按一键"),
        ("请按0号键", "请按零号键"),
        ("请按1到5分打分", "请按一到五分打分"),
        ("按每月5元收费", "按每月五元收费"),
        ("按5元收费", "按五元收费"),
        ("按3折", "按三折"),
        ("按2倍", "按两倍"),
        ("请按1或2", "请按一或二"),
        ("请按10086", "请按幺零零八六"),
        ("按时还款", "按时还款"),
        # Codes and ID tails: digit by digit, 一 for 1
        ("尾号1234", "尾号一二三四"),
        ("身份证后四位是1357", "身份证后四位是一三五七"),
        ("订单123456", "订单一二三四五六"),
        # Fullwidth digits, text left alone
        ("每月５元", "每月五元"),
        ("您好，欢迎致电。", "您好，欢迎致电。"),
        ("", ""),
    ],
)
def test_to_speakable(text: str, spoken: str) -> None:
    assert to_speakable(text) == spoken


@pytest.mark.parametrize(
    ("text", "pinyin"),
    [
        ("您好，每月5元。", "nin2 hao3, mei3 yue4 wu3 yuan2."),
        ("你好吗？我很好！", "ni2 hao3 ma5. wo3 hen3 hao3."),
        ("谢谢", "xie4 xie4"),
        ("30天", "san1 shi2 tian1"),
        ("58.5元", "wu3 shi2 ba1 dian3 wu3 yuan2"),
        ("拨打10010", "bo1 da3 yao1 ling2 ling2 yao1 ling2"),
        ("QXLDTX", "kiu1 ai2 ke4 si1 ai2 le5 di4 ti4 ai2 ke4 si1"),
        ("qq", "kiu1 kiu1"),
        ("开通5G套餐", "kai1 tong1 wu3 ji4 tao4 can1"),
        ("好的、明白：对", "hao3 de5, ming2 bai2, dui4"),
        ("好，，。", "hao3."),
        ("（注意）", "zhu4 yi4"),
        ("  ", ""),
    ],
)
def test_to_pinyin(text: str, pinyin: str) -> None:
    assert to_pinyin(text) == pinyin


def test_pinyin_has_no_hanzi_or_digits_outside_tones() -> None:
    out = to_pinyin("尊敬的张先生，您的套餐2026-12-05到期，¥58.50/月，详询10010。")
    assert all(ch.isascii() for ch in out)
    for word in out.replace(",", " ").replace(".", " ").split():
        assert word[:-1].isalpha() and word[-1] in "12345", word


@pytest.mark.parametrize(
    ("text", "pypinyin_alone", "fixed"),
    [
        # (text, what pypinyin read word by word after jieba's cut, the fixed reading)
        ("请您尽快还款", "hai2 kuan3", "huan2 kuan3"),
        ("本期应还金额", "ying1 hai2", "ying1 huan2"),
        ("请您尽快还钱", "hai2 qian2", "huan2 qian2"),
        ("密码重置", "zhong4 zhi4", "chong2 zhi4"),
        ("请您稍后重拨", "zhong4 bo1", "chong2 bo1"),
        ("请长按井号键", "zhang3 an4", "chang2 an4"),
        ("资费调整为每月十元", "tiao2 zheng3 wei4", "tiao2 zheng3 wei2"),
        ("您的套餐将变更为", "bian4 geng1 wei4", "bian4 geng1 wei2"),
        ("以账单为准", "wei4 zhun3", "wei2 zhun3"),
        ("曾先生您好", "ceng2", "zeng1"),
        ("请问您是单女士本人吗", "dan1", "shan4"),
        ("我们会另行联系解先生", "jie3", "xie4"),
        ("请问这件事您可以替翟先生做决定吗", "di2", "zhai2"),
    ],
)
def test_readings_pypinyin_gets_wrong_are_fixed(text: str, pypinyin_alone: str,
                                                fixed: str) -> None:
    import jieba
    from pypinyin import lazy_pinyin

    as_misaki_reads = " ".join(" ".join(lazy_pinyin(word, style=Style.TONE3,
                                                    neutral_tone_with_five=True))
                               for word in jieba.lcut(text))
    assert pypinyin_alone in as_misaki_reads  # the G2P's reading was wrong
    assert fixed in " ".join(reading or "" for _, reading in reading_spans(text))
    assert fixed in to_pinyin(text)  # espeak-ng reads it so too


@pytest.mark.parametrize("text", ["我们曾经联系过您", "需要了解先生的情况", "调查女士",
                                  "简单说一下", "还有什么问题吗", "您还在听吗"])
def test_common_readings_are_left_to_the_g2p(text: str) -> None:
    assert reading_spans(text) == [(text, None)]


def test_reading_spans_cover_the_text_in_order() -> None:
    text = "您好，曾先生。请您尽快还款，逾期还款会影响信用。"
    spans = reading_spans(text)
    assert "".join(piece for piece, _ in spans) == text
    assert [(p, r) for p, r in spans if r] == [("曾", "zeng1"), ("还款", "huan2 kuan3"),
                                               ("还款", "huan2 kuan3")]
