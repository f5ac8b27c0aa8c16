"""DAMON_LRU_SORT (mm/damon/lru_sort.c, newest: damonitor/linux @76decc2744b9): mark hot memory
accessed (lru_prio) and cold memory unaccessed (lru_deprio), each under half the time quota,
while free memory is between the watermarks. Names and defaults are ``damon_lru_sort.<name>``."""

from __future__ import annotations

from dataclasses import dataclass

from ...damon.context import Attrs
from ...errors import ConfigError
from ...units import PAGE_SIZE
from ..scheme import (SAMPLES, UINT_MAX, ULONG_MAX, AGGR_INTERVALS, AccessPattern, Filter, Quota, QuotaGoal,
                      Scheme)
from .common import (ModuleSetup, MonitorParams, check_params, max_nr_accesses, module_attrs, module_wmarks,
                     system_rams_region)

PREFIX = "damon_lru_sort"


@dataclass(frozen=True)
class LruSortParams(MonitorParams):
    """``damon_lru_sort.*`` module parameters (times in µs unless the name says ms; 0/False off),
    with the monitoring ones of MonitorParams."""

    active_mem_bp: int = 0
    autotune_monitoring_intervals: bool = False
    filter_young_pages: bool = False
    hot_thres_access_freq: int = 500
    cold_min_age: int = 120_000_000
    quota_ms: int = 10
    quota_reset_interval_ms: int = 1000
    wmarks_interval: int = 5_000_000
    wmarks_high: int = 200
    wmarks_mid: int = 150
    wmarks_low: int = 50

    def __post_init__(self):
        check_params(self, PREFIX)
        if self.active_mem_bp > 10_000:
            # the cold goal is 10000 - active_mem_bp + 2, which wraps in the kernel beyond this
            raise ConfigError(f"{PREFIX}.active_mem_bp", self.active_mem_bp, "basis points in [0, 10000]")


def _scheme(params: LruSortParams, action: str, pattern: AccessPattern, goal: QuotaGoal | None,
            young: Filter | None) -> Scheme:
    """``damon_lru_sort_new_scheme``: half the time quota each, no size quota, weights 0/1/1."""
    quota = Quota(ms=params.quota_ms // 2, sz=0, reset_interval_ms=params.quota_reset_interval_ms,
                  weight_sz=0, weight_nr_accesses=1, weight_age=1, goals=(goal,) if goal else ())
    return Scheme(pattern, action, 0, quota, module_wmarks(params, PREFIX), filters=(young,) if young else ())


def lru_sort_schemes(params: LruSortParams, attrs: Attrs) -> tuple[Scheme, Scheme]:
    """The hot (lru_prio) and cold (lru_deprio) schemes, with the active_mem_bp goals (0.2 %
    deliberate overlap) and the filter_young_pages filters."""
    # both thresholds are unsigned int in the kernel; the cast keeps the low 32 bits
    hot_thres = (max_nr_accesses(attrs) * params.hot_thres_access_freq // 1000) & UINT_MAX
    cold_thres = (params.cold_min_age // attrs.aggr_us) & UINT_MAX
    hot = AccessPattern(PAGE_SIZE, ULONG_MAX, hot_thres, UINT_MAX, SAMPLES, 0, UINT_MAX, AGGR_INTERVALS)
    cold = AccessPattern(PAGE_SIZE, ULONG_MAX, 0, 0, SAMPLES, cold_thres, UINT_MAX, AGGR_INTERVALS)
    bp = params.active_mem_bp
    hot_goal = QuotaGoal("active_mem_bp", bp) if bp else None
    cold_goal = QuotaGoal("inactive_mem_bp", 10_000 - bp + 2) if bp else None
    young = params.filter_young_pages
    return (_scheme(params, "lru_prio", hot, hot_goal, Filter("young", matching=False) if young else None),
            _scheme(params, "lru_deprio", cold, cold_goal, Filter("young", matching=True) if young else None))


def build(params: LruSortParams = LruSortParams(), system_ram=()) -> ModuleSetup:
    """The context DAMON_LRU_SORT commits: attrs, the hot and cold schemes, the region."""
    attrs = module_attrs(params, PREFIX)
    regions = system_rams_region(params, PREFIX, system_ram)
    return ModuleSetup("DAMON_LRU_SORT", attrs, lru_sort_schemes(params, attrs), regions)
