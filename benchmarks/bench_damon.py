"""DAMON's sampling loop: per-sample cost against the number of regions and the guest size,
and the C loop against its pure-Python and NumPy references in the same run.

Run: pytest benchmarks/bench_damon.py -m benchmark --benchmark-json=.benchmarks/damon.json
ACMA_BENCH_BIG=1 adds the 1 TiB guest (minutes to fault in, ~11 GB of host memory).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from acma._core import ffi, lib
from acma._reference.damon import sample_np, sample_py
from acma.damon.regions import Regions
from acma.mm.guest import Guest, GuestConfig

SIZES = ["4 GiB", "64 GiB"] + (["1 TiB"] if os.environ.get("ACMA_BENCH_BIG") == "1" else [])
_guests: dict = {}


def guest(size: str):
    """A guest whose memory is 7/8 mapped by three VMAs (hot, warm, cold), all faulted in."""
    if size not in _guests:
        if size == "1 TiB":
            _guests.clear()      # make room; the smaller guests are quick to rebuild
        g = Guest(GuestConfig(size=size, swap=0, seed=1))
        p = g.spawn()
        gib = g.nr_pages * 4096 >> 30
        vmas = [p.mmap(f"{gib * 1024 // 8} MiB"), p.mmap(f"{gib * 1024 // 4} MiB"), p.mmap(f"{gib * 1024 // 2} MiB")]
        for v in vmas:
            v.set_rate(1e9)
        g.run_until(1_000_000)
        for v, r in zip(vmas, (20.0, 0.5, 0.01)):
            v.set_rate(r)
        _guests[size] = (g, sorted(vmas, key=lambda v: v.start))
    return _guests[size]


def regions_over(vmas, n: int) -> Regions:
    """n regions over the VMAs themselves (not the gaps), each VMA split evenly by its size."""
    total = sum(v.end - v.start for v in vmas)
    ranges = []
    for v in vmas:
        k = max(1, round(n * (v.end - v.start) / total))
        edges = np.unique(np.linspace(v.start, v.end, k + 1).astype(np.uint64) // 4096 * 4096)
        ranges += list(zip(edges[:-1], edges[1:]))
    return Regions.from_ranges(ranges, cap=len(ranges) + 8)


def c_sampler(g, vmas, regions, nsamples):
    vs, ve, vg = (np.ascontiguousarray(a, np.uint64) for a in (
        [v.start for v in vmas], [v.end for v in vmas], [v.gbase for v in vmas]))
    ct = ffi.new("acma_damon_target[1]")
    ct[0].regions = regions.c
    ct[0].vma_start, ct[0].vma_end, ct[0].vma_gbase = (ffi.cast("uint64_t *", ffi.from_buffer(a)) for a in (vs, ve, vg))
    ct[0].nr_vmas = len(vmas)
    rng = np.array([7], np.uint64)
    mx = ffi.new("uint32_t *")

    def run():
        assert lib.acma_damon_sample(g.core._m, 0, ct, 1, 5000, nsamples, ffi.cast("uint64_t *", ffi.from_buffer(rng)),
                                     mx) == 0
    return run, (vs, ve, vg, rng)


@pytest.mark.parametrize("nreg", [10, 100, 1000])
@pytest.mark.parametrize("size", SIZES)
def test_sample_c(benchmark, size, nreg):
    g, vmas = guest(size)
    regions = regions_over(vmas, nreg)
    nsamples = max(20, 20_000 // nreg)
    run, _keep = c_sampler(g, vmas, regions, nsamples)
    benchmark.extra_info.update(kernel=f"DAMON sampling, {nreg} regions, {size}", impl="C",
                                work=nsamples * len(regions), unit="region-samples")
    benchmark.pedantic(run, rounds=5, iterations=1)


@pytest.mark.parametrize("nreg", [100, 1000])
def test_sample_references(benchmark, nreg):
    g, vmas = guest("4 GiB")
    regions = regions_over(vmas, nreg)
    nsamples = 20
    table = [(v.start, v.end, v.gbase, v.lambda_at) for v in vmas]
    benchmark.extra_info.update(kernel=f"DAMON sampling, {nreg} regions, 4 GiB", impl="pure Python",
                                work=nsamples * len(regions), unit="region-samples")
    benchmark.pedantic(sample_py, args=(1, table, regions.start.tolist(), regions.end.tolist(), [0] * len(regions),
                                        7, g.now_us, 5000, nsamples), rounds=2, iterations=1)


@pytest.mark.parametrize("nreg", [100, 1000])
def test_sample_numpy(benchmark, nreg):
    g, vmas = guest("4 GiB")
    regions = regions_over(vmas, nreg)
    nsamples = max(20, 20_000 // nreg)
    offs = g.now_us + 5000 * np.arange(nsamples + 1)
    lam = np.array([[v.lambda_at(int(t)) for t in offs] for v in vmas])
    args = (1, [v.start for v in vmas], [v.end for v in vmas], [v.gbase for v in vmas], lam[:, :-1], lam[:, 1:],
            regions.start, regions.end, 7, nsamples)
    benchmark.extra_info.update(kernel=f"DAMON sampling, {nreg} regions, 4 GiB", impl="NumPy",
                                work=nsamples * len(regions), unit="region-samples")
    benchmark.pedantic(sample_np, args=args, rounds=3, iterations=1)


def test_one_hour_64gib(benchmark):
    """One simulated hour of a 64 GiB guest under a vaddr context at default attributes.

    Nothing needs to see each aggregation (no hook, no snapshots), so whole runs of aggregation
    intervals go to C (acma_kdamond_run); the mean region count comes from the context itself.
    The guest's construction and its 12.6 M faults are included, and timed alone too.
    """
    from acma.damon import Context, Target
    state = {}

    def build():
        g = Guest(GuestConfig(size="64 GiB", swap="8 GiB", seed=1))
        p = g.spawn()
        for s, r in (("8 GiB", 20.0), ("16 GiB", 0.5), ("24 GiB", 0.01)):
            p.mmap(s).set_rate(r)
        return g, p

    def hour():
        t0 = time.process_time()
        g, p = build()
        ctx = Context(g, "vaddr", [Target(process=p)], record=False)
        ctx.run_until(3_600_000_000)
        state.update(mean_regions=round(ctx.mean_nr_regions(), 1), cpu_s=round(time.process_time() - t0, 2))
        t0 = time.process_time()
        g, p = build()                 # the same guest and workload, unmonitored
        g.run_until(3_600_000_000)
        state.update(unmonitored_cpu_s=round(time.process_time() - t0, 2))
    benchmark.pedantic(hour, rounds=1, iterations=1)
    benchmark.extra_info.update(kernel="1 simulated hour, 64 GiB, DAMON vaddr defaults", impl="C", work=3600,
                                unit="sim-s", **state)
