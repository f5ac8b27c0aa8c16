"""Exact parsing and formatting of the unit strings damo's parameter specs use.

damo 3.4.3 writes and reads "4 KiB", "5 ms", "1 h 20 m", "50 %", "10 samples", "max"; a bare
number means the field's own unit (bytes, µs or ms, permil, bp, percent). We parse with
fractions so that nothing is rounded, and reject a value that is not a whole number of the
unit the kernel stores. Sizes use binary units only (damo's K, KB and KiB all mean 1024).
"""

from __future__ import annotations

import re
from fractions import Fraction

from ..errors import ConfigError
from .scheme import ULONG_MAX

SIZE_UNITS = {"B": 1}
for _i, _p in enumerate("KMGTPE", start=1):
    SIZE_UNITS.update({_p: 1 << (10 * _i), _p + "B": 1 << (10 * _i), _p + "iB": 1 << (10 * _i)})
TIME_UNITS_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
                 "h": 3600 * 10**9, "d": 86400 * 10**9}
_TOKEN = re.compile(r"\s*((?:\d[\d,]*)?\.?\d+(?:[eE][+-]?\d+)?)\s*([A-Za-z%_]*)")


def _tokens(text: str, field: str, kind: str) -> list[tuple[Fraction, str]]:
    out, pos, s = [], 0, text.strip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ConfigError(field, text, f"a {kind}")
        out.append((Fraction(m.group(1).replace(",", "")), m.group(2)))
        pos = m.end()
    if not out:
        raise ConfigError(field, text, f"a {kind}")
    return out


def _number(value, field: str, kind: str):
    """(Fraction, unit) of a JSON/YAML scalar; 'min'/'max' come back as their own strings."""
    if isinstance(value, bool) or value is None:
        raise ConfigError(field, value, f"a {kind}")
    if isinstance(value, int):
        return Fraction(value), ""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(field, value, f"a finite {kind}")
        return Fraction(value), ""
    if not isinstance(value, str):
        raise ConfigError(field, value, f"a {kind}")
    if value.strip() in ("min", "max"):
        return value.strip(), ""
    return None


def _whole(total: Fraction, text, field: str, unit: str, hi: int = ULONG_MAX) -> int:
    if total.denominator != 1 or not 0 <= total <= hi:
        raise ConfigError(field, text, f"a whole number of {unit} in [0, {hi}] (or 'max')")
    return int(total)


def parse_size(value, field: str) -> int:
    """Bytes from 123, '4 KiB', '1.5 GiB', 'min' or 'max' (ULONG_MAX)."""
    kind = "size such as '4 KiB' or 'max'"
    n = _number(value, field, kind)
    if n is None:
        total = Fraction(0)
        for num, unit in _tokens(value, field, kind):
            if (unit or "B") not in SIZE_UNITS:
                raise ConfigError(field, value, f"a size with a unit among {sorted(SIZE_UNITS)}")
            total += num * SIZE_UNITS[unit or "B"]
        return _whole(total, value, field, "bytes")
    if n[0] == "min":
        return 0
    if n[0] == "max":
        return ULONG_MAX
    return _whole(n[0], value, field, "bytes")


def parse_time(value, field: str, base: str = "us") -> int:
    """A duration in ``base`` units ('us' or 'ms') from a bare number of them, '5 ms',
    '1 h 20 m', 'min' or 'max' (ULONG_MAX)."""
    kind = "duration such as '5 ms' or '1 h 20 m'"
    n = _number(value, field, kind)
    if n is None:
        ns = Fraction(0)
        for num, unit in _tokens(value, field, kind):
            if unit and unit not in TIME_UNITS_NS:
                raise ConfigError(field, value, f"a duration with a unit among {list(TIME_UNITS_NS)}")
            ns += num * TIME_UNITS_NS[unit or base]
        return _whole(ns / TIME_UNITS_NS[base], value, field, base)
    if n[0] == "min":
        return 0
    if n[0] == "max":
        return ULONG_MAX
    return _whole(n[0], value, field, base)


def parse_ratio(value, field: str, scale: int, whole: bool = True):
    """A ratio in 1/``scale`` units (1000: permil, 10000: bp, 100: percent) from a bare number
    of them or 'N %'; 'max' is ULONG_MAX. ``whole`` demands an integer result."""
    kind = "ratio such as '50 %'"
    n = _number(value, field, kind)
    if n is None:
        toks = _tokens(value, field, kind)
        if len(toks) != 1 or toks[0][1] not in ("", "%"):
            raise ConfigError(field, value, f"a {kind} or a bare number of 1/{scale}")
        num, unit = toks[0]
        total = num * scale / 100 if unit == "%" else num
    elif n[0] == "min":
        return 0
    elif n[0] == "max":
        return ULONG_MAX
    else:
        total = n[0]
    if whole:
        return _whole(total, value, field, f"1/{scale}")
    if total < 0:
        raise ConfigError(field, value, "a ratio >= 0")
    return int(total) if total.denominator == 1 else float(total)


def parse_count(value, field: str, hi: int = ULONG_MAX) -> int:
    """A plain integer (JSON number or string, commas allowed), or 'max'."""
    n = _number(value, field, "number")
    if n is None:
        toks = _tokens(value, field, "number")
        if len(toks) != 1 or toks[0][1]:
            raise ConfigError(field, value, "a plain number")
        n = (toks[0][0], "")
    if n[0] == "min":
        return 0
    if n[0] == "max":
        return ULONG_MAX
    return _whole(n[0], value, field, "units", hi)


def parse_with_unit(value, field: str, units: tuple[str, ...]):
    """'<number> <unit>' with a unit among ``units``, for nr_accesses samples and age
    aggr_intervals; returns (int, unit) or None if ``value`` has none of those units."""
    if not isinstance(value, str):
        return None
    parts = value.split()
    if len(parts) != 2 or parts[1] not in units:
        return None
    return parse_count(parts[0], field), parts[1]


def _decimal(n: int, scale: int) -> str:
    """``n / scale`` (scale a power of ten) written exactly, without trailing zeros."""
    q, r = divmod(n, scale)
    if not r:
        return str(q)
    digits = len(str(scale)) - 1
    return f"{q}.{r:0{digits}d}".rstrip("0")


def format_size(n: int) -> str:
    """'max', or the largest binary unit that divides ``n`` exactly ('128 MiB', '4097 B')."""
    if n == ULONG_MAX:
        return "max"
    for unit in ("EiB", "PiB", "TiB", "GiB", "MiB", "KiB"):
        scale = SIZE_UNITS[unit]
        if n and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def format_time(n: int, base: str = "us") -> str:
    """'max', or the largest time unit that divides the duration exactly ('5 ms', '2 m')."""
    if n == ULONG_MAX:
        return "max"
    ns = n * TIME_UNITS_NS[base]
    for unit in ("d", "h", "m", "s", "ms", "us"):
        scale = TIME_UNITS_NS[unit]
        if ns and ns % scale == 0:
            return f"{ns // scale} {unit}"
    return f"0 {base}" if not ns else f"{ns} ns"


def format_ratio(n, scale: int) -> str:
    """A ratio in 1/``scale`` units as an exact percent string ('50 %', '0.1 %'); 'max' for
    ULONG_MAX. ``n`` may be a float percent (scale 100) too."""
    if n == ULONG_MAX:
        return "max"
    if isinstance(n, float):
        return f"{n!r} %"
    return _decimal(n * 100, scale) + " %" if scale > 100 else f"{n} %"
