"""Reference of the trace path of acma_run (csrc/vma.c) for explicit-only VMAs.

A trace event is (t µs, gvpn << 1 | write). An event before t_end whose page is present
sets YOUNG (and DIRTY for a write) on the page's pfn; the first event whose page is not
present is where the C loop calls touch(): a fault for an in-use page, ESTATE (SIGSEGV) for
a page outside the VMA's in-use part. With only explicit VMAs there is no synthetic fault to
interleave, so the events are handled strictly in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PTE_NP = 0x80000000
PTE_UNALLOC = 0xFFFFFFFF
PG_YOUNG, PG_DIRTY = 1, 8


@dataclass
class ReplayResult:
    flags: np.ndarray        # the flags after the events handled without a fault
    handled: int             # events handled before the stop (the trace position, if no stop)
    stop: int | None         # index of the first event reaching a non-present page, if any
    stop_kind: str | None    # "fault" (an in-use page) or "sigsegv" (PTE_UNALLOC)


def replay(pte_of, flags, t_us, gvpn_w, t_end: int, start: int = 0) -> ReplayResult:
    """acma_run's trace loop from trace position ``start`` up to (not including) t_end.

    pte_of(gvpn) gives the page-table entry (a pfn when bit 31 is clear); flags is the per-pfn
    flag array (copied, not changed). The replay stops before the first event that would
    fault, and reports it.
    """
    out = np.array(flags, dtype=np.uint8, copy=True)
    i = start
    n = len(t_us)
    while i < n and int(t_us[i]) < t_end:
        gw = int(gvpn_w[i])
        p = int(pte_of(gw >> 1))
        if p & PTE_NP:
            return ReplayResult(out, i - start, i, "sigsegv" if p == PTE_UNALLOC else "fault")
        out[p] |= PG_YOUNG | (PG_DIRTY if gw & 1 else 0)
        i += 1
    return ReplayResult(out, i - start, None, None)


def replay_np(pte, gbase: int, flags, t_us, gvpn_w, t_end: int) -> ReplayResult:
    """The same replay, vectorised: pte is the page table of [gbase, gbase + len(pte))."""
    pte = np.asarray(pte, dtype=np.uint32)
    t = np.asarray(t_us, dtype=np.uint64)
    gw = np.asarray(gvpn_w, dtype=np.uint64)
    n = int(np.searchsorted(t, np.uint64(t_end), side="left")) if t_end < 2**64 else len(t)
    p = pte[(gw[:n] >> np.uint64(1)).astype(np.int64) - gbase]
    bad = np.flatnonzero(p & np.uint32(PTE_NP))
    stop = int(bad[0]) if bad.size else None
    m = stop if stop is not None else n
    out = np.array(flags, dtype=np.uint8, copy=True)
    bits = np.where(gw[:m] & np.uint64(1), PG_YOUNG | PG_DIRTY, PG_YOUNG).astype(np.uint8)
    np.bitwise_or.at(out, p[:m].astype(np.int64), bits)
    kind = None if stop is None else ("sigsegv" if int(p[stop]) == PTE_UNALLOC else "fault")
    return ReplayResult(out, m, stop, kind)
