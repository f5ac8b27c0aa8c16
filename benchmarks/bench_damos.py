"""Cost of applying 5 DAMOS schemes to 1000 regions in one aggregation, split into the C part
(acma_damos_apply's page walks) and the Python part (the engine's quota, score, filter and stat
logic and the cffi glue), and the C walk against its pure-Python reference in the same run.

Run: PYTHONPATH=. pytest benchmarks/bench_damos.py -m benchmark -p no:cacheprovider
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from acma._reference import damos_ops as ref
from acma.damon.context import Attrs, Context, Target
from acma.damon.regions import Regions
from acma.damos.engine import Engine
from acma._core import ffi, lib
from acma.damos.handlers import build_request, c_apply
from acma.damos.scheme import AccessPattern, Filter, Quota, Scheme
from acma.mm import memcg
from acma.mm.guest import Guest, GuestConfig

NR_REGIONS = 1000
MiB = 1 << 20


def schemes():
    """Five schemes every region matches (the worst case: each region visited by all five);
    their effects are idempotent, so every round does the same work."""
    every = AccessPattern()
    young_anon = (Filter("young", matching=True, allow=False), Filter("anon", matching=True, allow=True))
    return [Scheme(every, "stat"),
            Scheme(every, "stat", filters=young_anon),
            Scheme(every, "lru_prio", filters=(Filter("active", matching=True, allow=False),)),
            Scheme(every, "lru_deprio", quota=Quota(sz=1 << 40, reset_interval_ms=1000, weight_age=1)),
            Scheme(every, "migrate_cold", target_nid=-1)]


@pytest.fixture(scope="module")
def setup():
    g = Guest(GuestConfig(size="1 GiB", swap=0, seed=1))
    p = g.spawn()
    v = p.mmap(768 * MiB)
    v.set_rate(1e6)
    g.run_until(100_000)
    v.set_rate(1.0)
    ctx = Context(g, "paddr", [Target(ranges=[(0, g.nr_pages * 4096)])],
                  Attrs(min_nr_regions=10, max_nr_regions=NR_REGIONS), record=False)
    edges = np.linspace(0, g.nr_pages * 4096, NR_REGIONS + 1).astype(np.uint64) // 4096 * 4096
    ctx.targets[0].regions = Regions.from_ranges(list(zip(edges[:-1].tolist(), edges[1:].tolist())),
                                                 cap=4 * NR_REGIONS)
    # neighbours differ in last_nr_accesses, so the walk's merge-back keeps all 1000 regions
    ctx.targets[0].regions.last_nr_accesses[:] = np.arange(NR_REGIONS) % 2
    eng = Engine(ctx, schemes(), attach=False)
    return g, ctx, eng


def apply_all(eng, ctx):
    for st in eng.states:
        st.next_apply_sis = 0
    eng.apply(ctx)


def test_engine_5_schemes_1000_regions(benchmark, setup):
    g, ctx, eng = setup
    eng.seconds_in_handlers = eng.seconds_total = 0.0
    benchmark(apply_all, eng, ctx)
    total = benchmark.stats.stats.min         # the machine is shared: the least disturbed round
    handler_share = eng.seconds_in_handlers / eng.seconds_total
    assert len(ctx.targets[0].regions) == NR_REGIONS
    c_only = min(c_part_seconds(g, ctx, eng) for _ in range(5))
    benchmark.extra_info.update(regions=len(ctx.targets[0].regions), schemes=len(eng.states),
                                handler_share=handler_share, c_seconds=c_only, total_seconds=total)
    print(f"\nper aggregation (best round): total {total * 1e3:.1f} ms; the C calls alone "
          f"{c_only * 1e3:.1f} ms ({c_only / total * 100:.0f} %), Python {(total - c_only) * 1e3:.1f} ms; "
          f"time in handlers (mean) {handler_share * 100:.0f} %")


def c_part_seconds(g, ctx, eng) -> float:
    """The C calls alone for one aggregation's work: every region with every scheme's action
    and ops filters, prebuilt arguments, timed around the calls only."""
    r = ctx.targets[0].regions
    nmc = memcg.vma_cgroup_ids(g)
    reqs = []
    for st in eng.states:
        for s, e in zip(r.start.tolist(), r.end.tolist()):
            q, keep = build_request(g, "paddr", st.scheme.action, [s // 4096], [(e - s) // 4096], [0],
                                    st.ops_filters, st.ops_default_reject, nmc)
            reqs.append((ffi.new("acma_damos_req *", q[0]), keep))   # a copy: the cache reuses q
    res = ffi.new("acma_damos_res *")
    m = g.core._m
    t0 = time.perf_counter()
    for q, _ in reqs:
        lib.acma_damos_apply(m, q, res)
    return time.perf_counter() - t0


def test_c_walk_vs_python_reference(benchmark, setup):
    """One scheme's walk (stat, anon filter) over all memory: C against the reference."""
    g, ctx, eng = setup
    nmc = memcg.vma_cgroup_ids(g)
    filters = (Filter("anon", matching=True, allow=True),)
    pages = g.core.pages()
    young = np.zeros(g.nr_pages, bool)
    py = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        ref.walk("paddr", [(0, g.nr_pages)], None, pages, filters, True, [0], nmc, {}, young)
        py = min(py, time.perf_counter() - t0)
    benchmark(c_apply, g, "paddr", "stat", [0], [g.nr_pages], [0], filters, True, nmc)
    c = benchmark.stats.stats.min
    benchmark.extra_info.update(python_seconds=py, c_seconds=c, ratio=py / c)
    print(f"\nwalk of {g.nr_pages} pages: Python {py * 1e3:.1f} ms, C {c * 1e3:.2f} ms, x{py / c:.0f}")
