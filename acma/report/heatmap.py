"""Access heatmaps of a DAMON record: when which addresses were how often found accessed.

A heatmap is a grid of cells, time along one axis and address along the other. A cell's value
is the average ``nr_accesses`` of the record's regions over the cell, weighted by how much of
the cell (bytes times nanoseconds) each region covers: the number of sampling checks per
aggregation interval that found the memory accessed, from 0 up to ``aggr_us / sample_us``
(20 with DAMON's default 5 ms and 100 ms). Cells no region covers have no value.

The address axis keeps only the space where the record has regions: a virtual address space
has a huge hole between the heap and the mmap area (tens of TiB), which would squash every
region into a line. As ``damo report heatmap --guide`` does, the gaps that no snapshot ever
covers are found (:func:`acma.report.wss.heatmap_guide`) and left out; the ranges between them
are drawn one after the other, each with at least a few cells. ``address_ranges`` picks the
ranges instead.

Unlike damo, regions are not back-dated by their age (damo draws a region as if its current
rate had held for its whole age, so its maps start before the record); a cell shows what the
snapshots overlapping it measured.

:func:`compute_heatmap` builds the grid, :func:`format_heatmap_text` prints it as rows of digits
with a guide in plain words, :func:`render_heatmap_png` draws it with matplotlib (Agg, no
display needed). ``docs/monitor.md`` shows both.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..io.atomic import write_bytes_atomic
from ..io.damo_record import DamonRecord, Intervals
from ..units import format_size
from .wss import heatmap_guide

__all__ = ["Band", "Heatmap", "SCALES", "compute_heatmap", "format_heatmap_text", "render_heatmap_png",
           "heatmap_png_bytes"]

SCALES = ("observed", "full")
TEXT_RESOL = (40, 80)  # rows (time) x columns (address): damo's stdout heatmap size
PNG_RESOL = (800, 400)  # at most this many time x address cells in a PNG
MAX_CELLS = 4_000_000


@dataclass(frozen=True)
class Band:
    """One address range of the map and its cells ``[first, first + count)`` on the address axis."""

    start: int
    end: int
    first: int
    count: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, eq=False)
class Heatmap:
    """A heatmap grid: ``values[i, j]`` for time cell ``i`` and address cell ``j`` (NaN: no region).

    ``time_edges_ns`` (absolute record times) bound the time cells; ``cell_start``/``cell_end`` the
    address cells, band after band. ``record_start_ns`` is the record's first snapshot start,
    the origin of the relative times printed and drawn.
    """

    target_id: int | None
    pid: int | None
    nr_snapshots: int
    intervals: Intervals | None
    record_start_ns: int
    time_edges_ns: np.ndarray
    bands: tuple[Band, ...]
    cell_start: np.ndarray
    cell_end: np.ndarray
    values: np.ndarray

    @property
    def max_samples(self) -> float | None:
        """The most an aggregation interval can count (``aggr_us / sample_us``), if known."""
        return self.intervals.max_nr_accesses if self.intervals is not None else None

    @property
    def observed_max(self) -> float:
        v = self.values[~np.isnan(self.values)]
        return float(v.max()) if v.size else 0.0

    def vmax(self, scale: str) -> tuple[float, str]:
        """The value of the top of the colour (or digit) scale, and what it is, in words."""
        if scale not in SCALES:
            raise ConfigError("scale", scale, f"one of {SCALES}")
        full = self.max_samples
        if scale == "full" and full is not None:
            return full, "the most an aggregation interval can count"
        top = self.observed_max
        if top <= 0:
            return (full or 1.0), "no access was found anywhere"
        why = "the hottest cell" + (" (the record has no intervals)" if scale == "full" else "")
        return top, why


# --------------------------------------------------------------------------- computing


def _allocate(sizes: list[int], total: int, minimum: int) -> list[int]:
    """Cells per band: proportional to size (largest remainders), each at least ``minimum``."""
    n = len(sizes)
    minimum = max(1, minimum)
    if n * minimum > total:
        minimum = max(1, total // n)
    out = [minimum] * n
    spare = max(0, total - n * minimum)
    whole = sum(sizes)
    shares = [spare * s / whole for s in sizes] if whole else [0.0] * n
    base = [int(math.floor(x)) for x in shares]
    out = [o + b for o, b in zip(out, base)]
    rest = spare - sum(base)
    order = sorted(range(n), key=lambda i: (-(shares[i] - base[i]), i))
    for i in order[:rest]:
        out[i] += 1
    return out


def _check_ranges(ranges) -> list[tuple[int, int]]:
    out = []
    for i, r in enumerate(ranges):
        try:
            s, e = (int(x) for x in r)
        except (TypeError, ValueError):
            raise ConfigError(f"address_ranges[{i}]", r, "a pair (start, end) of addresses") from None
        if not 0 <= s < e:
            raise ConfigError(f"address_ranges[{i}]", (s, e), "0 <= start < end")
        out.append((s, e))
    out.sort()
    for a, b in zip(out, out[1:]):
        if b[0] < a[1]:
            raise ConfigError("address_ranges", [a, b], "ranges that do not overlap")
    return out


def _resol(name: str, v, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= 100_000:
        raise ConfigError(name, v, f"an integer in [{lo}, 100000]")
    return int(v)


def compute_heatmap(record: DamonRecord, *, target_id: int | None = None, time_cells: int = PNG_RESOL[0],
                    address_cells: int = PNG_RESOL[1], address_ranges=None, time_range_ns=None,
                    min_band_cells: int = 1) -> Heatmap:
    """The heatmap grid of one target of ``record`` (the first one with snapshots by default).

    ``time_cells`` is a maximum: never more cells than snapshots in the time range.
    ``address_ranges`` (pairs of addresses) replaces the ranges that hold regions;
    ``time_range_ns`` (``(start, end)`` in ns, counted from the target's first snapshot start, as
    the map's time axis is) narrows the time axis.
    Each address range gets at least ``min_band_cells`` cells.
    """
    if not isinstance(record, DamonRecord):
        raise ConfigError("record", type(record).__name__, "a DamonRecord")
    time_cells = _resol("time_cells", time_cells)
    address_cells = _resol("address_cells", address_cells)
    min_band_cells = _resol("min_band_cells", min_band_cells)
    with_snaps = [t for t in record.targets if t.snapshots]
    if not with_snaps:
        raise ConfigError("record", "no snapshots", "a record with at least one snapshot")
    if target_id is None:
        target = with_snaps[0]
    else:
        found = [t for t in record.targets if t.target_id == target_id]
        if not found or not found[0].snapshots:
            raise ConfigError("target_id", target_id,
                              f"the id of a target with snapshots: one of {[t.target_id for t in with_snaps]}")
        target = found[0]
    snaps = target.snapshots
    rec_start = snaps[0].start_ns
    t0, t1 = rec_start, snaps[-1].end_ns
    if time_range_ns is not None:
        a, b = (int(x) + rec_start for x in time_range_ns)
        if not (a < b and b > t0 and a < t1):
            raise ConfigError("time_range", f"[{_fmt_time(a - rec_start)}, {_fmt_time(b - rec_start)})",
                              f"start < end, overlapping the record's [0 s, {_fmt_time(t1 - t0)})")
        t0, t1 = max(a, t0), min(b, t1)
    if t1 <= t0:  # a record of zero-length snapshots: give it one nanosecond to be drawn in
        t1 = t0 + 1
    if address_ranges:
        ranges = _check_ranges(address_ranges)
    else:
        guide = heatmap_guide(DamonRecord(record.intervals, [target]))
        ranges = [r for r in guide[0].ranges if r[1] > r[0]] if guide else []
        if not ranges:
            raise ConfigError("record", "no regions", "snapshots with at least one region")
    if len(ranges) > address_cells:
        raise ConfigError("address_ranges" if address_ranges else "address_cells", f"{len(ranges)} ranges",
                          f"at most as many ranges as address cells ({address_cells})")

    in_range = [s for s in snaps if s.end_ns > t0 and s.start_ns < t1]
    n_time = max(1, min(time_cells, len(in_range)))
    if n_time * address_cells > MAX_CELLS:
        raise ConfigError("resolution", (n_time, address_cells), f"at most {MAX_CELLS} cells")
    counts = _allocate([e - s for s, e in ranges], address_cells, min_band_cells)
    bands, lo_pos, hi_pos, starts, ends = [], [], [], [], []
    first, offset = 0, 0.0
    for (s, e), n in zip(ranges, counts):
        bands.append(Band(s, e, first, n))
        edges = np.linspace(0.0, float(e - s), n + 1)
        lo_pos.append(offset + edges[:-1])
        hi_pos.append(offset + edges[1:])
        cut = np.linspace(s, e, n + 1)
        starts.append(np.floor(cut[:-1]))
        ends.append(np.floor(cut[1:]))
        first += n
        offset += float(e - s)
    lo_pos, hi_pos = np.concatenate(lo_pos), np.concatenate(hi_pos)
    n_addr = first

    t_edges = np.linspace(float(t0), float(t1), n_time + 1)
    acc = np.zeros((n_time, n_addr))
    cov = np.zeros((n_time, n_addr))
    for snap in in_range:
        a, b = max(snap.start_ns, t0), min(snap.end_ns, t1)
        if b <= a or not snap.nr_regions:
            continue
        sums = _address_sums(snap.start, snap.end, snap.nr_accesses, bands, lo_pos, hi_pos)
        if sums is None:
            continue
        s_acc, s_cov = sums
        i0 = max(0, int(np.searchsorted(t_edges, a, side="right")) - 1)
        i1 = min(n_time - 1, int(np.searchsorted(t_edges, b, side="left")) - 1)
        for i in range(i0, i1 + 1):
            w = min(b, t_edges[i + 1]) - max(a, t_edges[i])
            if w > 0:
                acc[i] += w * s_acc
                cov[i] += w * s_cov
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(cov > 0, acc / np.where(cov > 0, cov, 1.0), np.nan)
    return Heatmap(target.target_id, target.pid, len(in_range), record.intervals, rec_start, t_edges,
                   tuple(bands), np.concatenate(starts), np.concatenate(ends), values)


def _address_sums(start, end, nr, bands, lo_pos, hi_pos):
    """Per address cell: the integral of nr_accesses over the regions (bytes x samples) and the
    bytes covered, from the regions' piecewise-constant profile on the gap-free axis."""
    ps, pe, vals = [], [], []
    offset = 0.0
    for band in bands:
        m = (end > np.uint64(band.start)) & (start < np.uint64(band.end))
        if m.any():
            cs = np.maximum(start[m], np.uint64(band.start)) - np.uint64(band.start)
            ce = np.minimum(end[m], np.uint64(band.end)) - np.uint64(band.start)
            ps.append(offset + cs.astype(np.float64))
            pe.append(offset + ce.astype(np.float64))
            vals.append(nr[m].astype(np.float64))
        offset += float(band.size)
    if not ps:
        return None
    ps, pe, vals = np.concatenate(ps), np.concatenate(pe), np.concatenate(vals)
    width = pe - ps
    xs = np.empty(2 * len(ps))
    xs[0::2], xs[1::2] = ps, pe
    out = []
    for weight in (vals * width, width):
        cum = np.cumsum(weight)
        f = np.empty_like(xs)
        f[1::2] = cum
        f[0::2] = cum - weight
        out.append(np.interp(hi_pos, xs, f) - np.interp(lo_pos, xs, f))
    return out[0], out[1]


# --------------------------------------------------------------------------- text


def _fmt_time(ns: float) -> str:
    """A relative time in the largest unit that keeps it at least 1 ('1.5 s', '150 ms')."""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    for unit, scale in (("h", 3.6e12), ("min", 6e10), ("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{sign}{ns / scale:.4g} {unit}"
    return f"{sign}{ns:.4g} ns" if ns else "0 s"


def _fmt_num(v: float) -> str:
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def _digits(values: np.ndarray, vmax: float) -> np.ndarray:
    """' ' where nothing was monitored, '0' where no access was found, else 1-9: the ninth of
    the scale the value falls in (1 = up to 1/9 of the top, 9 = above 8/9)."""
    out = np.full(values.shape, " ", dtype="<U1")
    have = ~np.isnan(values)
    v = np.where(have, values, 0.0)
    d = np.clip(np.ceil(v / vmax * 9.0 - 1e-9), 0, 9).astype(int)
    d[(v > 0) & (d == 0)] = 1
    out[have] = np.array(list("0123456789"))[d[have]]
    return out


def format_heatmap_text(hm: Heatmap, scale: str = "observed") -> str:
    """The map as rows of digits, time running down and addresses running right, then a guide
    (lines starting with '#') that says what the rows, columns and digits mean."""
    vmax, why = hm.vmax(scale)
    cells = _digits(hm.values, vmax)
    lines = []
    for row in cells:
        lines.append("|".join("".join(row[b.first:b.first + b.count]) for b in hm.bands))
    t0 = hm.time_edges_ns[0] - hm.record_start_ns
    t1 = hm.time_edges_ns[-1] - hm.record_start_ns
    n_rows, n_cols = hm.values.shape
    who = f"target {hm.target_id}" + (f" (pid {hm.pid})" if hm.pid is not None else "")
    iv = hm.intervals
    how = (f"sampling every {_fmt_time(iv.sample_us * 1000)}, aggregating every {_fmt_time(iv.aggr_us * 1000)}"
           if iv is not None else "intervals unknown")
    per = hm.max_samples
    g = [
        f"heatmap of {who}: {hm.nr_snapshots} snapshots, {how}",
        "each character is one cell: time runs down the rows, addresses run right along the columns",
        f"rows: {n_rows}, {_fmt_time((t1 - t0) / n_rows)} each, from {_fmt_time(t0)} (top) to {_fmt_time(t1)} "
        "(bottom), counted from the start of the record",
        f"columns: {n_cols} over {len(hm.bands)} address range{'s' if len(hm.bands) > 1 else ''}"
        + (" that hold regions; the gaps between them are left out and '|' marks each one"
           if len(hm.bands) > 1 else ""),
    ]
    for b in hm.bands:
        g.append(f"  [{b.start:#x}, {b.end:#x}) {format_size(b.size)}: {b.count} column{'s' if b.count > 1 else ''}"
                 f" of {format_size(b.size // b.count)}")
    unit = ("accesses per aggregation interval (the sampling checks that found the memory accessed"
            + (f", out of {_fmt_num(per)})" if per is not None else ")"))
    g.append(f"digits: how often DAMON found a cell's memory accessed, in {unit}:")
    steps = [vmax * k / 9 for k in range(1, 10)]
    g.append("  0 = never; " + ", ".join(f"{k} = up to {_fmt_num(s)}" for k, s in zip(range(1, 10), steps)))
    if hm.observed_max > 0:
        g.append(f"  9 is {_fmt_num(vmax)}, {why}; a blank means no region was monitored there")
    else:
        g.append(f"  {why}: every monitored cell is 0; a blank means no region was monitored there")
    if scale == "observed" and per is not None and vmax < per:
        g.append(f"  (with --scale full, 9 would be {_fmt_num(per)}: an access found at every check)")
    return "".join(line + "\n" for line in lines) + "".join(f"# {line}\n" for line in g)


# --------------------------------------------------------------------------- PNG


def _nice_step(span: float, parts: int) -> int:
    """A power of two near ``span / parts`` (addresses read best at round hex values)."""
    raw = max(1.0, span / max(1, parts))
    return 1 << max(12, int(round(math.log2(raw))))


def _address_ticks(hm: Heatmap, max_ticks: int = 12):
    """Tick positions (in cells) and hex labels: every band's start, the last end, and round
    addresses inside the larger bands."""
    pos, labels = [], []
    n_total = hm.values.shape[1]
    inner = max(0, max_ticks - len(hm.bands) - 1)
    for b in hm.bands:
        pos.append(b.first)
        labels.append(f"{b.start:#x}")
        k = int(inner * b.count / n_total)
        if k:
            step = _nice_step(b.size, k + 1)
            a = -(-b.start // step) * step
            while a < b.end:
                if a > b.start:
                    pos.append(b.first + (a - b.start) / b.size * b.count)
                    labels.append(f"{a:#x}")
                a += step
    last = hm.bands[-1]
    pos.append(last.first + last.count)
    labels.append(f"{last.end:#x}")
    # drop labels that would overlap a neighbour (narrow bands); band edges win
    keep_p, keep_l, min_gap = [], [], n_total / 30
    for p, label in sorted(zip(pos, labels)):
        if keep_p and p - keep_p[-1] < min_gap:
            continue
        keep_p.append(p)
        keep_l.append(label)
    return keep_p, keep_l


def heatmap_png_bytes(hm: Heatmap, scale: str = "observed", title: str | None = None, dpi: int = 110) -> bytes:
    """The heatmap drawn as a PNG: time on x, address on y (gaps left out), colour the value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    import matplotlib

    vmax, why = hm.vmax(scale)
    fig = Figure(figsize=(10, 6.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    cmap = matplotlib.colormaps["inferno"].with_extremes(bad="#d9d9d9")
    x0 = (hm.time_edges_ns[0] - hm.record_start_ns) / 1e9
    x1 = (hm.time_edges_ns[-1] - hm.record_start_ns) / 1e9
    n_addr = hm.values.shape[1]
    img = ax.imshow(np.ma.masked_invalid(hm.values.T), origin="lower", aspect="auto", interpolation="nearest",
                    extent=(x0, x1, 0, n_addr), cmap=cmap, norm=Normalize(0.0, vmax))
    for b in hm.bands[1:]:
        ax.axhline(b.first, color="white", linewidth=1.2, linestyle="--")
    if len(hm.bands) > 1:
        for b in hm.bands:
            ax.text(0.005, (b.first + b.count) / n_addr - 0.005, f"[{b.start:#x}, {b.end:#x}) {format_size(b.size)}",
                    transform=ax.transAxes, ha="left", va="top", fontsize=7, color="white",
                    bbox=dict(facecolor="black", alpha=0.55, edgecolor="none", pad=1.5))
    pos, labels = _address_ticks(hm)
    ax.set_yticks(pos, labels, fontsize=8, family="monospace")
    ax.set_xlabel("time since the record started (s)")
    kind = "virtual address" if hm.pid is not None else "address"
    ax.set_ylabel(kind + (" (gaps without regions left out, dashed lines)" if len(hm.bands) > 1 else ""))
    who = f"target {hm.target_id}" + (f", pid {hm.pid}" if hm.pid is not None else "")
    iv = hm.intervals
    how = (f"sampling {_fmt_time(iv.sample_us * 1000)}, aggregation {_fmt_time(iv.aggr_us * 1000)}"
           if iv is not None else "intervals unknown")
    ax.set_title(title or f"DAMON access heatmap ({who}; {how})", fontsize=11)
    cb = fig.colorbar(img, ax=ax, pad=0.02)
    per = hm.max_samples
    label = "accesses per aggregation interval"
    if per is not None:
        label += f"\n(sampling checks that found an access, of {_fmt_num(per)})"
    cb.set_label(label)
    note = f"colour scale: 0 to {_fmt_num(vmax)} ({why}); grey: not monitored"
    fig.text(0.01, 0.01, note, fontsize=8, color="#444444")
    fig.subplots_adjust(left=0.17, right=0.98, top=0.93, bottom=0.12)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def render_heatmap_png(hm: Heatmap, path: str | os.PathLike, scale: str = "observed", title: str | None = None) -> None:
    """Write :func:`heatmap_png_bytes` to ``path`` atomically."""
    write_bytes_atomic(path, heatmap_png_bytes(hm, scale, title))
