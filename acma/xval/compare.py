"""The kernel's and acma's DAMON runs of one workload, side by side.

Both records are brought to one frame before anything is measured: times count from the start
of the workload's first phase, and for vaddr the kernel's regions are moved from the guest
program's addresses to acma's (each workload region's kernel range mapped onto the same
region's range in acma's process, the rest of the address space dropped). The metrics are then
computed by the same code for both sides:

* working-set size over time: bytes of the workload's regions in DAMON regions with
  ``nr_accesses > 0`` (paddr: of the whole monitored range);
* time to detect a hot region after a phase change: from the phase's start to the end of the
  first snapshot in which at least ``DETECT_COVERAGE`` of the phase's hottest regions lie in
  DAMON regions with ``nr_accesses > 0`` (vaddr only; paddr has no map from workload regions to
  physical addresses);
* the number of DAMON regions (of the whole target, before the move);
* the scheme's stats.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

import numpy as np

from ..io.damo_record import DamonRecord, Snapshot, TargetRecord
from ..workloads.model import Workload

__all__ = ["DETECT_COVERAGE", "Metrics", "detect_times", "format_side_by_side", "measure", "rebase_record",
           "wss_series"]

DETECT_COVERAGE = 0.8
NS = 1_000_000_000


def _overlap_accessed(s: Snapshot, ranges: list[tuple[int, int]]) -> int:
    """Bytes of ``ranges`` lying in regions of ``s`` with nr_accesses > 0."""
    hot = s.nr_accesses > 0
    starts, ends = s.start[hot].astype(object), s.end[hot].astype(object)
    total = 0
    for a, b in ranges:
        for rs, re_ in zip(starts, ends):
            lo, hi = max(a, rs), min(b, re_)
            if hi > lo:
                total += hi - lo
    return total


def rebase_record(record: DamonRecord, t0_ns: int, moves: list[tuple[int, int, int]] | None = None) -> DamonRecord:
    """``record``'s first target with times made relative to ``t0_ns`` (earlier snapshots dropped)
    and, with ``moves`` ``(src_start, src_end, dst_start)``, each region clipped to the source
    ranges and moved to the destination."""
    t = record.targets[0]
    out = []
    for s in t.snapshots:
        if s.end_ns <= t0_ns:
            continue
        rows = []
        for a, b, nr, age in s.regions():
            if moves is None:
                rows.append((a, b, nr, age))
                continue
            for src_a, src_b, dst in moves:
                lo, hi = max(a, src_a), min(b, src_b)
                if hi > lo:
                    rows.append((lo - src_a + dst, hi - src_a + dst, nr, age))
        rows.sort()
        start_ns, end_ns = max(0, s.start_ns - t0_ns), s.end_ns - t0_ns
        snap = Snapshot.from_regions(start_ns // 1000, end_ns // 1000, rows)
        object.__setattr__(snap, "times_ns", (start_ns, end_ns))
        out.append(snap)
    return DamonRecord(record.intervals, [TargetRecord(t.target_id, t.pid, out)])


def wss_series(record: DamonRecord, ranges: list[tuple[int, int]] | None) -> list[tuple[float, int]]:
    """(snapshot end in s, accessed bytes) per snapshot; ``ranges`` None counts every region."""
    out = []
    for s in record.targets[0].snapshots:
        if ranges is None:
            b = int((s.sizes[s.nr_accesses > 0]).sum(dtype=np.uint64))
        else:
            b = _overlap_accessed(s, ranges)
        out.append((s.end_ns / NS, b))
    return out


def hot_regions(workload: Workload) -> list[tuple[int, list[str], float]]:
    """Per phase start (µs, over the workload's repeats): the regions at the phase's top rate
    (at least half of it)."""
    out, t = [], 0
    for _ in range(max(1, workload.repeat)):
        for ph in workload.phases:
            rates = {k: r for k, (r, _) in ph.page_rates().items() if r > 0}
            if rates:
                top = max(rates.values())
                out.append((t, sorted(k for k, r in rates.items() if r >= top / 2), top))
            t += ph.duration_us
    return out


def detect_times(record: DamonRecord, workload: Workload, ranges_of: dict[str, tuple[int, int]]) -> list[float | None]:
    """Seconds from each phase start to the first snapshot covering ``DETECT_COVERAGE`` of its hot
    regions with accessed DAMON regions (None: never, before the next phase)."""
    snaps = record.targets[0].snapshots
    phases = hot_regions(workload)
    out = []
    for i, (t_us, names, _) in enumerate(phases):
        t_ns = t_us * 1000
        nxt = phases[i + 1][0] * 1000 if i + 1 < len(phases) else float("inf")
        ranges = [ranges_of[n] for n in names]
        want = DETECT_COVERAGE * sum(b - a for a, b in ranges)
        found = None
        for s in snaps:
            if s.end_ns <= t_ns:
                continue
            if s.end_ns > nxt:
                break
            if _overlap_accessed(s, ranges) >= want:
                found = (s.end_ns - t_ns) / NS
                break
        out.append(found)
    return out


@dataclass
class Metrics:
    """One side's numbers (see the module doc)."""

    wss: list[tuple[float, int]]
    detect_s: list[float | None]
    nr_regions: list[int]
    nr_snapshots: int
    scheme_stats: dict | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        w = [b for _, b in self.wss]
        d = [x for x in self.detect_s if x is not None]
        return {
            "snapshots": self.nr_snapshots,
            "wss_median_bytes": int(statistics.median(w)) if w else 0,
            "wss_p90_bytes": int(np.percentile(w, 90)) if w else 0,
            "nr_regions_min": min(self.nr_regions) if self.nr_regions else 0,
            "nr_regions_median": statistics.median(self.nr_regions) if self.nr_regions else 0,
            "nr_regions_max": max(self.nr_regions) if self.nr_regions else 0,
            "detect_s": self.detect_s,
            "detect_missed": sum(x is None for x in self.detect_s),
            "detect_median_s": statistics.median(d) if d else None,
        }


def measure(record: DamonRecord, nr_regions: list[int], workload: Workload,
            ranges_of: dict[str, tuple[int, int]] | None, scheme_stats: dict | None) -> Metrics:
    """The metrics of a record already in the common frame."""
    ranges = sorted(ranges_of.values()) if ranges_of else None
    det = detect_times(record, workload, ranges_of) if ranges_of else []
    return Metrics(wss_series(record, ranges), det, nr_regions, len(record.targets[0].snapshots), scheme_stats)


def _mib(b) -> str:
    return f"{b / 2**20:.1f} MiB"


def _fmt_s(x) -> str:
    return "missed" if x is None else f"{x:.2f} s"


def binned_wss(m: Metrics, step_s: float, end_s: float) -> list[float | None]:
    """Mean working-set bytes of the snapshots ending in each ``step_s`` bin up to ``end_s``."""
    n = max(1, int(round(end_s / step_s)))
    bins: list[list[int]] = [[] for _ in range(n)]
    for t, b in m.wss:
        i = int(t / step_s)
        if 0 <= i < n:
            bins[i].append(b)
    return [float(np.mean(x)) if x else None for x in bins]


def format_side_by_side(kernel: Metrics, acma: Metrics, title: str, step_s: float, end_s: float,
                        acma_scheme_note: str | None = None) -> str:
    """A plain-text table: kernel | acma for each metric, then the WSS time series."""
    ks, as_ = kernel.summary(), acma.summary()
    rows = [("snapshots", ks["snapshots"], as_["snapshots"]),
            ("WSS median", _mib(ks["wss_median_bytes"]), _mib(as_["wss_median_bytes"])),
            ("WSS p90", _mib(ks["wss_p90_bytes"]), _mib(as_["wss_p90_bytes"])),
            ("regions min/median/max", f"{ks['nr_regions_min']}/{ks['nr_regions_median']:g}/{ks['nr_regions_max']}",
             f"{as_['nr_regions_min']}/{as_['nr_regions_median']:g}/{as_['nr_regions_max']}")]
    if kernel.detect_s:
        for i, (a, b) in enumerate(zip(kernel.detect_s, acma.detect_s)):
            rows.append((f"detect hot, phase {i}", _fmt_s(a), _fmt_s(b)))
    kst = kernel.scheme_stats or {}
    for k in ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds"):
        if k in kst:
            av = acma.scheme_stats.get(k) if acma.scheme_stats else None
            fmt = _mib if k.startswith("sz") else str
            rows.append((f"scheme {k}", fmt(kst[k]), fmt(av) if av is not None else "-"))
    for k in ("pswpout", "pswpin"):
        if k in kernel.extra or k in acma.extra:
            rows.append((f"vmstat {k} (pages)", kernel.extra.get(k, "-"), acma.extra.get(k, "-")))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(max(len(str(r[1])) for r in rows), len("kernel"))
    lines = [title, f"{'':{w0}}  {'kernel':>{w1}}  acma"]
    lines += [f"{r[0]:{w0}}  {str(r[1]):>{w1}}  {r[2]}" for r in rows]
    if acma_scheme_note:
        lines.append(acma_scheme_note)
    lines.append("")
    lines.append(f"working-set size over time (mean per {step_s:g} s bin, MiB): time  kernel  acma")
    kb, ab = binned_wss(kernel, step_s, end_s), binned_wss(acma, step_s, end_s)
    for i, (x, y) in enumerate(zip(kb, ab)):
        f = (lambda v: "-" if v is None else f"{v / 2**20:.1f}")
        lines.append(f"  {i * step_s:5.1f}  {f(x):>6}  {f(y):>6}")
    return "\n".join(lines) + "\n"


def to_json(kernel: Metrics, acma: Metrics, extra: dict) -> str:
    doc = {"kernel": {**kernel.summary(), "wss": kernel.wss, "nr_regions": kernel.nr_regions,
                      "scheme_stats": kernel.scheme_stats, "vmstat": kernel.extra},
           "acma": {**acma.summary(), "wss": acma.wss, "nr_regions": acma.nr_regions,
                    "scheme_stats": acma.scheme_stats, "vmstat": acma.extra}, **extra}
    return json.dumps(doc, indent=1)
