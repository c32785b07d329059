"""Resource quantities: exact values, rounding, canonical text, errors."""

from fractions import Fraction

import pytest

from api import quantity

PARSE = [
    ("100m", Fraction(1, 10)),
    ("0.5", Fraction(1, 2)),
    (".5", Fraction(1, 2)),
    ("5.", Fraction(5)),
    ("1", Fraction(1)),
    ("+2", Fraction(2)),
    ("-2", Fraction(-2)),
    ("1Ki", Fraction(1024)),
    ("1.5Ki", Fraction(1536)),
    ("1Mi", Fraction(1024**2)),
    ("1Gi", Fraction(1024**3)),
    ("1Ei", Fraction(1024**6)),
    ("1k", Fraction(1000)),
    ("1M", Fraction(10**6)),
    ("1G", Fraction(10**9)),
    ("1E", Fraction(10**18)),
    ("1e3", Fraction(1000)),
    ("1E3", Fraction(1000)),
    ("1.5e-3", Fraction(3, 2000)),
    ("1n", Fraction(1, 10**9)),
    ("1u", Fraction(1, 10**6)),
    ("0", Fraction(0)),
    ("0.0000000001", Fraction(1, 10**9)),   # finer than nano rounds up
    (3, Fraction(3)),
    (0.25, Fraction(1, 4)),
]


@pytest.mark.parametrize("text,expected", PARSE)
def test_parse(text, expected):
    assert quantity.parse(text) == expected


BAD = ["", "abc", "1Kb", "1KiB", "1.2.3", "1e", "--1", "1 Gi", "Gi", "1mm", ".", "1e3.5", True]


@pytest.mark.parametrize("text", BAD)
def test_parse_errors_are_value_errors_naming_the_input(text):
    with pytest.raises(ValueError) as exc:
        quantity.parse(text)
    assert repr(text) in str(exc.value)
    assert not quantity.is_valid(text)


def test_suffix_error_message():
    with pytest.raises(ValueError, match="unable to parse quantity's suffix"):
        quantity.parse("1mk")
    with pytest.raises(ValueError, match="quantities must match the regular expression"):
        quantity.parse("abc")


ROUNDING = [
    ("100m", 1, 100),
    ("1", 1, 1000),
    ("1500m", 2, 1500),
    ("0.5", 1, 500),
    ("1n", 1, 1),
    ("1Ki", 1024, 1024000),
    ("-1.5", -2, -1500),
    ("-1n", -1, -1),
    ("0", 0, 0),
]


@pytest.mark.parametrize("text,value,milli", ROUNDING)
def test_value_and_milli_value_round_away_from_zero(text, value, milli):
    assert quantity.value(text) == value
    assert quantity.milli_value(text) == milli


CANONICAL = [
    ("100m", "100m"),
    ("0.1", "100m"),
    ("1000m", "1"),
    ("1500m", "1500m"),
    ("1.5", "1500m"),
    ("1000", "1k"),
    ("1000000000", "1G"),
    ("1024Mi", "1Gi"),
    ("1536Mi", "1536Mi"),
    ("1.5Gi", "1536Mi"),
    ("0.5Gi", "512Mi"),
    ("1.5Ki", "1536"),       # not a whole number of Ki: plain bytes
    ("512Ki", "512Ki"),
    ("0.5Ki", "512"),        # below 1024 binary shows as decimal
    ("1e3", "1e3"),
    ("1E3", "1e3"),
    ("1200", "1200"),
    ("12e2", "1200"),
    ("0", "0"),
    ("0Gi", "0"),
    ("-1k", "-1k"),
    ("1u", "1u"),
    ("0.0000000001", "1n"),
    (2, "2"),
]


@pytest.mark.parametrize("text,expected", CANONICAL)
def test_canonical(text, expected):
    assert quantity.canonical(text) == expected


def test_canonical_round_trips():
    for text, _ in CANONICAL:
        c = quantity.canonical(text)
        assert quantity.parse(c) == quantity.parse(text)
        assert quantity.canonical(c) == c


def test_format_value_notations():
    assert quantity.format_value(Fraction(3, 2)) == "1500m"
    assert quantity.format_value(2 * 1024**2, quantity.BINARY_SI) == "2Mi"
    assert quantity.format_value(1000, quantity.DECIMAL_EXPONENT) == "1e3"
    assert quantity.format_value(Fraction(1, 3)) == "333333334n"  # rounded up to nano


def test_format_of():
    assert quantity.format_of("1Gi") == quantity.BINARY_SI
    assert quantity.format_of("1G") == quantity.DECIMAL_SI
    assert quantity.format_of("1e9") == quantity.DECIMAL_EXPONENT
    assert quantity.format_of(5) == quantity.DECIMAL_SI


def test_add_is_exact():
    assert quantity.add("100m", "200m", "0.7") == 1
    assert quantity.add("1Gi", "1Gi") == quantity.parse("2Gi")
    assert quantity.add() == 0


@pytest.mark.parametrize("text,expected", [
    ("1u", "1m"),
    ("1.0001", "1001m"),
    ("100m", "100m"),
    ("1000m", "1"),
    ("2048Mi", "2Gi"),
    ("-1u", "-1m"),
    ("1e-6", "1e-3"),
    (3, "3"),
])
def test_canonical_milli_rounds_up_to_thousandths(text, expected):
    assert quantity.canonical_milli(text) == expected
