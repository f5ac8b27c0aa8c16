"""The C sampling loop equals its pure-Python and NumPy references when nothing faults."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from acma._reference.damon import sample_np, sample_py
from acma.damon.regions import Regions
from acma.mm.guest import Guest, GuestConfig
from acma._core import ffi, lib

MIB = 1 << 20


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), rng=st.integers(0, 2**64 - 1), rates=st.lists(
    st.sampled_from([0.0, 0.5, 20.0, 300.0]), min_size=3, max_size=3), nreg=st.integers(1, 40),
    nsamples=st.integers(1, 30))
def test_sampler_equals_references(seed, rng, rates, nreg, nsamples):
    g = Guest(GuestConfig(size="128 MiB", block_size="4 MiB", swap=0, seed=seed))
    p = g.spawn()
    vmas = [p.mmap(s * MIB) for s in (4, 8, 4)]
    for v in vmas:
        v.set_rate(1e6)
    g.run_until(100_000)
    for v, r in zip(vmas, rates):
        v.set_rate(r)
    lo, hi = vmas[0].start, vmas[-1].end
    edges = np.linspace(lo, hi, nreg + 1).astype(np.uint64) // 4096 * 4096
    edges = np.unique(edges)
    regions = Regions.from_ranges(list(zip(edges[:-1], edges[1:])), cap=64)
    t0, sample = g.now_us, 5000
    table = [(v.start, v.end, v.gbase, v.lambda_at) for v in sorted(vmas, key=lambda v: v.start)]
    # references first: they only read the access model
    want, rng_py = sample_py(seed, table, regions.start.tolist(), regions.end.tolist(), [0] * len(regions), rng, t0,
                             sample, nsamples)
    offs = t0 + sample * np.arange(nsamples + 1)
    lam = np.array([[v.lambda_at(int(t)) for t in offs] for v in sorted(vmas, key=lambda v: v.start)])
    got_np, rng_np = sample_np(seed, [t[0] for t in table], [t[1] for t in table], [t[2] for t in table],
                               lam[:, :-1], lam[:, 1:], regions.start, regions.end, rng, nsamples)
    # then C
    vs = np.ascontiguousarray([t[0] for t in table], np.uint64)
    ve = np.ascontiguousarray([t[1] for t in table], np.uint64)
    vg = np.ascontiguousarray([t[2] for t in table], np.uint64)
    ct = ffi.new("acma_damon_target[1]")
    ct[0].regions = regions.c
    ct[0].vma_start, ct[0].vma_end, ct[0].vma_gbase = (ffi.cast("uint64_t *", ffi.from_buffer(a)) for a in (vs, ve, vg))
    ct[0].nr_vmas = 3
    st_ = np.array([rng], np.uint64)
    mx = ffi.new("uint32_t *")
    assert lib.acma_damon_sample(g.core._m, 0, ct, 1, sample, nsamples, ffi.cast("uint64_t *", ffi.from_buffer(st_)),
                                 mx) == 0
    assert regions.nr_accesses.tolist() == want == got_np.tolist()
    assert int(st_[0]) == rng_py == rng_np
