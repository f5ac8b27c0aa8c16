"""What a host and its guests are made of; validated whole before anything is built."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..mm.guest import GuestConfig
from ..sim import KernelChurn
from ..units import PAGE_SIZE, finite_in, parse_size
from ..workloads.model import Workload

HOST_PAGE_SIZES = (4096, 2 << 20)
ON_EXHAUSTION = ("swap", "kill")


@dataclass(frozen=True)
class VMSpec:
    """One guest: its memory, what runs in it, and the user's limits.

    ``min_mem``/``max_mem`` are what the user bought (RFC "Business Model"): the policy may
    scale the guest between them; 0 / None mean one memory block / the guest's size.
    ``memmap_on_memory`` is the guest's memory_hotplug.memmap_on_memory (the RFC's setting):
    hot-added blocks carry their own struct pages (needs blocks of at least 128 MiB).
    """

    name: str
    guest: GuestConfig
    workloads: tuple[Workload, ...] = ()
    churn: KernelChurn | None = None
    min_mem: int | str = 0
    max_mem: int | str | None = None
    memmap_on_memory: bool = True

    def limits(self, index: int) -> tuple[int, int]:
        """(min_mem, max_mem) in bytes, checked against the guest; ConfigError names the field."""
        where = f"vms[{index}]"
        if not isinstance(self.name, str) or not self.name or not self.name.isprintable():
            raise ConfigError(f"{where}.name", self.name, "a non-empty printable name")
        if not isinstance(self.guest, GuestConfig):
            raise ConfigError(f"{where}.guest", self.guest, "a GuestConfig")
        r = self.guest.resolve()
        size = r.nr_pages * PAGE_SIZE
        block = r.block_pages * PAGE_SIZE
        lo = parse_size(self.min_mem, f"{where}.min_mem") or block
        hi = size if self.max_mem is None else parse_size(self.max_mem, f"{where}.max_mem")
        for name, v in (("min_mem", lo), ("max_mem", hi)):
            if v % block or not block <= v <= size:
                raise ConfigError(f"{where}.{name}", v, f"whole memory blocks ({block} bytes) in [{block}, {size}]")
        if lo > hi:
            raise ConfigError(f"{where}.min_mem", lo, f"at most max_mem ({hi})")
        if not isinstance(self.memmap_on_memory, bool):
            raise ConfigError(f"{where}.memmap_on_memory", self.memmap_on_memory, "True or False")
        if self.memmap_on_memory and block < 128 << 20:
            raise ConfigError(f"{where}.memmap_on_memory", True, f"False with {block}-byte memory blocks "
                              "(the memmap must fill whole pageblocks: blocks of at least 128 MiB)")
        if not isinstance(self.workloads, (tuple, list)) or not all(isinstance(w, Workload) for w in self.workloads):
            raise ConfigError(f"{where}.workloads", self.workloads, "a tuple of Workload")
        if self.churn is not None:
            if not isinstance(self.churn, KernelChurn):
                raise ConfigError(f"{where}.churn", self.churn, "a KernelChurn or None")
            self.churn.validate()
        return lo, hi


@dataclass(frozen=True)
class HostConfig:
    """The host: its memory, how it backs guests, and what it does when memory runs out.

    - ``capacity``: host RAM available to guests and their VMM processes.
    - ``host_page_size``: 2 MiB (THP/hugetlbfs backing, the RFC's case) or 4 KiB.
    - ``vm_overhead``: host memory each live VM costs beyond its guest RAM (the VMM process,
      EPT tables, vhost rings); an estimate, change it.
    - ``control_interval_us``: the host's tick; guests run in lockstep between ticks and the
      host books memory and the policy acts at each one.
    - ``on_exhaustion``: "swap" (the host swaps out guest memory, up to ``host_swap``, and
      charges the swap-in to the guest) or "kill" (the host OOM-kills the largest guest).
    - ``host_swapin_us``: cost charged to the guest per 4 KiB swapped back in (an SSD read,
      estimate); ``host_fault_us`` is charged by the guest model when it touches a discarded
      page (see docs/host.md).
    """

    capacity: int | str = "8 GiB"
    host_page_size: int | str = "2 MiB"
    vm_overhead: int | str = "64 MiB"
    control_interval_us: int = 1_000_000
    on_exhaustion: str = "swap"
    host_swap: int | str = "8 GiB"
    host_swapin_us: float = 50.0
    seed: int = 0
    vms: tuple[VMSpec, ...] = field(default_factory=tuple)

    def resolve(self) -> ResolvedHost:
        cap = parse_size(self.capacity, "host.capacity")
        if not 64 << 20 <= cap <= 1 << 44:
            raise ConfigError("host.capacity", self.capacity, "64 MiB to 16 TiB")
        hps = parse_size(self.host_page_size, "host.host_page_size")
        if hps not in HOST_PAGE_SIZES:
            raise ConfigError("host.host_page_size", self.host_page_size, "4 KiB or 2 MiB")
        ovh = parse_size(self.vm_overhead, "host.vm_overhead")
        if ovh > cap:
            raise ConfigError("host.vm_overhead", self.vm_overhead, f"at most the capacity ({cap})")
        ci = self.control_interval_us
        if isinstance(ci, bool) or not isinstance(ci, int) or not 10_000 <= ci <= 3_600_000_000:
            raise ConfigError("host.control_interval_us", ci, "an integer from 10 ms to 1 h in µs")
        if self.on_exhaustion not in ON_EXHAUSTION:
            raise ConfigError("host.on_exhaustion", self.on_exhaustion, f"one of {ON_EXHAUSTION}")
        swap = parse_size(self.host_swap, "host.host_swap")
        if swap % hps or swap > 1 << 44:
            raise ConfigError("host.host_swap", self.host_swap, f"whole host pages ({hps} bytes), up to 16 TiB")
        if not finite_in(self.host_swapin_us, 0, 1e6):
            raise ConfigError("host.host_swapin_us", self.host_swapin_us, "microseconds in [0, 1e6]")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise ConfigError("host.seed", self.seed, "an integer in [0, 2**64)")
        if not isinstance(self.vms, (tuple, list)) or not 1 <= len(self.vms) <= 256:
            raise ConfigError("host.vms", self.vms, "a tuple of 1 to 256 VMSpec")
        names = set()
        limits = []
        for i, spec in enumerate(self.vms):
            if not isinstance(spec, VMSpec):
                raise ConfigError(f"host.vms[{i}]", spec, "a VMSpec")
            limits.append(spec.limits(i))
            if spec.name in names:
                raise ConfigError(f"host.vms[{i}].name", spec.name, "a name no other VM has")
            names.add(spec.name)
        return ResolvedHost(self, cap, hps, ovh, swap, tuple(limits))


@dataclass(frozen=True)
class ResolvedHost:
    config: HostConfig
    capacity: int
    host_page_size: int
    vm_overhead: int
    host_swap: int
    limits: tuple[tuple[int, int], ...]
