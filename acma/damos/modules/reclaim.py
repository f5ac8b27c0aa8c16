"""DAMON_RECLAIM (mm/damon/reclaim.c, newest: damonitor/linux @1f570f9a99f6): page out memory
not accessed for ``min_age``, under a time/size quota, while free memory is between the
watermarks. Parameter names and defaults are the module's (``damon_reclaim.<name>``)."""

from __future__ import annotations

from dataclasses import dataclass

from ...damon.context import Attrs
from ...units import PAGE_SIZE
from ..scheme import (SAMPLES, UINT_MAX, ULONG_MAX, AGGR_INTERVALS, AccessPattern, Filter, Quota, QuotaGoal,
                      Scheme)
from .common import (ModuleSetup, MonitorParams, check_params, module_attrs, module_wmarks,
                     system_rams_region)

PREFIX = "damon_reclaim"


@dataclass(frozen=True)
class ReclaimParams(MonitorParams):
    """``damon_reclaim.*`` module parameters (times in µs unless the name says ms; 0/False off),
    with the monitoring ones of MonitorParams."""

    min_age: int = 120_000_000
    quota_ms: int = 10
    quota_sz: int = 128 << 20
    quota_reset_interval_ms: int = 1000
    quota_mem_pressure_us: int = 0
    quota_autotune_feedback: int = 0
    autotune_monitoring_intervals: bool = False
    wmarks_interval: int = 5_000_000
    wmarks_high: int = 500
    wmarks_mid: int = 400
    wmarks_low: int = 200
    skip_anon: bool = False

    def __post_init__(self):
        check_params(self, PREFIX)


def reclaim_scheme(params: ReclaimParams, attrs: Attrs) -> Scheme:
    """``damon_reclaim_new_scheme`` plus the goals and filter of ``apply_parameters``: pageout
    regions of >= PAGE_SIZE with no access for min_age, oldest first (weights 0/0/1)."""
    goals = []
    if params.quota_mem_pressure_us:
        goals.append(QuotaGoal("some_mem_psi_us", params.quota_mem_pressure_us))
    if params.quota_autotune_feedback:
        goals.append(QuotaGoal("user_input", 10_000, params.quota_autotune_feedback))
    # min_age_region is an unsigned int in the kernel; the assignment keeps the low 32 bits
    pattern = AccessPattern(PAGE_SIZE, ULONG_MAX, 0, 0, SAMPLES, (params.min_age // attrs.aggr_us) & UINT_MAX,
                            UINT_MAX, AGGR_INTERVALS)
    quota = Quota(ms=params.quota_ms, sz=params.quota_sz, reset_interval_ms=params.quota_reset_interval_ms,
                  weight_sz=0, weight_nr_accesses=0, weight_age=1, goals=tuple(goals))
    filters = (Filter("anon", matching=True, allow=False),) if params.skip_anon else ()
    return Scheme(pattern, "pageout", 0, quota, module_wmarks(params, PREFIX), filters=filters)


def build(params: ReclaimParams = ReclaimParams(), system_ram=()) -> ModuleSetup:
    """The context DAMON_RECLAIM commits: attrs, one pageout scheme, and its monitoring region
    (monitor_region_start/end, or first..last of ``system_ram`` when both are 0)."""
    attrs = module_attrs(params, PREFIX)
    regions = system_rams_region(params, PREFIX, system_ram)
    return ModuleSetup("DAMON_RECLAIM", attrs, (reclaim_scheme(params, attrs),), regions)
