"""The host's classic balloon for hard limits (RFC "Limitations": "the host could avoid such
situation by setting the host-driven hard memory limit on guests"): per guest, a schedule of
memory limits, and optionally limits set from host memory pressure, enforced by writing
num_pages into the guest's balloon config (QEMU's ``balloon N``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..units import finite_in, parse_size

if TYPE_CHECKING:
    from .host import Host


@dataclass(frozen=True)
class HardLimit:
    """From ``t_us`` on, guest ``vm`` may use at most ``limit`` bytes (None lifts the limit)."""

    vm: str
    t_us: int
    limit: int | str | None


class BalloonLimits:
    """Applies the HardLimit schedule at every control tick; the balloon target follows the
    guest's online memory, so hotplug and the limit compose (num_pages = online - limit).

    With ``pressure_high`` (a fraction of host capacity), whenever host memory used exceeds it
    the host also limits every ballooned guest to its memory now less its share (by footprint)
    of what would bring the host down to ``pressure_low``, never below the guest's min_mem;
    below ``pressure_low`` those pressure limits are lifted. The tighter limit wins.
    """

    def __init__(self, limits: tuple[HardLimit, ...] = (), pressure_high: float | None = None,
                 pressure_low: float = 0.85):
        self.limits = tuple(limits)
        if pressure_high is not None and (not finite_in(pressure_high, 0.05, 1.0) or not finite_in(
                pressure_low, 0.0, pressure_high)):
            raise ConfigError("limits.pressure_high", (pressure_high, pressure_low),
                              "0.05 <= pressure_high <= 1 and 0 <= pressure_low <= pressure_high")
        self.pressure_high, self.pressure_low = pressure_high, pressure_low
        self.pressure_limits: dict[str, int] = {}
        self.pressure_events = 0
        self._resolved: list[tuple[str, int, int | None]] | None = None

    def attach(self, host: Host) -> None:
        names = {vm.name for vm in host.vms}
        out = []
        for i, h in enumerate(self.limits):
            if not isinstance(h, HardLimit):
                raise ConfigError(f"limits[{i}]", h, "a HardLimit")
            if h.vm not in names:
                raise ConfigError(f"limits[{i}].vm", h.vm, f"one of {sorted(names)}")
            if isinstance(h.t_us, bool) or not isinstance(h.t_us, int) or not 0 <= h.t_us <= 10**12:
                raise ConfigError(f"limits[{i}].t_us", h.t_us, "an integer time in [0, 1e12] µs")
            lim = None if h.limit is None else parse_size(h.limit, f"limits[{i}].limit")
            out.append((h.vm, h.t_us, lim))
        self._resolved = sorted(out, key=lambda x: x[1])
        for vm in host.vms:
            if vm.balloon is None and vm.name in {n for n, _, _ in out}:
                raise ConfigError(f"limits.{vm.name}", "no balloon", "a VM with a balloon device")

    def limit_at(self, name: str, t_us: int) -> int | None:
        current = None
        for vm, t, lim in self._resolved:
            if vm == name and t <= t_us:
                current = lim
        return current

    def _follow_pressure(self, host: Host) -> None:
        used, cap = host.used(), host.capacity
        vms = [vm for vm in host.live() if vm.balloon is not None]
        if used > self.pressure_high * cap and vms:
            self.pressure_events += 1
            excess = used - int(self.pressure_low * cap)
            total = sum(vm.footprint() for vm in vms) or 1
            for vm in vms:
                has = vm.online_bytes() - vm.balloon.actual_bytes()
                lim = max(vm.min_mem, has - excess * vm.footprint() // total)
                self.pressure_limits[vm.name] = min(lim, self.pressure_limits.get(vm.name, lim))
        elif used < self.pressure_low * cap:
            self.pressure_limits.clear()

    def control(self, host: Host, t_us: int) -> None:
        if self.pressure_high is not None:
            self._follow_pressure(host)
        for vm in host.live():
            if vm.balloon is None:
                continue
            lims = [x for x in (self.limit_at(vm.name, t_us), self.pressure_limits.get(vm.name)) if x is not None]
            if not lims:
                vm.balloon.set_num_pages(0)
            else:
                vm.balloon.set_target_memory(min(lims))
