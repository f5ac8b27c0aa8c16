"""Policies: static allocation (the baseline) and today's pipeline (the RFC's "existing
approach"): per guest DAMON_RECLAIM, free page reporting at 2 MiB, periodic compaction and
user-space memory hot-(un)plug following demand, plus the host's classic balloon for hard
limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..damon.context import Context, Target
from ..damos.engine import Engine
from ..damos.modules.common import guest_system_ram
from ..damos.modules.reclaim import ReclaimParams, build
from ..errors import ConfigError
from ..mm.compaction import Compaction
from ..mm.reporting import PageReporting
from ..sim import PRIO_KERNEL
from .backing import attach_backing
from .balloon import attach_balloon
from .hotplug import HotplugConfig, HotplugController
from .limits import BalloonLimits, HardLimit
from .policy import register_policy

if TYPE_CHECKING:
    from .host import Host
    from .vm import VM


class StaticPolicy:
    """No reclaim, no reporting, no scaling: each guest's RAM is preallocated and backed from
    boot (QEMU prealloc=on). The reference every other policy's savings are measured against."""

    name = "static"

    def attach(self, host: Host) -> None:
        for vm in host.vms:
            attach_backing(vm, host.host_page_size, prefaulted=True)

    def advance(self, vm: VM, t_us: int) -> None:
        vm.advance_to(t_us)

    def control(self, host: Host, t_us: int) -> None:
        pass

    def stats(self, vm: VM) -> dict[str, float]:
        return {}


@dataclass(frozen=True)
class PipelineConfig:
    """Today's pipeline, each part switchable.

    - ``reclaim``: DAMON_RECLAIM with these module parameters (None: off); a dict of
      ``damon_reclaim.*`` names, e.g. {"min_age": 60_000_000}.
    - ``report_order``: page_reporting_order (9: 2 MiB, as the RFC tunes it); None: off.
    - ``compact_interval_us``: writes to /proc/sys/vm/compact_memory this often (0: off);
      kcompactd's proactive compaction is left off in every policy (see docs/host.md).
    - ``hotplug``: the user-space hot-(un)plug daemon's rule (None: off);
      ``hotplug_interval_us`` how often it runs (1 s: as often as a PSI trigger would wake it).
    - ``limits``: the host's hard limits, enforced with the classic balloon;
      ``balloon_pressure``: (high, low) fractions of host capacity for limits set from host
      memory pressure (None: off).
    """

    reclaim: dict | None = field(default_factory=dict)
    report_order: int | None = 9
    compact_interval_us: int = 60_000_000
    hotplug: HotplugConfig | None = field(default_factory=HotplugConfig)
    hotplug_interval_us: int = 1_000_000
    limits: tuple[HardLimit, ...] = ()
    balloon_pressure: tuple[float, float] | None = None

    def validate(self) -> None:
        if self.reclaim is not None and not isinstance(self.reclaim, dict):
            raise ConfigError("pipeline.reclaim", self.reclaim, "a dict of damon_reclaim parameters, or None")
        if self.report_order is not None and (isinstance(self.report_order, bool) or not isinstance(
                self.report_order, int) or not 0 <= self.report_order <= 10):
            raise ConfigError("pipeline.report_order", self.report_order, "an order in [0, 10], or None")
        for name in ("compact_interval_us", "hotplug_interval_us"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 3_600_000_000:
                raise ConfigError(f"pipeline.{name}", v, "µs in [0, 3.6e9] (0: off)")
        if self.hotplug is not None and not isinstance(self.hotplug, HotplugConfig):
            raise ConfigError("pipeline.hotplug", self.hotplug, "a HotplugConfig, or None")


# The damon_reclaim parameters of the registered "today" policy (docs/host.md):
# - 20x coarser sampling (same samples per aggregation, same min_age) over at most 200
#   regions: the kernel's 5 ms / 100 ms with 1000 regions costs about 5 s of host time per
#   simulated minute per 2 GiB guest;
# - watermarks that never deactivate it: the hotplug daemon holds free memory near its low
#   mark, under the default 200 per-mille low watermark, which would switch DAMON_RECLAIM off.
TODAY_RECLAIM = {"sample_interval": 100_000, "aggr_interval": 2_000_000, "max_nr_regions": 200,
                 "wmarks_high": 1000, "wmarks_mid": 999, "wmarks_low": 0}


class _GuestParts:
    """The pipeline's machinery inside one guest."""

    def __init__(self):
        self.reporting = None
        self.damon = None
        self.engine = None
        self.compaction = None
        self.compactions = 0
        self.run: Callable[[int], None] | None = None


class TodayPipeline:
    """The RFC's "existing approach" as one policy (see docs/host.md for each part's kernel
    source and what acma simplifies)."""

    name = "today"

    def __init__(self, config: PipelineConfig | None = None):
        self.config = config or PipelineConfig()
        self.config.validate()
        bp = self.config.balloon_pressure
        if bp is not None and (not isinstance(bp, tuple) or len(bp) != 2):
            raise ConfigError("pipeline.balloon_pressure", bp, "a (high, low) pair of fractions, or None")
        self.limits = BalloonLimits(self.config.limits, *(bp or (None,)))
        self.parts: dict[int, _GuestParts] = {}
        self._next_hotplug_us = 0

    # --- Policy protocol
    def attach(self, host: Host) -> None:
        c = self.config
        for vm in host.vms:
            p = _GuestParts()
            attach_backing(vm, host.host_page_size, prefaulted=False)
            attach_balloon(vm)
            if c.report_order is not None:
                p.reporting = PageReporting(vm.guest, report=vm.balloon.driver.virtballoon_free_page_report,
                                            order=c.report_order)
            if c.reclaim is not None:
                p.damon, p.engine = _damon_reclaim(vm, c.reclaim)
            if c.hotplug is not None:
                vm.hotplug = HotplugController(vm, c.hotplug)
            if c.compact_interval_us:
                p.compaction = Compaction(vm.guest, proactiveness=0)
                vm.sim.schedule(c.compact_interval_us, PRIO_KERNEL, self._compactor(vm, p))
            p.run = self._runner(vm, p)
            self.parts[vm.index] = p
        self.limits.attach(host)

    def advance(self, vm: VM, t_us: int) -> None:
        vm.advance_to(t_us, self.parts[vm.index].run)

    def control(self, host: Host, t_us: int) -> None:
        c = self.config
        if c.hotplug is not None and t_us >= self._next_hotplug_us:
            self._next_hotplug_us = t_us + c.hotplug_interval_us
            for vm in host.live():
                before = (vm.hotplug.plugged, vm.hotplug.unplugged)
                vm.hotplug.control()
                ctx = self.parts[vm.index].damon
                if ctx is not None and before != (vm.hotplug.plugged, vm.hotplug.unplugged):
                    _monitor_online_span(ctx, vm)
        self.limits.control(host, t_us)

    def stats(self, vm: VM) -> dict[str, float]:
        p = self.parts[vm.index]
        out = {"compactions": p.compactions}
        if p.compaction is not None:
            out.update({"compaction_migrations": p.compaction.counters["compact_migrated"],
                        "compaction_cost_us": p.compaction.counters["compact_cost_us"]})
        if p.reporting is not None:
            info = p.reporting.info()
            out.update({"reporting_passes": info["passes"], "reported_blocks": info["blocks_reported"]})
        out["balloon_pressure_events"] = self.limits.pressure_events
        if p.engine is not None:
            st = p.engine.stats()[0]
            out.update({"damos_tried_bytes": st.sz_tried, "damos_applied_bytes": st.sz_applied,
                        "damos_quota_exceeds": st.qt_exceeds})
        return out

    # --- the parts
    def _runner(self, vm: VM, p: _GuestParts) -> Callable[[int], None]:
        """Move the guest to t: under DAMON when DAMON_RECLAIM runs, and with every free page
        reporting pass at its due time (a pass requested inside a slice is due a whole delay
        later, so slices no longer than the delay never skip one)."""
        inner = p.damon.run_until if p.damon is not None else vm.guest.run_until
        rep = p.reporting
        if rep is None:
            return inner

        def run(t_us: int) -> None:
            rep.run_due()
            while vm.now_us < t_us:
                due = rep.next_due_us()
                inner(min(t_us, max(vm.now_us, due if due is not None else vm.now_us + rep.delay_us)))
                rep.run_due()
        return run

    def _compactor(self, vm: VM, p: _GuestParts) -> Callable[[int], None]:
        """Every compact_interval_us, ``echo 1 > /proc/sys/vm/compact_memory`` in the guest."""
        def tick(t_us: int) -> None:
            p.compactions += 1
            p.compaction.compact_memory()
            vm.sim.schedule(t_us + self.config.compact_interval_us, PRIO_KERNEL, tick)
        return tick


def _damon_reclaim(vm: VM, params: dict):
    """DAMON_RECLAIM in the guest: the module's paddr context and pageout scheme (the DAMOS
    presets of acma.damos.modules.reclaim) run by the DAMOS engine."""
    try:
        setup = build(ReclaimParams(**params), guest_system_ram(vm.guest))
    except TypeError as e:
        raise ConfigError("pipeline.reclaim", params, f"damon_reclaim parameter names ({e})") from None
    ctx = Context(vm.guest, setup.ops, [Target(ranges=list(setup.regions))], setup.attrs, record=False)
    return ctx, Engine(ctx, setup.schemes)


def _monitor_online_span(ctx, vm: VM) -> None:
    """After hot-(un)plug the daemon re-commits DAMON_RECLAIM's monitoring region to first..last
    online memory (monitor_region_start/end + commit_inputs), as damon_set_region_system_rams_default
    would pick it; otherwise unplugged, never-accessed memory looks coldest and takes the quota."""
    online = vm.hotplug.online.nonzero()[0]
    block = vm.hotplug.block_bytes
    ranges = [(int(online[0]) * block, (int(online[-1]) + 1) * block)]
    for t in ctx.targets:
        t.ranges = ranges
        t.regions = t.regions.set_ranges(ranges, ctx.attrs.min_region_sz).copy(t.regions.cap)


register_policy("static", StaticPolicy)
register_policy("today", lambda: TodayPipeline(PipelineConfig(reclaim=dict(TODAY_RECLAIM))))
