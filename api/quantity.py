"""Resource quantities (``100m``, ``1Gi``, ``1e3``): exact parsing, rounding and canonical text.

Values are ``fractions.Fraction`` so arithmetic (sums of requests, comparisons with allocatable)
is exact. As in Kubernetes, precision finer than a nano unit is rounded up on parse, ``value`` and
``milli_value`` round away from zero, and the canonical text keeps the notation of the input
(binary ``Ki``.., decimal ``k``.., or exponent ``e3``) with the largest suffix that keeps the
mantissa whole.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from math import ceil

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_EXP = {v: k for k, v in _BINARY.items()}

FORMAT_MESSAGE = ("quantities must match the regular expression "
                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_NANO = Fraction(1, 10**9)


def _round_up_nano(v: Fraction) -> Fraction:
    """Round away from zero to a whole number of nano units, as Kubernetes does on parse."""
    scaled = v / _NANO
    if scaled.denominator == 1:
        return v
    whole = ceil(scaled) if v > 0 else -ceil(-scaled)
    return Fraction(whole) * _NANO


@lru_cache(maxsize=4096)
def _parse(s: str) -> tuple[Fraction, str]:
    if not isinstance(s, str) or not s:
        raise ValueError(f"{s!r}: {FORMAT_MESSAGE}")
    m = _NUMBER.match(s)
    assert m is not None  # the pattern accepts the empty prefix
    sign, whole, frac = m.group(1), m.group(2), m.group(3)
    if not whole and not frac:
        raise ValueError(f"{s!r}: {FORMAT_MESSAGE}")
    suffix = s[m.end():]
    number = Fraction(int(whole or "0"))
    if frac:
        number += Fraction(int(frac), 10 ** len(frac))
    if sign == "-":
        number = -number
    if suffix in _DECIMAL:
        fmt = DECIMAL_SI
        value = number * Fraction(10) ** _DECIMAL[suffix]
    elif suffix in _BINARY:
        fmt = BINARY_SI
        value = number * 1024 ** _BINARY[suffix]
    else:
        e = _EXPONENT.fullmatch(suffix)
        if e is None:
            if re.fullmatch(r"[eEinumkKMGTP]*[-+]?[0-9]*", suffix):
                raise ValueError(f"{s!r}: unable to parse quantity's suffix")
            raise ValueError(f"{s!r}: {FORMAT_MESSAGE}")
        exp = int(e.group(1))
        if abs(exp) > 100:
            raise ValueError(f"{s!r}: quantity is too large")
        fmt = DECIMAL_EXPONENT
        value = number * Fraction(10) ** exp
    return _round_up_nano(value), fmt


def parse(s: str | int | float) -> Fraction:
    """The exact value of a quantity string (ints and floats as sent in JSON are accepted too).

    Raises ``ValueError`` naming the input when it is not a quantity.
    """
    if isinstance(s, bool):
        raise ValueError(f"{s!r}: {FORMAT_MESSAGE}")
    if isinstance(s, int):
        return Fraction(s)
    if isinstance(s, float):
        return _round_up_nano(Fraction(s))
    return _parse(s)[0]


def format_of(s: str | int | float) -> str:
    """The notation of a quantity string: ``BinarySI``, ``DecimalSI`` or ``DecimalExponent``."""
    if isinstance(s, int | float):
        return DECIMAL_SI
    return _parse(s)[1]


def is_valid(s: object) -> bool:
    try:
        parse(s)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def _away_from_zero(v: Fraction) -> int:
    return ceil(v) if v >= 0 else -ceil(-v)


def value(q: str | int | float | Fraction) -> int:
    """The quantity in whole units, rounded away from zero (``100m`` -> 1)."""
    v = q if isinstance(q, Fraction) else parse(q)
    return _away_from_zero(v)


def milli_value(q: str | int | float | Fraction) -> int:
    """The quantity in thousandths, rounded away from zero (``0.5`` -> 500, ``1n`` -> 1)."""
    v = q if isinstance(q, Fraction) else parse(q)
    return _away_from_zero(v * 1000)


def format_value(v: Fraction | int, fmt: str = DECIMAL_SI) -> str:
    """Canonical text of a value in a notation (values finer than nano are rounded up first)."""
    v = _round_up_nano(Fraction(v))
    if v == 0:
        return "0"
    sign = "-" if v < 0 else ""
    a = -v if v < 0 else v
    if fmt == BINARY_SI:
        if a < 1024 or a.denominator != 1:
            fmt = DECIMAL_SI
        else:
            n, exp = a.numerator, 0
            while exp < 6 and n % 1024 == 0:
                n //= 1024
                exp += 1
            return f"{sign}{n}{_BINARY_BY_EXP.get(exp, '')}"
    # Decimal notations: an integer mantissa times 10**exp, exp a multiple of 3 in [-9, 18].
    n = int(a * 10**9)
    exp = -9
    while exp < 18 and n % 1000 == 0:
        n //= 1000
        exp += 3
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{n}" + (f"e{exp}" if exp else "")
    return f"{sign}{n}{_DECIMAL_BY_EXP[exp]}"


@lru_cache(maxsize=4096)
def _canonical(s: str) -> str:
    v, fmt = _parse(s)
    return format_value(v, fmt)


def canonical(s: str | int | float) -> str:
    """The text Kubernetes would store for a quantity (``1000m`` -> ``1``, ``1024Mi`` -> ``1Gi``)."""
    if isinstance(s, str):
        return _canonical(s)
    return format_value(parse(s), DECIMAL_SI)


def canonical_milli(s: str | int | float) -> str:
    """``canonical`` after rounding away from zero to thousandths, as the server stores the
    quantities of resource lists (``1u`` -> ``1m``, ``1.0001`` -> ``1001m``)."""
    v = parse(s)
    if (v * 1000).denominator != 1:
        v = Fraction(_away_from_zero(v * 1000), 1000)
    return format_value(v, format_of(s))


def add(*qs: str | int | float | Fraction) -> Fraction:
    """The exact sum of quantities."""
    total = Fraction(0)
    for q in qs:
        total += q if isinstance(q, Fraction) else parse(q)
    return total
