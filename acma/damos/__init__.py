"""DAMOS: DAMON-based operation schemes. This package holds the configuration model
(acma.damos.scheme), damo spec import/export (acma.damos.spec) and the kernel modules as
presets (acma.damos.modules)."""

from .scheme import (
    AGGR_INTERVALS, CORE_FILTER_TYPES, FILTER_TYPES, GOAL_METRICS, GOAL_TUNERS, KERNEL_ACTIONS, MAX,
    NUMA_NO_NODE, OPS_FILTER_TYPES, PERCENT, SAMPLES, UINT_MAX, ULONG_MAX, USEC, WMARK_METRICS,
    AccessPattern, ActionInfo, Filter, Quota, QuotaGoal, RawPattern, Scheme, Watermarks, action_info,
    actions, register_action, replace, validate_all,
)

__all__ = [
    "AGGR_INTERVALS", "CORE_FILTER_TYPES", "FILTER_TYPES", "GOAL_METRICS", "GOAL_TUNERS", "KERNEL_ACTIONS",
    "MAX", "NUMA_NO_NODE", "OPS_FILTER_TYPES", "PERCENT", "SAMPLES", "UINT_MAX", "ULONG_MAX", "USEC",
    "WMARK_METRICS", "AccessPattern", "ActionInfo", "Filter", "Quota", "QuotaGoal", "RawPattern", "Scheme",
    "Watermarks", "action_info", "actions", "register_action", "replace", "validate_all",
]
