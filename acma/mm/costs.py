"""Every cost the simulator charges, in one place, with where each default comes from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import ConfigError
from ..units import finite_in


@dataclass(frozen=True)
class Costs:
    """Microseconds per event. Change any of them; the defaults say what they stand on.

    - minor_fault_us 0.5: fault entry, page-table update and LRU add of an anonymous page;
      estimate (will-it-scale page_fault1 runs near 1 M faults/s per core including zeroing).
    - zero_page_us 0.4: clearing 4 KiB at ~10 GB/s; estimate.
    - swapin_us 6.0 / swapout_us 6.0: a zswap (lzo) page; Google's far-memory paper (ASPLOS'19)
      reports ~6 µs far-memory access latency (shared/spec/ecosystem.md §4).
    - file_read_us 100: one 4 KiB random read from an NVMe SSD; estimate from typical devices.
    - file_write_us 20: writeback of one dirty page, amortised over batched I/O; estimate.
    - reclaim_scan_us 0.1: isolating and checking one LRU page (rmap walk of one mapping);
      estimate.
    - migrate_us 2.0: unmap, copy 4 KiB, remap and TLB flush of one page; the sources give no
      figure (guest-mm.md §5), so this is a parameter.
    """

    minor_fault_us: float = 0.5
    zero_page_us: float = 0.4
    swapin_us: float = 6.0
    swapout_us: float = 6.0
    file_read_us: float = 100.0
    file_write_us: float = 20.0
    reclaim_scan_us: float = 0.1
    migrate_us: float = 2.0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not finite_in(v, 0, 1e6):
                raise ConfigError(f"costs.{f.name}", v, "microseconds in [0, 1e6]")

    def as_dict(self) -> dict:
        return asdict(self)
