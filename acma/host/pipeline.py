"""Policies: static allocation (the baseline) and today's pipeline (the RFC's "existing
approach"): DAMON_RECLAIM, free page reporting at 2 MiB, periodic compaction, user-space memory
hot-(un)plug following demand, and the host's classic balloon for hard limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .backing import Preallocated

if TYPE_CHECKING:
    from .host import Host
    from .vm import VM


class StaticPolicy:
    """No reclaim, no reporting, no scaling: each guest's RAM up to max_mem is preallocated
    and backed from boot. The reference every other policy's savings are measured against."""

    name = "static"

    def attach(self, host: "Host") -> None:
        for vm in host.vms:
            vm.backing = Preallocated(vm.max_mem, host.host_page_size)

    def advance(self, vm: "VM", t_us: int) -> None:
        vm.advance_to(t_us)

    def control(self, host: "Host", t_us: int) -> None:
        pass

    def stats(self, vm: "VM") -> dict[str, float]:
        return {}
