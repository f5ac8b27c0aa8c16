"""The lazy access model: right statistics, one consistent realisation, determinism."""

import math

import numpy as np
import pytest

from acma._core import first_arrival_after
from acma.mm.guest import Guest, GuestConfig

MIB = 1 << 20


def _guest(seed=1, swap=0):
    return Guest(GuestConfig(size="256 MiB", block_size="4 MiB", swap=swap, seed=seed))


@pytest.mark.parametrize("rate,window_ms", [(1.0, 100), (10.0, 50), (0.2, 1000), (100.0, 5)])
def test_young_fraction_matches_poisson(rate, window_ms):
    """After a clear, the share of young pages after w seconds is 1 - exp(-rate * w)."""
    g = _guest()
    v = g.spawn().mmap(64 * MIB)
    v.set_rate(1e6)          # fault everything in at once
    g.run_until(100_000)
    assert v.info()["present"] == v.npages
    v.set_rate(rate)
    pfns = v.ptes()
    g.young_pfns(pfns, clear=True)
    g.run_until(g.now_us + window_ms * 1000)
    young = g.young_pfns(pfns, clear=False)
    expect = 1 - math.exp(-rate * window_ms / 1000)
    n = len(pfns)
    assert abs(young.mean() - expect) < 5 * math.sqrt(expect * (1 - expect) / n) + 1e-9


def test_answers_do_not_depend_on_who_asks_first():
    """Two guests with one seed: query pages in opposite orders, get the same bits."""
    a, b = _guest(7), _guest(7)
    va, vb = (g.spawn().mmap(16 * MIB) for g in (a, b))
    for g, v in ((a, va), (b, vb)):
        v.set_rate(2.0)
        g.run_until(5_000_000)
    pa, pb = va.ptes(), vb.ptes()
    assert (pa == pb).all()
    present = pa[pa < 0x80000000]
    ya = a.young_pfns(present)
    yb = b.young_pfns(present[::-1])[::-1]
    assert (ya == yb).all()


def test_young_bits_agree_with_ground_truth():
    """A page is young iff the truth says it was touched since its last clear."""
    g = _guest(3)
    v = g.spawn().mmap(8 * MIB)
    v.set_rate(1e6)
    g.run_until(10_000)
    v.set_rate(3.0)
    pfns = v.ptes()
    g.young_pfns(pfns)       # clear at t0
    t0 = g.now_us
    g.run_until(t0 + 300_000)
    truth = v.truth_accessed(t0, g.now_us)
    assert (g.young_pfns(pfns, clear=False) == truth).all()


def test_first_arrival_properties():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        g, x = int(rng.integers(0, 2**40)), float(rng.uniform(0, 1e4))
        f = first_arrival_after(5, g, x)
        assert f > x
        y = (x + f) / 2
        assert first_arrival_after(5, g, y) == f  # nothing hides between x and f
    gaps = [first_arrival_after(9, g, 100.0) - 100.0 for g in range(20000)]
    assert abs(np.mean(gaps) - 1.0) < 0.03      # Exp(1) on the lambda axis


def test_idle_bitmap_reads_and_clears():
    g = _guest()
    v = g.spawn().mmap(4 * MIB)
    v.set_rate(1e6)
    g.run_until(10_000)
    v.set_rate(0.0)
    pf = v.ptes()
    start = int(pf.min())
    span = int(pf.max()) - start + 1
    first = np.unpackbits(g.idle_bitmap(start, span).view(np.uint8), bitorder="little")[:span]
    # just faulted: young, so not idle; the read marked them idle
    assert first[pf - start].sum() == 0
    second = np.unpackbits(g.idle_bitmap(start, span).view(np.uint8), bitorder="little")[:span]
    assert second[pf - start].all()
    v.touch(3)
    third = np.unpackbits(g.idle_bitmap(start, span).view(np.uint8), bitorder="little")[:span]
    assert not third[pf[3] - start] and third[pf - start].sum() == len(pf) - 1


def test_seed_fixes_everything():
    def run(seed):
        g = _guest(seed, swap="256 MiB")
        p = g.spawn()
        a, b = p.mmap(100 * MIB), p.mmap(200 * MIB)
        a.set_rate(10.0)
        b.set_rate(0.3)
        g.run_until(20_000_000)
        return g.vmstat(), a.ptes().tobytes() + b.ptes().tobytes(), g.psi.format_proc()
    assert run(11) == run(11)
    assert run(11) != run(12)


def test_lambda_saturates_instead_of_hanging():
    """Found by the reference tests: x >= 2**64 used to loop forever in C."""
    assert first_arrival_after(1, 2, 2e19) == 1e300
    assert first_arrival_after(1, 2, float(2**52)) == 1e300
    assert first_arrival_after(1, 2, float(2**52) - 1) < 1e300
