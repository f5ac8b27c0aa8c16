"""DAMON_RECLAIM, DAMON_LRU_SORT and DAMON_STAT presets: the kernel's defaults, every knob, the
parameter checks, and the export of what they build."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acma.damon import Attrs, IntervalsGoal
from acma.damos import (AGGR_INTERVALS, SAMPLES, UINT_MAX, ULONG_MAX, AccessPattern, Filter, Quota, QuotaGoal,
                        Watermarks, validate_all)
from acma.damos import spec
from acma.damos.modules import LruSortParams, ReclaimParams, StatParams, guest_system_ram, lru_sort, reclaim, stat
from acma.errors import ConfigError

GIB = 1 << 30
RAM = [(0, 4 * GIB)]
MODULE_ATTRS = Attrs(sample_us=5_000, aggr_us=100_000, ops_update_us=0, min_nr_regions=10, max_nr_regions=1000)


def test_reclaim_defaults():
    m = reclaim.build(ReclaimParams(), RAM)
    assert m.name == "DAMON_RECLAIM" and m.ops == "paddr" and m.regions == ((0, 4 * GIB),)
    assert m.attrs == MODULE_ATTRS
    (s,) = m.schemes
    assert s.action == "pageout" and s.apply_interval_us == 0 and s.filters == ()
    assert s.pattern == AccessPattern(4096, ULONG_MAX, 0, 0, SAMPLES, 1200, UINT_MAX, AGGR_INTERVALS)
    assert s.quota == Quota(10, 128 << 20, 1000, 0, 0, 1)
    assert s.wmarks == Watermarks("free_mem_rate", 5_000_000, 500, 400, 200)


def test_reclaim_knobs():
    m = reclaim.build(ReclaimParams(min_age=30_000_000, aggr_interval=200_000, quota_mem_pressure_us=2000,
                                    quota_autotune_feedback=4000, skip_anon=True, wmarks_high=900), RAM)
    (s,) = m.schemes
    assert m.attrs.aggr_us == 200_000 and s.pattern.min_age_region == 150
    assert s.quota.goals == (QuotaGoal("some_mem_psi_us", 2000), QuotaGoal("user_input", 10_000, 4000))
    assert s.filters == (Filter("anon", matching=True, allow=False),) and s.wmarks.high == 900
    auto = reclaim.build(ReclaimParams(autotune_monitoring_intervals=True, sample_interval=1000, aggr_interval=50_000),
                         RAM)
    # the preset replaces the intervals: 5 ms / 100 ms, 0.4 % observed accesses over 3 aggregations
    assert (auto.attrs.sample_us, auto.attrs.aggr_us) == (5_000, 100_000)
    assert auto.attrs.intervals_goal == IntervalsGoal(40, 3, 5_000, 10_000_000)
    assert auto.schemes[0].pattern.min_age_region == 1200


def test_monitoring_region():
    ram = [(1 * GIB, 2 * GIB), (0, 512 << 20), (3 * GIB, 8 * GIB)]
    assert reclaim.build(ReclaimParams(), ram).regions == ((0, 8 * GIB),)          # first..last System RAM
    assert lru_sort.build(LruSortParams(), ram).regions == ((0, 8 * GIB),)
    assert stat.build(StatParams(), ram).regions == ((3 * GIB, 8 * GIB),)        # the biggest one
    given_region = ReclaimParams(monitor_region_start=4096, monitor_region_end=GIB)
    assert reclaim.build(given_region).regions == ((4096, GIB),)
    with pytest.raises(ConfigError, match="damon_reclaim.monitor_region_start"):
        ReclaimParams(monitor_region_start=GIB, monitor_region_end=4096)
    with pytest.raises(ConfigError, match="system_ram"):
        reclaim.build(ReclaimParams(), [])
    with pytest.raises(ConfigError, match="system_ram"):
        reclaim.build(ReclaimParams(), [(5, 5)])
    guest = SimpleNamespace(nr_pages=1024)
    assert guest_system_ram(guest) == [(0, 4 << 20)]


def test_lru_sort_defaults_and_knobs():
    m = lru_sort.build(LruSortParams(), RAM)
    assert m.attrs == MODULE_ATTRS
    hot, cold = m.schemes
    assert hot.action == "lru_prio" and cold.action == "lru_deprio"
    # hot: 500 permil of 20 samples; cold: no access for 120 s = 1200 aggregations
    assert hot.pattern == AccessPattern(4096, ULONG_MAX, 10, UINT_MAX, SAMPLES, 0, UINT_MAX, AGGR_INTERVALS)
    assert cold.pattern == AccessPattern(4096, ULONG_MAX, 0, 0, SAMPLES, 1200, UINT_MAX, AGGR_INTERVALS)
    for s in (hot, cold):
        assert s.quota == Quota(5, 0, 1000, 0, 1, 1)
        assert s.wmarks == Watermarks("free_mem_rate", 5_000_000, 200, 150, 50)
        assert s.filters == ()
    hot, cold = lru_sort.build(LruSortParams(active_mem_bp=7000, filter_young_pages=True, quota_ms=11,
                                             hot_thres_access_freq=250, sample_interval=1000), RAM).schemes
    assert hot.pattern.min_nr_accesses == 25 and hot.quota.ms == 5
    assert hot.quota.goals == (QuotaGoal("active_mem_bp", 7000),)
    assert cold.quota.goals == (QuotaGoal("inactive_mem_bp", 3002),)   # the 0.2 % deliberate overlap
    assert hot.filters == (Filter("young", matching=False, allow=False),)
    assert cold.filters == (Filter("young", matching=True, allow=False),)


def test_stat_context_and_outputs():
    m = stat.build(StatParams(enabled=True), RAM)
    assert m.schemes == () and m.attrs.intervals_goal == IntervalsGoal(400, 3, 5_000, 10_000_000)
    assert (m.attrs.sample_us, m.attrs.aggr_us, m.attrs.ops_update_us) == (5_000, 100_000, 60_000_000)
    # four 1 MiB regions: two idle for 10 and 30 aggregations, two accessed for 0 and 4
    r = SimpleNamespace(start=np.arange(4, dtype=np.uint64) << 20, end=(np.arange(4, dtype=np.uint64) + 1) << 20,
                        nr_accesses=np.array([0, 3, 0, 5]), age=np.array([10, 0, 30, 4]))
    assert stat.estimated_memory_bandwidth(r, 100_000) == (3 + 5) * (1 << 20) * 10
    p = stat.memory_idle_ms_percentiles(r, 100_000)
    # sorted idle times: -5, -1, 11, 31 aggregations (x 100 ms); each region holds 25 % of the bytes
    assert p[0] == p[25] == -500 and p[26] == p[50] == -100 and p[51] == p[75] == 1100
    assert p[76] == p[100] == 3100 and len(p) == 101
    assert stat.memory_idle_ms_percentiles(SimpleNamespace(start=[], end=[], nr_accesses=[], age=[]), 1) == [0] * 101


@pytest.mark.parametrize("build, field", [
    (lambda: ReclaimParams(min_age=-1), "damon_reclaim.min_age"),
    (lambda: ReclaimParams(quota_sz=2**64), "damon_reclaim.quota_sz"),
    (lambda: ReclaimParams(skip_anon=1), "damon_reclaim.skip_anon"),
    (lambda: ReclaimParams(quota_ms=True), "damon_reclaim.quota_ms"),
    (lambda: ReclaimParams(addr_unit=2), "damon_reclaim.addr_unit"),
    (lambda: ReclaimParams(aggr_interval=0), "damon_reclaim.aggr_interval"),
    (lambda: ReclaimParams(sample_interval=0), "damon_reclaim.sample_interval"),
    (lambda: ReclaimParams(min_nr_regions=2), "damon_reclaim.min_nr_regions"),
    (lambda: ReclaimParams(max_nr_regions=5), "damon_reclaim.max_nr_regions"),
    (lambda: ReclaimParams(wmarks_mid=600), "damon_reclaim.wmarks_mid"),
    (lambda: LruSortParams(wmarks_low=160), "damon_lru_sort.wmarks_low"),
    (lambda: LruSortParams(active_mem_bp=10_001), "damon_lru_sort.active_mem_bp"),
    (lambda: LruSortParams(filter_young_pages="Y"), "damon_lru_sort.filter_young_pages"),
])
def test_bad_params_name_the_module_param(build, field):
    with pytest.raises(ConfigError) as e:
        build()
    assert e.value.field == field


@given(st.integers(1, 10_000), st.integers(1, 200), st.integers(0, 10**10), st.integers(0, 2000),
       st.integers(0, 10_000), st.booleans(), st.booleans())
def test_built_schemes_are_valid_and_follow_the_formulas(sample, ratio, min_age, freq, bp, young, autotune):
    lp = LruSortParams(sample_interval=sample, aggr_interval=sample * ratio, cold_min_age=min_age,
                       hot_thres_access_freq=freq, active_mem_bp=bp, filter_young_pages=young,
                       autotune_monitoring_intervals=autotune)
    m = lru_sort.build(lp, RAM)
    validate_all(m.schemes, m.attrs, ops="paddr", nr_targets=1)
    hot, cold = m.schemes
    raw_hot, raw_cold = hot.raw_pattern(m.attrs), cold.raw_pattern(m.attrs)
    assert raw_hot.min_nr_accesses == (m.attrs.aggr_us // m.attrs.sample_us) * freq // 1000
    assert raw_cold.min_age_region == (min_age // m.attrs.aggr_us) & UINT_MAX  # unsigned int, as the kernel
    assert bool(hot.quota.goals) == bool(bp) and bool(cold.filters) == young
    r = reclaim.build(ReclaimParams(sample_interval=sample, aggr_interval=sample * ratio, min_age=min_age,
                                    autotune_monitoring_intervals=autotune), RAM)
    validate_all(r.schemes, r.attrs, ops="paddr", nr_targets=1)
    assert r.schemes[0].raw_pattern(r.attrs).min_age_region == (min_age // r.attrs.aggr_us) & UINT_MAX


def test_modules_export_as_specs():
    for m in (reclaim.build(ReclaimParams(skip_anon=True, quota_mem_pressure_us=1000), RAM),
              lru_sort.build(LruSortParams(active_mem_bp=5000, filter_young_pages=True), RAM),
              stat.build(StatParams(), RAM)):
        s = m.to_spec()
        (ctx,) = s.contexts
        assert (ctx.ops, ctx.attrs, ctx.schemes, ctx.targets[0].regions) == ("paddr", m.attrs, m.schemes, m.regions)
        assert spec.loads(spec.dumps(s, "yaml"), "yaml") == s


@pytest.mark.damo
def test_damo_reads_the_reclaim_module_spec(damo, tmp_path):
    s = reclaim.build(ReclaimParams(skip_anon=True, quota_autotune_feedback=3000), RAM).to_spec()
    spec.save(s, str(tmp_path / "reclaim.json"))
    out = damo("args", "damon", "--kdamonds", tmp_path / "reclaim.json", cwd=tmp_path)
    assert spec.loads(out) == s


def test_cli_module_validate_convert(tmp_path):
    from click.testing import CliRunner

    from acma.cli import main
    run = CliRunner().invoke
    out = tmp_path / "lru.yaml"
    r = run(main, ["damos", "module", "lru_sort", str(out), "--param", "active_mem_bp=7000",
                   "--param", "filter_young_pages=Y", "--ram", "1 GiB"])
    assert r.exit_code == 0, r.output
    assert spec.load(str(out)) == lru_sort.build(LruSortParams(active_mem_bp=7000, filter_young_pages=True),
                                                 [(0, GIB)]).to_spec()
    r = run(main, ["damos", "validate", str(out)])
    assert r.exit_code == 0 and "2 scheme(s)" in r.output
    r = run(main, ["damos", "convert", str(out), str(tmp_path / "lru.json")])
    assert r.exit_code == 0 and spec.load(str(tmp_path / "lru.json")) == spec.load(str(out))
    (tmp_path / "a.damos").write_text("4K max 0 0 5s max pageout\n")
    r = run(main, ["damos", "convert", str(tmp_path / "a.damos"), str(tmp_path / "a.yaml")])
    assert r.exit_code == 0 and len(spec.load_schemes(str(tmp_path / "a.yaml"))) == 1
    assert "1 scheme(s)" in run(main, ["damos", "validate", "--schemes", str(tmp_path / "a.yaml")]).output
    r = run(main, ["damos", "module", "reclaim", str(tmp_path / "x.json"), "--param", "wmarks_mid=600"])
    assert r.exit_code == 1 and "damon_reclaim.wmarks_mid" in r.output
    r = run(main, ["damos", "module", "reclaim", str(tmp_path / "x.json"), "--param", "skip_anon=maybe"])
    assert r.exit_code == 1 and "damon_reclaim.skip_anon" in r.output
    (tmp_path / "bad.json").write_text('{"kdamonds": [{"contexts": [{"ops": "paddr", "targets": [], "x": 1}]}]}')
    r = run(main, ["damos", "validate", str(tmp_path / "bad.json")])
    assert r.exit_code == 1 and "kdamonds[0].contexts[0].x" in r.output
