"""DAMON_STAT (mm/damon/stat.c, 2025): paddr monitoring of the biggest System RAM with interval
auto-tuning, exporting an estimated memory bandwidth and idle-time percentiles. It has no
schemes and no knob but ``enabled``; the two outputs are computed here from a snapshot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...damon.context import Attrs, IntervalsGoal
from .common import ModuleSetup, biggest_system_ram

STAT_ATTRS = Attrs(sample_us=5_000, aggr_us=100_000, ops_update_us=60_000_000, min_nr_regions=10,
                   max_nr_regions=1000,
                   intervals_goal=IntervalsGoal(access_bp=400, aggrs=3, min_sample_us=5_000,
                                                max_sample_us=10_000_000))
"""damon_stat_build_ctx's attrs: aim at 4 % observed accesses, sampling interval in [5 ms, 10 s]."""
REFRESH_US = 5_000_000
"""The outputs are refreshed at most once per 5 s (damon_stat_damon_call_fn)."""


@dataclass(frozen=True)
class StatParams:
    """``damon_stat.enabled`` is the only parameter (default: CONFIG_DAMON_STAT_ENABLED_DEFAULT)."""

    enabled: bool = False


def build(params: StatParams = StatParams(), system_ram=()) -> ModuleSetup:
    """The context DAMON_STAT runs: STAT_ATTRS over the biggest ``system_ram`` range."""
    return ModuleSetup("DAMON_STAT", STAT_ATTRS, (), biggest_system_ram(system_ram))


def _arrays(regions):
    start = np.asarray(regions.start, dtype=np.uint64).astype(object)
    end = np.asarray(regions.end, dtype=np.uint64).astype(object)
    return start, end, np.asarray(regions.nr_accesses).astype(object), np.asarray(regions.age).astype(object)


def estimated_memory_bandwidth(regions, aggr_us: int) -> int:
    """Bytes per second: sum of size x nr_accesses over the regions, per aggregation interval
    (damon_stat_set_estimated_memory_bandwidth). ``regions`` has start/end/nr_accesses/age
    arrays (an acma.damon.Regions or a recorded Snapshot)."""
    start, end, nr, _ = _arrays(regions)
    access_bytes = int(sum((e - s) * n for s, e, n in zip(start, end, nr)))
    return access_bytes * 1_000_000 // aggr_us


def memory_idle_ms_percentiles(regions, aggr_us: int) -> list[int]:
    """The 101 idle-time percentiles in ms (damon_stat_set_idletime_percentiles): regions sorted
    by idle time, (age + 1) aggregations for an idle region and -(age + 1) for an accessed one,
    each percentile taking the idle time of the region where the bytes cross it."""
    start, end, nr, age = _arrays(regions)
    idle = [-(a + 1) if n else a + 1 for n, a in zip(nr, age)]
    order = sorted(range(len(idle)), key=idle.__getitem__)
    total = int(sum(e - s for s, e in zip(start, end)))
    out = [0] * 101
    if not total:
        return out
    accounted, nxt = 0, 0
    for i in order:
        accounted += int(end[i] - start[i])
        ms = -(-idle[i] * aggr_us // 1000) if idle[i] < 0 else idle[i] * aggr_us // 1000   # C truncates
        while nxt <= accounted * 100 // total:
            out[nxt] = ms
            nxt += 1
    return out
