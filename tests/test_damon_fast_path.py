"""The fast paths of DAMON's sampling give the slow paths' answers bit for bit.

touched_between (access.c) reads fewer cells than first_arrival_after but must answer exactly
"first touch after x0 <= x1"; acma_kdamond_run (whole aggregation intervals in C) must leave
a context, the guest and PSI exactly as stepping one aggregation at a time in Python does.
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from acma._core import lib
from acma._reference import access as ra
from acma.damon import Attrs, Context, IntervalsGoal, Target
from acma.mm.guest import Guest, GuestConfig

MIB = 1 << 20
U64 = 2**64 - 1
X0S = st.one_of(st.floats(-3.0, 1e6, allow_nan=False), st.integers(0, 10**6).map(float),
                st.floats(1e6, 1e15, allow_nan=False),
                st.sampled_from([0.0, -0.0, 1.0, math.nan, math.inf, 2.0**52, 2.0**52 - 1, 1e300]))
DELTAS = st.one_of(st.floats(0.0, 5.0), st.floats(-1.0, 0.0), st.integers(0, 4).map(float),
                   st.sampled_from([0.0, 5e-5, 0.5, 1.0, 1e6, math.inf, math.nan, 1e300]))


@settings(max_examples=600, deadline=None)
@given(seed=st.integers(0, U64), gvpn=st.integers(0, U64), x0=X0S, d=DELTAS)
def test_touched_between_equals_first_arrival(seed, gvpn, x0, d):
    x1 = x0 + d
    want = ra.touched_between(seed, gvpn, x0, x1)
    assert bool(lib.acma_touched_between(seed, gvpn, x0, x1)) == want
    if x0 < ra.LAMBDA_MAX:       # from exactly a touch, and up to exactly a touch
        f = ra.first_arrival_after(seed, gvpn, x0)
        assert lib.acma_touched_between(seed, gvpn, x0, f) == 1
        assert lib.acma_touched_between(seed, gvpn, f, f) == 0


def build(seed, ops, pressure, attrs, hook):
    g = Guest(GuestConfig(size="256 MiB", block_size="4 MiB", swap="64 MiB", seed=seed))
    p = g.spawn()
    vmas = [p.mmap(s * MIB) for s in ((64, 96, 160) if pressure else (8, 24, 64))]
    for v, r in zip(vmas, (50.0, 2.0, 0.05)):
        v.set_rate(r)
    if ops == "vaddr":
        target = Target(process=p)
    elif ops == "fvaddr":
        target = Target(process=p, ranges=[(vmas[1].start, vmas[1].end), (vmas[2].start, vmas[2].end)])
    else:
        target = Target(ranges=[(0, g.nr_pages * 4096)])
    ctx = Context(g, ops, [target], attrs, record=False)
    if hook:
        ctx.after_aggregation.append(lambda c: None)
    return g, vmas, ctx


def state(g, ctx):
    r = ctx.targets[0].regions
    return (g.core.save(), [a.tobytes() for a in (r.start, r.end, r.sampling_addr, r.nr_accesses,
                                                   r.last_nr_accesses, r.age)],
            ctx.rng.tobytes(), ctx.passed, ctx.next_aggregation, ctx.split_rotation, ctx.sz_limit,
            ctx.last_nr_regions, ctx.aggregations, ctx.nr_regions_sum, ctx.attrs,
            g.psi.total_us("some"), g.psi.total_us("full"))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), ops=st.sampled_from(["vaddr", "fvaddr", "paddr"]), pressure=st.booleans(),
       min_nr=st.integers(3, 12), extra=st.integers(0, 120), sample_ms=st.sampled_from([1, 5]),
       aggr_x=st.integers(1, 25), ops_update_ms=st.sampled_from([50, 700, 60_000]), tune=st.booleans(),
       stops=st.lists(st.integers(1, 3_000_000), min_size=1, max_size=4))
def test_aggregations_in_c_equal_stepping(seed, ops, pressure, min_nr, extra, sample_ms, aggr_x, ops_update_ms,
                                          tune, stops):
    goal = IntervalsGoal(access_bp=400, aggrs=3, min_sample_us=500, max_sample_us=20_000) if tune else IntervalsGoal()
    attrs = Attrs(sample_us=sample_ms * 1000, aggr_us=sample_ms * 1000 * aggr_x, ops_update_us=ops_update_ms * 1000,
                  min_nr_regions=min_nr, max_nr_regions=min_nr + extra, intervals_goal=goal)
    out, in_c = [], []
    for hook in (False, True):           # a hook makes run_until step in Python
        g, vmas, ctx = build(seed, ops, pressure, attrs, hook)
        run_in_c = ctx._run_in_c
        ctx._run_in_c = lambda n: (in_c.append((hook, n)), run_in_c(n))
        for i, t in enumerate(sorted(stops)):
            ctx.run_until(t)
            vmas[0].set_rate(10.0 * i)   # a phase change between calls
        out.append(state(g, ctx))
    assert out[0] == out[1]
    assert all(not hook for hook, _ in in_c)
    assert in_c or out[0][8] <= 1 or tune
    assert np.isfinite(out[0][12])
