"""Memory hot-(un)plug driven from user space in the guest, as the RFC's "existing approach"
does: a daemon reads /proc/meminfo and PSI, writes ``online_movable``/``offline`` to
/sys/devices/system/memory/memoryN/state, and tells the host which blocks went away.

Blocks go on and off through the guest model's MemoryHotplug (acma.mm.hotplug): offlining
follows offline_pages (every movable page of the block is migrated out, an unmovable page
makes it fail with EBUSY; the daemon then tries the next lower block) and also removes the
block; with ``memory_hotplug.memmap_on_memory`` the block's struct pages live in the block
itself (2 MiB per 128 MiB) and leave with it, otherwise they are unmovable kernel pages
allocated at onlining and freed at removal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._core import CoreError, GuestOOM
from ..errors import ConfigError
from ..units import PAGE_SIZE, parse_size

if TYPE_CHECKING:
    from .vm import VM


@dataclass(frozen=True)
class HotplugConfig:
    """When the daemon plugs and unplugs (sizes as bytes or strings).

    - plug when MemAvailable < ``low_avail`` or memory "some" stall time since the last run
      exceeds ``psi_some_pct`` of the elapsed time (a PSI trigger on /proc/pressure/memory);
    - unplug when MemAvailable > ``low_avail + unplug_slack`` (hysteresis of whole blocks);
    - at most ``max_blocks_per_tick`` changes and ``max_offline_tries`` offline attempts per
      control interval (each failed attempt moves on to the next lower block).
    """

    low_avail: int | str = "256 MiB"
    unplug_slack: int | str = "256 MiB"
    psi_some_pct: float = 10.0
    max_blocks_per_tick: int = 8
    max_offline_tries: int = 4

    def resolve(self, field: str = "hotplug") -> tuple[int, int]:
        low = parse_size(self.low_avail, f"{field}.low_avail")
        slack = parse_size(self.unplug_slack, f"{field}.unplug_slack")
        if isinstance(self.psi_some_pct, bool) or not isinstance(self.psi_some_pct, (int, float)) \
                or not 0 <= self.psi_some_pct <= 100:
            raise ConfigError(f"{field}.psi_some_pct", self.psi_some_pct, "a percentage in [0, 100]")
        for name in ("max_blocks_per_tick", "max_offline_tries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1024:
                raise ConfigError(f"{field}.{name}", v, "an integer in [1, 1024]")
        return low, slack


class HotplugController:
    """One guest's hotplug daemon: which blocks are online, and its attempt/failure counts."""

    def __init__(self, vm: VM, config: HotplugConfig | None = None):
        self.vm, self.config = vm, config or HotplugConfig()
        self.low_avail, self.slack = self.config.resolve(f"vm[{vm.name}].hotplug")
        g = vm.guest
        self.block_bytes = g.block_pages * PAGE_SIZE
        self.online = g.resolved.block_online.astype(bool).copy()
        self.min_blocks = vm.min_mem // self.block_bytes
        self.max_blocks = vm.max_mem // self.block_bytes
        self.plugged = self.unplugged = self.plug_failures = 0
        self.unplug_attempts = self.unplug_failures = 0
        self.migrated_pages = 0
        self._psi_at = (vm.now_us, vm.guest.psi.total_us("some"))

    def online_blocks(self) -> int:
        return int(self.online.sum())

    # --- the two operations
    def plug(self) -> bool:
        """Online the lowest offline block below max_mem as ZONE_MOVABLE (online_movable)."""
        off = np.flatnonzero(~self.online[: self.max_blocks])
        if self.online_blocks() >= self.max_blocks or not len(off):
            return False
        b = int(off[0])
        try:
            self.vm.memory_hotplug.online(b, "movable")
        except GuestOOM:            # no room for the block's memmap (without memmap_on_memory)
            self.plug_failures += 1
            return False
        self.online[b] = True
        self.plugged += 1
        return True

    def unplug(self) -> bool:
        """Offline the highest online block above min_mem, trying lower ones on EBUSY; a block
        that went offline is reported to the host, which discards its memory."""
        if self.online_blocks() <= self.min_blocks:
            return False
        candidates = np.flatnonzero(self.online)[::-1]
        g = self.vm.guest
        for b in candidates[: self.config.max_offline_tries].tolist():
            self.unplug_attempts += 1
            before = g.vmstat()["pgmigrate_success"]
            try:
                self.vm.memory_hotplug.offline(b)
            except CoreError:
                self.unplug_failures += 1
                continue
            self.migrated_pages += g.vmstat()["pgmigrate_success"] - before
            self.online[b] = False
            self.unplugged += 1
            self.vm.backing.discard(b * g.block_pages, g.block_pages)
            return True
        return False

    # --- the daemon's rule
    def control(self) -> None:
        """One pass of the daemon: enforce max_mem, then follow MemAvailable and PSI."""
        t0, some0 = self._psi_at
        now, some = self.vm.now_us, self.vm.guest.psi.total_us("some")
        self._psi_at = (now, some)
        pressure = now > t0 and (some - some0) * 100 > self.config.psi_some_pct * (now - t0)
        for _ in range(self.config.max_blocks_per_tick):
            if self.online_blocks() > self.max_blocks:
                if not self.unplug():
                    return
                continue
            avail = self.vm.guest.meminfo()["MemAvailable"] * 1024
            if avail < self.low_avail or pressure:
                pressure = False        # one block per trigger; low MemAvailable asks for more
                if not self.plug():
                    return
            elif avail > self.low_avail + self.slack + self.block_bytes:
                if not self.unplug():
                    return
            else:
                return
