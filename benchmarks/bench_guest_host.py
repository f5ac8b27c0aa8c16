"""One free page reporting pass and one full compaction on a 64 GiB guest (C), and both
against their pure-Python references on a 1 GiB guest in the same run (the references walk
every page in Python, so a 64 GiB reference run would take minutes).

Run: pytest benchmarks/bench_guest_host.py -m benchmark --benchmark-json=.benchmarks/guest_host.json
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from acma._reference import compaction as rc
from acma._reference.reporting import ReportingRef
from acma.mm.compaction import Compaction
from acma.mm.guest import Guest, GuestConfig
from acma.mm.reporting import PageReporting

S = 1_000_000


def fresh(size: str) -> Guest:
    return Guest(GuestConfig(size=size, swap=0, seed=1))


def fragmented_by_faults(size: str) -> Guest:
    """Two VMAs fault their pages in at random interleaving (the C event loop); the second is
    unmapped: half the memory free in holes all over."""
    g = fresh(size)
    gib = g.nr_pages * 4096 >> 30
    p = g.spawn()
    a, b = p.mmap(f"{gib * 1024 * 7 // 16} MiB"), p.mmap(f"{gib * 1024 * 7 // 16} MiB")
    for v in (a, b):
        v.set_rate(100.0)    # first touches spread over ~50 ms: the two VMAs' faults interleave
    g.run_until(S)
    for v in (a, b):
        v.set_rate(0)
    b.resize(0)
    return g


def reporting_pass(g: Guest) -> int:
    rep = PageReporting(g, report=lambda p, o: True)
    g.core.run(g.now_us + 2 * S)
    return rep.run_due()


@pytest.mark.parametrize("size", ["64 GiB"])
def test_reporting_pass_c(benchmark, size):
    """A fresh guest (all free): the first pass reports budget + 1 lists of 32 blocks per list."""
    guests = []
    benchmark.extra_info.update(kernel=f"one page reporting pass, {size}", impl="C")
    benchmark.pedantic(reporting_pass, setup=lambda: (guests.append(fresh(size)), ((guests[-1],), {}))[1],
                       rounds=3, iterations=1)


@pytest.mark.parametrize("size", ["64 GiB"])
def test_compaction_c(benchmark, size):
    g = fragmented_by_faults(size)
    c = Compaction(g)
    benchmark.extra_info.update(kernel=f"compact_memory, {size}, half free in holes", impl="C")
    benchmark.pedantic(c.compact_memory, rounds=1, iterations=1)
    benchmark.extra_info["migrated"] = c.counters["compact_migrated"]


def lockstep_fragmented(size: str, seed: int = 1):
    """The same fragmented 1 GiB guest in C and in the reference (faults mirrored one by one)."""
    g = Guest(GuestConfig(size=size, swap=0, seed=1))
    ref = ReportingRef.from_guest(g)
    for z in range(2):
        lo = g.core.zone_info(z)
        ref.wmark[z] = (lo["min"], lo["low"], lo["high"])
    p = g.spawn()
    n = g.nr_pages * 7 // 16
    a, b = p.mmap(n * 4096, explicit=True), p.mmap(n * 4096, explicit=True)
    keep = np.random.default_rng(seed).random(2 * n) < 0.5
    ia = ib = 0
    for k in keep[: 2 * n]:
        v, off, tag = (a, ia, (0, ia)) if k else (b, ib, (1, ib))
        if off >= n:
            continue
        v.touch(off, True)
        ref.map_page(0, tag)
        if k:
            ia += 1
        else:
            ib += 1
    ptes = b.ptes()
    b.resize(0)
    for pfn in ptes[ptes < 0x80000000].tolist():
        ref.unmap_page(pfn)
    return g, ref


def test_reference_ratios(benchmark):
    """C against the pure-Python references on identical 1 GiB states, timed in the same run."""
    out = {}
    g = fresh("1 GiB")
    ref = ReportingRef.from_guest(g)
    for z in range(2):
        lo = g.core.zone_info(z)
        ref.wmark[z] = (lo["min"], lo["low"], lo["high"])
    rep = PageReporting(g, report=lambda p, o: True)
    ref.enable(9, 32, 2 * S)
    g.core.run(2 * S)
    ref.now = 2 * S
    t0 = time.perf_counter()
    rep.run_due()
    t1 = time.perf_counter()
    ref.run_pass(lambda p, o: True)
    t2 = time.perf_counter()
    out["reporting_c_s"], out["reporting_py_s"] = t1 - t0, t2 - t1
    g, ref = lockstep_fragmented("1 GiB")
    c = Compaction(g)
    t0 = time.perf_counter()
    c.compact_zone(0)
    t1 = time.perf_counter()
    rc.compact_zone(ref, 0, False, 20)
    t2 = time.perf_counter()
    out["compaction_c_s"], out["compaction_py_s"] = t1 - t0, t2 - t1
    out["compaction_migrated"] = c.counters["compact_migrated"]
    out["reporting_ratio"] = out["reporting_py_s"] / out["reporting_c_s"]
    out["compaction_ratio"] = out["compaction_py_s"] / out["compaction_c_s"]
    benchmark.extra_info.update(out)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(out)
