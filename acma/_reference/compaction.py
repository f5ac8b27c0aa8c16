"""Pure-Python reference of compact_zone at order -1 (csrc/compaction.c), on a ReportingRef.

Written as plainly as mm/compaction.c reads: the migrate scanner isolates up to 32 LRU pages
per step from the zone's start, the free scanner isolates free blocks of MOVABLE pageblocks
from the top into per-order lists, compaction_alloc hands out the smallest one (splitting it),
and pages move until the scanners meet or, proactive, the zone's score reaches the low mark.
tests/test_compaction.py proves the C core equal to it on generated guests.
"""

from __future__ import annotations

from .buddy import MAX_ORDER, MT_MOVABLE, PAGEBLOCK_ORDER, PS_ANON, PS_DRIVER, PS_FILE
from .reporting import ReportingRef

PB = 1 << PAGEBLOCK_ORDER
CLUSTER = 32
SKIPPED, COMPLETE, SUCCESS, CONTENDED = range(4)


def extfrag(ref: ReportingRef, zone: int, order: int = PAGEBLOCK_ORDER) -> int:
    """vmstat.c extfrag_for_order."""
    free = sum(ref.nr_free(zone, o) << o for o in range(MAX_ORDER + 1))
    suitable = sum(ref.nr_free(zone, o) << (o - order) for o in range(order, MAX_ORDER + 1))
    return (free - (suitable << order)) * 100 // free if free else 0


def compact_zone(ref: ReportingRef, zone: int, proactive: bool, proactiveness: int) -> tuple[int, dict]:
    st = dict(migrate_scanned=0, free_scanned=0, isolated=0, migrated=0, migrate_failed=0)
    blocks = [b for b in range(len(ref.blk_online))
              if ref.blk_online[b] and ref.block_node[b] * 2 + ref.block_zone[b] == zone]
    if not blocks:
        return SKIPPED, st
    bp = 1 << ref.block_shift
    start, end = blocks[0] * bp, (blocks[-1] + 1) * bp
    wmark_low = max(100 - proactiveness, 5)
    cc = {"migrate": start, "free": (end - 1) & ~(PB - 1)}
    fl: list[list[int]] = [[] for _ in range(MAX_ORDER + 1)]
    isolated_migrate: list[int] = []
    nr_free = [0]

    def in_zone(pfn):
        return pfn < ref.nr_pages and ref.blk_online[pfn >> ref.block_shift] and ref.pfn_zone(pfn) == zone

    def met():
        return cc["free"] >> PAGEBLOCK_ORDER <= cc["migrate"] >> PAGEBLOCK_ORDER

    def finished():
        if met():
            return COMPLETE
        if proactive and extfrag(ref, zone) <= wmark_low:
            return SUCCESS
        return None

    def isolate_migratepages():
        low = cc["migrate"]
        bstart, bend = max(low & ~(PB - 1), start), (low & ~(PB - 1)) + PB
        while bend <= cc["free"]:
            if in_zone(bstart):
                scanned = 0
                while low < bend:
                    scanned += 1
                    if low in ref.heads:
                        skip = (1 << ref.heads[low]) - 1
                        low += skip + 1
                        scanned += skip
                        continue
                    if ref.state[low] in (PS_ANON, PS_FILE):
                        isolated_migrate.append(low)
                        st["isolated"] += 1
                        if len(isolated_migrate) == CLUSTER:
                            low += 1
                            break
                    low += 1
                cc["migrate"] = low
                st["migrate_scanned"] += scanned
                break
            cc["migrate"] = low = bend
            bstart, bend = bend, bend + PB
        return bool(isolated_migrate)

    def isolate_freepages():
        bstart = cc["free"] & ~(PB - 1)
        bend = min(bstart + PB, end)
        low = (cc["migrate"] & ~(PB - 1)) + PB
        iso = cc["free"]
        while bstart >= low:
            o = ref.heads.get(bstart)
            suitable = not (o is not None and o >= PAGEBLOCK_ORDER) and ref.pb_mt[bstart >> PAGEBLOCK_ORDER] == MT_MOVABLE
            if in_zone(bstart) and suitable:
                pfn, scanned = iso, 0
                while pfn < bend:
                    scanned += 1
                    if pfn not in ref.heads:
                        pfn += 1
                        continue
                    order = ref.heads[pfn]
                    n = 1 << order
                    if not ref.isolate(pfn):
                        break
                    fl[order].append(pfn)
                    scanned += n - 1
                    nr_free[0] += n
                    st["isolated"] += n
                    if len(isolated_migrate) <= nr_free[0]:
                        pfn += n
                        break
                    pfn += n
                iso = pfn
                st["free_scanned"] += scanned
                if nr_free[0] >= len(isolated_migrate):
                    if iso >= bend:
                        iso = bstart - PB
                    break
                if iso < bend:
                    break
            bend = bstart
            bstart -= PB
            iso = bstart
        cc["free"] = iso

    def alloc():
        for tried in (False, True):
            for o in range(MAX_ORDER + 1):
                if fl[o]:
                    p = fl[o].pop(0)
                    while o > 0:
                        o -= 1
                        fl[o].insert(0, p + (1 << o))
                    nr_free[0] -= 1
                    return p
            if tried:
                return None
            isolate_freepages()

    def move(src, dst):
        s = ref.state[src]
        ref.set_used_state(dst, 1, PS_DRIVER, s)
        ref.mapped[dst] = ref.mapped.pop(src)
        ref.set_used_state(src, 1, s, PS_DRIVER)
        ref.buddy_free(src, 0, False)

    ret = finished()
    while ret is None:
        if isolate_migratepages():
            err = False
            for src in reversed(isolated_migrate):
                dst = None if err else alloc()
                if dst is None:
                    err = True
                    st["migrate_failed"] += 1
                    continue
                move(src, dst)
                st["migrated"] += 1
            isolated_migrate.clear()
            if err and not met():
                ret = CONTENDED
                break
        ret = finished()
    for o in range(MAX_ORDER + 1):
        for p in fl[o]:
            ref.buddy_free(p, o, False)
    return ret, st
