#!/usr/bin/env python3
"""How DAMON's accuracy and cost move with the number of regions and the intervals.

Runs a grid (max_nr_regions x sampling/aggregation intervals x workload shape) on a simulated
guest, scores every aggregation window against the ground truth with
:class:`acma.damon.accuracy.AccuracyTracker`, and prints a markdown table (the one in
docs/damon-accuracy.md). A script, not a pytest benchmark:

    PYTHONPATH=. python benchmarks/damon_accuracy_study.py              # the full grid, ~7 min on 2 cores
    PYTHONPATH=. python benchmarks/damon_accuracy_study.py --quick      # a small smoke run

Workload shapes (one process, its VMAs, rates in touches per page per second):

- ``split`` (a hot/cold split that never changes): a 64 MiB heap at 10/s, then 128 VMAs of
  64 MiB in a fixed shuffled order, 16 hot (2000/s), 32 warm (20/s) and 80 cold (0.1/s), then
  1 GiB idle;
- ``moving`` (a moving hot set): a 64 MiB heap at 10/s, then 128 VMAs of 64 MiB, all cold
  (0.1/s) but for 16 consecutive ones (1 GiB, 2000/s); every 2 s the hot window moves up by
  4 VMAs (256 MiB), wrapping around.

VMAs are 2 MiB apart (acma's mmap layout), so regions that span VMAs also span small gaps.

Each run: the guest runs 2 s alone (pages fault in), then DAMON monitors for ``--seconds``;
the first 5 s of monitoring are left out of the accuracy numbers (warm-up). Cost is the wall
(and CPU) time of the monitored run per simulated second, without the tracker's own time;
"guest only" is the same run without DAMON. CPU time is the steadier number on a shared
machine.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from acma.damon import Attrs, Context, Target  # noqa: E402
from acma.damon.accuracy import AccuracyTracker  # noqa: E402
from acma.mm.guest import Guest, GuestConfig  # noqa: E402

MIB, GIB = 1 << 20, 1 << 30
PRE_US = 2_000_000
SKIP_US = 5_000_000
PHASE_US = 2_000_000            # a multiple of every aggregation interval of the grid
HOT, WARM, COLD, HEAP = 2000.0, 20.0, 0.1, 10.0
PIECE, NR_PIECES = 64 * MIB, 128                  # 8 GiB in 64 MiB VMAs (2 MiB gaps between)
NR_HOT, NR_WARM, SHAPE_SEED = 16, 32, 12345       # split: 1 GiB hot, 2 GiB warm, 5 GiB cold
WINDOW_PIECES, MOVE_PIECES = 16, 4                # moving: 1 GiB hot, moves 256 MiB a phase

REGIONS = [(3, 10), (10, 100), (10, 1000)]                       # (min_nr_regions, max_nr_regions)
INTERVALS = [(1_000, 20_000), (5_000, 100_000), (20_000, 400_000)]  # (sample_us, aggr_us)


def shape_split(g: Guest):
    """Scattered hot, warm and cold pieces that never change: DAMON has to find 16 hot and
    32 warm islands among 80 cold ones."""
    p = g.spawn("split")
    p.mmap(64 * MIB).set_rate(HEAP)
    rates = np.array([HOT] * NR_HOT + [WARM] * NR_WARM + [COLD] * (NR_PIECES - NR_HOT - NR_WARM))
    np.random.default_rng(SHAPE_SEED).shuffle(rates)
    for r in rates:
        p.mmap(PIECE).set_rate(float(r))
    p.mmap(1 * GIB)                                   # idle
    return p, lambda k: None


def shape_moving(g: Guest):
    """A 1 GiB hot window sliding over 8 GiB of cold memory, 256 MiB every 2 s."""
    p = g.spawn("moving")
    p.mmap(64 * MIB).set_rate(HEAP)
    pieces = [p.mmap(PIECE) for _ in range(NR_PIECES)]

    def phase(k: int) -> None:
        first = (k * MOVE_PIECES) % NR_PIECES
        hot = {(first + i) % NR_PIECES for i in range(WINDOW_PIECES)}
        for i, v in enumerate(pieces):
            v.set_rate(HOT if i in hot else COLD)
    phase(0)
    return p, phase


SHAPES = {"split": shape_split, "moving": shape_moving}


def run(shape: str, regions, intervals, seconds: int, guest_size: str, seed: int, sample_pages: int | None,
        damon: bool = True) -> dict:
    g = Guest(GuestConfig(size=guest_size, swap=0, seed=seed))
    p, phase = SHAPES[shape](g)
    g.run_until(PRE_US)
    t0 = g.now_us
    ctx = tr = None
    if damon:
        mn, mx = regions
        s_us, a_us = intervals
        ctx = Context(g, "vaddr", [Target(process=p)],
                      Attrs(sample_us=s_us, aggr_us=a_us, min_nr_regions=mn, max_nr_regions=mx), record=False)
        tr = AccuracyTracker(sample_pages=sample_pages, seed=seed).attach(ctx)
    wall, cpu = time.perf_counter(), time.process_time()
    k = 0
    for t in range(PHASE_US, seconds * 1_000_000 + 1, PHASE_US):
        (ctx or g).run_until(t0 + t)
        k += 1
        phase(k)
    (ctx or g).run_until(t0 + seconds * 1_000_000)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {"shape": shape, "regions": regions, "intervals": intervals,
           "cost": (wall - (tr.seconds if tr else 0.0)) / seconds,
           "cpu": (cpu - (tr.cpu_seconds if tr else 0.0)) / seconds,
           "tracker": (tr.seconds if tr else 0.0) / seconds}
    if tr:
        s = tr.summary(since_us=t0 + SKIP_US)
        out.update(s.as_dict())
        out["checks"] = s.mean_regions * 1e6 / intervals[0]
    return out


def fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def table(rows: list[dict]) -> str:
    head = ("| shape | min..max regions | sample / aggr | avg regions | WSS err mean | WSS err median | WSS bias "
            "| hot P | hot R | cold P | cold R | heatmap err | checks/s | wall s / sim s | CPU s / sim s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        mn, mx = r["regions"]
        s_us, a_us = r["intervals"]
        lines.append(f"| {r['shape']} | {mn}..{mx} | {s_us // 1000} ms / {a_us // 1000} ms | {r['mean_regions']:.1f} "
                     f"| {fmt(r['wss_error_mean'])} | {fmt(r['wss_error_median'])} | {fmt(r['wss_bias'], 3)} "
                     f"| {fmt(r['hot_precision'])} | {fmt(r['hot_recall'])} | {fmt(r['cold_precision'])} "
                     f"| {fmt(r['cold_recall'])} | {fmt(r['heatmap_error'])} | {r['checks']:,.0f} | {fmt(r['cost'])} "
                     f"| {fmt(r['cpu'])} |")
    return "\n".join(lines)


def wss_table(rows: list[dict]) -> str:
    """Where the working-set error comes from, as shares of the true working set (means over
    windows): bias = extra + outside - missed."""
    head = "| shape | min..max regions | sample / aggr | WSS bias | missed | extra | outside |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        mn, mx = r["regions"]
        s_us, a_us = r["intervals"]
        lines.append(f"| {r['shape']} | {mn}..{mx} | {s_us // 1000} ms / {a_us // 1000} ms | {fmt(r['wss_bias'])} "
                     f"| {fmt(r['wss_missed'])} | {fmt(r['wss_extra'])} | {fmt(r['wss_outside'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60, help="simulated seconds of monitoring per run")
    ap.add_argument("--guest", default="16 GiB", help="guest size")
    ap.add_argument("--shapes", default="split,moving")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample-pages", type=int, default=4096,
                    help="pages per target for the realised working set (0: every page)")
    ap.add_argument("--quick", action="store_true", help="20 s runs, the middle row of the grid only")
    a = ap.parse_args(argv)
    shapes = a.shapes.split(",")
    grid_r, grid_i, seconds = REGIONS, INTERVALS, a.seconds
    if a.quick:
        grid_r, grid_i, seconds = [REGIONS[1]], [INTERVALS[1]], 20
    sp = a.sample_pages or None
    rows, base = [], {}
    for shape in shapes:
        b = run(shape, None, (0, 0), seconds, a.guest, a.seed, sp, damon=False)
        base[shape] = (b["cost"], b["cpu"])
        for rg in grid_r:
            for iv in grid_i:
                r = run(shape, rg, iv, seconds, a.guest, a.seed, sp)
                rows.append(r)
                print(f"# {shape} {rg} {iv}: {r['wss_error_mean']:.3f} {r['hot_precision']:.3f} "
                      f"{r['hot_recall']:.3f} {r['heatmap_error']:.4f} bias {r['wss_bias']:.3f} "
                      f"regions {r['mean_regions']:.1f} cost {r['cost']:.3f} wall s/s {r['cpu']:.3f} CPU s/s "
                      f"tracker {r['tracker']:.3f} s/s",
                      file=sys.stderr, flush=True)
    print(f"guest {a.guest}, {seconds} simulated s per run (first {SKIP_US // 10**6} s of monitoring not scored), "
          f"seed {a.seed}, realised WSS from {a.sample_pages or 'all'} sampled pages; "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print()
    print(table(rows))
    print()
    print(wss_table(rows))
    print()
    for shape, (w, c) in base.items():
        print(f"guest only ({shape}): {w:.3f} wall s, {c:.3f} CPU s per simulated s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
