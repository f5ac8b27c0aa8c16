"""Pure-Python reference of free page reporting (csrc/reporting.c) on top of BuddyRef.

The pass is written the way mm/page_reporting.c is: one synchronous loop that calls the
device for every full scatterlist, where the C core stops and resumes around each report.
tests/test_reporting.py drives both with the same operations and device answers and compares
every free list (entry order included), Reported flag, state and counter.
"""

from __future__ import annotations

from collections.abc import Callable

from .buddy import MAX_ORDER, MT_MOVABLE, PAGEBLOCK_ORDER, PS_DRIVER, PS_FREE, BuddyRef

IDLE, REQUESTED, ACTIVE = 0, 1, 2
NO_WORK = 2**64 - 1


class ReportingRef(BuddyRef):
    """BuddyRef plus PG_reported, __isolate_free_page / __putback_isolated_page and the
    page_reporting device state (order, capacity, delay, request machine)."""

    def __init__(self, *args, **kw):
        self.reported: set[int] = set()
        self.rep = None          # dict once enabled
        self.now = 0
        super().__init__(*args, **kw)

    # --- PG_reported follows the free list: cleared when a head leaves it
    def _del_free_block(self, pfn: int) -> None:
        super()._del_free_block(pfn)
        self.reported.discard(pfn)

    def _claim_pageblock(self, pb: int, mt: int) -> None:
        """A move between free lists keeps PageReported."""
        start = pb << PAGEBLOCK_ORDER
        keep = {p for p in self.reported if start <= p < start + (1 << PAGEBLOCK_ORDER)}
        super()._claim_pageblock(pb, mt)
        self.reported |= keep

    def buddy_free(self, pfn: int, order: int, to_tail: bool, skip_report: bool = False):
        merged = super().buddy_free(pfn, order, to_tail)
        if merged is not None and not skip_report:
            self.notify_free(merged)
        return merged

    # --- mm/page_reporting.c
    def enable(self, order: int, capacity: int, delay_us: int) -> None:
        self.rep = {"order": order, "capacity": capacity, "delay": delay_us, "state": IDLE,
                    "due": NO_WORK, "passes": 0, "reports": 0, "failed": 0, "blocks": 0, "pages": 0}
        self._request()

    def _request(self) -> None:
        r = self.rep
        old = r["state"]
        if old == REQUESTED:
            return
        r["state"] = REQUESTED
        if old == IDLE:
            r["due"] = self.now + r["delay"]

    def notify_free(self, order: int) -> None:
        if self.rep is not None and order >= self.rep["order"]:
            self._request()

    def isolate(self, pfn: int) -> bool:
        """buddy.c buddy_isolate_free."""
        order = self.heads[pfn]
        z, n = self.pfn_zone(pfn), 1 << order
        if not self.zone_watermark_ok(z, 0, self.wmark[z][0] + n):
            return False
        self._del_free_block(pfn)
        self.zone_free[z] -= n
        for i in range(pfn, pfn + n):
            self.pb_free[i >> PAGEBLOCK_ORDER] -= 1
        self.set_used_state(pfn, n, PS_FREE, PS_DRIVER)
        if order >= PAGEBLOCK_ORDER:
            self._set_pb_mt_range(pfn, order, MT_MOVABLE)
        elif order == PAGEBLOCK_ORDER - 1 and self.pb_mt[pfn >> PAGEBLOCK_ORDER] != MT_MOVABLE:
            self._claim_pageblock(pfn >> PAGEBLOCK_ORDER, MT_MOVABLE)
        return True

    def _drain(self, sgl: list[tuple[int, int]], ok: bool) -> None:
        r = self.rep
        for pfn, order in sgl:
            self.buddy_free(pfn, order, True, skip_report=True)
            self.counters["pgfree"] -= 1 << order
            if ok and self.heads.get(pfn) == order:
                self.reported.add(pfn)
        r["reports"] += 1
        if ok:
            r["blocks"] += len(sgl)
            r["pages"] += sum(1 << o for _, o in sgl)
        else:
            r["failed"] += 1

    @staticmethod
    def _rotate(lst: list[int], page: int) -> None:
        i = lst.index(page)
        lst[:] = lst[i:] + lst[:i]

    def _cycle(self, zone: int, order: int, mt: int, sgl: list, report) -> bool:
        """page_reporting_cycle; sgl holds (pfn, order) with sgl[0] the last isolated. False on error."""
        r, cap = self.rep, self.rep["capacity"]
        lst = self.free_area[zone][order][mt]
        if not lst:
            return True
        budget = -(-self.nr_free(zone, order) // (cap * 16))
        i = 0
        while i < len(lst):
            page = lst[i]
            if page in self.reported:
                i += 1
                continue
            if budget < 0:
                r["state"] = REQUESTED
                self._rotate(lst, page)
                return True
            if len(sgl) < cap:
                if not self.isolate(page):
                    self._rotate(lst, page)
                    return True
                sgl.insert(0, (page, order))     # the scatterlist fills from its end
                continue                          # the page left the list: same index
            self._rotate(lst, page)
            ok = bool(report([p for p, _ in sgl], [o for _, o in sgl]))
            budget -= 1
            self._drain(sgl, ok)
            sgl.clear()
            if not ok:
                return False
            i = 0
        return True

    def run_pass(self, report: Callable[[list, list], bool]) -> None:
        """page_reporting_process if its work is due at self.now."""
        r = self.rep
        if r is None or r["due"] > self.now:
            return
        r["due"] = NO_WORK
        r["state"] = ACTIVE
        r["passes"] += 1
        for zone in range(len(self.free_area)):
            mark = self.wmark[zone][1] + (r["capacity"] << r["order"])
            if not self.zone_watermark_ok(zone, 0, mark):
                continue
            sgl: list = []
            ok = True
            for order in range(r["order"], MAX_ORDER + 1):
                for mt in (0, 1):
                    ok = self._cycle(zone, order, mt, sgl, report)
                    if not ok:
                        break
                if not ok:
                    break
            if not ok:
                break
            if sgl:
                ok = bool(report([p for p, _ in sgl], [o for _, o in sgl]))
                self._drain(sgl, ok)
                if not ok:
                    break
        if r["state"] == REQUESTED:
            r["due"] = self.now + r["delay"]
        else:
            r["state"] = IDLE
