"""The evidence of docs/real-workloads.md and the recording figures of BENCHMARKS.md.

    PYTHONPATH=. python benchmarks/real_workloads_study.py [--scale medium] [--out DIR]

For each real workload: record it (qemu-user + acma_pages, window 1e5 instructions), time the
native run, profile the trace, then replay it (retimed to 10 ns per instruction, repeated to at
least 10 s) under DAMON vaddr and paddr with the default intervals (5 ms / 100 ms) and score
DAMON against the trace (acma.tracing.accuracy). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import tempfile
import time

import numpy as np

from acma.damon import Attrs, Context, Target
from acma.damos.engine import Engine
from acma.damos.modules.common import guest_system_ram
from acma.damos.modules.reclaim import ReclaimParams
from acma.damos.modules.reclaim import build as build_reclaim
from acma.mm.guest import GuestConfig
from acma.sim import Simulation
from acma.tracing.accuracy import TraceAccuracyTracker
from acma.tracing.analysis import profile_trace
from acma.tracing.programs import WORKLOADS, prepare_inputs, record_workload
from acma.tracing.record import RecordOptions, resolve_program
from acma.tracing.replay import TraceTruth, load_replay_trace, trace_length_us
from acma.workloads.trace import read_trace

REPLAY_TICK_NS = 10.0
# DAMON_RECLAIM scaled to 10-20 s programs: min_age 1 s (not 120 s); watermarks that keep it
# active at any free-memory rate (the default ones are also run, for the last column)
RECLAIM_SCALED = {"min_age": 1_000_000, "wmarks_high": 1000, "wmarks_mid": 1000, "wmarks_low": 0}
MIN_REPLAY_S = 10.0
SPARK = " .:-=+*#%@"


def native_seconds(name: str, directory: str, scale: str, runs: int = 3) -> float:
    wl = WORKLOADS[name]
    d = prepare_inputs(wl, directory, scale)
    env = RecordOptions().environment()
    exe = resolve_program(wl.program, env, d)
    best = math.inf
    for _ in range(runs):
        with open(os.path.join(d, wl.stdin or os.devnull), "rb") as stdin:
            t = time.perf_counter()
            subprocess.run([exe, *wl.args], cwd=d, env=env, stdin=stdin, stdout=subprocess.DEVNULL, check=True)
            best = min(best, time.perf_counter() - t)
    return best


def sparkline(values: np.ndarray, width: int = 40) -> str:
    if not len(values):
        return ""
    cells = np.array_split(values, min(width, len(values)))
    v = np.array([c.mean() for c in cells])
    top = v.max() or 1
    return "".join(SPARK[min(len(SPARK) - 1, int(x / top * (len(SPARK) - 1) + 0.5))] for x in v)


def damon_accuracy(path: str, ops: str):
    tr0 = read_trace(path)
    once_s = trace_length_us(load_replay_trace(path, REPLAY_TICK_NS)) / 1e6
    repeat = max(1, math.ceil(MIN_REPLAY_S / once_s))
    tr = load_replay_trace(path, REPLAY_TICK_NS, repeat)
    length = trace_length_us(tr)
    sim = Simulation(GuestConfig(size="1 GiB", swap="0", seed=0))
    run = sim.add_trace(tr, name="real", vma_gap_pages=16)
    proc = next(iter(run.processes.values()))
    target = Target(process=proc) if ops == "vaddr" else Target(ranges=[(0, sim.guest.nr_pages * 4096)])
    ctx = Context(sim.guest, ops, [target], Attrs(sample_us=5000, aggr_us=100_000, ops_update_us=1_000_000))
    tk = TraceAccuracyTracker(TraceTruth([run])).attach(ctx)
    t = time.perf_counter()
    sim.run(max(100_000, length // 100_000 * 100_000), advance=ctx.run_until)
    wall = time.perf_counter() - t
    del tr0
    return tk.summary(0, since_us=1_000_000), repeat, length / 1e6, wall, len(proc.vmas)


def damon_reclaim(path: str, guest_size: str = "256 MiB", **params):
    """(mean anon kB, pswpout, major faults, DAMOS stats) without and with DAMON_RECLAIM (the
    acma.damos.modules.reclaim preset with ``params``) on the replayed program."""
    tr = load_replay_trace(path, REPLAY_TICK_NS, cover_us=int(MIN_REPLAY_S * 1e6))
    length = trace_length_us(tr)
    out = []
    for on in (False, True):
        sim = Simulation(GuestConfig(size=guest_size, swap="1 GiB", seed=0), sample_interval_us=100_000)
        sim.add_trace(tr, name="real")
        setup = build_reclaim(ReclaimParams(**params), guest_system_ram(sim.guest))
        ctx = Context(sim.guest, "paddr", [Target(ranges=list(setup.regions))], setup.attrs)
        eng = Engine(ctx, list(setup.schemes)) if on else None
        r = sim.run(max(100_000, length // 100_000 * 100_000), advance=ctx.run_until)
        out.append((float(np.mean(r.series["anon_kb"])), r.vmstat["pswpout"], r.vmstat["pgmajfault"],
                    eng.stats()[0] if eng else None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="acma-real-")
    print(f"load before: {os.getloadavg()}")
    rec_rows, shape_rows, acc_rows, reclaim_rows = [], [], [], []
    for name in WORKLOADS:
        if not WORKLOADS[name].available():
            print(f"skip {name}: not installed")
            continue
        rec = record_workload(name, out, a.scale)
        nat = native_seconds(name, out, a.scale)
        rec_rows.append(f"| {name} | {rec.stats.instructions / 1e6:,.0f} M | {nat:.3f} s | {rec.wall_s:.2f} s "
                        f"({rec.wall_s / nat:.0f}x) | {rec.instructions_per_s / 1e6:,.0f} M/s | "
                        f"{rec.file_bytes / 1e3:,.0f} kB | {rec.bytes_per_1e8_instructions / 1e3:,.1f} kB |")
        tr = read_trace(rec.path)
        prof = profile_trace(tr)
        mid = profile_trace(tr, 1_000_000)
        coarse = profile_trace(tr, 10_000_000)
        per = prof.pages_per_window
        top = coarse.pages_per_window.max() * 4096 / 2**20
        shape_rows.append(f"| {name} | {prof.footprint_bytes / 2**20:.2f} MiB | {np.median(per):.0f} / "
                          f"{np.percentile(per, 90):.0f} / {per.max()} | {len(prof.phases)} / {len(mid.phases)} / "
                          f"{len(coarse.phases)} | `{sparkline(coarse.pages_per_window.astype(float))}` "
                          f"(top {top:.1f} MiB) |")
        for ops in ("vaddr", "paddr"):
            s, rep, length_s, wall, _nvmas = damon_accuracy(rec.path, ops)
            acc_rows.append(f"| {name} | {ops} | {rep}x, {length_s:.1f} s | {s.windows} | {s.mean_regions:.0f} | "
                            f"{s.wss_error_mean:.2f} | {s.wss_bias:+.2f} | {s.hot_precision:.2f} / {s.hot_recall:.2f} | "
                            f"{s.cold_precision:.2f} / {s.cold_recall:.2f} | {s.heatmap_error:.3f} | {wall:.1f} s |")
        (base, _, _, _), (kept, swapped, majflt, st) = damon_reclaim(rec.path, **RECLAIM_SCALED)
        _, (kept_default, _, _, st_default) = damon_reclaim(rec.path, min_age=RECLAIM_SCALED["min_age"])
        reclaim_rows.append(f"| {name} | {base / 1024:.2f} MiB | {kept / 1024:.2f} MiB | {1 - kept / base:.1%} | "
                            f"{swapped} | {majflt} | {st.sz_tried / 2**20:,.0f} MiB / {st.sz_applied / 2**20:.2f} MiB | "
                            f"{st.qt_exceeds} | {1 - kept_default / base:.1%} ({st_default.nr_tried} tried) |")
        print(f"done {name}", flush=True)
    print(f"load after: {os.getloadavg()}")
    print("\n| program | instructions | native | qemu-user + plugin | recording rate | trace file | per 1e8 instr |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rec_rows))
    print("\n| program | footprint | pages per 1e5-instr window (median / p90 / max) | phases at 1e5 / 1e6 / 1e7-instr "
          "windows | pages per 1e7-instr window over time |")
    print("|---|---|---|---|---|")
    print("\n".join(shape_rows))
    print("\n| program | ops | replay | windows | regions | WSS error | WSS bias | hot precision / recall | "
          "cold precision / recall | heatmap error | sim wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(acc_rows))
    print("\n| program | mean anon, no scheme | with DAMON_RECLAIM | saved | pswpout | major faults | "
          "tried / paged out | quota exceeded | saved with default watermarks |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(reclaim_rows))


if __name__ == "__main__":
    main()
