"""One guest as the host sees it: its simulation, its devices and its host-side books."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..errors import ConfigError
from ..mm.guest import GuestConfig
from ..mm.hotplug import MemoryHotplug
from ..sim import Simulation
from ..units import PAGE_SIZE
from .config import VMSpec


def derive_seed(host_seed: int, index: int, guest_seed: int) -> int:
    """A guest's seed from the host's, its index and its own (splitmix64 of the three), so one
    host seed fixes every guest and two guests never share a random stream by accident."""
    x = (host_seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + guest_seed) % 2**64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % 2**64
    return x ^ (x >> 31)


class VM:
    """A guest on the host: ``sim`` (its Simulation), ``backing`` (which host pages hold its
    memory), ``balloon`` (its virtio-balloon device), ``memory_hotplug`` (the guest kernel's
    block online/offline with memmap accounting), ``hotplug`` (its user-space hot-(un)plug
    daemon), the user's ``min_mem``/``max_mem``, and the host's books for it:
    ``killed``, ``host_swapped`` (bytes of its memory in host swap), ``host_swapins``
    (4 KiB pages brought back) and ``host_stall_us`` (time it lost to host swap-ins,
    invisible to the guest's own PSI)."""

    def __init__(self, index: int, spec: VMSpec, host_seed: int, min_mem: int, max_mem: int,
                 sample_interval_us: int):
        self.index, self.spec, self.name = index, spec, spec.name
        self.min_mem, self.max_mem = min_mem, max_mem
        cfg: GuestConfig = replace(spec.guest, seed=derive_seed(host_seed, index, spec.guest.seed))
        self.sim = Simulation(cfg, sample_interval_us=sample_interval_us)   # its own samples: rarely
        for w in spec.workloads:
            self.sim.add_workload(w)
        if spec.churn is not None:
            self.sim.add_kernel_churn(replace(spec.churn, live=[], sim=None))
        self.memory_hotplug = MemoryHotplug(self.sim.guest, memmap_on_memory=spec.memmap_on_memory)
        self.backing = None
        self.balloon = None
        self.hotplug = None
        self.killed = False
        self.killed_at_us: int | None = None
        self.host_swapped = 0
        self.host_stall_us = 0.0
        self.host_swapins = 0.0

    @property
    def guest(self):
        return self.sim.guest

    @property
    def now_us(self) -> int:
        return self.sim.guest.now_us

    def advance_to(self, t_us: int, advance: Callable[[int], None] | None = None) -> None:
        """Run this guest's events up to ``t_us`` (``advance``: e.g. a DAMON context's run_until)."""
        if self.killed:
            raise ConfigError(f"vm[{self.name}]", "killed", "a live VM (the host OOM-killed this one)")
        self.sim.run_until(t_us, advance)

    def backed_bytes(self) -> int:
        """Host memory holding this guest's RAM (in host RAM or host swap)."""
        return 0 if self.killed else self.backing.backed_bytes

    def footprint(self) -> int:
        """Host RAM this guest's memory takes now: backed minus what sits in host swap."""
        return 0 if self.killed else self.backed_bytes() - self.host_swapped

    def online_bytes(self) -> int:
        """Guest memory online now (MemTotal's span, before balloon or reserved pages)."""
        return sum(z["present"] for z in self.guest.zoneinfo()) * PAGE_SIZE

    def cold_curve(self, t0_us: int, t1_us: int) -> ColdCurve:
        """This guest's backed memory from coldest to hottest, as a host LRU sees it: backed
        pages holding no data first (rate 0), then the workloads' pages by their mean access
        rate over [t0, t1] (past t1 the current rates go on). Kernel pages and trace-driven
        VMAs count as hot (never in the curve). The host swap model uses it."""
        if t1_us <= t0_us:
            raise ConfigError("t1_us", t1_us, f"a time after t0 ({t0_us})")
        mi = self.guest.meminfo()
        used = (mi["MemTotal"] - mi["MemFree"]) * 1024 // PAGE_SIZE
        idle = max(0, self.backed_bytes() // PAGE_SIZE - used)
        rates = []
        for p in self.guest.processes:
            for v in p.vmas:
                present = v.info()["present"]
                if present:
                    rates.append(((v.lambda_at(t1_us) - v.lambda_at(t0_us)) * 1e6 / (t1_us - t0_us), present))
        return ColdCurve(idle, sorted(rates))

    def struct_page_bytes(self) -> int:
        """struct page memory of every present block (64 B per 4 KiB page), less what vmemmap
        optimization of given-away chunks freed (acma.mm.hotplug.MemoryHotplug's accounting)."""
        return self.memory_hotplug.struct_page_bytes()

    def demand_bytes(self) -> int:
        """What the guest's programs have allocated (in use in their VMAs) plus kernel pages:
        the ground-truth demand a policy should follow."""
        pages = sum(v.info()["nalloc"] for p in self.guest.processes for v in p.vmas)
        return (pages + self.guest.states()["kernel"]) * PAGE_SIZE


class ColdCurve:
    """Touches per second on a guest's coldest N bytes: ``idle`` pages at rate 0, then
    (rate, pages) runs in increasing rate."""

    def __init__(self, idle_pages: int, runs: list[tuple[float, int]]):
        self.idle, self.runs = idle_pages, runs

    def touch_rate(self, nbytes: int) -> float:
        left = nbytes // PAGE_SIZE - self.idle
        total = 0.0
        for rate, pages in self.runs:
            if left <= 0:
                break
            take = min(left, pages)
            total += rate * take
            left -= take
        return total
