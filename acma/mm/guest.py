"""A simulated guest: its configuration, processes and VMAs, and views like /proc/meminfo.

The pages, allocator, LRU and faults live in the C core (:mod:`acma._core`); this module
validates what a user asks for before anything is built, names things as the kernel does,
and feeds the C core's stall log into PSI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _core
from ..errors import ConfigError
from ..units import PAGE_SIZE, parse_size
from .costs import Costs
from .psi import Psi
from .watermarks import zone_watermarks

MIN_GUEST = 64 << 20
MAX_GUEST = 1 << 40
ZONE_TYPES = {"normal": _core.ZONE_NORMAL, "movable": _core.ZONE_MOVABLE}
VMA_KINDS = {"anon": 0, "file": 1}
# where VMAs go in a process's address space: a brk-like heap low, mmaps high (vaddr's
# three-regions init later relies on the big gap between them)
HEAP_BASE = 0x5555_0000_0000
MMAP_BASE = 0x7F00_0000_0000
VMA_ALIGN = 2 << 20


@dataclass(frozen=True)
class NodeConfig:
    """One NUMA node: its size, memory tier, and how much of it is ZONE_MOVABLE or offline.

    ZONE_MOVABLE and offline memory are the node's top memory blocks, as movablecore= and
    hot-added memory are.
    """

    size: int | str
    tier: str = "dram"
    latency_ns: int = 80
    movable: int | str = 0
    offline: int | str = 0


@dataclass(frozen=True)
class GuestConfig:
    """What a guest is made of. Sizes take bytes or strings ('4 GiB'); validated by ``resolve``."""

    size: int | str = "4 GiB"
    nodes: tuple[NodeConfig, ...] = ()
    block_size: int | str = "128 MiB"
    swap: int | str = "4 GiB"
    swappiness: int = 60
    watermark_scale_factor: int = 10
    thp: bool = True
    psi_hz: int = 250
    seed: int = 0
    costs: Costs = field(default_factory=Costs)

    def resolve(self) -> "ResolvedGuest":
        """Every field checked and turned into pages; raises ConfigError naming the field."""
        size = parse_size(self.size, "guest.size")
        if not MIN_GUEST <= size <= MAX_GUEST:
            raise ConfigError("guest.size", self.size, "64 MiB to 1 TiB")
        block = parse_size(self.block_size, "guest.block_size")
        if block < (4 << 20) or block > (2 << 30) or block & (block - 1):
            raise ConfigError("guest.block_size", self.block_size, "a power of two from 4 MiB to 2 GiB")
        if size % block:
            raise ConfigError("guest.size", self.size, f"a multiple of the memory block size ({block} bytes)")
        if not isinstance(self.nodes, (tuple, list)):
            raise ConfigError("guest.nodes", self.nodes, "a tuple of NodeConfig")
        nodes = self.nodes or (NodeConfig(size=size),)
        if len(nodes) > 64:
            raise ConfigError("guest.nodes", len(nodes), "1 to 64 nodes")
        layout = []
        for i, n in enumerate(nodes):
            if not isinstance(n, NodeConfig):
                raise ConfigError(f"guest.nodes[{i}]", n, "a NodeConfig")
            ns = parse_size(n.size, f"guest.nodes[{i}].size")
            mv = parse_size(n.movable, f"guest.nodes[{i}].movable")
            off = parse_size(n.offline, f"guest.nodes[{i}].offline")
            for name, v in (("size", ns), ("movable", mv), ("offline", off)):
                if v % block:
                    raise ConfigError(f"guest.nodes[{i}].{name}", v, f"a multiple of the block size ({block} bytes)")
            if ns == 0:
                raise ConfigError(f"guest.nodes[{i}].size", n.size, "at least one memory block")
            if mv > ns or off > ns:
                raise ConfigError(f"guest.nodes[{i}]", n, "movable and offline no larger than the node")
            if not isinstance(n.tier, str) or not n.tier:
                raise ConfigError(f"guest.nodes[{i}].tier", n.tier, "a non-empty tier name")
            if not isinstance(n.latency_ns, int) or not 1 <= n.latency_ns <= 10**6:
                raise ConfigError(f"guest.nodes[{i}].latency_ns", n.latency_ns, "nanoseconds in [1, 1e6]")
            layout.append((ns // block, mv // block, off // block))
        if sum(n for n, _, _ in layout) * block != size:
            raise ConfigError("guest.nodes", [n.size for n in nodes], f"node sizes adding up to guest.size ({size})")
        if not any(n - mv > 0 for n, mv, _ in layout):
            raise ConfigError("guest.nodes", "all memory movable", "at least one block of ZONE_NORMAL")
        swap = parse_size(self.swap, "guest.swap")
        if swap % PAGE_SIZE or swap > 1 << 44:
            raise ConfigError("guest.swap", self.swap, "whole pages, up to 16 TiB")
        for name, v, lo, hi in (("swappiness", self.swappiness, 0, 200),
                                ("watermark_scale_factor", self.watermark_scale_factor, 1, 3000),
                                ("psi_hz", self.psi_hz, 100, 1000)):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"guest.{name}", v, f"an integer in [{lo}, {hi}]")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise ConfigError("guest.seed", self.seed, "an integer in [0, 2**64)")
        if not isinstance(self.thp, bool):
            raise ConfigError("guest.thp", self.thp, "True or False")
        if not isinstance(self.costs, Costs):
            raise ConfigError("guest.costs", self.costs, "a Costs instance")
        block_node, block_zone, block_online = [], [], []
        for nid, (nb, mv, off) in enumerate(layout):
            for b in range(nb):
                block_node.append(nid)
                block_zone.append(_core.ZONE_MOVABLE if b >= nb - mv else _core.ZONE_NORMAL)
                block_online.append(0 if b >= nb - off else 1)
        return ResolvedGuest(self, size // PAGE_SIZE, block // PAGE_SIZE, tuple(nodes),
                             np.array(block_node, np.uint8), np.array(block_zone, np.uint8),
                             np.array(block_online, np.uint8), swap // PAGE_SIZE)


@dataclass(frozen=True)
class ResolvedGuest:
    config: GuestConfig
    nr_pages: int
    block_pages: int
    nodes: tuple[NodeConfig, ...]
    block_node: np.ndarray
    block_zone: np.ndarray
    block_online: np.ndarray
    swap_pages: int


class Vma:
    """A mapping of a process: ``npages`` of virtual memory, ``in_use`` of them allocated."""

    def __init__(self, process: "Process", vid: int, gbase: int, start: int, npages: int, kind: str,
                 name: str):
        self.process, self.id, self.gbase = process, vid, gbase
        self.start, self.npages, self.kind, self.name = start, npages, kind, name

    @property
    def end(self) -> int:
        return self.start + self.npages * PAGE_SIZE

    def set_rate(self, rate_hz: float, write_fraction: float = 1.0) -> None:
        """From now on each in-use page is touched ``rate_hz`` times a second (Poisson)."""
        self.process.guest.core.vma_set_rate(self.id, rate_hz, write_fraction)

    def resize(self, in_use_pages: int) -> None:
        """Grow (new pages fault on first touch) or shrink (pages past the end are freed)."""
        if not isinstance(in_use_pages, int) or not 0 <= in_use_pages <= self.npages:
            raise ConfigError("in_use_pages", in_use_pages, f"pages in [0, {self.npages}]")
        self.process.guest.core.vma_resize(self.id, in_use_pages)

    def info(self) -> dict:
        return self.process.guest.core.vma_info(self.id)

    def ptes(self) -> np.ndarray:
        return self.process.guest.core.vma_ptes(self.id, self.npages)

    def touch(self, offset: int, write: bool = False) -> None:
        """One explicit access to page ``offset`` (a fault if it is not present)."""
        if not isinstance(offset, int) or not 0 <= offset < self.npages:
            raise ConfigError("offset", offset, f"a page offset in [0, {self.npages})")
        self.process.guest.core.touch(self.gbase + offset, write)

    def truth_accessed(self, t0_us: int, t1_us: int) -> np.ndarray:
        """Ground truth: which pages the workload touched in (t0, t1]."""
        return self.process.guest.core.truth_accessed(self.id, self.npages, t0_us, t1_us)

    def lambda_at(self, t_us: int) -> float:
        """Expected touches per page from the VMA's creation to ``t_us``."""
        return self.process.guest.core.vma_lambda(self.id, t_us)


class Process:
    """A guest process: a pid and its VMAs, laid out like a real address space."""

    def __init__(self, guest: "Guest", pid: int, name: str):
        self.guest, self.pid, self.name = guest, pid, name
        self.cgroup = "/"          # its memory cgroup's path (acma.mm.memcg)
        self.vmas: list[Vma] = []
        self._heap_next = HEAP_BASE
        self._mmap_next = MMAP_BASE

    def mmap(self, size: int | str, kind: str = "anon", in_use: int | str | None = None, node: int = 0,
             explicit: bool = False, name: str = "") -> Vma:
        """Map ``size`` bytes; ``in_use`` bytes of it start allocated (all by default).

        ``explicit`` VMAs have no touch rate: only explicit touches and trace events reach them.
        """
        nbytes = parse_size(size, "size")
        if not PAGE_SIZE <= nbytes <= MAX_GUEST * 4:
            raise ConfigError("size", size, "4 KiB to 4 TiB")
        if kind not in VMA_KINDS:
            raise ConfigError("kind", kind, f"one of {sorted(VMA_KINDS)}")
        if not isinstance(node, int) or not 0 <= node < self.guest.nr_nodes:
            raise ConfigError("node", node, f"a node in [0, {self.guest.nr_nodes})")
        npages = -(-nbytes // PAGE_SIZE)
        used = npages if in_use is None else -(-parse_size(in_use, "in_use") // PAGE_SIZE)
        if used > npages:
            raise ConfigError("in_use", in_use, f"at most size ({nbytes} bytes)")
        vid, gbase = self.guest.core.vma_add(VMA_KINDS[kind], npages, used, node, explicit)
        if not self.vmas:
            start = self._heap_next
            self._heap_next += -(-npages * PAGE_SIZE // VMA_ALIGN) * VMA_ALIGN + VMA_ALIGN
        else:
            start = self._mmap_next
            self._mmap_next += -(-npages * PAGE_SIZE // VMA_ALIGN) * VMA_ALIGN + VMA_ALIGN
        vma = Vma(self, vid, gbase, start, npages, kind, name or f"vma{len(self.vmas)}")
        self.vmas.append(vma)
        return vma


class Guest:
    """One guest's memory: build from a GuestConfig, add processes, run, look."""

    def __init__(self, config: GuestConfig | None = None):
        self.config = config or GuestConfig()
        r = self.config.resolve()
        self.resolved = r
        self.nr_pages = r.nr_pages
        self.nr_nodes = len(r.nodes)
        self.block_pages = r.block_pages
        self.core = _core.CoreMem(r.nr_pages, r.block_pages, self.nr_nodes, self.config.seed, r.swap_pages,
                                  self.config.swappiness, self.config.costs.as_dict(), r.block_node,
                                  r.block_zone, r.block_online)
        self.psi = Psi(hz=self.config.psi_hz)
        self.processes: list[Process] = []
        self.update_watermarks()

    # --- time
    @property
    def now_us(self) -> int:
        return self.core.now

    def run_until(self, t_us: int) -> None:
        """Advance to ``t_us``: every fault and trace event before it happens, PSI follows."""
        self.core.run(t_us)
        self.sync_psi()

    def sync_psi(self) -> None:
        """Bring PSI up to now (after anything that advanced the C core's clock)."""
        self._feed_psi()
        self.psi.advance(self.now_us)

    def _feed_psi(self) -> None:
        """Stalls from the C log into PSI: the workload's own stalls are 'full' when it is
        the only process (one runqueue); kswapd's reclaim and compaction (kcompactd or
        vm.compact_memory, never the workload's own allocation) count as 'some'."""
        log = self.core.drain_stalls()
        alone = len(self.processes) <= 1
        for t, dur_ns, kind in zip(log["t_us"].tolist(), log["dur_ns"].tolist(), log["kind"].tolist()):
            end = t + max(1, -(-dur_ns // 1000))
            t = max(t, self.psi.open_period_start_us)
            self.psi.record(t, max(end, t + 1), full=alone and kind not in (2, 3))

    # --- processes
    def spawn(self, name: str = "") -> Process:
        p = Process(self, len(self.processes) + 1, name or f"proc{len(self.processes) + 1}")
        self.processes.append(p)
        return p

    # --- zones and blocks
    def zone_index(self, node: int, zone: str) -> int:
        if zone not in ZONE_TYPES:
            raise ConfigError("zone", zone, f"one of {sorted(ZONE_TYPES)}")
        return node * 2 + ZONE_TYPES[zone]

    def update_watermarks(self) -> None:
        """__setup_per_zone_wmarks over every zone; called at boot and after (un)plug."""
        infos = [self.core.zone_info(z) for z in range(self.nr_nodes * 2)]
        wms = zone_watermarks([i["managed"] for i in infos], [z % 2 == 1 for z in range(len(infos))],
                              self.config.thp, self.config.watermark_scale_factor)
        for z, w in enumerate(wms):
            self.core.set_watermarks(z, w.min, w.low, w.high)

    def online_block(self, block: int, zone: str = "movable") -> None:
        self._check_block(block)
        if zone not in ZONE_TYPES:
            raise ConfigError("zone", zone, f"one of {sorted(ZONE_TYPES)}")
        self.core.block_online(block, ZONE_TYPES[zone])
        self.update_watermarks()

    def offline_block(self, block: int) -> None:
        """offline_pages: migrate every movable page out; CoreError(EBUSY) on unmovable ones."""
        self._check_block(block)
        self.core.block_offline(block)
        self.update_watermarks()

    def _check_block(self, block: int) -> None:
        nb = self.nr_pages // self.block_pages
        if not isinstance(block, int) or not 0 <= block < nb:
            raise ConfigError("block", block, f"a memory block index in [0, {nb})")

    # --- kernel allocations (slab, page tables) and their frees
    def kernel_alloc(self, order: int = 0, node: int = 0, movable: bool = False) -> int:
        if not isinstance(order, int) or not 0 <= order <= _core.MAX_ORDER:
            raise ConfigError("order", order, f"an order in [0, {_core.MAX_ORDER}]")
        if not isinstance(node, int) or not 0 <= node < self.nr_nodes:
            raise ConfigError("node", node, f"a node in [0, {self.nr_nodes})")
        mt = _core.MT_MOVABLE if movable else _core.MT_UNMOVABLE
        return self.core.alloc_pages(order, mt, _core.PS_KERNEL, node)

    def kernel_free(self, pfn: int, order: int = 0) -> None:
        self.core.free_pages(pfn, order)

    # --- views
    def meminfo(self) -> dict:
        """A /proc/meminfo subset in kB (MemAvailable by si_mem_available)."""
        zones = [self.core.zone_info(z) for z in range(self.nr_nodes * 2)]
        lru = [self.core.node_lru(n) for n in range(self.nr_nodes)]
        free = sum(z["free"] for z in zones)
        total = sum(z["managed"] for z in zones)
        low = sum(z["low"] for z in zones)
        reserve = sum(z["high"] for z in zones)
        file = sum(x["active_file"] + x["inactive_file"] for x in lru)
        avail = max(0, free - reserve + file - min(file // 2, low))
        kb = PAGE_SIZE // 1024
        states = self.core.state_counts()
        swap_used = self.core.swap_used()
        return {
            "MemTotal": total * kb, "MemFree": free * kb, "MemAvailable": avail * kb,
            "Active(anon)": sum(x["active_anon"] for x in lru) * kb,
            "Inactive(anon)": sum(x["inactive_anon"] for x in lru) * kb,
            "Active(file)": sum(x["active_file"] for x in lru) * kb,
            "Inactive(file)": sum(x["inactive_file"] for x in lru) * kb,
            "AnonPages": states["anon"] * kb, "Cached": states["file"] * kb,
            "KernelOther": states["kernel"] * kb, "DriverTaken": states["driver"] * kb,
            "SwapTotal": self.resolved.swap_pages * kb, "SwapFree": (self.resolved.swap_pages - swap_used) * kb,
        }

    def vmstat(self) -> dict:
        return self.core.counters()

    def states(self) -> dict:
        return self.core.state_counts()

    def zoneinfo(self) -> list[dict]:
        return [dict(self.core.zone_info(z), node=z // 2, zone=("normal", "movable")[z % 2])
                for z in range(self.nr_nodes * 2)]

    def buddyinfo(self) -> list[list[int]]:
        return [self.core.buddyinfo(z) for z in range(self.nr_nodes * 2)]

    def stall_totals_us(self) -> dict:
        return {k: v / 1000 for k, v in self.core.stall_totals_ns().items()}

    def young_pfns(self, pfns, clear: bool = True) -> np.ndarray:
        """Test (and clear) the accessed bit of physical pages, as DAMON's paddr does."""
        a = np.asarray(pfns)
        if a.size and (a.dtype.kind not in "iu" or int(a.min()) < 0 or int(a.max()) >= self.nr_pages):
            raise ConfigError("pfns", f"{a.dtype} array", f"integer page frame numbers in [0, {self.nr_pages})")
        return self.core.young_pfns(np.ascontiguousarray(a.reshape(-1), dtype=np.uint32), clear)

    def idle_bitmap(self, pfn_start: int, npages: int) -> np.ndarray:
        """Read-and-clear of /sys/kernel/mm/page_idle/bitmap over [pfn_start, +npages)."""
        return self.core.idle_bitmap(pfn_start, npages)

    def scan_pageblocks(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices of fully-free and of movable-only 2 MiB pageblocks."""
        ff, mo, _, _ = self.core.scan_pageblocks()
        npb = self.nr_pages >> _core.PAGEBLOCK_ORDER
        bits = lambda w: np.flatnonzero(np.unpackbits(w.view(np.uint8), bitorder="little")[:npb])  # noqa: E731
        return bits(ff), bits(mo)

    def check(self) -> None:
        """Recount every page and list in C; AssertionError names a broken invariant."""
        self.core.check()
