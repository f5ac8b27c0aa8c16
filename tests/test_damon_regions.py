"""DAMON's region operations (csrc/damon.c) against the kernel's rules, and a first context."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acma.damon import Attrs, Context, Target
from acma.damon.regions import Regions, three_regions
from acma.errors import ConfigError
from acma.mm.guest import Guest, GuestConfig

P = 4096
MIB = 1 << 20


def regions_strategy():
    sizes = st.lists(st.integers(1, 64), min_size=1, max_size=30)
    gaps = st.lists(st.integers(0, 3), min_size=30, max_size=30)
    counts = st.lists(st.integers(0, 20), min_size=30, max_size=30)

    @st.composite
    def build(draw):
        sz, gp, nr, last = draw(sizes), draw(gaps), draw(counts), draw(counts)
        ranges, at = [], 0
        for i, s in enumerate(sz):
            at += gp[i] * P
            ranges.append((at, at + s * P))
            at += s * P
        r = Regions.from_ranges(ranges, cap=16 * len(ranges) + 64)
        r.nr_accesses[:] = nr[: len(r)]
        r.last_nr_accesses[:] = last[: len(r)]
        return r
    return build()


def _valid(r: Regions):
    assert (r.end > r.start).all() and (r.start[1:] >= r.end[:-1]).all()


@given(regions_strategy(), st.integers(0, 20), st.integers(1, 256))
def test_merge_follows_the_rules(r, thres, limit_pages):
    before_total = int(r.sizes().sum())
    old = [(int(a), int(b), int(n), int(l)) for a, b, n, l in zip(r.start, r.end, r.nr_accesses, r.last_nr_accesses)]
    r.merge(thres, limit_pages * P)
    _valid(r)
    assert int(r.sizes().sum()) == before_total
    # merged regions only join adjacent pieces; nothing crosses a gap
    gaps = {b for (_, b, _, _), (a2, _, _, _) in zip(old, old[1:]) if b != a2}
    for s, e in zip(r.start, r.end):
        assert not any(s < g < e for g in gaps)
    # ages: reset when nr moved by more than thres or exactly one of nr/last is zero
    if len(r) == len(old):
        for (a, b, n, l), age in zip(old, r.age):
            assert age == (0 if abs(n - l) > thres or ((n == 0) != (l == 0)) else 1)


@given(regions_strategy(), st.sampled_from([2, 3]), st.integers(0, 2**64 - 1))
def test_split_keeps_coverage_and_10_to_90_percent(r, nr_subs, seed):
    before = [(int(a), int(b)) for a, b in zip(r.start, r.end)]
    rng = np.array([seed], np.uint64)
    r.split(nr_subs, P, rng)
    _valid(r)
    for a, b in before:
        inside = [(int(s), int(e)) for s, e in zip(r.start, r.end) if a <= s < b]
        assert inside[0][0] == a and inside[-1][1] == b and len(inside) <= nr_subs
        assert all(e - s >= P and (s - a) % P == 0 for s, e in inside)


def test_split_at_merge_two_evenly_split():
    r = Regions.from_ranges([(0, 10 * P)], cap=32)
    r.nr_accesses[:] = 7
    r.split_at(0, 3 * P)
    assert list(zip(r.start, r.end)) == [(0, 3 * P), (3 * P, 10 * P)] and list(r.nr_accesses) == [7, 7]
    r.nr_accesses[1] = 0
    r.merge_two(0)
    assert len(r) == 1 and r.nr_accesses[0] == (7 * 3 + 0 * 7) // 10
    r.evenly_split(0, 3, P)
    assert list(zip(r.start, r.end)) == [(0, 3 * P), (3 * P, 6 * P), (6 * P, 10 * P)]
    with pytest.raises(ConfigError):
        r.split_at(0, 0)
    with pytest.raises(ConfigError):
        r.evenly_split(0, 100, P)


def test_set_ranges_stretches_drops_and_fills():
    r = Regions.from_ranges([(0, 4 * P), (6 * P, 8 * P), (20 * P, 24 * P)], cap=32)
    r.nr_accesses[:] = [1, 2, 3]
    out = r.set_ranges([(P, 10 * P)], P)
    assert [(int(a), int(b)) for a, b in zip(out.start, out.end)] == [(P, 4 * P), (4 * P, 6 * P), (6 * P, 10 * P)]
    assert list(out.nr_accesses) == [1, 0, 2]   # the hole is a fresh region; (20, 24) is gone
    with pytest.raises(ConfigError):
        r.set_ranges([(5 * P, 6 * P), (P, 2 * P)], P)


def test_three_regions_cut_at_the_two_biggest_gaps():
    vmas = [(0, 10 * P), (100 * P, 110 * P), (112 * P, 120 * P), (1000 * P, 1001 * P)]
    assert three_regions(vmas, P) == [(0, 10 * P), (100 * P, 120 * P), (1000 * P, 1001 * P)]
    with pytest.raises(ConfigError):
        three_regions(vmas[:2], P)


@pytest.mark.parametrize("kwargs,field", [
    (dict(min_nr_regions=2), "attrs.min_nr_regions"), (dict(min_nr_regions=20, max_nr_regions=10), "attrs.max_nr_regions"),
    (dict(sample_us=200_000), "attrs.aggr_us"), (dict(min_region_sz=3000), "attrs.min_region_sz"),
    (dict(sample_us=-1), "attrs.sample_us")])
def test_damon_set_attrs_validation(kwargs, field):
    with pytest.raises(ConfigError) as e:
        Attrs(**kwargs).validate()
    assert e.value.field == field


def test_context_finds_the_hot_region_and_keeps_invariants():
    g = Guest(GuestConfig(size="1 GiB", swap=0, seed=4))
    p = g.spawn()
    hot, _idle, cold = p.mmap(32 * MIB), p.mmap(32 * MIB), p.mmap(128 * MIB)
    hot.set_rate(400.0)
    cold.set_rate(0.05)
    ctx = Context(g, "vaddr", [Target(process=p)], Attrs(min_nr_regions=10, max_nr_regions=200))
    ctx.run_until(5_000_000)
    snaps = ctx.targets[0].record.snapshots
    assert len(snaps) == 50
    for s in snaps:
        assert 10 // 2 <= len(s.start) <= 200 * 3
        assert (s.nr_accesses <= 20).all()
        assert (s.start[1:] >= s.end[:-1]).all()
    last = snaps[-1]
    mid = (last.start + last.end) // 2
    in_hot = (mid >= hot.start) & (mid < hot.end)
    assert last.nr_accesses[in_hot].mean() > 10          # p = 1 - exp(-2) per sample
    assert last.nr_accesses[~in_hot].mean() < 1
    g.check()


@pytest.mark.damo
def test_context_record_is_damo_readable(tmp_path):
    import shutil
    import subprocess

    from acma.io.damo_record import read_record, write_record
    g = Guest(GuestConfig(size="256 MiB", block_size="4 MiB", swap=0, seed=2))
    p = g.spawn()
    a, _, c = p.mmap(16 * MIB), p.mmap(8 * MIB), p.mmap(32 * MIB)
    a.set_rate(100.0)
    c.set_rate(1.0)
    ctx = Context(g, "vaddr", [Target(process=p)])
    ctx.run_until(3_000_000)
    path = tmp_path / "acma.data"
    write_record(path, ctx.damon_record())
    back = read_record(path)
    assert len(back.targets[0].snapshots) == 30
    damo = shutil.which("damo")
    assert damo, "damo 3.4.3 is a test dependency: pip install '.[test]'"
    out = subprocess.run([damo, "report", "wss", "--input", str(path), "--raw_number"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "# <percentile> <wss>" in out.stdout
