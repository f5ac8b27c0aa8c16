"""Memory hotplug accounting: the struct page overhead of every memory block, where it lives,
and the vmemmap a 2 MiB chunk given away can release.

- 64 bytes of struct page per 4 KiB page (1.5625 %): block_pages / 64 pages of memmap per
  block. Boot memory's memmap comes from memblock before the buddy allocator exists, so it is
  counted but never in managed memory (as in the kernel). A hot-added block's memmap is
  allocated when it is onlined: from the node's ZONE_NORMAL as unmovable kernel pages
  (vmemmap_populate), or with ``memmap_on_memory`` from the block's own first pages, which never
  reach the buddy (mhp_init_memmap_on_memory; needs whole pageblocks, so blocks of >= 128 MiB).
  Offlining a block here also removes it (virtio-mem and ACPI unplug do both), so its memmap
  is released with it.
- vmemmap optimization (HVO-style, as the single-owner-memory seed applies it to chunks a
  driver owns): of the chunk's 2^order / 64 vmemmap pages all but ``vmemmap_kept`` (default 2:
  6 of 8 freed per 2 MiB, the seed's figure; current HugeTLB keeps 1) are freed; restoring
  allocates them again and can fail (GuestOOM). When the chunk's memmap is real pages of the
  model (a hot-added block without memmap_on_memory) they really move; for boot memory the
  saving is accounted only (those pages are memblock memory outside the model); a
  memmap_on_memory block is never optimized (its vmemmap is self-hosted, as the kernel refuses).
"""

from __future__ import annotations

from .. import _core
from .._core import _check, lib
from ..errors import ConfigError

STRUCT_PAGE_BYTES = 64
PAGE_SIZE = 4096
PER_VMEMMAP_PAGE = PAGE_SIZE // STRUCT_PAGE_BYTES     # 64 guest pages' struct pages per page


class MemoryHotplug:
    """Online/offline memory blocks of ``guest`` with their memmap, and chunk vmemmap optimization."""

    def __init__(self, guest, memmap_on_memory: bool = False, vmemmap_kept: int = 2):
        if not isinstance(memmap_on_memory, bool):
            raise ConfigError("hotplug.memmap_on_memory", memmap_on_memory, "True or False")
        if isinstance(vmemmap_kept, bool) or vmemmap_kept not in (1, 2):
            raise ConfigError("hotplug.vmemmap_kept", vmemmap_kept, "1 (current HVO) or 2 (the seed's 6 of 8)")
        self.memmap_pages = guest.block_pages // PER_VMEMMAP_PAGE
        if memmap_on_memory and self.memmap_pages % (1 << _core.PAGEBLOCK_ORDER):
            raise ConfigError("hotplug.memmap_on_memory", True,
                              "memory blocks of at least 128 MiB (the memmap must fill whole pageblocks)")
        self.guest = guest
        self.memmap_on_memory = memmap_on_memory
        self.vmemmap_kept = vmemmap_kept
        online = guest.resolved.block_online
        # block -> where its memmap lives: "boot", "self" (memmap_on_memory) or the list of its
        # kernel pages (first the order-k allocation onlining made, base in _base)
        self.memmap: dict[int, object] = {b: "boot" for b in range(len(online)) if online[b]}
        self._base: dict[int, int] = {}
        self._relocated: dict[int, list[int]] = {}         # chunk pfn -> its restored vmemmap
        self.optimized: dict[int, list[int] | int] = {}   # chunk pfn -> freed pfns, or a count
        self.counters = {"memmap_allocated": 0, "memmap_released": 0, "vmemmap_freed": 0,
                         "vmemmap_restored": 0, "online_failed_nomem": 0}

    # --- blocks
    def online(self, block: int, zone: str = "movable") -> None:
        """Hot-add and online ``block``: its memmap first (GuestOOM when there is no room)."""
        g = self.guest
        g._check_block(block)
        node = int(g.resolved.block_node[block])
        if self.memmap_on_memory:
            if zone not in ("normal", "movable"):
                raise ConfigError("zone", zone, "normal or movable")
            _check("block_online_memmap", lib.acma_block_online_memmap(
                g.core._m, block, 1 if zone == "movable" else 0, self.memmap_pages))
            g.update_watermarks()
            self.memmap[block] = "self"
        else:
            order = self.memmap_pages.bit_length() - 1
            try:
                pfn = g.kernel_alloc(order=order, node=node)
            except _core.GuestOOM:
                self.counters["online_failed_nomem"] += 1
                raise
            try:
                g.online_block(block, zone)
            except BaseException:
                g.kernel_free(pfn, order)
                raise
            self.memmap[block] = list(range(pfn, pfn + self.memmap_pages))
            self._base[block] = pfn
        self.counters["memmap_allocated"] += self.memmap_pages

    def offline(self, block: int) -> None:
        """Offline and remove ``block``; its memmap goes too. CoreError(EBUSY) leaves all as it was."""
        g = self.guest
        g._check_block(block)
        where = self.memmap.get(block)
        if any(b >> (g.block_pages.bit_length() - 1) == block for b in self.optimized):
            raise ConfigError("block", block, "a block without optimized chunks (restore them first)")
        if where == "self":
            _check("block_offline_memmap", lib.acma_block_offline_memmap(g.core._m, block, self.memmap_pages))
            g.update_watermarks()
        else:
            g.offline_block(block)
            if isinstance(where, list):
                for p in where:
                    g.kernel_free(p, 0)
                del self._base[block]
        self.memmap.pop(block, None)
        self.counters["memmap_released"] += self.memmap_pages

    # --- accounting
    def struct_page_bytes(self) -> int:
        """Memmap of every present block now, less what chunk optimization freed."""
        return (len(self.memmap) * self.memmap_pages - self.counters["vmemmap_freed"]
                + self.counters["vmemmap_restored"]) * PAGE_SIZE

    def vmemmap_pages_of(self, order: int) -> int:
        return max(0, (1 << order) // PER_VMEMMAP_PAGE - self.vmemmap_kept)

    # --- vmemmap optimization of chunks a driver took (the acma helper calls these)
    def optimize_chunk(self, pfn: int, order: int = _core.PAGEBLOCK_ORDER) -> int:
        """The chunk [pfn, pfn + 2^order) was given away: free its vmemmap but the kept pages.
        Returns pages freed (0 for a memmap_on_memory block or a chunk under 256 KiB)."""
        g = self.guest
        if not isinstance(order, int) or not 0 <= order <= 18 or not isinstance(pfn, int) \
                or pfn % (1 << order) or not 0 <= pfn < g.nr_pages:
            raise ConfigError("chunk", (pfn, order), "an aligned chunk inside the guest")
        if pfn in self.optimized:
            raise ConfigError("chunk", pfn, "a chunk not optimized yet")
        block = pfn // g.block_pages
        where = self.memmap.get(block)
        n = self.vmemmap_pages_of(order) if where != "self" else 0
        if isinstance(where, list) and n:
            # the chunk's vmemmap pages inside the block's memmap, past the kept ones
            first = self._base[block] + (pfn - block * g.block_pages) // PER_VMEMMAP_PAGE + self.vmemmap_kept
            pages = self._relocated.pop(pfn, None) or list(range(first, first + n))
            for p in pages:
                g.kernel_free(p, 0)
                where.remove(p)
            self.optimized[pfn] = pages
        else:
            self.optimized[pfn] = n
        self.counters["vmemmap_freed"] += n
        return n

    def restore_chunk(self, pfn: int) -> int:
        """The chunk comes back: its vmemmap is allocated again (GuestOOM if it cannot be)."""
        if pfn not in self.optimized:
            raise ConfigError("chunk", pfn, "an optimized chunk")
        g = self.guest
        freed = self.optimized[pfn]
        if isinstance(freed, list):
            node = int(g.resolved.block_node[pfn // g.block_pages])
            got = []
            try:
                for _ in freed:
                    got.append(g.kernel_alloc(order=0, node=node))
            except _core.GuestOOM:
                for p in got:
                    g.kernel_free(p, 0)
                raise
            self.memmap[pfn // g.block_pages].extend(got)   # the block's memmap, relocated
            self._relocated[pfn] = got
            n = len(freed)
        else:
            n = freed
        del self.optimized[pfn]
        self.counters["vmemmap_restored"] += n
        return n
