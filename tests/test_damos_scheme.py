"""The DAMOS configuration model: defaults, whole-object validation, unit resolution, replace,
the action registry and validate_all."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acma.damon import Attrs
from acma.damos import (AGGR_INTERVALS, KERNEL_ACTIONS, MAX, NUMA_NO_NODE, PERCENT, SAMPLES, UINT_MAX, ULONG_MAX,
                        USEC, AccessPattern, Filter, Quota, QuotaGoal, Scheme, Watermarks, action_info, actions,
                        register_action, replace, validate_all)
from acma.errors import ConfigError


def test_defaults_follow_the_kernel():
    s = Scheme()
    assert s.action == "stat" and s.apply_interval_us == 0 and s.target_nid == NUMA_NO_NODE
    assert s.quota == Quota(0, 0, 0, 0, 0, 0, (), "consist", 0, 0) and not s.quota.is_set
    assert s.wmarks == Watermarks("none", 0, 0, 0, 0)
    assert s.filters == () and s.migrate_dests == () and s.max_nr_snapshots == 0
    raw = s.raw_pattern(Attrs())
    assert (raw.min_sz_region, raw.max_sz_region) == (0, ULONG_MAX)
    assert (raw.min_nr_accesses, raw.max_nr_accesses) == (0, UINT_MAX)
    assert (raw.min_age_region, raw.max_age_region) == (0, UINT_MAX)
    assert KERNEL_ACTIONS == ("willneed", "cold", "pageout", "hugepage", "nohugepage", "lru_prio", "lru_deprio",
                              "migrate_hot", "migrate_cold", "stat")


def test_resolve_converts_user_units_like_damo():
    attrs = Attrs(sample_us=5_000, aggr_us=100_000)          # 20 samples per aggregation
    p = AccessPattern(4096, MAX, 50, 100, PERCENT, 5_000_000, MAX, USEC)
    raw = p.resolve(attrs)
    assert (raw.min_nr_accesses, raw.max_nr_accesses) == (10, 20)
    assert (raw.min_age_region, raw.max_age_region) == (50, UINT_MAX)
    assert raw.matches(4096, 10, 50) and not raw.matches(4096, 9, 50) and not raw.matches(4095, 10, 50)
    # 33 % of 20 samples is 6.6: damo truncates
    assert AccessPattern(min_nr_accesses=33, nr_accesses_unit=PERCENT).resolve(attrs).min_nr_accesses == 6
    # an age below one aggregation interval is 0 intervals
    assert AccessPattern(min_age_region=99_999, age_unit=USEC).resolve(attrs).min_age_region == 0
    # raw units pass through, clamped to the kernel's unsigned int
    assert AccessPattern(3, 2**40, 1, 7, SAMPLES, 2, 2**40, AGGR_INTERVALS).resolve(attrs) == \
        type(raw)(3, 2**40, 1, 7, 2, UINT_MAX)


@given(st.integers(1, 10_000), st.integers(1, 1000), st.floats(0, 100), st.floats(0, 100),
       st.integers(0, 10**9), st.integers(0, 10**9))
def test_resolved_bounds_stay_ordered(sample, ratio, a, b, c, d):
    attrs = Attrs(sample_us=sample, aggr_us=sample * ratio)
    p = AccessPattern(min_nr_accesses=min(a, b), max_nr_accesses=max(a, b), nr_accesses_unit=PERCENT,
                      min_age_region=min(c, d), max_age_region=max(c, d), age_unit=USEC)
    raw = p.resolve(attrs)
    assert 0 <= raw.min_nr_accesses <= raw.max_nr_accesses <= ratio
    assert 0 <= raw.min_age_region <= raw.max_age_region <= UINT_MAX


@pytest.mark.parametrize("build, field", [
    (lambda: AccessPattern(min_sz_region=-1), "pattern.min_sz_region"),
    (lambda: AccessPattern(min_sz_region=10, max_sz_region=5), "pattern.max_sz_region"),
    (lambda: AccessPattern(min_nr_accesses=101, nr_accesses_unit=PERCENT), "pattern.min_nr_accesses"),
    (lambda: AccessPattern(min_nr_accesses=1.5), "pattern.min_nr_accesses"),
    (lambda: AccessPattern(nr_accesses_unit="hz"), "pattern.nr_accesses_unit"),
    (lambda: AccessPattern(age_unit="s"), "pattern.age_unit"),
    (lambda: AccessPattern(min_age_region=5, max_age_region=4), "pattern.max_age_region"),
    (lambda: Quota(ms=-1), "quota.ms"),
    (lambda: Quota(weight_age=2**32), "quota.weight_age"),
    (lambda: Quota(goal_tuner="pid"), "quota.goal_tuner"),
    (lambda: Quota(goals=("x",)), "quota.goals[0]"),
    (lambda: QuotaGoal("psi"), "goal.metric"),
    (lambda: QuotaGoal("node_mem_used_bp", 5000), "goal.nid"),
    (lambda: QuotaGoal("user_input", 1, nid=0), "goal.nid"),
    (lambda: QuotaGoal("node_memcg_used_bp", 5000, nid=0), "goal.memcg_path"),
    (lambda: QuotaGoal("user_input", -1), "goal.target_value"),
    (lambda: QuotaGoal("user_input", 0), "goal.target_value"),
    (lambda: Filter("file", True), "filter.type"),
    (lambda: Filter("anon", 1), "filter.matching"),
    (lambda: Filter("anon", True, memcg_path="/a"), "filter.memcg_path"),
    (lambda: Filter("memcg", True), "filter.memcg_path"),
    (lambda: Filter("addr", True, addr_range=(10, 5)), "filter.addr_range"),
    (lambda: Filter("addr", True), "filter.addr_range"),
    (lambda: Filter("target", True), "filter.target_idx"),
    (lambda: Filter("hugepage_size", True, hugepage_size=(2 << 20, 4096)), "filter.hugepage_size"),
    (lambda: Watermarks("free_mem_rate", 5, 500, 600, 200), "wmarks.mid"),
    (lambda: Watermarks("free_mem_rate", 5, 500, 400, 450), "wmarks.low"),
    (lambda: Watermarks("psi"), "wmarks.metric"),
    (lambda: Scheme(action="reclaim"), "scheme.action"),
    (lambda: Scheme(target_nid=-2), "scheme.target_nid"),
    (lambda: Scheme(migrate_dests=((0, -1),)), "scheme.migrate_dests[0].weight"),
    (lambda: Scheme(migrate_dests=((0,),)), "scheme.migrate_dests[0]"),
    (lambda: Scheme(filters=(1,)), "scheme.filters[0]"),
    (lambda: Scheme(quota=None), "scheme.quota"),
    (lambda: Scheme(max_nr_snapshots=-1), "scheme.max_nr_snapshots"),
])
def test_bad_values_name_their_field(build, field):
    with pytest.raises(ConfigError) as e:
        build()
    assert e.value.field == field
    assert e.value.allowed


def test_sysfs_rules_accepted():
    # an empty addr range and equal hugepage bounds pass the sysfs checks
    Filter("addr", True, addr_range=(4096, 4096))
    Filter("hugepage_size", True, hugepage_size=(2 << 20, 2 << 20))
    assert Quota(goals=(QuotaGoal("some_mem_psi_us", 1000),)).is_set and Quota(ms=1).is_set
    assert not Quota(reset_interval_ms=1000).is_set


def test_lists_become_tuples_and_filters_split_by_layer():
    s = Scheme(filters=[Filter("addr", True, addr_range=[0, 4096]), Filter("anon", False, True)],
               migrate_dests=[[1, 3], (2, 1)], quota=Quota(goals=[QuotaGoal("user_input", 5)]))
    assert s.filters[0].addr_range == (0, 4096) and s.migrate_dests == ((1, 3), (2, 1))
    assert isinstance(s.quota.goals, tuple)
    assert [f.type for f in s.core_filters] == ["addr"] and [f.type for f in s.ops_filters] == ["anon"]
    hash(s)   # frozen all the way down


def test_replace_validates_and_reaches_inside():
    s = Scheme(action="pageout", quota=Quota(ms=10, sz=1 << 20, reset_interval_ms=1000))
    t = s.replace(quota__ms=5, pattern__min_age_region=7, action="cold")
    assert (t.quota.ms, t.quota.sz, t.pattern.min_age_region, t.action) == (5, 1 << 20, 7, "cold")
    assert s.quota.ms == 10   # the original is untouched
    assert replace(s, wmarks=Watermarks("free_mem_rate", 1, 3, 2, 1)).wmarks.high == 3
    with pytest.raises(ConfigError, match="quota.ms"):
        s.replace(quota__ms=-5)
    with pytest.raises(ConfigError, match="Scheme.colour"):
        s.replace(colour=1)
    with pytest.raises(ConfigError, match="Scheme.action"):
        s.replace(action__x=1)


def test_action_registry():
    assert action_info("pageout").score_kind("paddr") == "cold"
    assert action_info("lru_prio").score_kind("paddr") == "hot"
    assert action_info("migrate_hot").score_kind("vaddr") is None   # vaddr only scores pageout
    assert action_info("stat").score_kind("paddr") is None
    assert action_info("lru_prio").ops == ("paddr",)
    with pytest.raises(ConfigError, match="action"):
        action_info("nope")
    info = register_action("test_alloc", ops=("paddr",), score="cold")
    assert register_action("test_alloc", ops=("paddr",), score="cold") == info    # idempotent
    assert "test_alloc" in actions() and "test_alloc" not in KERNEL_ACTIONS
    assert Scheme(action="test_alloc").action == "test_alloc"
    with pytest.raises(ConfigError, match="action.name"):
        register_action("test_alloc", ops=("vaddr",))
    with pytest.raises(ConfigError):
        register_action("bad name")
    with pytest.raises(ConfigError):
        register_action("test_x", ops=("kaddr",))
    with pytest.raises(ConfigError):
        register_action("test_y", score="warm")


def test_validate_all_checks_the_whole_set():
    ok = (Scheme(action="pageout"), Scheme(action="lru_prio", filters=(Filter("target", True, target_idx=1),),
                                           target_nid=1, migrate_dests=((1, 1),)))
    assert validate_all(ok, Attrs(), ops="paddr", nr_targets=2, nr_nodes=2) == ok
    with pytest.raises(ConfigError) as e:
        validate_all(ok, Attrs(), ops="vaddr")
    assert e.value.field == "schemes[1].action"
    with pytest.raises(ConfigError) as e:
        validate_all(ok, nr_targets=1)
    assert e.value.field == "schemes[1].filters[0].target_idx"
    with pytest.raises(ConfigError) as e:
        validate_all(ok, nr_nodes=1)
    assert e.value.field == "schemes[1].target_nid"
    with pytest.raises(ConfigError) as e:
        validate_all([Scheme(), "x"])
    assert e.value.field == "schemes[1]"
    with pytest.raises(ConfigError, match="attrs.min_nr_regions"):
        validate_all(ok, Attrs(min_nr_regions=1))
    with pytest.raises(ConfigError, match="ops"):
        validate_all(ok, ops="kaddr")
    # an object changed behind the frozen facade is caught by the whole-set check, with its path
    bad = Scheme()
    object.__setattr__(bad.quota, "ms", -1)
    with pytest.raises(ConfigError) as e:
        validate_all([Scheme(), bad])
    assert e.value.field == "schemes[1].quota.ms"


def test_numpy_values_become_plain():
    import numpy as np
    s = Scheme(AccessPattern(np.uint64(4096), max_nr_accesses=np.int32(5)), target_nid=np.int64(1),
               migrate_dests=[(np.int64(1), np.uint32(2))],
               filters=[Filter("addr", np.bool_(True).item(), addr_range=np.array([0, 4096]))])
    assert type(s.pattern.min_sz_region) is int and type(s.target_nid) is int
    assert s.migrate_dests == ((1, 2),) and type(s.migrate_dests[0][1]) is int
    assert s.filters[0].addr_range == (0, 4096) and type(s.filters[0].addr_range[0]) is int
    hash(s)
