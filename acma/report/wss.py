"""Text reports computed from a DAMON record, matching what ``damo report`` prints.

- :func:`format_wss_report` is ``damo report wss`` (working set size percentiles);
- :func:`format_nr_regions_report` is ``damo report nr_regions``;
- :func:`format_heatmap_guide` is ``damo report heatmap --guide``.

The numbers come from :func:`wss_distribution`, :func:`nr_regions_distribution` and
:func:`heatmap_guide`, which follow damo 3.4's definitions (which snapshots count, the access
threshold, the sort, damo's percentile indexing with its float arithmetic, and its rounding).
``docs/damo-records.md`` §4 spells them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import ConfigError
from ..io.damo_record import U64_MAX, DamonRecord, Snapshot

__all__ = [
    "Distribution",
    "wss_distribution",
    "wss_percentiles",
    "format_wss_report",
    "nr_regions_distribution",
    "nr_regions_percentiles",
    "format_nr_regions_report",
    "GuideInfo",
    "heatmap_guide",
    "format_heatmap_guide",
    "format_size",
]

DAMO_WSS_EXCLUDE_SNAPSHOTS = 20
DAMO_NR_REGIONS_SKIP_SNAPSHOTS = 20


# --------------------------------------------------------------------------- helpers


def format_size(n: float, raw_number: bool = False) -> str:
    """A size as damo prints it: '%d' when raw, else '1.500 MiB' (a unit only above 1 of it)."""
    if raw_number:
        return "%d" % n
    v = float(n)
    if v == float(U64_MAX):
        return "max"
    for shift, unit in ((60, "EiB"), (50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if v > (1 << shift):
            return "%.3f %s" % (v / (1 << shift), unit)
    return "%d B" % v


def _percentile_index(percentile: float, n: int) -> int:
    """damo's index: int(p / 100.0 * n), the last element for p = 100 (float maths on purpose)."""
    idx = int(percentile / 100.0 * n)
    return n - 1 if idx == n else idx


def _check_percentiles(percentiles) -> list:
    ps = list(percentiles)
    for p in ps:
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 100:
            raise ConfigError("percentiles", p, "numbers in [0, 100]")
    return ps


@dataclass(frozen=True)
class Distribution:
    """Per-snapshot values of one target (sorted ascending unless sorted by time)."""

    values: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.values)

    @property
    def average(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    def percentile(self, p: float) -> int:
        """The value at percentile ``p`` with damo's indexing; ConfigError if there are no values."""
        if not self.values:
            raise ConfigError("distribution", "empty", "at least one snapshot")
        return self.values[_percentile_index(p, len(self.values))]

    def percentiles(self, percentiles: Iterable[float]) -> list[tuple[float, int]]:
        return [(p, self.percentile(p)) for p in _check_percentiles(percentiles)]


def _check_int(name: str, v, lo: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ConfigError(name, v, f"an integer >= {lo}")
    return int(v)


def _sort_flag(sort_by: str) -> bool:
    if sort_by not in ("size", "time"):
        raise ConfigError("sort_by", sort_by, "'size' (sorted values, damo's default) or 'time'")
    return sort_by == "size"


# --------------------------------------------------------------------------- working set size


def _merge_window(snaps: Sequence[Snapshot]) -> tuple[list[int], list[int]]:
    """Sizes and access counts of damo's aggregate of several short snapshots.

    The first snapshot's regions are taken as they are. For each later snapshot, a region that
    overlaps a kept one adds its count to the first kept region it overlaps (the largest such
    count per kept region and snapshot); the parts of it outside that kept region are placed
    again the same way, and become new regions where they overlap nothing.
    """
    kept: list[list[int]] = []  # [start, end, nr_accesses] in insertion order

    def place(a: int, b: int, nr: int, bump: dict) -> None:
        for j, r in enumerate(kept):
            if r[1] <= a or b <= r[0]:
                continue
            bump[j] = max(bump.get(j, 0), nr)
            if a < r[0]:
                place(a, r[0], nr, bump)
            if r[1] < b:
                place(r[1], b, nr, bump)
            return
        kept.append([a, b, nr])

    for s in snaps:
        bump: dict[int, int] = {}
        for a, b, nr, _age in s.regions():
            place(a, b, nr, bump)
        for j, add in bump.items():
            kept[j][2] += add
    return [r[1] - r[0] for r in kept], [r[2] for r in kept]


def _wss_of_target(snaps: Sequence[Snapshot], work_time_us: int, acc_thres: int, sz_thres: int) -> list[int]:
    window_ns = work_time_us * 1000
    out: list[int] = []
    group: list[Snapshot] = []
    for s in snaps:
        group.append(s)
        if group[-1].end_ns - group[0].start_ns < window_ns:
            continue  # too short: aggregate with the next ones
        if len(group) == 1:
            sizes = s.end - s.start
            keep = (s.nr_accesses.astype(np.int64) >= acc_thres) & (sizes >= np.uint64(max(sz_thres, 0)))
            out.append(int(sizes[keep].sum(dtype=np.uint64)) if keep.any() else 0)
        else:
            sizes, nrs = _merge_window(group)
            out.append(sum(sz for sz, nr in zip(sizes, nrs) if nr >= acc_thres and sz >= sz_thres))
        group = []
    # damo drops a trailing group that never filled the window.
    return out


def wss_distribution(record: DamonRecord, *, exclude_snapshots: int = DAMO_WSS_EXCLUDE_SNAPSHOTS,
                     acc_thres: int = 1, sz_thres: int = 1, work_time_us: int = 1,
                     sort_by: str = "size", collapse_targets: bool = True) -> dict:
    """Working set size per snapshot, as ``damo report wss`` computes it.

    Per target: drop the first ``exclude_snapshots`` snapshots; group consecutive snapshots until
    a group spans at least ``work_time_us`` (each snapshot alone, normally) and merge a group's
    regions; a snapshot's working set is the total size of its regions with
    ``nr_accesses >= acc_thres`` and size ``>= sz_thres``. Values are sorted ascending
    (``sort_by='size'``) or kept in time order (``'time'``). With ``collapse_targets`` (damo's
    default) the targets' lists are added element by element, after sorting, under key 0;
    otherwise the keys are the target ids.
    """
    if not isinstance(record, DamonRecord):
        raise ConfigError("record", type(record).__name__, "a DamonRecord")
    exclude_snapshots = _check_int("exclude_snapshots", exclude_snapshots)
    acc_thres = _check_int("acc_thres", acc_thres, lo=-(1 << 62))
    sz_thres = _check_int("sz_thres", sz_thres, lo=-(1 << 62))
    work_time_us = _check_int("work_time_us", work_time_us)
    do_sort = _sort_flag(sort_by)
    dists: dict = {}
    for t in record.targets:
        vals = _wss_of_target(t.snapshots[exclude_snapshots:], work_time_us, acc_thres, sz_thres)
        if do_sort:
            vals.sort()
        dists[t.target_id] = vals
    if collapse_targets:
        total: list[int] = []
        for vals in dists.values():
            for i, v in enumerate(vals):
                if i < len(total):
                    total[i] += v
                else:
                    total.append(v)
        dists = {0: total}
    return {k: Distribution(tuple(v)) for k, v in dists.items()}


def wss_percentiles(record: DamonRecord, percentiles: Iterable[float] = range(1, 101, 1),
                    **options) -> dict:
    """``{key: [(percentile, wss_bytes), ...]}``; keys and options as in :func:`wss_distribution`.

    A key whose distribution is empty (no snapshot left) maps to an empty list.
    """
    ps = _check_percentiles(percentiles)
    return {k: (d.percentiles(ps) if len(d) else []) for k, d in wss_distribution(record, **options).items()}


def _format_dist(metric: str, dist: Distribution, percentiles: list, all_values: bool,
                 raw_number: bool, nr_cols_bar: int) -> list[str]:
    lines = [f"# <percentile> <{metric}>"]
    vals = dist.values
    if not vals:
        lines.append("# no snapshot")
        return lines
    lines.append("# avr:\t%s" % format_size(sum(vals) / len(vals), raw_number))
    if all_values:
        lines += ["%s %s" % (i, format_size(v, raw_number)) for i, v in enumerate(vals)]
        return lines
    per_col = 1.0
    if nr_cols_bar > 0:
        top = max((vals[_percentile_index(p, len(vals))] for p in percentiles), default=0)
        per_col = top / nr_cols_bar if top > 0 else 1
    for p in percentiles:
        v = vals[_percentile_index(p, len(vals))]
        line = "%3d %15s" % (p, format_size(v, raw_number))
        if nr_cols_bar > 0:
            cols = int(v / per_col)
            line += " |%s%s|" % ("*" * cols, " " * (nr_cols_bar - cols))
        lines.append(line)
    return lines


def format_wss_report(record: DamonRecord, percentiles: Iterable[float] = range(1, 101, 1),
                      raw_number: bool = True, *, nr_cols_bar: int = 59, all_wss: bool = False,
                      **options) -> str:
    """What ``damo report wss --range ... [--raw_number]`` prints, byte for byte.

    Defaults reproduce ``damo report wss -r 1 101 1 --raw_number``. ``options`` are those of
    :func:`wss_distribution` (``exclude_snapshots``, ``acc_thres``, ``sz_thres``, ``work_time_us``,
    ``sort_by``, ``collapse_targets``).
    """
    ps = _check_percentiles(percentiles)
    nr_cols_bar = _check_int("nr_cols_bar", nr_cols_bar, lo=-(1 << 62))
    out = []
    for key, dist in wss_distribution(record, **options).items():
        out.append("# target_id\t%s" % key)
        out += _format_dist("wss", dist, ps, all_wss, raw_number, nr_cols_bar)
    return "".join(line + "\n" for line in out)


# --------------------------------------------------------------------------- number of regions


def nr_regions_distribution(record: DamonRecord, *, skip_snapshots: int = DAMO_NR_REGIONS_SKIP_SNAPSHOTS,
                            sort_by: str = "size") -> dict:
    """Regions per snapshot and target, the first ``skip_snapshots`` left out (damo skips 20)."""
    if not isinstance(record, DamonRecord):
        raise ConfigError("record", type(record).__name__, "a DamonRecord")
    skip_snapshots = _check_int("skip_snapshots", skip_snapshots)
    do_sort = _sort_flag(sort_by)
    out = {}
    for t in record.targets:
        vals = [s.nr_regions for s in t.snapshots[skip_snapshots:]]
        if do_sort:
            vals.sort()
        out[t.target_id] = Distribution(tuple(vals))
    return out


def nr_regions_percentiles(record: DamonRecord, percentiles: Iterable[float] = (0, 25, 50, 75, 100),
                           **options) -> dict:
    """``{target_id: [(percentile, nr_regions), ...]}`` (empty list when no snapshot is left)."""
    ps = _check_percentiles(percentiles)
    return {k: (d.percentiles(ps) if len(d) else [])
            for k, d in nr_regions_distribution(record, **options).items()}


def format_nr_regions_report(record: DamonRecord, percentiles: Iterable[float] = (0, 25, 50, 75, 100),
                             **options) -> str:
    """What ``damo report nr_regions [--range ...]`` prints.

    damo's default percentiles are 0, 25, 50, 75 and 100; ``range(1, 101, 1)`` reproduces
    ``-r 1 101 1``. A target with no snapshot left gets ``# no snapshot`` (damo crashes there).
    """
    ps = _check_percentiles(percentiles)
    lines = ["# <percentile> <# regions>"]
    for tid, dist in nr_regions_distribution(record, **options).items():
        lines.append("# target_id\t%s" % tid)
        if not len(dist):
            lines.append("# no snapshot")
            continue
        lines.append("# avr:\t%d" % (sum(dist.values) / len(dist)))
        lines += ["%d\t%d" % (p, dist.percentile(p)) for p in ps]
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------- heatmap guide


@dataclass(frozen=True)
class GuideInfo:
    """What ``damo report heatmap --guide`` tells about one target.

    ``start_ns`` is the first snapshot's start, moved back by the oldest region's age when the
    intervals are known (the heatmap back-dates regions by their age); ``end_ns`` is the last
    snapshot's end; ``ranges`` are the address ranges between the gaps that persist.
    """

    target_id: int | None
    start_ns: int
    end_ns: int
    ranges: tuple[tuple[int, int], ...]

    @property
    def total_space(self) -> int:
        return sum(b - a for a, b in self.ranges)


def _narrow_gaps(gaps: list[list[int]], new_gaps: list[list[int]]) -> list[list[int]]:
    """damo's gap update: each known gap shrinks to its overlap with every new gap it touches.

    Touching ends count as overlap; a known gap that touches no new gap stays as it was.
    """
    out = []
    for g in gaps:
        cur = g
        for h in new_gaps:
            if cur[1] < h[0] or h[1] < cur[0]:
                continue
            cur = [max(cur[0], h[0]), min(cur[1], h[1])]
        out.append(cur)
    return out


def heatmap_guide(record: DamonRecord) -> list[GuideInfo]:
    """One :class:`GuideInfo` per target with snapshots, the widest address space first."""
    if not isinstance(record, DamonRecord):
        raise ConfigError("record", type(record).__name__, "a DamonRecord")
    guides = []
    for t in record.targets:
        if not t.snapshots:
            continue
        first = t.snapshots[0]
        start_ns = first.start_ns
        if record.intervals is not None and first.nr_regions:
            start_ns -= int(first.age.max()) * record.intervals.aggr_us * 1000
        lowest = highest = None
        gaps: list[list[int]] = []
        for s in t.snapshots:
            if not s.nr_regions:
                continue
            starts, ends = s.start.tolist(), s.end.tolist()
            lo, hi = starts[0], ends[-1]
            lowest = lo if lowest is None else min(lowest, lo)
            highest = hi if highest is None else max(highest, hi)
            new_gaps = [[e, b] for e, b in zip(ends[:-1], starts[1:]) if e != b]
            gaps = new_gaps if not gaps else _narrow_gaps(gaps, new_gaps)
        ranges: list[tuple[int, int]] = []
        if lowest is not None:
            cur = lowest
            for g0, g1 in gaps:
                ranges.append((cur, g0))
                cur = g1
            ranges.append((cur, highest))
        guides.append(GuideInfo(t.target_id, start_ns, t.snapshots[-1].end_ns, tuple(ranges)))
    guides.sort(key=lambda g: g.total_space, reverse=True)
    return guides


def format_heatmap_guide(record: DamonRecord, show_indices: bool = True) -> str:
    """What ``damo report heatmap --guide`` prints (raw numbers).

    damo 3.4 starts each guide with ``kdamond_idx: 0`` and ``context_idx: 0``; damo before 3.x
    (and ``expects/report-heats_guide`` in damo's tests) did not: ``show_indices=False``.
    """
    lines = []
    for g in heatmap_guide(record):
        if show_indices:
            lines += ["kdamond_idx: 0", "context_idx: 0"]
        if g.target_id is not None:
            lines.append("target_id: %s" % g.target_id)
        lines.append("time: [%d, %d) (%d)" % (g.start_ns, g.end_ns, g.end_ns - g.start_ns))
        for i, (a, b) in enumerate(g.ranges):
            lines.append("region\t%2d: [%d, %d) (%d)" % (i, a, b, b - a))
    return "".join(line + "\n" for line in lines)
