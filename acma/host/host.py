"""The host: its memory, its guests advanced in lockstep, its books, and exhaustion handling.

Every control interval each live guest runs to the tick (its own events inside, exact), then
the host books memory: used = sum of guest footprints (host RAM holding guest memory) + the
VMs' overhead. Above capacity is a recorded failure, resolved at once by the configured policy:
``swap`` moves guest memory to host swap (largest guest first) and charges the swap-in to the
guest when it comes back; ``kill`` OOM-kills the guest with the largest footprint, as the host
kernel's oom_badness would pick the biggest RSS. Nothing goes over capacity silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._core import GuestOOM
from ..errors import ConfigError
from ..units import PAGE_SIZE
from .config import HostConfig
from .policy import Policy
from .series import HostSeries
from .vm import VM, ColdCurve

GUEST_SAMPLE_US = 60_000_000   # each guest's own Simulation samples (the host keeps its own series)


@dataclass(frozen=True)
class Failure:
    """One host memory exhaustion: when, how far over, and what the host did about it."""

    t_us: int
    over_bytes: int
    action: str          # "swap", "kill" (host OOM kill) or "guest_oom" (the guest could not go on)
    vm: str
    bytes: int           # swapped out, or the stopped guest's footprint


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
        self.vms = [VM(i, spec, config.seed, lo, hi, GUEST_SAMPLE_US)
                    for i, (spec, (lo, hi)) in enumerate(zip(config.vms, r.limits))]
        self.now_us = 0
        self._booked_us = 0
        self.exhausted_us = 0
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

    def static_bytes(self) -> int:
        """Host memory static allocation would take: every guest's RAM plus the overhead."""
        return sum(vm.guest.nr_pages * PAGE_SIZE + self.vm_overhead for vm in self.vms)

    def committed(self) -> int:
        """What the host promised: the sum of the guests' max_mem."""
        return sum(vm.max_mem for vm in self.vms)

    def overcommit_ratio(self) -> float:
        return self.committed() / self.capacity

    # --- time
    def run(self, duration_us: int, progress: bool = False) -> HostSeries:
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
        if isinstance(t_us, bool) or not isinstance(t_us, int) or not self.now_us < t_us <= self.now_us + 10**12:
            raise ConfigError("t_us", t_us, f"an integer time after now ({self.now_us} µs)")
        for vm in self.live():
            try:
                self.policy.advance(vm, t_us)
            except GuestOOM:
                self._stop(vm, t_us, "guest_oom", 0)
                continue
            if vm.now_us != t_us:
                raise ConfigError(f"policy[{self.policy.name}].advance", vm.now_us, f"a guest moved to exactly {t_us} µs")
        self.now_us = t_us
        self._book(t_us)
        self.policy.control(self, t_us)

    def _book(self, t_us: int) -> None:
        """Book every guest's memory at ``t_us``; resolve any exhaustion; sample the series."""
        dt, self._booked_us = t_us - self._booked_us, t_us
        window = (t_us - dt, t_us) if dt > 0 else (t_us, t_us + self.interval_us)
        curves: dict[int, ColdCurve] = {}

        def curve(vm: VM) -> ColdCurve:
            """The host LRU's view of a guest: what it touched over the last interval."""
            if vm.index not in curves:
                curves[vm.index] = vm.cold_curve(*window)
            return curves[vm.index]

        for vm in self.live():
            vm.host_swapped = min(vm.host_swapped, vm.backed_bytes())   # discarded memory frees its swap
            if vm.host_swapped and dt > 0:
                # touches of swapped memory over the interval: each a host swap-in charged to
                # the guest, while as much equally cold memory goes out (the amount stays)
                touches = curve(vm).touch_rate(vm.host_swapped) * dt / 1e6
                vm.host_swapins += touches
                vm.host_stall_us += min(touches * self.config.host_swapin_us, dt)
        exhausted = False
        while True:
            over = sum(vm.backed_bytes() for vm in self.vms) + self.overhead() - self.capacity
            exhausted |= over > 0
            need = -(-over // self.host_page_size) * self.host_page_size if over > 0 else 0
            if self.config.on_exhaustion == "swap" and need <= self.host_swap_capacity:
                if need or self.host_swap_used():
                    self._place_swap(t_us, need, over, curve)
                break
            if over <= 0:
                break
            self._stop(max(self.live(), key=lambda v: (v.footprint(), -v.index)), t_us, "kill", over)
        if exhausted:
            self.exhausted_us += dt
        self.series.sample(t_us)

    def _place_swap(self, t_us: int, total: int, over: int, curve: Callable[[VM], ColdCurve]) -> None:
        """Put ``total`` bytes of guest memory in host swap, the globally coldest first (the
        host's LRU spans every guest), in host-page steps. Memory that comes back in is a
        swap-in charged to its guest; new swap-out is a recorded failure."""
        hps, pg = self.host_page_size, PAGE_SIZE
        live = self.live()
        share = {vm.index: 0 for vm in live}
        if total:
            runs = []   # (touches/s per page, vm index, pages): every guest's memory, coldest first
            for vm in live:
                c, cap = curve(vm), vm.backed_bytes() // hps * hps // pg
                idle = min(c.idle, cap)
                runs.append((0.0, vm.index, idle))
                rest = cap - idle
                for rate, pages in c.runs:
                    runs.append((rate, vm.index, min(pages, rest)))
                    rest -= min(pages, rest)
                runs.append((float("inf"), vm.index, rest))   # kernel pages: hottest
            left = -(-total // pg)
            for _, i, pages in sorted(runs):
                take = min(left, pages)
                share[i] += take
                left -= take
            per = hps // pg
            share = {i: -(-n // per) * hps for i, n in share.items()}    # whole host pages
            for vm in sorted(live, key=lambda v: -share[v.index]):     # give back what rounding added
                while share[vm.index] and sum(share.values()) - hps >= total:
                    share[vm.index] -= hps
        for vm in live:
            new = share[vm.index]
            if new < vm.host_swapped:
                back = vm.host_swapped - new
                vm.host_swapins += back // PAGE_SIZE
                vm.host_stall_us += back // PAGE_SIZE * self.config.host_swapin_us
            elif new > vm.host_swapped:
                self.failures.append(Failure(t_us, over, "swap", vm.name, new - vm.host_swapped))
            vm.host_swapped = new

    def _stop(self, vm: VM, t_us: int, action: str, over: int) -> None:
        """The VM is gone (host OOM kill, or a guest OOM the guest could not resolve): its
        memory and overhead go back to the host, and the failure is on the record."""
        fp = vm.footprint()
        vm.killed, vm.killed_at_us = True, t_us
        vm.host_swapped = 0
        self.failures.append(Failure(t_us, over, action, vm.name, fp))
