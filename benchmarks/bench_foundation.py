"""The foundation's hot kernels, each against its pure-Python or NumPy reference in one run.

Run: pytest benchmarks -m benchmark --benchmark-json=.benchmarks/foundation.json
then: python benchmarks/report.py .benchmarks/foundation.json
Each benchmark stores its unit of work in extra_info so the report can give rates and ratios.
"""

from __future__ import annotations

import numpy as np
import pytest

from acma._reference.access import VmaModel, YoungModel, first_arrival_after_np
from acma._reference.pageblocks import scan_pageblocks_np
from acma._reference.replay import replay_np
from acma.mm.guest import Guest, GuestConfig

MIB, GIB = 1 << 20, 1 << 30
SAMPLES = 10_000


@pytest.fixture(scope="module")
def sampled():
    """A 4 GiB guest fully faulted, every bit cleared at t0, then 5 ms of touches."""
    g = Guest(GuestConfig(size="4 GiB", swap=0, seed=1))
    v = g.spawn().mmap(3 * GIB)
    v.set_rate(1e6)
    g.run_until(100_000)
    v.set_rate(20.0)
    ptes = v.ptes()
    g.young_pfns(ptes)
    t0 = g.now_us
    g.run_until(t0 + 5000)
    rng = np.random.default_rng(0)
    pfns = np.ascontiguousarray(rng.choice(ptes, SAMPLES, replace=False).astype(np.uint32))
    return g, v, pfns, t0


def test_young_c(benchmark, sampled):
    g, _, pfns, _ = sampled
    benchmark.extra_info.update(kernel="test-and-clear", impl="C", work=SAMPLES, unit="pages")
    benchmark(g.core.young_pfns, pfns, False)


def test_young_reference(benchmark, sampled):
    g, v, pfns, t0 = sampled
    pages = g.core.pages()
    vm = VmaModel.new(v.gbase, v.npages, 0)
    vm.bp = [(0, 0.0, 0.0), (100_000, v.lambda_at(100_000), 20.0 / 1e6)]
    model = YoungModel(g.config.seed, [vm], pages["state"], pages["flags"], pages["owner"],
                       [t0] * g.nr_pages, g.now_us)
    assert model.young_pfns(pfns, False) == g.core.young_pfns(pfns, False).tolist()
    benchmark.extra_info.update(kernel="test-and-clear", impl="pure Python", work=SAMPLES, unit="pages")
    benchmark(model.young_pfns, pfns, False)


def test_young_numpy(benchmark, sampled):
    g, v, pfns, t0 = sampled
    owner = g.core.pages()["owner"][pfns].astype(np.uint64)
    x0, x1 = v.lambda_at(t0), v.lambda_at(g.now_us)
    assert ((first_arrival_after_np(g.config.seed, owner, x0) <= x1) == g.core.young_pfns(pfns, False)).all()
    benchmark.extra_info.update(kernel="test-and-clear", impl="NumPy", work=SAMPLES, unit="pages")
    benchmark(lambda: first_arrival_after_np(g.config.seed, owner, x0) <= x1)


@pytest.fixture(scope="module")
def big_guest():
    """256 GiB guest: half its memory faulted by a workload, kernel pages sprinkled over it."""
    g = Guest(GuestConfig(size="256 GiB", swap=0, seed=2))
    v = g.spawn().mmap(128 * GIB)
    v.set_rate(1e6)
    g.run_until(1000)
    return g


def test_pageblocks_c(benchmark, big_guest):
    g = big_guest
    words = ((g.nr_pages >> 9) + 63) // 64
    ff, mo = np.zeros(words, np.uint64), np.zeros(words, np.uint64)
    benchmark.extra_info.update(kernel="2 MiB pageblock search (256 GiB)", impl="C", work=g.nr_pages, unit="pages")
    benchmark(g.core.scan_pageblocks_into, ff, mo)


def test_pageblocks_numpy(benchmark, big_guest):
    g = big_guest
    pb = g.core.pageblocks()
    ff, mo, nf, nm = scan_pageblocks_np(pb["free"], pb["movable"])
    assert (nf, nm) == g.core.scan_pageblocks()[2:]
    benchmark.extra_info.update(kernel="2 MiB pageblock search (256 GiB)", impl="NumPy", work=g.nr_pages,
                                unit="pages")
    benchmark(scan_pageblocks_np, pb["free"], pb["movable"])


N_EVENTS = 20_000_000


@pytest.fixture(scope="module")
def trace_guest():
    """A trace over 8192 present pages (a real program's footprint is MiBs): 20 M events."""
    g = Guest(GuestConfig(size="1 GiB", swap=0, seed=3))
    v = g.spawn().mmap(32 * MIB, explicit=True)
    for off in range(v.npages):
        v.touch(off)
    rng = np.random.default_rng(1)
    t = np.arange(N_EVENTS, dtype=np.uint64) // 16
    gw = ((v.gbase + rng.integers(0, v.npages, N_EVENTS, dtype=np.uint64)) << np.uint64(1)) | \
        rng.integers(0, 2, N_EVENTS, dtype=np.uint64)
    return g, v, t, gw


def test_replay_c(benchmark, trace_guest):
    g, _, t, gw = trace_guest
    benchmark.extra_info.update(kernel="trace replay", impl="C", work=N_EVENTS, unit="events")

    def replay():
        g.core.set_trace(t, gw)
        g.core.run(g.now_us + int(t[-1]) + 1)
    benchmark.pedantic(replay, rounds=5, iterations=1)


def test_replay_numpy(benchmark, trace_guest):
    g, v, t, gw = trace_guest
    flags = g.core.pages()["flags"]
    ptes = v.ptes()
    benchmark.extra_info.update(kernel="trace replay", impl="NumPy", work=N_EVENTS, unit="events")
    benchmark.pedantic(replay_np, args=(ptes, v.gbase, flags, t, gw, 2**63), rounds=2, iterations=1)
