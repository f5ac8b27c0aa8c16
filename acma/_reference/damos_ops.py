"""Reference of acma_damos_apply's walk and ops filters (csrc/damos_ops.c) in pure Python:
which pages a call visits, which pass the filters, and what the action leaves on each, from
a copy of the page records taken before the call. The equality test runs both on the same
guest. ``young`` is an oracle per pfn (damon_young before the call), since the access model
decides it lazily in C; the walk updates it as the young filter's mkold does.
"""

from __future__ import annotations

import bisect

ANON, FILE = 1, 2
PG_REFERENCED, PG_ACTIVE = 2, 4
PAGE = 4096


def page_memcg(owner: int, vma_gbase: list[int], vma_memcg) -> int:
    i = bisect.bisect_right(vma_gbase, owner) - 1
    return int(vma_memcg[i]) if 0 <= i < len(vma_memcg) else 0


def filtered_out(pfn: int, pages: dict, filters, default_reject: bool, vma_gbase, vma_memcg,
                 memcg_ids: dict, young) -> bool:
    """The first filter whose predicate equals its ``matching`` decides; else the default."""
    for f in filters:
        t = f.type
        if t == "anon":
            pred = pages["state"][pfn] == ANON
        elif t == "active":
            pred = bool(pages["flags"][pfn] & PG_ACTIVE)
        elif t == "memcg":
            pred = page_memcg(int(pages["owner"][pfn]), vma_gbase, vma_memcg) == memcg_ids.get(f.memcg_path, -1)
        elif t == "young":      # a young page is mkold'ed: a later young filter sees it old
            pred = bool(young[pfn])
            young[pfn] = False
        elif t == "hugepage_size":
            pred = f.hugepage_size[0] <= PAGE <= f.hugepage_size[1]
        else:
            pred = False
        if pred == f.matching:
            return not f.allow
    return default_reject


def walk(ops: str, segments, pte_of, pages: dict, filters, default_reject: bool, vma_gbase, vma_memcg,
         memcg_ids: dict, young) -> tuple[list[int], list[int]]:
    """(visited pfns, passed pfns) in walk order. paddr segments are pfn (start, len) with
    LRU pages taken; vaddr segments are gvpn (start, len) with present ptes (``pte_of(g)`` is
    the pfn or None)."""
    visited, passed = [], []
    for start, n in segments:
        for x in range(start, start + n):
            if ops == "paddr":
                pfn = x if pages["state"][x] in (ANON, FILE) else None
            else:
                pfn = pte_of(x)
            if pfn is None:
                continue
            visited.append(pfn)
            if not filtered_out(pfn, pages, filters, default_reject, vma_gbase, vma_memcg, memcg_ids, young):
                passed.append(pfn)
    return visited, passed


def expected_flags(action: str, flags: int) -> tuple[int, int]:
    """(mask, value) the ACTIVE/REFERENCED bits of a passing page must show afterwards."""
    if action == "lru_prio":
        return PG_ACTIVE, PG_ACTIVE
    if action in ("lru_deprio", "cold"):
        if action == "cold" or flags & (PG_ACTIVE | PG_REFERENCED):
            return PG_ACTIVE | PG_REFERENCED, 0
        return PG_ACTIVE | PG_REFERENCED, flags & (PG_ACTIVE | PG_REFERENCED)
    return 0, 0
