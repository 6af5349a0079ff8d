import pytest

from billing.exceptions import InvalidAmount
from billing.money import format_amount, from_api_value, parse_amount, roubles_to_kopecks, to_api_value


@pytest.mark.parametrize(
    "text, kopecks",
    [
        ("150", 15_000),
        ("150.5", 15_050),
        ("150,50", 15_050),
        ("1 500 ₽", 150_000),
        ("1\u00a0500,05\u00a0₽", 150_005),
        ("500 руб.", 50_000),
        ("0.01", 1),
        ("+100", 10_000),
    ],
)
def test_parse_amount_accepts_what_people_type(text, kopecks):
    assert parse_amount(text) == kopecks


@pytest.mark.parametrize(
    "text", ["-5", "−5", "NaN", "inf", "", "   ", "1.234", "12,345", "abc", "1e5", "0", "0,00", "99999999999999999", "100000000.01"]
)
def test_parse_amount_refuses_bad_input_with_a_clear_error(text):
    with pytest.raises(InvalidAmount) as exc:
        parse_amount(text)
    assert str(exc.value)


def test_parse_amount_refuses_absurd_sizes(settings):
    settings.MONEY_MAX_KOPECKS = 1_000_00
    assert parse_amount("1000") == 100_000
    with pytest.raises(InvalidAmount, match="too large"):
        parse_amount("1000.01")


def test_format_amount_in_russian_and_english():
    assert format_amount(150_000) == "1\u00a0500\u00a0₽"
    assert format_amount(15_050, "ru") == "150,50\u00a0₽"
    assert format_amount(150_000, "en") == "₽1,500"
    assert format_amount(15_050, "en") == "₽150.50"
    assert format_amount(-100, "en") == "-₽1"


def test_api_values_round_trip_exactly():
    assert to_api_value(15_000) == "150.00"
    assert to_api_value(5) == "0.05"
    assert from_api_value("150.00") == 15_000
    assert from_api_value("0.05") == 5
    for bad in ("1.005", "NaN", "abc"):
        with pytest.raises(InvalidAmount):
            from_api_value(bad)


def test_legacy_roubles_round_half_up_to_the_kopeck():
    assert roubles_to_kopecks(10.005) == 1001 or roubles_to_kopecks("10.005") == 1001
    assert roubles_to_kopecks("10.004") == 1000
    assert roubles_to_kopecks(0.1 + 0.2) == 30
