"""References of the 2 MiB contiguity search (csrc/buddy.c acma_scan_pageblocks).

A pageblock (512 pages) is fully free when all its pages are free, and movable-only when it
is not fully free, holds at least one mapped (anon or file) page, and every page is free or
mapped. The results are bitmaps of uint64 words, bit pb & 63 of word pb >> 6, plus counts.
"""

from __future__ import annotations

import numpy as np

PAGEBLOCK_ORDER = 9
PB_PAGES = 1 << PAGEBLOCK_ORDER
PS_FREE, PS_ANON, PS_FILE, PS_KERNEL = 0, 1, 2, 3


def scan_pageblocks(pb_free, pb_mov) -> tuple[list[int], list[int], int, int]:
    """acma_scan_pageblocks in pure Python: (fully_free words, movable_only words, nf, nm)."""
    npb = len(pb_free)
    ff, mo = [0] * ((npb + 63) // 64), [0] * ((npb + 63) // 64)
    nf = nm = 0
    for pb in range(npb):
        f, mv = int(pb_free[pb]), int(pb_mov[pb])
        if f == PB_PAGES:
            nf += 1
            ff[pb >> 6] |= 1 << (pb & 63)
        elif mv and f + mv == PB_PAGES:
            nm += 1
            mo[pb >> 6] |= 1 << (pb & 63)
    return ff, mo, nf, nm


def _pack(bits: np.ndarray) -> np.ndarray:
    """A bool per pageblock -> little-endian uint64 bitmap words."""
    words = (bits.size + 63) // 64
    padded = np.zeros(words * 64, dtype=bool)
    padded[: bits.size] = bits
    return np.packbits(padded, bitorder="little").view("<u8").astype(np.uint64)


def scan_pageblocks_np(pb_free, pb_mov) -> tuple[np.ndarray, np.ndarray, int, int]:
    """acma_scan_pageblocks vectorised: the same bitmaps as uint64 arrays, and the counts."""
    f = np.asarray(pb_free, dtype=np.int64)
    mv = np.asarray(pb_mov, dtype=np.int64)
    full = f == PB_PAGES
    movable = ~full & (mv > 0) & (f + mv == PB_PAGES)
    return _pack(full), _pack(movable), int(full.sum()), int(movable.sum())


def pageblock_counters_np(state) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-pageblock free / movable / unmovable counts recomputed from page states."""
    s = np.asarray(state).reshape(-1, PB_PAGES)
    free = (s == PS_FREE).sum(axis=1)
    mov = ((s == PS_ANON) | (s == PS_FILE)).sum(axis=1)
    unmov = (s == PS_KERNEL).sum(axis=1)
    return free.astype(np.uint16), mov.astype(np.uint16), unmov.astype(np.uint16)


def bitmap_indices(words) -> np.ndarray:
    """The pageblock indices whose bits are set, ascending."""
    w = np.asarray(words, dtype=np.uint64).astype("<u8")
    return np.flatnonzero(np.unpackbits(w.view(np.uint8), bitorder="little"))
