"""Sizes and durations as numbers and as the human strings damo uses ("4 KiB", "5 s")."""

from __future__ import annotations

import math
import re

import numpy as np

from .errors import ConfigError

PAGE_SIZE = 4096
PAGE_SHIFT = 12

_SIZE_UNITS = {
    "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}
# Durations are kept in integer microseconds, like DAMON's attributes.
_TIME_UNITS = {
    "ns": 1e-3, "us": 1, "ms": 1_000, "s": 1_000_000,
    "m": 60_000_000, "min": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
}
_TOKEN = re.compile(r"\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)")


def _parse(text: str, units: dict, default_unit: str, field: str, kind: str) -> float:
    s = text.strip()
    pos, total, matched = 0, 0.0, False
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ConfigError(field, text, f"a {kind} such as '4 KiB' or '1 h 20 m'")
        number = float(m.group(1).replace(",", ""))
        unit = m.group(2).lower() or default_unit
        if unit not in units:
            raise ConfigError(field, text, f"a {kind} with a unit among {sorted(units)}")
        total += number * units[unit]
        pos, matched = m.end(), True
        while pos < len(s) and s[pos].isspace():
            pos += 1
    if not matched:
        raise ConfigError(field, text, f"a non-empty {kind}")
    return total


def finite_in(value, lo: float, hi: float) -> bool:
    """Is ``value`` a real number (not a bool) in [lo, hi]? Safe for ints too big for a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(value) and lo <= value <= hi
    except OverflowError:   # an int beyond 2**1024
        return False


def parse_size(value, field: str = "size") -> int:
    """Bytes from an int or a string like '128 MiB'; rejects negatives and fractions of a byte."""
    if isinstance(value, bool):
        raise ConfigError(field, value, "a size in bytes or a string such as '128 MiB'")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        f = _parse(value, _SIZE_UNITS, "b", field, "size")
        if f != int(f):
            raise ConfigError(field, value, "a whole number of bytes")
        n = int(f)
    else:
        raise ConfigError(field, value, "a size in bytes or a string such as '128 MiB'")
    if n < 0:
        raise ConfigError(field, value, "a size >= 0")
    return n


def parse_duration_us(value, field: str = "duration") -> int:
    """Integer microseconds from an int (taken as µs) or a string like '5 s' or '1 h 2 m'."""
    if isinstance(value, bool):
        raise ConfigError(field, value, "microseconds or a string such as '5 s'")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        n = round(_parse(value, _TIME_UNITS, "us", field, "duration"))
    else:
        raise ConfigError(field, value, "microseconds or a string such as '5 s'")
    if n < 0:
        raise ConfigError(field, value, "a duration >= 0")
    return n


def format_size(n: int) -> str:
    """Human size with binary units, as damo prints them ('4.000 KiB')."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.3f} {unit}"
    return f"{n} B"


def format_duration_us(us: int) -> str:
    """Human duration from microseconds ('1.500 s', '200 ms')."""
    if us >= 3_600_000_000:
        return f"{us / 3_600_000_000:.3f} h"
    if us >= 60_000_000:
        return f"{us / 60_000_000:.3f} m"
    if us >= 1_000_000:
        return f"{us / 1_000_000:.3f} s"
    if us >= 1_000:
        return f"{us / 1_000:.3f} ms"
    return f"{us} us"
