"""Zone watermarks from mm/page_alloc.c: min_free_kbytes, __setup_per_zone_wmarks, and the
raise khugepaged applies when THP is enabled (guest-mm.md §2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

PAGEBLOCK_PAGES = 512
MIGRATE_PCPTYPES = 3


@dataclass(frozen=True)
class Watermarks:
    min: int
    low: int
    high: int


def min_free_kbytes(lowmem_pages: int, thp: bool, populated_zones: int) -> int:
    """calculate_min_free_kbytes, then set_recommended_min_free_kbytes when THP is on."""
    lowmem_kb = lowmem_pages * 4
    kb = min(max(math.isqrt(lowmem_kb * 16), 128), 262144)
    if thp:
        # khugepaged: pageblock * zones * (2 + MIGRATE_PCPTYPES^2) pages, capped at 5% of lowmem
        recommended = PAGEBLOCK_PAGES * populated_zones * (2 + MIGRATE_PCPTYPES * MIGRATE_PCPTYPES)
        recommended = min(recommended, lowmem_pages // 20)
        kb = max(kb, recommended * 4)
    return kb


def zone_watermarks(managed: list[int], movable: list[bool], thp: bool = True,
                    watermark_scale_factor: int = 10) -> list[Watermarks]:
    """Per-zone min/low/high in pages. ``managed`` and ``movable`` describe every zone."""
    lowmem = sum(m for m, mv in zip(managed, movable) if not mv)
    populated = sum(1 for m in managed if m)
    pages_min = min_free_kbytes(lowmem, thp, populated) // 4
    out = []
    for m, mv in zip(managed, movable):
        tmp = pages_min * m // lowmem if lowmem else 0
        wmin = min(max(m // 1024, 32), 128) if mv else tmp
        gap = max(tmp // 4, m * watermark_scale_factor // 10000)
        out.append(Watermarks(wmin, wmin + gap, wmin + 2 * gap) if m else Watermarks(0, 0, 0))
    return out
