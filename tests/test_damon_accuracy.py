"""DAMON against the ground truth (acma.damon.accuracy): definitions, known workloads, invariants."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acma.damon import Attrs, Context, Target
from acma.damon.accuracy import AccuracyTracker
from acma.errors import ConfigError
from acma.io.damo_record import Snapshot
from acma.mm.guest import Guest, GuestConfig

P = 4096
MIB = 1 << 20


def hot_cold_idle(seed=4, size="1 GiB", hot_rate=1000.0, cold_rate=0.05):
    """A process whose three VMAs are hot, idle and cold (plus in-use tails left unused)."""
    g = Guest(GuestConfig(size=size, swap=0, seed=seed))
    p = g.spawn()
    hot, idle, cold = p.mmap(32 * MIB), p.mmap(32 * MIB), p.mmap(128 * MIB)
    hot.set_rate(hot_rate)
    cold.set_rate(cold_rate)
    return g, p, (hot, idle, cold)


def finite_in_unit(x):
    return math.isnan(x) or 0.0 <= x <= 1.0


def test_definitions_on_a_handmade_snapshot():
    """Every number of a window, by hand: one hot VMA reported hot, one cold VMA reported hot
    too, the idle VMA reported cold, and a region over the gap between two VMAs."""
    g, p, (hot, idle, cold) = hot_cold_idle(cold_rate=0.0)
    g.run_until(1_000_000)
    n, s = 20, 5_000
    regions = [(hot.start, hot.end, 20, 0), (idle.start, idle.end, 0, 0),
               (idle.end, cold.start, 20, 0),                # the gap between idle and cold
               (cold.start, cold.end, 20, 0)]
    snap = Snapshot.from_regions(1_000_000 - n * s, 1_000_000, regions)
    tr = AccuracyTracker(hot_threshold=0.5)
    w = tr.evaluate_snapshot(g, "vaddr", Target(process=p), snap, s)
    hp, ip, cp = hot.npages, idle.npages, cold.npages
    e_hot = n * -math.expm1(-1000.0 * s / 1e6)              # expected accessed samples of a hot page
    gap = cold.start - idle.end
    assert (w.nr_samples, w.start_us, w.end_us, w.nr_regions) == (n, 900_000, 1_000_000, 4)
    assert w.pages == hp + ip + cp
    assert w.est_wss == (hp + cp) * P + gap and w.est_wss_outside == gap
    assert w.true_wss == hp * P                                # 100 touches expected per hot page
    assert w.expected_wss == pytest.approx(hp * P * -math.expm1(-100.0))
    assert (w.hot_tp, w.hot_fp, w.hot_fn, w.hot_tn) == (hp, cp, 0, ip)
    assert w.hot_precision == pytest.approx(hp / (hp + cp)) and w.hot_recall == 1.0
    assert w.cold_precision == 1.0 and w.cold_recall == pytest.approx(ip / (ip + cp))
    assert w.heatmap_abs == pytest.approx(hp * (20 - e_hot) + cp * 20)
    assert w.heatmap_error == pytest.approx((hp * (20 - e_hot) + cp * 20) / (20 * (hp + ip + cp)))
    assert w.wss_error == pytest.approx(((hp + cp) * P + gap - hp * P) / (hp * P))
    assert w.wss_missed == 0 and w.wss_extra == cp * P         # the cold VMA counted, untouched


def test_a_rate_change_inside_the_window_is_followed_sample_by_sample():
    g, p, (hot, idle, cold) = hot_cold_idle(size="256 MiB", cold_rate=0.0)
    g.run_until(50_000)
    hot.set_rate(100.0)
    g.run_until(100_000)
    snap = Snapshot.from_regions(0, 100_000, [(hot.start, hot.end, 0, 0)])
    w = AccuracyTracker().evaluate_snapshot(g, "vaddr", Target(process=p), snap, 5_000)
    e = 10 * -math.expm1(-1000.0 * 0.005) + 10 * -math.expm1(-100.0 * 0.005)
    assert w.heatmap_abs == pytest.approx(hot.npages * e, rel=1e-9)
    assert w.expected_wss == pytest.approx(hot.npages * P * -math.expm1(-(50.0 + 5.0)), rel=1e-9)


def test_uncovered_pages_count_as_never_accessed():
    g, p, (hot, idle, cold) = hot_cold_idle()
    g.run_until(500_000)
    snap = Snapshot.from_regions(400_000, 500_000, [(idle.start, idle.end, 0, 0)])
    w = AccuracyTracker().evaluate_snapshot(g, "vaddr", Target(process=p), snap, 5_000)
    assert w.hot_fn == hot.npages and w.hot_tp == 0 and w.est_wss == 0 and w.wss_error == -1.0
    assert w.wss_missed == w.true_wss and w.wss_extra == 0


def test_hot_cold_idle_is_measured_accurately():
    g, p, (hot, idle, cold) = hot_cold_idle()
    ctx = Context(g, "vaddr", [Target(process=p)], Attrs(min_nr_regions=10, max_nr_regions=200))
    tr = AccuracyTracker().attach(ctx)
    ctx.run_until(5_000_000)
    assert len(tr.windows) == 50 and tr.seconds > 0
    s = tr.summary(since_us=1_000_000)
    assert s.windows == 40 and s.wss_windows == 40
    assert s.wss_error_mean < 0.05 and s.wss_error_median < 0.05
    assert min(s.hot_precision, s.hot_recall, s.cold_precision, s.cold_recall) > 0.97
    assert s.heatmap_error < 0.03
    for w in tr.windows:
        assert w.expected_wss == pytest.approx(w.true_wss, rel=0.02)
    # the realised working set misses nothing DAMON could see: hot is 32 MiB plus a few cold pages
    assert all(32 * MIB <= w.true_wss < 33 * MIB for w in tr.windows)


def test_sampled_truth_is_the_exact_realisation():
    """With a page sample as large as the VMAs the per-page lookups (and their memo) must give
    truth_accessed's answer exactly; a smaller sample stays close."""
    g, p, _ = hot_cold_idle(cold_rate=2.0)
    ctx = Context(g, "vaddr", [Target(process=p)], Attrs(min_nr_regions=10, max_nr_regions=100))
    exact, full, small = AccuracyTracker(), AccuracyTracker(sample_pages=1 << 26), AccuracyTracker(sample_pages=3000)
    for tr in (exact, full, small):
        tr.attach(ctx)
    ctx.run_until(2_000_000)
    assert [w.true_wss for w in exact.windows] == [w.true_wss for w in full.windows]
    for a, b in zip(exact.windows, small.windows):
        assert b.true_wss == pytest.approx(a.true_wss, rel=0.05)
        assert (a.hot_tp, a.heatmap_abs, a.est_wss) == (b.hot_tp, b.heatmap_abs, b.est_wss)


def test_snapshots_scored_after_the_run_match_the_hook():
    g, p, _ = hot_cold_idle(size="256 MiB", cold_rate=1.0)
    ctx = Context(g, "vaddr", [Target(process=p)], Attrs(sample_us=2_000, aggr_us=40_000))
    live = AccuracyTracker().attach(ctx)
    ctx.run_until(1_000_000)
    later = AccuracyTracker()
    for snap in ctx.targets[0].record.snapshots:
        later.evaluate_snapshot(g, "vaddr", ctx.targets[0], snap, 2_000)
    assert later.windows == live.windows


def test_a_moving_hot_set_is_found_again():
    g = Guest(GuestConfig(size="512 MiB", swap=0, seed=7))
    p = g.spawn()
    vmas = [p.mmap(32 * MIB) for _ in range(6)]
    def phase(k):
        for i, v in enumerate(vmas):
            v.set_rate(800.0 if i == k else 0.02)
    phase(1)
    ctx = Context(g, "vaddr", [Target(process=p)], Attrs(min_nr_regions=10, max_nr_regions=100))
    tr = AccuracyTracker().attach(ctx)
    ctx.run_until(2_000_000)
    phase(4)
    ctx.run_until(4_000_000)
    before, after = tr.summary(since_us=1_000_000, until_us=2_000_000), tr.summary(since_us=3_000_000)
    assert before.windows == after.windows == 10
    for s in (before, after):
        assert min(s.hot_precision, s.hot_recall) > 0.95 and s.wss_error_median < 0.1
    # the truth moved with the phase: hot pages in the last window are VMA 4's
    assert tr.windows[-1].hot_tp + tr.windows[-1].hot_fn == vmas[4].npages


def test_paddr_scores_physical_pages():
    g, p, (hot, idle, cold) = hot_cold_idle(size="256 MiB")
    g.run_until(1_000_000)                                    # pages fault in first
    ctx = Context(g, "paddr", [Target(ranges=[(0, 256 * MIB)])], Attrs(min_nr_regions=10, max_nr_regions=200))
    tr = AccuracyTracker().attach(ctx)
    sampled = AccuracyTracker(sample_pages=40_000).attach(ctx)
    ctx.run_until(4_000_000)
    s = tr.summary(since_us=2_500_000)
    present = hot.info()["present"] + cold.info()["present"]
    assert tr.windows[-1].pages == present                   # mapped pages of rate VMAs only
    assert s.hot_recall > 0.9 and s.hot_precision > 0.9 and s.cold_recall > 0.99
    assert s.wss_error_median < 0.15
    t = sampled.summary(since_us=2_500_000)
    assert t.hot_recall == pytest.approx(s.hot_recall, abs=0.1)


def test_bad_parameters_are_refused():
    with pytest.raises(ConfigError):
        AccuracyTracker(hot_threshold=0)
    with pytest.raises(ConfigError):
        AccuracyTracker(sample_pages=0)
    g, p, _ = hot_cold_idle(size="256 MiB")
    snap = Snapshot.from_regions(0, 100_000, [(p.vmas[0].start, p.vmas[0].end, 1, 0)])
    with pytest.raises(ConfigError):
        AccuracyTracker().evaluate_snapshot(g, "paddr", Target(process=p), snap, 5_000)
    with pytest.raises(ConfigError):
        AccuracyTracker().evaluate_snapshot(g, "vaddr", Target(process=p), snap, 0)
    ctx = Context(g, "vaddr", [Target(process=p)])
    tr = AccuracyTracker().attach(ctx)
    with pytest.raises(ConfigError):
        tr.attach(ctx)


def test_fvaddr_scores_only_the_fixed_ranges():
    g, p, (hot, idle, cold) = hot_cold_idle(size="512 MiB")
    half = hot.start + 16 * MIB
    ctx = Context(g, "fvaddr", [Target(process=p, ranges=[(half, hot.end), (idle.start, cold.end)])],
                  Attrs(min_nr_regions=10, max_nr_regions=100))
    tr = AccuracyTracker().attach(ctx)
    ctx.run_until(2_000_000)
    w = tr.windows[-1]
    assert w.pages == (16 * MIB + idle.npages * P + cold.npages * P) // P
    assert w.hot_tp + w.hot_fn == 16 * MIB // P                # half of the hot VMA is in range
    s = tr.summary(since_us=500_000)
    assert min(s.hot_precision, s.hot_recall) > 0.97 and s.wss_error_median < 0.05


def _run(seed, thres, sample_pages, intervals, max_nr, ops):
    g = Guest(GuestConfig(size="256 MiB", block_size="4 MiB", swap=0, seed=seed))
    p = g.spawn()
    a, b, c = p.mmap(8 * MIB, in_use=6 * MIB), p.mmap(4 * MIB), p.mmap(16 * MIB)
    a.set_rate(300.0)
    c.set_rate(3.0)
    target = {"vaddr": Target(process=p),
              "fvaddr": Target(process=p, ranges=[(a.start + MIB, a.end), (b.start, c.end)]),
              "paddr": Target(ranges=[(0, 256 * MIB)])}[ops]
    sample, aggr = intervals
    ctx = Context(g, ops, [target], Attrs(sample_us=sample, aggr_us=aggr, min_nr_regions=3, max_nr_regions=max_nr))
    tr = AccuracyTracker(hot_threshold=thres, sample_pages=sample_pages, seed=seed).attach(ctx)
    ctx.run_until(600_000)
    b.set_rate(50.0)
    ctx.run_until(1_000_000)
    return tr


@settings(max_examples=25)
@given(st.integers(0, 2**32), st.floats(0.05, 1.0), st.sampled_from([None, 200]),
       st.sampled_from([(1_000, 20_000), (5_000, 100_000), (2_000, 50_000)]), st.sampled_from([3, 20, 200]),
       st.sampled_from(["vaddr", "fvaddr", "paddr"]))
def test_metrics_are_fractions_and_reproducible(seed, thres, sample_pages, intervals, max_nr, ops):
    tr = _run(seed, thres, sample_pages, intervals, max_nr, ops)
    assert tr.windows
    for w in tr.windows:
        for x in (w.hot_precision, w.hot_recall, w.cold_precision, w.cold_recall, w.heatmap_error):
            assert finite_in_unit(x)
        assert w.hot_tp + w.hot_fp + w.hot_fn + w.hot_tn == pytest.approx(w.pages)
        assert 0 <= w.true_wss <= w.pages * P * (1 + 1e-9) and 0 <= w.expected_wss <= w.pages * P * (1 + 1e-9)
        assert 0 <= w.est_wss_outside <= w.est_wss and 0 <= w.wss_missed <= w.true_wss
        assert w.wss_extra >= -1e-6 * max(1.0, w.true_wss) or sample_pages   # a sample estimates it
        assert w.est_wss == pytest.approx(w.true_wss - w.wss_missed + w.wss_extra + w.est_wss_outside)
        assert math.isnan(w.wss_error) or w.wss_error >= -1.0
    s = tr.summary()
    if s.wss_windows:
        assert s.wss_bias == pytest.approx(s.wss_extra + s.wss_outside - s.wss_missed, abs=1e-9)
    for x in (s.hot_precision, s.hot_recall, s.cold_precision, s.cold_recall, s.heatmap_error):
        assert finite_in_unit(x)
    again = _run(seed, thres, sample_pages, intervals, max_nr, ops)
    assert again.windows == tr.windows
