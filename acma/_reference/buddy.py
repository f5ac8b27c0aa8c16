"""Pure-Python reference of the C buddy allocator (csrc/buddy.c, the zonelist walk of
csrc/reclaim.c and the block online/offline of csrc/mem.c).

It keeps the same books as the C core for one guest: per zone, order and migratetype a free
list (a Python list, index 0 is the head), per pageblock a migratetype and free / movable /
unmovable page counters, per page a state. Every function names the C function it mirrors;
the aim is the same pfn from every allocation and the same free lists, entry order included,
after every operation (tests/test_reference_equal.py proves it on generated sequences).

Mapped pages (what a fault of an explicit-only VMA allocates) are followed by a tag the
caller chooses, so page migration during offlining can be mirrored too. Limits, on purpose:
there is no LRU, so reclaim never frees anything (as in a guest without swap or page cache,
alloc_with_reclaim's retries find nothing) and the reference has no page table of its own.
Watermarks default to zero, as the equality tests set them.
"""

from __future__ import annotations

MAX_ORDER = 10
PAGEBLOCK_ORDER = 9
PB_PAGES = 1 << PAGEBLOCK_ORDER

MT_UNMOVABLE, MT_MOVABLE, MT_ISOLATE = 0, 1, 2
ZONE_NORMAL, ZONE_MOVABLE = 0, 1
PS_FREE, PS_ANON, PS_FILE, PS_KERNEL, PS_DRIVER, PS_OFFLINE = range(6)

OK, EINVAL, EOOM, EBUSY, ESTATE = 0, -1, -3, -4, -5


class BuddyRef:
    """One guest's buddy allocator, block layout and page states (no VMAs, no LRU)."""

    def __init__(self, nr_pages: int, block_pages: int, nr_nodes: int, block_node, block_zone,
                 block_online):
        """acma_mem_new: every page offline, then each online block set online in order."""
        self.nr_pages = nr_pages
        self.block_shift = block_pages.bit_length() - 1
        self.nr_nodes = nr_nodes
        nb = nr_pages >> self.block_shift
        self.block_node = [int(x) for x in block_node]
        self.block_zone = [int(x) for x in block_zone]
        self.blk_online = [0] * nb
        self.state = bytearray([PS_OFFLINE]) * nr_pages
        self.heads: dict[int, int] = {}          # free block head pfn -> order (PG_BUDDY)
        self.mapped: dict[int, object] = {}      # mapped pfn -> the caller's tag (its gvpn)
        npb = nr_pages >> PAGEBLOCK_ORDER
        self.pb_mt = [MT_UNMOVABLE] * npb
        self.pb_free = [0] * npb
        self.pb_mov = [0] * npb
        self.pb_unmov = [0] * npb
        nz = nr_nodes * 2
        self.free_area = [[[[], []] for _ in range(MAX_ORDER + 1)] for _ in range(nz)]
        self.zone_free = [0] * nz
        self.managed = [0] * nz
        self.present = [0] * nz
        self.wmark = [(0, 0, 0)] * nz               # min, low, high
        self.counters = {"fallback_claim": 0, "fallback_steal": 0, "pgalloc": 0, "pgfree": 0}
        for b in range(nb):
            if block_online[b]:
                self._block_set_online(b, self.block_zone[b])

    @classmethod
    def from_guest(cls, guest) -> "BuddyRef":
        """The reference of a freshly built acma.mm.guest.Guest (before any allocation)."""
        r = guest.resolved
        return cls(r.nr_pages, r.block_pages, len(r.nodes), r.block_node, r.block_zone,
                   r.block_online)

    # ------------------------------------------------------------------ small helpers

    def pfn_zone(self, pfn: int) -> int:
        """internal.h pfn_zone: node * 2 + zone type of the pfn's memory block."""
        b = pfn >> self.block_shift
        return self.block_node[b] * 2 + self.block_zone[b]

    def free_list(self, zone: int, order: int, mt: int) -> list[int]:
        """acma_free_list: the list's pfns, head first."""
        return list(self.free_area[zone][order][mt])

    def nr_free(self, zone: int, order: int) -> int:
        return len(self.free_area[zone][order][0]) + len(self.free_area[zone][order][1])

    def set_used_state(self, pfn: int, npages: int, frm: int, to: int) -> None:
        """buddy.c set_used_state: page states and the movable/unmovable pageblock counters."""
        for i in range(pfn, pfn + npages):
            pb = i >> PAGEBLOCK_ORDER
            self.state[i] = to
            if frm in (PS_ANON, PS_FILE):
                self.pb_mov[pb] -= 1
            elif frm == PS_KERNEL:
                self.pb_unmov[pb] -= 1
            if to in (PS_ANON, PS_FILE):
                self.pb_mov[pb] += 1
            elif to == PS_KERNEL:
                self.pb_unmov[pb] += 1

    def _list_of(self, pfn: int, order: int) -> list[int]:
        """The list a free block belongs on now: its zone, order and pageblock's type."""
        mt = self.pb_mt[pfn >> PAGEBLOCK_ORDER]
        return self.free_area[self.pfn_zone(pfn)][order][1 if mt == MT_MOVABLE else 0]

    def _add_free_block(self, pfn: int, order: int, to_tail: bool) -> None:
        """buddy.c add_free_block."""
        lst = self._list_of(pfn, order)
        self.heads[pfn] = order
        if to_tail:
            lst.append(pfn)
        else:
            lst.insert(0, pfn)

    def _del_free_block(self, pfn: int) -> None:
        """buddy.c del_free_block (ValueError if the block is not on the list its type names)."""
        order = self.heads.pop(pfn)
        self._list_of(pfn, order).remove(pfn)

    def _set_pb_mt_range(self, pfn: int, order: int, mt: int) -> None:
        """buddy.c set_pb_mt_range: every pageblock the block covers (at least one)."""
        pb = pfn >> PAGEBLOCK_ORDER
        n = 1 << (order - PAGEBLOCK_ORDER) if order >= PAGEBLOCK_ORDER else 1
        for i in range(pb, pb + n):
            self.pb_mt[i] = mt

    def _expand(self, pfn: int, low: int, high: int) -> None:
        """buddy.c expand: keep the lowest 2^low pages, upper halves to the list heads."""
        while high > low:
            high -= 1
            self._add_free_block(pfn + (1 << high), high, False)

    def _take_pages(self, pfn: int, order: int) -> None:
        """buddy.c take_pages: the block leaves the free counts and becomes PS_DRIVER."""
        n = 1 << order
        self.zone_free[self.pfn_zone(pfn)] -= n
        for i in range(pfn, pfn + n):
            self.pb_free[i >> PAGEBLOCK_ORDER] -= 1
        self.set_used_state(pfn, n, PS_FREE, PS_DRIVER)
        self.counters["pgalloc"] += n

    # ------------------------------------------------------------------ __rmqueue

    def _rmqueue_smallest(self, zone: int, order: int, mt: int) -> int | None:
        """buddy.c rmqueue_smallest: the head of the first non-empty own-type list."""
        idx = 1 if mt == MT_MOVABLE else 0
        for o in range(order, MAX_ORDER + 1):
            lst = self.free_area[zone][o][idx]
            if lst:
                pfn = lst[0]
                self._del_free_block(pfn)
                self._expand(pfn, order, o)
                return pfn
        return None

    def _claim_pageblock(self, pb: int, mt: int) -> None:
        """buddy.c claim_pageblock: each free block of the pageblock, in address order, off the
        old type's list and onto the head of mt's; then the pageblock is mt."""
        old = self.pb_mt[pb]
        pfn = start = pb << PAGEBLOCK_ORDER
        while pfn < start + PB_PAGES:
            o = self.heads.get(pfn)
            if o is None:
                pfn += 1
                continue
            self.pb_mt[pb] = old
            self._del_free_block(pfn)
            self.pb_mt[pb] = mt
            self._add_free_block(pfn, o, False)
            pfn += 1 << o
        self.pb_mt[pb] = mt

    def _rmqueue_claim(self, zone: int, order: int, mt: int) -> int | None:
        """buddy.c rmqueue_claim: the largest fallback block; the first non-empty order decides."""
        other = 0 if mt == MT_MOVABLE else 1
        for o in range(MAX_ORDER, order - 1, -1):
            lst = self.free_area[zone][o][other]
            if not lst:
                continue
            if not (o >= PAGEBLOCK_ORDER // 2 or mt == MT_UNMOVABLE):
                return None
            pfn = lst[0]
            if o >= PAGEBLOCK_ORDER:
                self._del_free_block(pfn)
                self._set_pb_mt_range(pfn, o, mt)
                self._add_free_block(pfn, o, False)
            else:
                pb = pfn >> PAGEBLOCK_ORDER
                alike = self.pb_mov[pb] if mt == MT_MOVABLE else self.pb_unmov[pb]
                if self.pb_free[pb] + alike < PB_PAGES // 2:
                    return None
                self._claim_pageblock(pb, mt)
            self.counters["fallback_claim"] += 1
            return self._rmqueue_smallest(zone, order, mt)
        return None

    def _rmqueue_steal(self, zone: int, order: int, mt: int) -> int | None:
        """buddy.c rmqueue_steal: split the smallest fallback block, keep its pageblock's type."""
        other = 0 if mt == MT_MOVABLE else 1
        for o in range(order, MAX_ORDER + 1):
            lst = self.free_area[zone][o][other]
            if lst:
                pfn = lst[0]
                self._del_free_block(pfn)
                self._expand(pfn, order, o)
                self.counters["fallback_steal"] += 1
                return pfn
        return None

    def buddy_alloc(self, zone: int, order: int, mt: int) -> int | None:
        """buddy.c buddy_alloc (__rmqueue): own type, then claim, then steal."""
        pfn = self._rmqueue_smallest(zone, order, mt)
        if pfn is None:
            pfn = self._rmqueue_claim(zone, order, mt)
        if pfn is None:
            pfn = self._rmqueue_steal(zone, order, mt)
        if pfn is not None:
            self._take_pages(pfn, order)
        return pfn

    # ------------------------------------------------------------------ __free_one_page

    def _is_free_head(self, pfn: int, order: int, zone: int) -> bool:
        """buddy.c is_free_head."""
        return (pfn < self.nr_pages and self.heads.get(pfn) == order
                and bool(self.blk_online[pfn >> self.block_shift]) and self.pfn_zone(pfn) == zone
                and self.pb_mt[pfn >> PAGEBLOCK_ORDER] != MT_ISOLATE)

    def buddy_free(self, pfn: int, order: int, to_tail: bool) -> int | None:
        """buddy.c buddy_free: merge up to MAX_ORDER (retyping a differing buddy pageblock at
        order >= pageblock order), then to the tail if asked or if the next-higher buddy is free.
        Returns the merged order (None for an isolated pageblock), which reporting hooks use."""
        zone = self.pfn_zone(pfn)
        n = 1 << order
        self.set_used_state(pfn, n, PS_DRIVER, PS_FREE)
        for i in range(pfn, pfn + n):
            self.pb_free[i >> PAGEBLOCK_ORDER] += 1
        self.counters["pgfree"] += n
        if self.pb_mt[pfn >> PAGEBLOCK_ORDER] == MT_ISOLATE:
            return None
        self.zone_free[zone] += n
        while order < MAX_ORDER:
            buddy = pfn ^ (1 << order)
            if not self._is_free_head(buddy, order, zone):
                break
            self._del_free_block(buddy)
            mine = self.pb_mt[pfn >> PAGEBLOCK_ORDER]
            if order >= PAGEBLOCK_ORDER and self.pb_mt[buddy >> PAGEBLOCK_ORDER] != mine:
                self._set_pb_mt_range(buddy, order, mine)
            pfn &= buddy
            order += 1
        if not to_tail and order < MAX_ORDER - 1:
            higher = (pfn & ~((2 << order) - 1)) ^ (2 << order)
            to_tail = self._is_free_head(higher, order + 1, zone)
        self._add_free_block(pfn, order, to_tail)
        return order

    # ------------------------------------------------------------------ zonelist

    def zone_watermark_ok(self, zone: int, order: int, mark: int) -> bool:
        """buddy.c zone_watermark_ok."""
        usable = self.zone_free[zone] - ((1 << order) - 1)
        if usable <= mark:
            return False
        if order == 0:
            return True
        return any(self.nr_free(zone, o) for o in range(order, MAX_ORDER + 1))

    def try_zones(self, order: int, mt: int, node: int, movable: bool, mark: int) -> int | None:
        """reclaim.c try_zones: nodes from the preferred one on, MOVABLE before NORMAL for
        movable requests; mark 1 = low watermark, 0 = min, -1 = none."""
        for k in range(self.nr_nodes):
            nid = (node + k) % self.nr_nodes
            for zt in ((ZONE_MOVABLE, ZONE_NORMAL) if movable else (ZONE_NORMAL,)):
                zi = nid * 2 + zt
                if not self.managed[zi]:
                    continue
                w = self.wmark[zi][0] if mark == 0 else self.wmark[zi][1]
                if mark >= 0 and not self.zone_watermark_ok(zi, order, w):
                    continue
                pfn = self.buddy_alloc(zi, order, mt)
                if pfn is not None:
                    return pfn
        return None

    # ------------------------------------------------------------------ public operations

    def alloc_with_reclaim(self, order: int, mt: int, node: int, movable: bool) -> int | None:
        """reclaim.c alloc_with_reclaim: the low-watermark pass, then the min pass. Its direct
        reclaim retries are left out: without an LRU page to reclaim they change nothing."""
        pfn = self.try_zones(order, mt, node, movable, 1)
        if pfn is None:
            pfn = self.try_zones(order, mt, node, movable, 0)
        return pfn

    def alloc_pages(self, order: int, mt: int, state: int, node: int) -> tuple[int, int | None]:
        """acma_alloc_pages -> (rc, pfn)."""
        if (order > MAX_ORDER or mt > MT_MOVABLE or node >= self.nr_nodes
                or state not in (PS_KERNEL, PS_DRIVER)):
            return EINVAL, None
        pfn = self.alloc_with_reclaim(order, mt, node, mt == MT_MOVABLE)
        if pfn is None:
            return EOOM, None
        if state == PS_KERNEL:
            self.set_used_state(pfn, 1 << order, PS_DRIVER, PS_KERNEL)
        return OK, pfn

    def map_page(self, node: int, tag, state: int = PS_ANON) -> tuple[int, int | None]:
        """vma.c fault's allocation: one movable page from the VMA's node, mapped as ``tag``."""
        pfn = self.alloc_with_reclaim(0, MT_MOVABLE, node, True)
        if pfn is None:
            return EOOM, None
        self.set_used_state(pfn, 1, PS_DRIVER, state)
        self.mapped[pfn] = tag
        return OK, pfn

    def unmap_page(self, pfn: int) -> None:
        """vma.c unmap_page (munmap or a shrinking VMA): the page goes back to the head."""
        del self.mapped[pfn]
        self.set_used_state(pfn, 1, self.state[pfn], PS_DRIVER)
        self.buddy_free(pfn, 0, False)

    def migrate_page(self, pfn: int) -> tuple[int, int | None]:
        """acma_migrate_page: a new page from the old one's node (movable zones first only if
        the old page is in ZONE_MOVABLE), no watermark; the old page is freed."""
        if pfn >= self.nr_pages:
            return EINVAL, None
        s = self.state[pfn]
        if s not in (PS_ANON, PS_FILE):
            return EBUSY, None
        b = pfn >> self.block_shift
        new = self.try_zones(0, MT_MOVABLE, self.block_node[b], bool(self.block_zone[b]), 0)
        if new is None:
            return EOOM, None
        self.set_used_state(new, 1, PS_DRIVER, s)
        self.mapped[new] = self.mapped.pop(pfn)
        self.set_used_state(pfn, 1, s, PS_DRIVER)
        self.buddy_free(pfn, 0, False)
        return OK, new

    def free_pages(self, pfn: int, order: int) -> int:
        """acma_free_pages."""
        if (order > MAX_ORDER or pfn >= self.nr_pages or pfn & ((1 << order) - 1)
                or pfn + (1 << order) > self.nr_pages):
            return EINVAL
        s = self.state[pfn]
        if s not in (PS_KERNEL, PS_DRIVER):
            return ESTATE
        if any(self.state[i] != s for i in range(pfn, pfn + (1 << order))):
            return ESTATE
        self.set_used_state(pfn, 1 << order, s, PS_DRIVER)
        self.buddy_free(pfn, order, False)
        return OK

    def _block_set_online(self, b: int, zone_type: int) -> None:
        """mem.c block_set_online: pageblocks movable, max-order blocks freed to the tail."""
        start, n = b << self.block_shift, 1 << self.block_shift
        self.block_zone[b] = zone_type
        self.blk_online[b] = 1
        z = self.pfn_zone(start)
        for pb in range(start >> PAGEBLOCK_ORDER, (start + n) >> PAGEBLOCK_ORDER):
            self.pb_mt[pb] = MT_MOVABLE
        self.set_used_state(start, n, PS_OFFLINE, PS_DRIVER)
        for pfn in range(start, start + n, 1 << MAX_ORDER):
            self.buddy_free(pfn, MAX_ORDER, True)
        self.counters["pgfree"] -= n
        self.present[z] += n
        self.managed[z] += n

    def block_online(self, block: int, zone_type: int) -> int:
        """acma_block_online."""
        if block >= len(self.blk_online) or zone_type > ZONE_MOVABLE:
            return EINVAL
        if self.blk_online[block]:
            return ESTATE
        self._block_set_online(block, zone_type)
        return OK

    def _unisolate(self, start: int, n: int, saved_mt: list[int]) -> None:
        """mem.c unisolate: types back, then every free page freed to the tail in address order."""
        pb0 = start >> PAGEBLOCK_ORDER
        self.pb_mt[pb0:pb0 + len(saved_mt)] = saved_mt
        for pfn in range(start, start + n):
            if self.state[pfn] != PS_FREE:
                continue
            self.pb_free[pfn >> PAGEBLOCK_ORDER] -= 1
            self.set_used_state(pfn, 1, PS_FREE, PS_DRIVER)
            self.buddy_free(pfn, 0, True)
            self.counters["pgfree"] -= 1

    def block_offline(self, block: int) -> int:
        """acma_block_offline: refuse on kernel/driver pages, take the free blocks off the lists,
        isolate, migrate every mapped page in address order (undo on failure), take the block."""
        if block >= len(self.blk_online):
            return EINVAL
        if not self.blk_online[block]:
            return ESTATE
        start, n = block << self.block_shift, 1 << self.block_shift
        z = self.pfn_zone(start)
        if any(self.state[i] in (PS_KERNEL, PS_DRIVER) for i in range(start, start + n)):
            return EBUSY
        pb0, npb = start >> PAGEBLOCK_ORDER, n >> PAGEBLOCK_ORDER
        saved = self.pb_mt[pb0:pb0 + npb]
        for pfn in range(start, start + n):
            if pfn in self.heads:
                self.zone_free[z] -= 1 << self.heads[pfn]
                self._del_free_block(pfn)
        self.pb_mt[pb0:pb0 + npb] = [MT_ISOLATE] * npb
        for pfn in range(start, start + n):
            if self.state[pfn] not in (PS_ANON, PS_FILE):
                continue
            if self.migrate_page(pfn)[0] != OK:
                self._unisolate(start, n, saved)
                return EBUSY
        self.pb_free[pb0:pb0 + npb] = [0] * npb
        self.set_used_state(start, n, PS_FREE, PS_OFFLINE)
        self.blk_online[block] = 0
        self.present[z] -= n
        self.managed[z] -= n
        return OK

    def pageblocks(self) -> dict:
        """acma_copy_pageblocks, as lists."""
        return {"mt": list(self.pb_mt), "free": list(self.pb_free),
                "movable": list(self.pb_mov), "unmovable": list(self.pb_unmov)}
