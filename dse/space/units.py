"""Complexity bands such as `360-400M`, `0.36-0.4G`, `360e6-400e6`, `-400M` or `360M-`."""
from __future__ import annotations

import math
import re

from ..errors import DseError

SCALE = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_NUM = r"(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([kKmMgGtT]?)"
_BAND = re.compile(rf"^\s*(?:{_NUM})?\s*-\s*(?:{_NUM})?\s*$")
_ONE = re.compile(rf"^\s*{_NUM}\s*$")

Band = tuple  # (lo | None, hi | None)


def _value(mant, exp, unit) -> float:
    """The number (inf when it is too large for a float: check_band refuses it, never an OverflowError)."""
    return float(f"{mant}e{exp or 0}") * SCALE[unit.upper()]


def parse_number(text: str) -> float:
    """`400M` -> 4e8."""
    m = _ONE.match(text)
    if not m:
        raise DseError(f"not a number with a unit (K, M, G, T): '{text}'")
    v = _value(*m.groups())
    if not math.isfinite(v):
        raise DseError(f"'{text}' is too large (not a finite number)")
    return v


def parse_band(text: str, what: str = "band") -> Band:
    """`lo-hi` with K/M/G/T units (a unit on hi alone applies to a bare lo); either end may be open."""
    m = _BAND.match(str(text))
    if not m:
        raise DseError(f"{what}: cannot parse '{text}': expected LO-HI with units K, M, G or T, e.g. 360-400M")
    lm, le, lu, hm, he, hu = m.groups()
    if lm is None and hm is None:
        raise DseError(f"{what}: '{text}' has no bounds")
    if lm is not None and not lu and not le and hu:
        lu = hu  # 360-400M means 360M-400M
    lo = _value(lm, le, lu) if lm is not None else None
    hi = _value(hm, he, hu) if hm is not None else None
    return check_band((lo, hi), what, text)


def check_band(band, what: str = "band", text=None) -> Band:
    """Validate a (lo, hi) tuple: numbers >= 0, not inverted, not empty."""
    try:
        lo, hi = band
    except (TypeError, ValueError):
        raise DseError(f"{what}: expected (lo, hi), got {band!r}") from None
    shown = text if text is not None else f"{lo}-{hi}"
    for v in (lo, hi):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise DseError(f"{what}: bounds must be non-negative numbers, got '{shown}'")
        if v is not None and not math.isfinite(v):
            raise DseError(f"{what}: bounds must be finite numbers, got '{shown}' (too large for a float)")
    if lo is not None and hi is not None:
        if lo > hi:
            raise DseError(f"{what}: inverted band '{shown}' (low > high)")
        if lo == hi:
            raise DseError(f"{what}: empty band '{shown}' (low == high)")
    return (lo, hi)


def fmt(x: float, digits: int = 3) -> str:
    """Human number: 3.97e8 -> 397.7M."""
    for unit, s in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= s:
            return f"{x / s:.{digits + 1}g}{unit}"
    return f"{x:.{digits + 1}g}"


def fmt_band(band: Band) -> str:
    lo, hi = band
    return f"{fmt(lo) if lo is not None else ''}-{fmt(hi) if hi is not None else ''}"
