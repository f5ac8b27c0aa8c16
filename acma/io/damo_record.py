"""DAMON monitoring records in the file formats of damo, the DAMON user-space tool.

A record holds, for each monitored target, a series of snapshots. A snapshot is one aggregation
window: the regions DAMON tracked, how many of the window's samples found each region accessed
(``nr_accesses``) and for how many aggregation intervals that rate has held (``age``).

This module reads the three text-like formats damo reads (zlib-compressed JSON, plain JSON and
``perf script`` text of the ``damon:damon_aggregated`` tracepoint) and writes the compressed
JSON (damo's default) and the perf-script text. The format is detected from the content, never
from the name. ``docs/damo-records.md`` describes the schema and the traps handled here.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ..errors import ConfigError, FormatError
from .atomic import write_bytes_atomic

__all__ = [
    "Intervals",
    "Snapshot",
    "TargetRecord",
    "DamonRecord",
    "read_record",
    "parse_record_bytes",
    "detect_format",
    "write_record",
    "write_perf_script",
    "record_to_bytes",
    "perf_script_text",
    "FORMAT_JSON_COMPRESSED",
    "FORMAT_JSON",
    "FORMAT_PERF_SCRIPT",
]

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
NS_PER_US = 1000

FORMAT_JSON_COMPRESSED = "json_compressed"
FORMAT_JSON = "json"
FORMAT_PERF_SCRIPT = "perf_script"

# The key under which acma keeps a target's pid; damo ignores keys it does not know.
PID_KEY = "acma_pid"
# damo's ``validate`` wants at least this many regions per snapshot (``--nr_regions 3 1200``).
DAMO_VALIDATE_MIN_REGIONS = 3


# --------------------------------------------------------------------------- data model


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


@dataclass(frozen=True)
class Intervals:
    """DAMON's monitoring intervals, in microseconds."""

    sample_us: int = 5_000
    aggr_us: int = 100_000
    ops_update_us: int = 1_000_000

    def __post_init__(self):
        for name in ("sample_us", "aggr_us", "ops_update_us"):
            v = getattr(self, name)
            if not _is_int(v) or v < 0 or v > U64_MAX:
                raise ConfigError(f"intervals.{name}", v, "an integer number of microseconds >= 0")
            object.__setattr__(self, name, int(v))
        if self.sample_us == 0:
            raise ConfigError("intervals.sample_us", 0, "a sampling interval > 0 us")
        if self.aggr_us == 0:
            raise ConfigError("intervals.aggr_us", 0, "an aggregation interval > 0 us")

    @property
    def max_nr_accesses(self) -> float:
        """The number of samples in one aggregation window (damo's 100 %)."""
        return self.aggr_us / self.sample_us


def _column(name: str, values, dtype, limit: int) -> np.ndarray:
    """``values`` as a read-only 1-D array of ``dtype``; ConfigError if any value does not fit."""
    try:
        arr = np.asarray(values)
        if arr.dtype.kind == "f" and not isinstance(values, np.ndarray):
            # numpy turns lists mixing ints beyond 2^63 with small ones into floats: look again
            arr = np.asarray(values, dtype=object)
    except (ValueError, OverflowError, TypeError) as e:
        raise ConfigError(name, type(values).__name__, f"a 1-D array of integers ({e})") from None
    if arr.ndim != 1:
        raise ConfigError(name, f"array of shape {arr.shape}", "a 1-D array")
    if arr.size == 0:
        out = np.empty(0, dtype)
    elif arr.dtype == dtype:
        out = arr if not arr.flags.writeable else arr.copy()
    else:
        if arr.dtype.kind == "O":
            # Python ints beyond int64: check them one by one.
            items = arr.tolist()
            if not all(_is_int(v) for v in items):
                raise ConfigError(name, "non-integer values", f"integers in [0, {limit}]")
            lo, hi = min(items), max(items)
        elif arr.dtype.kind in "iu":
            lo, hi = int(arr.min()), int(arr.max())
        else:
            raise ConfigError(name, f"array of dtype {arr.dtype}", f"integers in [0, {limit}]")
        if lo < 0 or hi > limit:
            bad = lo if lo < 0 else hi
            raise ConfigError(name, bad, f"integers in [0, {limit}]")
        out = np.array(items if arr.dtype.kind == "O" else arr, dtype=dtype)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One aggregation window of one target.

    ``start_us``/``end_us`` bound the window (``end_us`` is when the snapshot was taken).
    ``start``/``end`` (uint64) are the regions' address ranges ``[start, end)``, sorted and
    non-overlapping; ``nr_accesses`` (uint32) counts the window's samples that found a region
    accessed; ``age`` (uint32) is in aggregation intervals. ``sz_filter_passed`` (uint64, bytes
    of each region that passed the DAMOS filters) is optional.

    ``times_ns`` keeps the window in nanoseconds when a file gave it more precisely than whole
    microseconds (damo and perf record nanoseconds); ``start_us``/``end_us`` are then those times
    divided by 1000, rounded down. Equality compares the nanosecond times and the arrays.
    """

    start_us: int
    end_us: int
    start: np.ndarray
    end: np.ndarray
    nr_accesses: np.ndarray
    age: np.ndarray
    sz_filter_passed: np.ndarray | None = None
    times_ns: tuple[int, int] | None = None

    def __post_init__(self):
        for name in ("start_us", "end_us"):
            v = getattr(self, name)
            if not _is_int(v) or v < 0 or v > U64_MAX // NS_PER_US:
                raise ConfigError(f"snapshot.{name}", v, "an integer time in microseconds >= 0")
            object.__setattr__(self, name, int(v))
        if self.end_us < self.start_us:
            raise ConfigError("snapshot.end_us", self.end_us, f"a time >= start_us ({self.start_us})")
        if self.times_ns is not None:
            t = self.times_ns
            if (not isinstance(t, tuple) or len(t) != 2 or not all(_is_int(x) for x in t)
                    or not 0 <= t[0] <= t[1] <= U64_MAX):
                raise ConfigError("snapshot.times_ns", t, "None or a pair (start_ns, end_ns), 0 <= start <= end")
            t = (int(t[0]), int(t[1]))
            if (t[0] // NS_PER_US, t[1] // NS_PER_US) != (self.start_us, self.end_us):
                raise ConfigError("snapshot.times_ns", t,
                                  f"nanosecond times that round down to ({self.start_us}, {self.end_us}) us")
            object.__setattr__(self, "times_ns", t)
        start = _column("snapshot.start", self.start, np.uint64, U64_MAX)
        end = _column("snapshot.end", self.end, np.uint64, U64_MAX)
        nr = _column("snapshot.nr_accesses", self.nr_accesses, np.uint32, U32_MAX)
        age = _column("snapshot.age", self.age, np.uint32, U32_MAX)
        n = len(start)
        for name, col in (("end", end), ("nr_accesses", nr), ("age", age)):
            if len(col) != n:
                raise ConfigError(f"snapshot.{name}", f"{len(col)} values", f"{n} values, one per region")
        if n:
            bad = np.flatnonzero(end <= start)
            if bad.size:
                i = int(bad[0])
                raise ConfigError(f"snapshot.regions[{i}]", (int(start[i]), int(end[i])), "a region with end > start")
            bad = np.flatnonzero(start[1:] < end[:-1])
            if bad.size:
                i = int(bad[0]) + 1
                raise ConfigError(f"snapshot.regions[{i}]", (int(start[i]), int(end[i])),
                                  f"regions sorted by address and not overlapping (previous ends at {int(end[i - 1])})")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "nr_accesses", nr)
        object.__setattr__(self, "age", age)
        if self.sz_filter_passed is not None and n == 0:
            object.__setattr__(self, "sz_filter_passed", None)  # nothing to tell apart in a file
        elif self.sz_filter_passed is not None:
            sfp = _column("snapshot.sz_filter_passed", self.sz_filter_passed, np.uint64, U64_MAX)
            if len(sfp) != n:
                raise ConfigError("snapshot.sz_filter_passed", f"{len(sfp)} values", f"{n} values, one per region")
            if n:
                bad = np.flatnonzero(sfp > end - start)
                if bad.size:
                    i = int(bad[0])
                    raise ConfigError(f"snapshot.sz_filter_passed[{i}]", int(sfp[i]), "at most the region's size")
            object.__setattr__(self, "sz_filter_passed", sfp)

    __hash__ = None  # type: ignore[assignment]  (arrays are not hashable)

    def __eq__(self, other):
        if not isinstance(other, Snapshot):
            return NotImplemented
        if (self.start_ns, self.end_ns) != (other.start_ns, other.end_ns):
            return False
        for name in ("start", "end", "nr_accesses", "age"):
            if not np.array_equal(getattr(self, name), getattr(other, name)):
                return False
        a, b = self.sz_filter_passed, other.sz_filter_passed
        if (a is None) != (b is None):
            return False
        return a is None or bool(np.array_equal(a, b))

    @classmethod
    def from_regions(cls, start_us: int, end_us: int, regions: Iterable[tuple[int, int, int, int]],
                     sz_filter_passed=None) -> Snapshot:
        """A snapshot from ``(start, end, nr_accesses, age)`` tuples."""
        rows = [tuple(r) for r in regions]
        for i, r in enumerate(rows):
            if len(r) != 4:
                raise ConfigError(f"snapshot.regions[{i}]", r, "a tuple (start, end, nr_accesses, age)")
        cols = list(zip(*rows)) if rows else [(), (), (), ()]
        return cls(start_us, end_us, *(list(c) for c in cols), sz_filter_passed=sz_filter_passed)

    @property
    def start_ns(self) -> int:
        return self.times_ns[0] if self.times_ns is not None else self.start_us * NS_PER_US

    @property
    def end_ns(self) -> int:
        return self.times_ns[1] if self.times_ns is not None else self.end_us * NS_PER_US

    @property
    def nr_regions(self) -> int:
        return len(self.start)

    @property
    def sizes(self) -> np.ndarray:
        return self.end - self.start

    @property
    def total_bytes(self) -> int:
        return int(self.sizes.sum(dtype=np.uint64)) if self.nr_regions else 0

    def regions(self) -> list[tuple[int, int, int, int]]:
        """The regions as ``(start, end, nr_accesses, age)`` tuples of Python ints."""
        return list(zip(self.start.tolist(), self.end.tolist(), self.nr_accesses.tolist(), self.age.tolist()))


@dataclass
class TargetRecord:
    """The snapshots of one monitoring target, in time order.

    ``target_id`` is DAMON's id for the target (damo files may hold ``null``, read as None);
    ``pid`` is the monitored process, or None (physical address space, or unknown).
    """

    target_id: int | None
    pid: int | None = None
    snapshots: list[Snapshot] = field(default_factory=list)

    def __post_init__(self):
        self.validate()

    def validate(self, where: str = "target") -> None:
        if self.target_id is not None:
            if not _is_int(self.target_id) or self.target_id < 0:
                raise ConfigError(f"{where}.target_id", self.target_id, "an integer >= 0 or None")
            self.target_id = int(self.target_id)
        if self.pid is not None:
            if not _is_int(self.pid) or self.pid < 0:
                raise ConfigError(f"{where}.pid", self.pid, "an integer >= 0 or None")
            self.pid = int(self.pid)
        if not isinstance(self.snapshots, list):
            raise ConfigError(f"{where}.snapshots", type(self.snapshots).__name__, "a list of Snapshot")
        prev_end = None
        for i, s in enumerate(self.snapshots):
            if not isinstance(s, Snapshot):
                raise ConfigError(f"{where}.snapshots[{i}]", type(s).__name__, "a Snapshot")
            if prev_end is not None and s.start_ns < prev_end:
                raise ConfigError(f"{where}.snapshots[{i}].start_us", s.start_us,
                                  f"snapshots in time order, each starting no earlier than the previous "
                                  f"one ended ({prev_end / NS_PER_US:g} us)")
            prev_end = s.end_ns


@dataclass
class DamonRecord:
    """A whole record: the monitoring intervals (None if unknown) and one entry per target."""

    intervals: Intervals | None = None
    targets: list[TargetRecord] = field(default_factory=list)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if self.intervals is not None and not isinstance(self.intervals, Intervals):
            raise ConfigError("record.intervals", type(self.intervals).__name__, "an Intervals or None")
        if not isinstance(self.targets, list):
            raise ConfigError("record.targets", type(self.targets).__name__, "a list of TargetRecord")
        seen = set()
        for i, t in enumerate(self.targets):
            if not isinstance(t, TargetRecord):
                raise ConfigError(f"record.targets[{i}]", type(t).__name__, "a TargetRecord")
            t.validate(f"record.targets[{i}]")
            if t.target_id in seen:
                raise ConfigError(f"record.targets[{i}].target_id", t.target_id, "target ids unique in a record")
            seen.add(t.target_id)

    # ----------------------------------------------------------------- damo's dict schema

    def to_damo(self, min_regions: int = 0) -> list[dict]:
        """The record as damo's JSON schema: a list with one dict per target.

        Numbers are plain integers (times in ns). ``nr_accesses`` carries both ``samples`` and
        ``percent``, ``age`` both ``aggr_intervals`` and ``usec``, when the intervals are known
        (``percent``/``usec`` are null otherwise). Snapshots with fewer than ``min_regions``
        regions get their largest regions split in two (same rate and age) until they have
        enough, which changes no report but the region count.
        """
        self.validate()
        iv = self.intervals
        iv_kv = None
        if iv is not None:
            iv_kv = {"sample_us": iv.sample_us, "aggr_us": iv.aggr_us, "ops_update_us": iv.ops_update_us}
        out = []
        for t in self.targets:
            rec: dict[str, Any] = {
                "kdamond_idx": 0,
                "context_idx": 0,
                "intervals": dict(iv_kv) if iv_kv is not None else None,
                "scheme_idx": None,
                "target_id": t.target_id,
                "scheme_filters": [],
                "snapshots": [_snapshot_to_damo(_with_min_regions(s, min_regions), iv) for s in t.snapshots],
                "data_source": "unknown",
            }
            if t.pid is not None:
                rec[PID_KEY] = int(t.pid)
            out.append(rec)
        return out

    @classmethod
    def from_damo(cls, obj, source: str = "<damo record>") -> DamonRecord:
        """Parse damo's JSON schema (as loaded by ``json.loads``); FormatError names the bad key."""
        return _Parser(source).record(obj)


def _snapshot_to_damo(s: Snapshot, iv: Intervals | None) -> dict:
    starts, ends = s.start.tolist(), s.end.tolist()
    nrs, ages = s.nr_accesses.tolist(), s.age.tolist()
    if iv is not None:
        max_nr = iv.max_nr_accesses
        pcts = [int(n * 100.0 / max_nr) for n in nrs]
        usecs = [a * iv.aggr_us for a in ages]
    else:
        pcts = usecs = [None] * len(nrs)
    regions = [
        {"start": a, "end": b, "nr_accesses": {"samples": n, "percent": p},
         "age": {"usec": u, "aggr_intervals": g}}
        for a, b, n, p, u, g in zip(starts, ends, nrs, pcts, usecs, ages)
    ]
    if s.sz_filter_passed is not None:
        for r, v in zip(regions, s.sz_filter_passed.tolist()):
            r["sz_filter_passed"] = v
    return {"start_time": s.start_ns, "end_time": s.end_ns, "regions": regions, "total_bytes": s.total_bytes}


def _with_min_regions(s: Snapshot, min_regions: int) -> Snapshot:
    """``s`` with its largest regions halved until it has ``min_regions`` regions (if possible)."""
    if not _is_int(min_regions) or min_regions < 0:
        raise ConfigError("min_regions", min_regions, "an integer >= 0")
    if s.nr_regions >= min_regions or s.nr_regions == 0:
        return s
    rows = [list(r) for r in s.regions()]
    sfp = s.sz_filter_passed.tolist() if s.sz_filter_passed is not None else None
    while len(rows) < min_regions:
        i = max(range(len(rows)), key=lambda k: rows[k][1] - rows[k][0])
        a, b, nr, age = rows[i]
        size = b - a
        if size < 2:
            break
        half = size // 2
        if size >= 2 * 4096:
            half -= half % 4096  # keep page alignment where there are pages to keep
        mid = a + half
        rows[i:i + 1] = [[a, mid, nr, age], [mid, b, nr, age]]
        if sfp is not None:
            # Split the filter-passed bytes in proportion, the left part rounded down.
            left = sfp[i] * (mid - a) // size
            sfp[i:i + 1] = [left, sfp[i] - left]
    if len(rows) == s.nr_regions:
        return s
    cols = list(zip(*rows))
    return Snapshot(s.start_us, s.end_us, *(list(c) for c in cols), sz_filter_passed=sfp, times_ns=s.times_ns)


# --------------------------------------------------------------------------- numbers in damo files

_SIZE_UNITS = {"b": 1}
for _i, _p in enumerate("kmgtpe", start=1):
    for _suffix in (_p, _p + "b", _p + "ib"):
        _SIZE_UNITS[_suffix] = 1 << (10 * _i)
_TIME_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000, "d": 86_400_000_000_000}
_NUMBER = r"[-+]?(?:[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_QUANTITY = re.compile(rf"\s*({_NUMBER})\s*([A-Za-z%]*)\s*")


def _q(v) -> str:
    """A value quoted for an error message, cut short."""
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


class _Bad(Exception):
    """A value is wrong; the parser adds where it was."""


def _to_number(text: str) -> int | float:
    t = text.replace(",", "")
    if re.fullmatch(r"[-+]?[0-9]+", t):
        return int(t)
    v = float(t)
    if not math.isfinite(v):
        raise _Bad(f"{_q(text)} is not a finite number")
    return v


def _quantities(text: str) -> list[tuple[int | float, str]]:
    """``'1 h 23 m 20 s'`` -> [(1, 'h'), (23, 'm'), (20, 's')]; _Bad if it is not of that shape."""
    out, pos = [], 0
    while pos < len(text):
        m = _QUANTITY.match(text, pos)
        if not m or m.end() == pos:
            raise _Bad(f"cannot read a number in {_q(text)}")
        out.append((_to_number(m.group(1)), m.group(2)))
        pos = m.end()
    if not out:
        raise _Bad("empty string where a number was expected")
    return out


def _integral(v: int | float, what: str) -> int:
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            raise _Bad(f"{what} {_q(v)} is not a whole number")
        return int(v)
    return v


def _plain_number(v) -> int | float:
    """A JSON number or a damo number string ('4,096', '1.5', 'max', 'min')."""
    if isinstance(v, bool) or v is None:
        raise _Bad(f"expected a number, got {json.dumps(v)}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _Bad(f"{_q(v)} is not a finite number")
        return v
    if isinstance(v, str):
        s = v.strip()
        if s == "max":
            return U64_MAX
        if s == "min":
            return 0
        q = _quantities(s)
        if len(q) != 1 or q[0][1]:
            raise _Bad(f"expected a plain number, got {_q(v)}")
        return q[0][0]
    raise _Bad(f"expected a number, got a {type(v).__name__}")


def _count(v) -> int:
    """An integer count (samples, aggregation intervals, target ids)."""
    return _integral(_plain_number(v), "count")


def _bytes(v) -> int:
    """A size or address: a number, 'max', or a number with a binary unit ('4 KiB', '4K')."""
    if isinstance(v, str) and v.strip() not in ("max", "min"):
        q = _quantities(v.strip())
        if len(q) == 1:
            num, unit = q[0]
            scale = _SIZE_UNITS.get(unit.lower(), None) if unit else 1
            if scale is None:
                raise _Bad(f"unknown size unit {_q(unit)} in {_q(v)}")
            return min(U64_MAX, _integral(num * scale if scale != 1 else num, "size"))
        raise _Bad(f"expected a size, got {_q(v)}")
    return _integral(_plain_number(v), "size")


def _time(v, bare_unit_ns: int) -> int:
    """A duration in ns from a number (in the field's unit) or strings like '100 ms', '1 h 2 m'."""
    if isinstance(v, str) and v.strip() not in ("max", "min"):
        total = 0.0
        exact = 0
        for num, unit in _quantities(v.strip()):
            scale = _TIME_NS.get(unit.lower()) if unit else bare_unit_ns
            if scale is None:
                raise _Bad(f"unknown time unit {_q(unit)} in {_q(v)}")
            if isinstance(num, int):
                exact += num * scale
            else:
                total += num * scale
        return exact + round(total)
    n = _plain_number(v)
    if isinstance(n, float):
        return round(n * bare_unit_ns)
    return n * bare_unit_ns


def _percent(v) -> float:
    if isinstance(v, str):
        s = v.strip()
        if s.endswith("%"):
            s = s[:-1]
        return float(_plain_number(s))
    return float(_plain_number(v))


# --------------------------------------------------------------------------- JSON schema parser


class _Parser:
    """Walks damo's JSON schema, keeping the path for error messages."""

    def __init__(self, source: str, prefix: str = ""):
        self.source = source
        self.prefix = prefix

    def error(self, where: str, problem: str) -> FormatError:
        return FormatError(self.source, f"{self.prefix}{where}", problem)

    def get(self, obj: dict, key: str, where: str, required: bool = True):
        if key not in obj:
            if required:
                raise self.error(where, f"missing key {key!r} (damo needs it)")
            return None
        return obj[key]

    def value(self, fn, v, where: str, *args):
        try:
            return fn(v, *args)
        except _Bad as e:
            raise self.error(where, str(e)) from None
        except (ValueError, OverflowError) as e:
            raise self.error(where, f"bad number {_q(v)} ({e})") from None

    def intervals(self, obj, where: str) -> Intervals | None:
        if obj is None:
            return None
        if not isinstance(obj, dict):
            raise self.error(where, f"intervals must be an object or null, not {type(obj).__name__}")
        vals = {}
        for key in ("sample_us", "aggr_us", "ops_update_us"):
            v = self.value(_time, self.get(obj, key, where), f"{where}.{key}", NS_PER_US)
            if v < 0:
                raise self.error(f"{where}.{key}", f"negative interval {v} ns")
            vals[key] = v // NS_PER_US
        try:
            return Intervals(**vals)
        except ConfigError as e:
            raise self.error(where, str(e)) from None

    def record(self, obj) -> DamonRecord:
        if isinstance(obj, dict):
            if "damo_record_ver" in obj or "damo_records" in obj:
                raise self.error("top level", "the damo_record_ver wrapper is not supported "
                                              "(damo 3.4 cannot read it either); expected a list of records")
            raise self.error("top level", "expected a JSON list of per-target records, got an object")
        if not isinstance(obj, list):
            raise self.error("top level", f"expected a JSON list of per-target records, got {type(obj).__name__}")
        intervals_seen: list[tuple[str, Intervals | None]] = []
        targets: list[TargetRecord] = []
        ids: dict = {}
        for i, rec in enumerate(obj):
            w = f"records[{i}]"
            if not isinstance(rec, dict):
                raise self.error(w, f"expected an object, got {type(rec).__name__}")
            if rec.get("scheme_idx") is not None:
                raise self.error(f"{w}.scheme_idx", "DAMOS tried-regions records are not supported, "
                                                    "only monitoring records (scheme_idx null)")
            iv = self.intervals(rec.get("intervals"), f"{w}.intervals")
            if intervals_seen and intervals_seen[0][1] != iv:
                raise self.error(f"{w}.intervals", f"differ from {intervals_seen[0][0]}.intervals; "
                                                   "acma keeps one set of intervals per record")
            intervals_seen.append((w, iv))
            tid = self.get(rec, "target_id", w)
            if tid is not None:
                tid = self.value(_count, tid, f"{w}.target_id")
                if tid < 0:
                    raise self.error(f"{w}.target_id", f"negative target id {tid}")
            if tid in ids:
                raise self.error(f"{w}.target_id", f"target id {tid} already used by {ids[tid]}")
            ids[tid] = w
            pid = rec.get(PID_KEY)
            if pid is not None:
                pid = self.value(_count, pid, f"{w}.{PID_KEY}")
                if pid < 0:
                    raise self.error(f"{w}.{PID_KEY}", f"negative pid {pid}")
            snaps = self.get(rec, "snapshots", w)
            if not isinstance(snaps, list):
                raise self.error(f"{w}.snapshots", f"expected a list, got {type(snaps).__name__}")
            parsed = [self.snapshot(s, f"{w}.snapshots[{j}]", iv) for j, s in enumerate(snaps)]
            # damo's perf-script writer marks a lone snapshot with a fake one; drop it here too.
            if len(parsed) >= 2 and parsed[-1] is _FAKE:
                parsed.pop()
            for j, s in enumerate(parsed):
                if s is _FAKE:
                    raise self.error(f"{w}.snapshots[{j}]", "a fake snapshot (region 0-0, nr_accesses -1) "
                                                            "is only allowed last, after a real one")
            try:
                targets.append(TargetRecord(tid, pid, parsed))
            except ConfigError as e:
                raise self.error(w, str(e)) from None
        return DamonRecord(intervals_seen[0][1] if intervals_seen else None, targets)

    def snapshot(self, obj, w: str, iv: Intervals | None):
        if not isinstance(obj, dict):
            raise self.error(w, f"expected an object, got {type(obj).__name__}")
        t0 = self.value(_time, self.get(obj, "start_time", w), f"{w}.start_time", 1)
        t1 = self.value(_time, self.get(obj, "end_time", w), f"{w}.end_time", 1)
        regions = self.get(obj, "regions", w)
        if not isinstance(regions, list):
            raise self.error(f"{w}.regions", f"expected a list, got {type(regions).__name__}")
        n = len(regions)
        starts, ends, nrs, ages = [0] * n, [0] * n, [0] * n, [0] * n
        sfp: list[int] | None = None
        for k, r in enumerate(regions):
            rw = f"{w}.regions[{k}]"
            if not isinstance(r, dict):
                raise self.error(rw, f"expected an object, got {type(r).__name__}")
            a = self.get(r, "start", rw)
            b = self.get(r, "end", rw)
            starts[k] = a if type(a) is int else self.value(_bytes, a, f"{rw}.start")
            ends[k] = b if type(b) is int else self.value(_bytes, b, f"{rw}.end")
            nrs[k] = self.nr_accesses(self.get(r, "nr_accesses", rw), f"{rw}.nr_accesses", iv)
            ages[k] = self.age(self.get(r, "age", rw), f"{rw}.age", iv)
            if "sz_filter_passed" in r and r["sz_filter_passed"] is not None:
                if sfp is None:
                    sfp = [0] * n
                sfp[k] = self.value(_bytes, r["sz_filter_passed"], f"{rw}.sz_filter_passed")
        if n == 1 and starts[0] == 0 and ends[0] == 0 and nrs[0] == -1 and ages[0] == -1:
            return _FAKE
        if t0 < 0 or t1 < t0:
            raise self.error(w, f"bad window [{t0}, {t1}) ns: need 0 <= start_time <= end_time")
        return _build_snapshot(self, w, t0, t1, starts, ends, nrs, ages, sfp)

    def nr_accesses(self, obj, w: str, iv: Intervals | None) -> int:
        if not isinstance(obj, dict):
            raise self.error(w, f"expected an object with 'samples' or 'percent', got {type(obj).__name__}")
        samples = obj.get("samples")
        if samples is not None:
            return samples if type(samples) is int else self.value(_count, samples, f"{w}.samples")
        pct = obj.get("percent")
        if pct is None:
            raise self.error(w, "neither 'samples' nor 'percent' is set")
        if iv is None:
            raise self.error(f"{w}.percent", "percent without samples needs the record's intervals")
        p = self.value(_percent, pct, f"{w}.percent")
        return int(p * iv.max_nr_accesses / 100)

    def age(self, obj, w: str, iv: Intervals | None) -> int:
        if not isinstance(obj, dict):
            raise self.error(w, f"expected an object with 'usec' and 'aggr_intervals', got {type(obj).__name__}")
        for key in ("usec", "aggr_intervals"):
            if key not in obj:
                raise self.error(w, f"missing key {key!r} (damo needs both 'usec' and 'aggr_intervals')")
        ai = obj["aggr_intervals"]
        if ai is not None:
            return ai if type(ai) is int else self.value(_count, ai, f"{w}.aggr_intervals")
        us = obj["usec"]
        if us is not None and iv is not None:
            usec = self.value(_time, us, f"{w}.usec", NS_PER_US) // NS_PER_US
            return usec // iv.aggr_us if usec >= 0 else -1
        return 0  # unknown age


_FAKE = object()  # marker for damo's fake snapshot


def _build_snapshot(p, where: str, t0_ns: int, t1_ns: int, starts, ends, nrs, ages, sfp) -> Snapshot:
    """A Snapshot from parsed columns; turns the model's ConfigError into FormatError at ``where``."""
    exact = None if (t0_ns % NS_PER_US == 0 and t1_ns % NS_PER_US == 0) else (t0_ns, t1_ns)
    try:
        return Snapshot(t0_ns // NS_PER_US, t1_ns // NS_PER_US, starts, ends, nrs, ages,
                        sz_filter_passed=sfp, times_ns=exact)
    except ConfigError as e:
        field_name = e.field.replace("snapshot.", "")
        raise p.error(f"{where}.{field_name}", f"got {e.value!r}; need {e.allowed}") from None


# --------------------------------------------------------------------------- perf-script text

_EV_AGGREGATED = ("damon:damon_aggregated:", "damon_aggregated:")
_EV_BEFORE_APPLY = ("damon:damos_before_apply:", "damos_before_apply:")
_EV_INTERVALS_TUNE = ("damon:damon_monitor_intervals_tune:", "damon_monitor_intervals_tune:")
_EVENTS = set(_EV_AGGREGATED + _EV_BEFORE_APPLY + _EV_INTERVALS_TUNE)
# At most 30 digits: enough for any 64-bit value, and far from Python's int-parsing limits.
_TIMESTAMP = re.compile(r"([0-9]{1,30})(?:\.([0-9]*))?:")
_UINT = re.compile(r"[0-9]{1,30}")
_SINT = re.compile(r"-?[0-9]{1,30}")
_RANGE = re.compile(r"([0-9]{1,30})-([0-9]{1,30}):")


class _PerfParser:
    def __init__(self, source: str):
        self.source = source

    def error(self, line_no: int, problem: str) -> FormatError:
        return FormatError(self.source, f"line {line_no}", problem)

    def error_at(self, where: str, problem: str) -> FormatError:
        return FormatError(self.source, where, problem)

    def kv(self, token: str, key: str, line_no: int) -> int:
        if not token.startswith(key + "="):
            raise self.error(line_no, f"expected '{key}=<number>', got {_q(token)}")
        v = token[len(key) + 1:]
        if not _UINT.fullmatch(v):
            raise self.error(line_no, f"{key} must be a non-negative integer, got {v[:40]!r}")
        return int(v)

    def parse(self, text: str, intervals: Intervals | None = None) -> DamonRecord:
        # per target: completed snapshots as [end_ns, regions, first_line], pending snapshot
        done: dict[int, list] = {}
        pending: dict[int, list] = {}
        order: list[int] = []
        nr_events = 0
        for line_no, line in enumerate(text.split("\n"), start=1):
            tokens = line.split()
            ev_idx = next((i for i, t in enumerate(tokens) if t in _EVENTS), None)
            if ev_idx is None:
                continue  # headers and other events
            nr_events += 1
            event = tokens[ev_idx]
            if ev_idx == 0:
                raise self.error(line_no, f"no timestamp before the event {event!r}")
            m = _TIMESTAMP.fullmatch(tokens[ev_idx - 1])
            if not m:
                raise self.error(line_no, f"expected a timestamp '<seconds>.<fraction>:' before {event!r}, "
                                          f"got {_q(tokens[ev_idx - 1])}")
            frac = (m.group(2) or "")[:9]
            t_ns = int(m.group(1)) * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
            fields = tokens[ev_idx + 1:]
            if event in _EV_INTERVALS_TUNE:
                if len(fields) != 1:
                    raise self.error(line_no, "damon_monitor_intervals_tune wants 'sample_us=N', "
                                              f"got {_q(' '.join(fields))}")
                self.kv(fields[0], "sample_us", line_no)
                continue
            if event in _EV_AGGREGATED:
                if len(fields) not in (4, 5):
                    raise self.error(line_no, "damon_aggregated wants 'target_id=N nr_regions=N "
                                              f"START-END: NR_ACCESSES [AGE]', got {len(fields)} fields")
                tid = self.kv(fields[0], "target_id", line_no)
                nr_regions = self.kv(fields[1], "nr_regions", line_no)
                rest = fields[2:]
            else:
                if len(fields) != 7:
                    raise self.error(line_no, "damos_before_apply wants 'ctx_idx=N scheme_idx=N target_idx=N "
                                              f"nr_regions=N START-END: NR_ACCESSES AGE', got {len(fields)} fields")
                self.kv(fields[0], "ctx_idx", line_no)
                self.kv(fields[1], "scheme_idx", line_no)
                tid = self.kv(fields[2], "target_idx", line_no)
                nr_regions = self.kv(fields[3], "nr_regions", line_no)
                rest = fields[4:]
            rm = _RANGE.fullmatch(rest[0])
            if not rm:
                raise self.error(line_no, f"expected a region 'START-END:', got {_q(rest[0])}")
            a, b = int(rm.group(1)), int(rm.group(2))
            for tok in rest[1:]:
                if not _SINT.fullmatch(tok):
                    raise self.error(line_no, f"expected an integer, got {_q(tok)}")
            nr = int(rest[1])
            age = int(rest[2]) if len(rest) == 3 else 0
            fake = (a, b, nr, age) == (0, 0, -1, -1)
            if not fake:
                if b <= a or b > U64_MAX:
                    raise self.error(line_no, f"bad region {a}-{b}: need start < end <= 2^64-1")
                if not 0 <= nr <= U32_MAX or not 0 <= age <= U32_MAX:
                    raise self.error(line_no, f"nr_accesses {nr} and age {age} must be in [0, 2^32-1]")
            if nr_regions == 0:
                raise self.error(line_no, "nr_regions=0 but the line carries a region")
            if tid not in done:
                done[tid] = []
                order.append(tid)
            snap = pending.get(tid)
            if snap is None:
                if done[tid] and t_ns < done[tid][-1][0]:
                    raise self.error(line_no, f"time {t_ns / 1e9:.6f} s is before the previous snapshot of "
                                              f"target {tid} ({done[tid][-1][0] / 1e9:.6f} s): not time-sorted")
                snap = [t_ns, nr_regions, [], line_no, False]
                pending[tid] = snap
            elif snap[1] != nr_regions:
                raise self.error(line_no, f"nr_regions={nr_regions} but the snapshot of target {tid} begun at "
                                          f"line {snap[3]} announced {snap[1]} regions and has {len(snap[2])}")
            snap[2].append((a, b, nr, age))
            snap[4] = snap[4] or fake
            if len(snap[2]) == nr_regions:
                done[tid].append(snap)
                del pending[tid]
        if nr_events == 0:
            raise self.error_at("whole file", "no DAMON tracepoint lines (damon:damon_aggregated ...) found")
        for tid, snap in pending.items():
            raise self.error(snap[3], f"the snapshot of target {tid} starting here is incomplete: "
                                      f"{len(snap[2])} of {snap[1]} regions")
        targets = []
        for tid in order:
            targets.append(self.target(tid, done[tid]))
        return DamonRecord(intervals, targets)

    def target(self, tid: int, snaps: list) -> TargetRecord:
        ends = [s[0] for s in snaps]
        if len(snaps) >= 2:
            # damo's rule: the first window lasts the average of the others (fake one included).
            first = ends[0] - round((ends[-1] - ends[0]) / (len(snaps) - 1))
            first = max(first, 0)
        else:
            first = ends[0]  # a lone snapshot without the fake one: duration unknown
        last = snaps[-1]
        if len(snaps) >= 2 and last[4] and len(last[2]) == 1:
            snaps = snaps[:-1]
        out = []
        prev_end = first
        for s in snaps:
            where = f"line {s[3]}"
            if s[4]:
                raise self.error_at(where, "a fake region 0-0 (nr_accesses -1) is only allowed alone, "
                                           "in the last snapshot of a target with another snapshot")
            cols = list(zip(*s[2]))
            out.append(_build_snapshot(self, where, prev_end, s[0], *(list(c) for c in cols), None))
            prev_end = s[0]
        try:
            return TargetRecord(tid, None, out)
        except ConfigError as e:
            raise self.error_at(f"target {tid}", str(e)) from None


# --------------------------------------------------------------------------- detection, reading


def _looks_like_zlib(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 and (data[0] << 8 | data[1]) % 31 == 0


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def _text_with_events(data: bytes) -> str | None:
    """``data`` as text if it is UTF-8 and mentions a DAMON tracepoint, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if any(ev in text for ev in _EVENTS) else None


def detect_format(data: bytes) -> str:
    """'json_compressed', 'json' or 'perf_script', from the content alone (never the file name)."""
    if _looks_like_zlib(data):
        try:
            zlib.decompressobj().decompress(data[:4096], 1)
            return FORMAT_JSON_COMPRESSED
        except zlib.error:
            if _text_with_events(data) is None:
                return FORMAT_JSON_COMPRESSED  # a damaged zlib stream
    head = data[:4096].lstrip(b" \t\r\n")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip(b" \t\r\n")
    if head[:1] in (b"[", b"{"):
        return FORMAT_JSON
    return FORMAT_PERF_SCRIPT


def _load_json(text: str | bytes, source: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(source, f"{what} line {e.lineno} column {e.colno}", e.msg) from None
    except RecursionError:
        raise FormatError(source, what, "JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(source, what, f"not valid JSON ({e})") from None


def _decompress(data: bytes, source: str) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data)
    except zlib.error as e:
        raise FormatError(source, "zlib stream", f"corrupt compressed data ({e})") from None
    if not d.eof:
        raise FormatError(source, "zlib stream", f"truncated: the stream ends early ({len(data)} bytes read)")
    if d.unused_data:
        raise FormatError(source, f"byte {len(data) - len(d.unused_data)}",
                          f"{len(d.unused_data)} bytes of garbage after the zlib stream")
    return out


def _decode_text(data: bytes, source: str, what: str) -> str:
    try:
        return _strip_bom(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(source, f"{what} byte {e.start}", "not UTF-8 text") from None


def parse_record_bytes(data: bytes, source: str = "<bytes>", intervals: Intervals | None = None) -> DamonRecord:
    """A record from the bytes of a damo record file of any text-like format.

    perf-script text carries no intervals: ``intervals`` (if given) is used for it, as damo's
    ``monitoring_intervals`` is. JSON records keep their own.
    """
    if intervals is not None and not isinstance(intervals, Intervals):
        raise ConfigError("intervals", intervals, "an Intervals or None")
    fmt = detect_format(data)
    if fmt == FORMAT_JSON_COMPRESSED:
        try:
            raw = _decompress(data, source)
        except FormatError as err:
            # Perf text whose first bytes happen to form a zlib header ('x ' ...)?
            text = _text_with_events(data)
            if text is None:
                raise err
            return _PerfParser(source).parse(text, intervals)
        obj = _load_json(_decode_text(raw, source, "decompressed JSON"), source, "decompressed JSON")
        return _Parser(source, "").record(obj)
    text = _decode_text(data, source, "text")
    if fmt == FORMAT_JSON:
        return _Parser(source).record(_load_json(text, source, "JSON"))
    if not text.strip():
        raise FormatError(source, "whole file", "empty file")
    if "\x00" in text:
        raise FormatError(source, f"byte {text.index(chr(0))}", "NUL byte in perf-script text")
    return _PerfParser(source).parse(text, intervals)


def read_record(path: str | os.PathLike, intervals: Intervals | None = None) -> DamonRecord:
    """Read a damo record (zlib JSON, plain JSON or perf-script text); FormatError says where it is bad.

    The format is recognised from the content. ``intervals`` is only used for perf-script text,
    which does not record them. I/O errors (missing file...) propagate as OSError.
    """
    with open(path, "rb") as f:
        data = f.read()
    return parse_record_bytes(data, os.fspath(path), intervals)


# --------------------------------------------------------------------------- writing


def record_to_bytes(record: DamonRecord, min_regions: int = DAMO_VALIDATE_MIN_REGIONS) -> bytes:
    """The json_compressed bytes of ``record`` (see :func:`write_record`)."""
    return zlib.compress(_record_json(record, min_regions).encode("ascii"), 6)


def _snapshot_json(s: Snapshot, iv: Intervals | None) -> str:
    """``json.dumps(_snapshot_to_damo(s, iv))`` (compact), written out directly for speed."""
    nrs, ages = s.nr_accesses.tolist(), s.age.tolist()
    if iv is not None:
        max_nr = iv.max_nr_accesses
        pcts = [str(int(n * 100.0 / max_nr)) for n in nrs]
        usecs = [str(a * iv.aggr_us) for a in ages]
    else:
        pcts = usecs = ["null"] * len(nrs)
    if s.sz_filter_passed is not None:
        tails = [',"sz_filter_passed":%d}' % v for v in s.sz_filter_passed.tolist()]
    else:
        tails = ["}"] * len(nrs)
    regions = ",".join(
        '{"start":%d,"end":%d,"nr_accesses":{"samples":%d,"percent":%s},"age":{"usec":%s,"aggr_intervals":%d}%s'
        % row for row in zip(s.start.tolist(), s.end.tolist(), nrs, pcts, usecs, ages, tails))
    return '{"start_time":%d,"end_time":%d,"regions":[%s],"total_bytes":%d}' % (
        s.start_ns, s.end_ns, regions, s.total_bytes)


def _record_json(record: DamonRecord, min_regions: int) -> str:
    """The compact JSON text of ``record.to_damo(min_regions)``."""
    if not isinstance(record, DamonRecord):
        raise ConfigError("record", type(record).__name__, "a DamonRecord")
    record.validate()
    _with_min_regions(Snapshot(0, 0, [], [], [], []), min_regions)  # checks min_regions
    shell = DamonRecord(record.intervals, [TargetRecord(t.target_id, t.pid, []) for t in record.targets])
    parts = []
    for head, t in zip(shell.to_damo(), record.targets):
        del head["snapshots"]
        text = json.dumps(head, separators=(",", ":"))
        snaps = ",".join(_snapshot_json(_with_min_regions(s, min_regions), record.intervals) for s in t.snapshots)
        parts.append('%s,"snapshots":[%s]}' % (text[:-1], snaps))
    return "[%s]" % ",".join(parts)


def write_record(path: str | os.PathLike, record: DamonRecord,
                 min_regions: int = DAMO_VALIDATE_MIN_REGIONS) -> None:
    """Write ``record`` atomically as damo's json_compressed format (zlib-compressed JSON).

    damo 3.4 reads it with every ``report`` subcommand, ``validate``, ``adjust`` and
    ``convert_record_format``. Snapshots with fewer than ``min_regions`` regions (default 3, what
    ``damo validate`` demands) get their largest regions split; pass 0 to write them as they are.
    """
    write_bytes_atomic(path, record_to_bytes(record, min_regions))


def _perf_time(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{(ns % 1_000_000_000) // 1000:06d}"


def perf_script_text(record: DamonRecord, min_regions: int = DAMO_VALIDATE_MIN_REGIONS) -> str:
    """``record`` as ``perf script`` text of the damon:damon_aggregated tracepoint.

    The format keeps neither the intervals, the pids, ``sz_filter_passed`` nor sub-microsecond
    times, and only the first snapshot's end (its start is inferred by readers). A target with a
    single snapshot gets damo's fake second snapshot so that readers can infer its duration.
    """
    if not isinstance(record, DamonRecord):
        raise ConfigError("record", type(record).__name__, "a DamonRecord")
    record.validate()
    events = []  # (end_ns, target index, snapshot index, lines)
    for ti, t in enumerate(record.targets):
        if t.target_id is None:
            raise ConfigError(f"record.targets[{ti}].target_id", None, "an integer (perf-script text needs one)")
        snaps = [_with_min_regions(s, min_regions) for s in t.snapshots]
        for si, s in enumerate(snaps):
            if not s.nr_regions:
                raise ConfigError(f"record.targets[{ti}].snapshots[{si}]", "no regions",
                                  "at least one region per snapshot (perf-script text has a line per region)")
            head = f"kdamond.0 0 [000] {_perf_time(s.end_ns)}: damon:damon_aggregated: " \
                   f"target_id={t.target_id} nr_regions={s.nr_regions} "
            lines = [f"{head}{a}-{b}: {n} {g}\n" for a, b, n, g in s.regions()]
            events.append((s.end_ns, ti, si, lines))
        if len(snaps) == 1:
            s = snaps[0]
            fake_end = s.end_ns + (s.end_ns - s.start_ns)
            events.append((fake_end, ti, 1, [f"kdamond.0 0 [000] {_perf_time(fake_end)}: damon:damon_aggregated: "
                                             f"target_id={t.target_id} nr_regions=1 0-0: -1 -1\n"]))
    # target after target, like damo's writer: readers keep the targets' order
    return "".join(line for e in events for line in e[3])


def write_perf_script(path: str | os.PathLike, record: DamonRecord,
                      min_regions: int = DAMO_VALIDATE_MIN_REGIONS) -> None:
    """Write ``record`` atomically as perf-script text (see :func:`perf_script_text`)."""
    write_bytes_atomic(path, perf_script_text(record, min_regions).encode("ascii"))
