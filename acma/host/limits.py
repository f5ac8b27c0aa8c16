"""The host's classic balloon for hard limits: per guest, a schedule of memory limits that the
host enforces by writing num_pages into the guest's balloon config (QEMU's ``balloon N``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..units import parse_size

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
    guest's online memory, so hotplug and the limit compose (num_pages = online - limit)."""

    def __init__(self, limits: tuple[HardLimit, ...] = ()):
        self.limits = tuple(limits)
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

    def control(self, host: Host, t_us: int) -> None:
        for vm in host.live():
            if vm.balloon is None:
                continue
            lim = self.limit_at(vm.name, t_us)
            if lim is None:
                vm.balloon.set_num_pages(0)
            else:
                vm.balloon.set_target_memory(lim)
