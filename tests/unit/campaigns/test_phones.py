"""Phone numbers as contact lists write them -> the digits the store keeps, or the reason."""

from __future__ import annotations

import pytest

from bot.campaigns.phones import normalize_phone


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        # mobiles
        ("13812345678", "13812345678"),
        (" 13812345678 ", "13812345678"),
        ("19912345678", "19912345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("138.1234.5678", "13812345678"),
        ("(138)12345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),  # full-width digits from a Chinese IME
        ("１３８－１２３４－５６７８", "13812345678"),
        ("138\u30001234\u30005678", "13812345678"),  # ideographic spaces
        ("13812345678.0", "13812345678"),  # Excel numeric cell exported to CSV
        ("13812345678.00", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("+86-138-1234-5678", "13812345678"),
        ("(+86) 13812345678", "13812345678"),
        ("＋８６ １３８１２３４５６７８", "13812345678"),
        ("008613812345678", "13812345678"),
        ("0086 138 1234 5678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("86 138 1234 5678", "13812345678"),
        ("013812345678", "13812345678"),  # long-distance 0 before a mobile
        # landlines: 010 and 02x take 8 digits, 0xxx take 7 or 8
        ("010-88886666", "01088886666"),
        ("01088886666", "01088886666"),
        ("(010) 8888 6666", "01088886666"),
        ("020-88886666", "02088886666"),
        ("02088886666", "02088886666"),
        ("029 8888 6666", "02988886666"),
        ("0755-86668888", "075586668888"),
        ("0755-8666888", "07558666888"),
        ("0571 8888 6666", "057188886666"),
        ("0311-5678901", "03115678901"),
        ("（０２０）８８８８６６６６", "02088886666"),
        ("+86 20 8888 6666", "02088886666"),  # international form drops the 0
        ("+86 (0)20 8888 6666", "02088886666"),
        ("0086 10 8888 6666", "01088886666"),
        ("+86 755 8666 8888", "075586668888"),
        ("02088886666.0", "02088886666"),
    ],
)
def test_accepted(text: str, digits: str) -> None:
    assert normalize_phone(text) == digits


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1.38123E+10", "scientific notation"),
        ("1.38123e10", "scientific notation"),
        ("8.61381E+12", "scientific notation"),
        ("4008001234", "400/800 service number"),
        ("400-800-1234", "400/800 service number"),
        ("8008101234", "400/800 service number"),
        ("800 810 1234", "400/800 service number"),
        ("+86 400 800 1234", "400/800 service number"),
        ("1381234567", "11 digits, got 10"),
        ("138123456789", "11 digits, got 12"),
        ("12812345678", "no mobile numbers start with 12"),
        ("11012345678", "no mobile numbers start with 11"),
        ("+8612812345678", "no mobile numbers start with 12"),
        ("+1 415 555 0100", "outside mainland China"),
        ("+852 9123 4567", "outside mainland China"),
        ("00852 9123 4567", "outside mainland China"),
        ("88886666", "without area code"),
        ("8666888", "without area code"),
        ("020-8888666", "takes 8-digit numbers, got 7"),
        ("010-888866661", "takes 8-digit numbers, got 9"),
        ("0755-866688", "takes 7 or 8-digit numbers, got 6"),
        ("0755-866688889", "takes 7 or 8-digit numbers, got 9"),
        ("011-88886666", "no area code 011"),
        ("020-08886666", "local numbers do not start with 0"),
        ("020-18886666", "local numbers do not start with 1"),
        ("862088886666", "not a mainland phone number"),  # 86 only before a mobile
        ("2088886666", "without the 0 of its area code"),  # an Excel number cell
        ("75586668888", "without the 0 of its area code"),
        ("2088886", "without area code"),
        ("8612345678", "without the 0 of its area code"),  # 0861-2345678 is a landline shape
        ("123456789012345", "mobile numbers have 11 digits, got 15"),
        ("912345678901", "not a mainland phone number"),
        ("10086", "too short"),
        ("95588", "too short"),
        ("010-88886666转123", "unexpected character '转'"),
        ("138x12345678", "unexpected character 'x'"),
        ("---", "no digits"),
        ("+", "outside mainland China"),
    ],
)
def test_refused_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("+", r"\+").replace("(", r"\(")):
        normalize_phone(text)


def test_reasons_do_not_repeat_the_number() -> None:
    """Reasons go to logs and reject files; they describe the problem, not the digits."""
    for text in ["1381234567", "12812345678", "020-8888666", "88886666"]:
        with pytest.raises(ValueError) as caught:
            normalize_phone(text)
        digits = "".join(ch for ch in text if ch.isdigit())
        assert digits not in str(caught.value)
