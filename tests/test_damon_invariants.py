"""DAMON contexts under hypothesis: after every aggregation the regions are sorted, disjoint,
inside their target, within [min, max] in number, and nr_accesses never exceeds the samples of
one aggregation interval; attribute changes while running convert results as the kernel does."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acma.damon import Attrs, Context, Target
from acma.errors import ConfigError
from acma.mm.guest import Guest, GuestConfig

MIB = 1 << 20


def build(seed, rates, ops, attrs):
    g = Guest(GuestConfig(size="256 MiB", block_size="4 MiB", swap="64 MiB", seed=seed))
    p = g.spawn()
    vmas = [p.mmap(s * MIB) for s in (8, 24, 64)]
    for v, r in zip(vmas, rates):
        v.set_rate(r)
    if ops == "vaddr":
        target = Target(process=p)
    elif ops == "fvaddr":
        target = Target(process=p, ranges=[(vmas[1].start, vmas[1].end), (vmas[2].start, vmas[2].end)])
    else:
        target = Target(ranges=[(0, g.nr_pages * 4096)])
    return g, Context(g, ops, [target], attrs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), rates=st.lists(st.sampled_from([0.0, 0.2, 5.0, 100.0, 2000.0]), min_size=3,
                                                  max_size=3),
       ops=st.sampled_from(["vaddr", "fvaddr", "paddr"]), min_nr=st.integers(3, 20), extra=st.integers(0, 300),
       sample_ms=st.sampled_from([1, 5, 10]), aggr_x=st.integers(1, 30))
def test_regions_invariants(seed, rates, ops, min_nr, extra, sample_ms, aggr_x):
    attrs = Attrs(sample_us=sample_ms * 1000, aggr_us=sample_ms * 1000 * aggr_x, min_nr_regions=min_nr,
                  max_nr_regions=min_nr + extra)
    g, ctx = build(seed, rates, ops, attrs)
    span = [(int(r[0]), int(r[1])) for r in zip(ctx.targets[0].regions.start, ctx.targets[0].regions.end)]
    lo, hi = span[0][0], span[-1][1]
    seen = []

    def check(c):
        r = c.targets[0].regions
        n = len(r)
        assert (r.end > r.start).all() and (r.start[1:] >= r.end[:-1]).all()
        assert r.start[0] >= lo and r.end[-1] <= hi
        assert (r.nr_accesses <= c.attrs.aggr_samples).all()
        # merging brings the count to max_nr_regions; damon_apply_min_nr_regions may then add a
        # piece per target range when min is close to max and sizes do not divide evenly (so
        # does the kernel's)
        assert n <= max(c.attrs.max_nr_regions, c.attrs.min_nr_regions + len(span))
        # damon_apply_min_nr_regions' postcondition: no region above the (aligned) size limit
        assert (r.sizes() <= c.sz_limit).all()
        assert n >= min(c.attrs.min_nr_regions, int(r.sizes().sum()) // c.sz_limit)
        seen.append(n)

    ctx.after_aggregation.append(check)
    ctx.run_until(min(2_000_000, 40 * attrs.aggr_us))
    assert seen
    g.check()


def test_paddr_samples_only_lru_pages():
    g, ctx = build(1, [0.0, 0.0, 0.0], "paddr", Attrs())
    ctx.run_until(1_000_000)
    snaps = ctx.targets[0].record.snapshots
    assert all(int(s.nr_accesses.max()) == 0 for s in snaps)   # nothing touched: nothing sampled as accessed


def test_set_attrs_converts_results():
    """damon_update_monitoring_result ([N]): counts scale by the max_nr_accesses ratio,
    age by the aggregation-interval ratio; mid-window nr_accesses restart at zero."""
    g, ctx = build(2, [100.0, 0.5, 0.0], "vaddr", Attrs())
    ctx.run_until(1_000_000)
    r = ctx.targets[0].regions
    last, age = r.last_nr_accesses.copy(), r.age.copy()
    ctx.set_attrs(Attrs(sample_us=5000, aggr_us=200_000))
    assert (r.last_nr_accesses == last.astype(np.uint64) * 10000 // 20 * 40 // 10000).all()
    assert (r.age == age.astype(np.uint64) * 100_000 // 200_000).all()
    assert (r.nr_accesses == 0).all()
    with pytest.raises(ConfigError) as e:
        ctx.set_attrs(Attrs(min_nr_regions=1))
    assert e.value.field == "attrs.min_nr_regions"
    assert ctx.attrs.aggr_us == 200_000            # a refused change changes nothing
    ctx.run_until(2_000_000)
    assert (ctx.targets[0].regions.nr_accesses.max() <= 40)


def test_intervals_autotuning_moves_toward_the_goal():
    from acma.damon import IntervalsGoal
    g, ctx = build(3, [0.0, 0.0, 0.01], "vaddr",
                   Attrs(intervals_goal=IntervalsGoal(access_bp=400, aggrs=3, min_sample_us=5000,
                                                      max_sample_us=10_000_000)))
    ctx.run_until(5_000_000)
    assert ctx.attrs.sample_us > 5000              # almost nothing accessed: intervals grow
    assert ctx.attrs.aggr_us == ctx.attrs.sample_us * 20
