"""The host: its memory, its guests advanced in lockstep, its books, and exhaustion handling.

Every control interval each live guest runs to the tick (its own events inside, exact), then
the host books memory: used = sum of guest footprints (host RAM holding guest memory) + the
VMs' overhead. Above capacity is a recorded failure, resolved at once by the configured policy:
``swap`` moves guest memory to host swap (largest guest first) and charges the swap-in to the
guest when it comes back; ``kill`` OOM-kills the guest with the largest footprint, as the host
kernel's oom_badness would pick the biggest RSS. Nothing goes over capacity silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..units import PAGE_SIZE
from .config import HostConfig
from .policy import Policy
from .series import HostSeries
from .vm import VM


@dataclass(frozen=True)
class Failure:
    """One host memory exhaustion: when, how far over, and what the host did about it."""

    t_us: int
    over_bytes: int
    action: str          # "swap" or "kill"
    vm: str
    bytes: int           # swapped out, or the killed guest's footprint


class Host:
    """A host running ``config.vms`` under ``policy``; ``run`` advances every guest in lockstep."""

    def __init__(self, config: HostConfig, policy: Policy):
        r = config.resolve()
        if not isinstance(policy, Policy):
            raise ConfigError("policy", policy, "an object implementing acma.host.policy.Policy")
        self.config, self.resolved, self.policy = config, r, policy
        self.capacity, self.host_page_size = r.capacity, r.host_page_size
        self.vm_overhead, self.host_swap_capacity = r.vm_overhead, r.host_swap
        self.interval_us = config.control_interval_us
        self.vms = [VM(i, spec, config.seed, lo, hi, config.control_interval_us)
                    for i, (spec, (lo, hi)) in enumerate(zip(config.vms, r.limits))]
        self.now_us = 0
        self.failures: list[Failure] = []
        self.series = HostSeries(self)
        policy.attach(self)
        for vm in self.vms:
            if vm.backing is None:
                raise ConfigError(f"policy[{policy.name}].attach", vm.name, "a backing set on every VM")
        self._book(0)

    # --- the books
    def live(self) -> list[VM]:
        return [vm for vm in self.vms if not vm.killed]

    def overhead(self) -> int:
        """Host memory the live VMs cost beyond their guest RAM."""
        return self.vm_overhead * len(self.live())

    def used(self) -> int:
        """Host memory used: every live guest's footprint plus the VMs' overhead."""
        return sum(vm.footprint() for vm in self.vms) + self.overhead()

    def host_swap_used(self) -> int:
        return sum(vm.host_swapped for vm in self.vms)

    def committed(self) -> int:
        """What the host promised: the sum of the guests' max_mem."""
        return sum(vm.max_mem for vm in self.vms)

    def overcommit_ratio(self) -> float:
        return self.committed() / self.capacity

    # --- time
    def run(self, duration_us: int, progress: bool = False) -> "HostSeries":
        """Advance every guest by ``duration_us`` in control intervals; returns the series."""
        if isinstance(duration_us, bool) or not isinstance(duration_us, int) or not 0 < duration_us <= 10**12:
            raise ConfigError("duration_us", duration_us, "an integer in (0, 1e12] µs")
        end = self.now_us + duration_us
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=duration_us // 1_000_000, unit="sim-s", desc=f"host[{self.policy.name}]", leave=False)
        while self.now_us < end:
            t = min(end, self.now_us + self.interval_us)
            self.step(t)
            if bar is not None:
                bar.update(t // 1_000_000 - bar.n - (end - duration_us) // 1_000_000)
        if bar is not None:
            bar.close()
        return self.series

    def step(self, t_us: int) -> None:
        """One control interval: guests to ``t_us``, books, exhaustion, then the policy."""
        for vm in self.live():
            self.policy.advance(vm, t_us)
            if vm.now_us != t_us:
                raise ConfigError(f"policy[{self.policy.name}].advance", vm.now_us, f"the guest moved to {t_us}")
        self.now_us = t_us
        self._book(t_us)
        self.policy.control(self, t_us)

    def _book(self, t_us: int) -> None:
        for vm in self.vms:
            vm.host_swapped = min(vm.host_swapped, vm.backed_bytes())   # discarded memory frees its swap
        self._swap_in(t_us)
        over = self.used() - self.capacity
        while over > 0:
            self._exhausted(t_us, over)
            over = self.used() - self.capacity
        self.series.sample(t_us)

    def _swap_in(self, t_us: int) -> None:
        """Bring host-swapped guest memory back while there is room, charging each guest the
        swap-in (``host_swapin_us`` per 4 KiB); oldest guest index first."""
        room = self.capacity - self.used()
        for vm in self.vms:
            if room <= 0 or not vm.host_swapped or vm.killed:
                continue
            back = min(vm.host_swapped, room // self.host_page_size * self.host_page_size)
            vm.host_swapped -= back
            vm.host_stall_us += back // PAGE_SIZE * self.config.host_swapin_us
            room -= back

    def _exhausted(self, t_us: int, over: int) -> None:
        """Host memory exhausted by ``over`` bytes: swap out of the largest guest, else kill it."""
        live = self.live()
        victim = max(live, key=lambda v: (v.footprint(), -v.index))
        hps = self.host_page_size
        need = -(-over // hps) * hps
        room = self.host_swap_capacity - self.host_swap_used()
        if self.config.on_exhaustion == "swap" and room >= hps and victim.footprint() >= hps:
            moved = min(need, room // hps * hps, victim.footprint() // hps * hps)
            victim.host_swapped += moved
            self.failures.append(Failure(t_us, over, "swap", victim.name, moved))
            return
        fp = victim.footprint()
        victim.killed, victim.killed_at_us = True, t_us
        victim.host_swapped = 0
        self.failures.append(Failure(t_us, over, "kill", victim.name, fp))
