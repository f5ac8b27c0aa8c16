"""What the kernel's DAMON modules share (mm/damon/modules-common.[ch], newest mainline): a
paddr context over System RAM, the monitoring-attribute and watermark parameters, and the
interval auto-tuning preset of DAMON_RECLAIM and DAMON_LRU_SORT."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ...damon.context import Attrs, IntervalsGoal
from ...errors import ConfigError
from ..scheme import UINT_MAX, ULONG_MAX, Scheme, Watermarks

# autotune_monitoring_intervals=Y of reclaim.c and lru_sort.c: 5 ms / 100 ms to start, aim at
# 0.4 % observed accesses over 3 aggregations, sampling interval kept in [5 ms, 10 s].
AUTOTUNE_GOAL = IntervalsGoal(access_bp=40, aggrs=3, min_sample_us=5_000, max_sample_us=10_000_000)


@dataclass(frozen=True)
class MonitorParams:
    """The monitoring and region parameters RECLAIM and LRU_SORT share (modules-common.h's
    DEFINE_DAMON_MODULES_MON_ATTRS_PARAMS, monitor_region_start/end, addr_unit)."""

    sample_interval: int = 5_000
    aggr_interval: int = 100_000
    min_nr_regions: int = 10
    max_nr_regions: int = 1000
    monitor_region_start: int = 0
    monitor_region_end: int = 0
    addr_unit: int = 1


@dataclass(frozen=True)
class ModuleSetup:
    """The DAMON context a module builds: paddr over ``regions`` with ``attrs`` and ``schemes``."""

    name: str
    attrs: Attrs
    schemes: tuple[Scheme, ...]
    regions: tuple[tuple[int, int], ...]
    ops: str = "paddr"

    def to_spec(self):
        """The same setup as a damo kdamonds spec (acma.damos.spec.KdamondsSpec)."""
        from ..spec import KdamondsSpec, TargetSpec
        return KdamondsSpec.single(self.ops, self.schemes, self.attrs, (TargetSpec(None, self.regions),))


def check_params(params, prefix: str) -> None:
    """Validate a module's parameters whole: each a kernel ulong (or bool), the attrs as
    damon_set_attrs takes them, the watermarks ordered; ConfigError names ``prefix.<param>``."""
    for f in fields(params):
        v = getattr(params, f.name)
        if f.type in ("bool", bool):
            if not isinstance(v, bool):
                raise ConfigError(f"{prefix}.{f.name}", v, "Y/N (True or False)")
        elif isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= ULONG_MAX:
            raise ConfigError(f"{prefix}.{f.name}", v, f"an unsigned long in [0, {ULONG_MAX}]")
    if params.addr_unit != 1:
        raise ConfigError(f"{prefix}.addr_unit", params.addr_unit,
                          "1 (acma's paddr works in bytes; other address units are not modelled)")
    if params.monitor_region_start > params.monitor_region_end:
        raise ConfigError(f"{prefix}.monitor_region_start", params.monitor_region_start,
                          f"<= monitor_region_end ({params.monitor_region_end})")
    module_attrs(params, prefix)
    module_wmarks(params, prefix)


def module_attrs(params, prefix: str) -> Attrs:
    """``damon_set_attrs`` of the module's monitoring parameters (or the autotune preset)."""
    attrs = Attrs(sample_us=params.sample_interval, aggr_us=params.aggr_interval, ops_update_us=0,
                  min_nr_regions=params.min_nr_regions, max_nr_regions=params.max_nr_regions)
    if getattr(params, "autotune_monitoring_intervals", False):
        attrs = Attrs(sample_us=5_000, aggr_us=100_000, ops_update_us=0, min_nr_regions=params.min_nr_regions,
                      max_nr_regions=params.max_nr_regions, intervals_goal=AUTOTUNE_GOAL)
    names = {"sample_us": "sample_interval", "aggr_us": "aggr_interval"}
    try:
        attrs.validate()
    except ConfigError as e:
        name = e.field.split(".")[1]
        raise ConfigError(f"{prefix}.{names.get(name, name)}", e.value, e.allowed) from None
    return attrs


def module_wmarks(params, prefix: str) -> Watermarks:
    """The free_mem_rate watermarks from ``wmarks_{interval,high,mid,low}``."""
    try:
        return Watermarks("free_mem_rate", params.wmarks_interval, params.wmarks_high, params.wmarks_mid,
                          params.wmarks_low)
    except ConfigError as e:
        name = e.field.split(".")[1]
        raise ConfigError(f"{prefix}.wmarks_{'interval' if name == 'interval_us' else name}", e.value,
                          e.allowed) from None


def max_nr_accesses(attrs: Attrs) -> int:
    """``damon_max_nr_accesses``: samples per aggregation, capped at UINT_MAX."""
    return min(attrs.aggr_us // attrs.sample_us, UINT_MAX)


def _check_ram(system_ram) -> list[tuple[int, int]]:
    try:
        ram = sorted((int(s), int(e)) for s, e in system_ram)
    except (TypeError, ValueError):
        raise ConfigError("system_ram", system_ram, "a list of (start, end) physical address pairs") from None
    if not ram or any(not 0 <= s < e <= ULONG_MAX for s, e in ram):
        raise ConfigError("system_ram", system_ram, "at least one (start, end) pair with start < end")
    return ram


def system_rams_region(params, prefix: str, system_ram) -> tuple[tuple[int, int], ...]:
    """``damon_set_region_system_rams_default``: the given monitor_region_start/end, or (both 0)
    from the first System RAM start to the last one's end."""
    start, end = params.monitor_region_start, params.monitor_region_end
    if not start and not end:
        ram = _check_ram(system_ram)
        start, end = ram[0][0], max(e for _, e in ram)
    if start == end:
        raise ConfigError(f"{prefix}.monitor_region_end", end, f"> monitor_region_start ({start})")
    return ((start, end),)


def biggest_system_ram(system_ram) -> tuple[tuple[int, int], ...]:
    """``damon_set_region_biggest_system_ram_default`` with start = end = 0: the largest range."""
    ram = _check_ram(system_ram)
    return (max(ram, key=lambda r: r[1] - r[0]),)


def guest_system_ram(guest) -> list[tuple[int, int]]:
    """A guest's physical memory as one System RAM range, as acma's paddr targets see it."""
    from ...units import PAGE_SIZE
    return [(0, guest.nr_pages * PAGE_SIZE)]
