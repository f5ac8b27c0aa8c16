"""How the host backs a guest's RAM with host pages.

``Preallocated`` is static allocation: the VMM allocates and pins the guest's RAM up to its
max_mem at boot (QEMU ``-mem-prealloc`` on hugetlbfs) and ignores discards, so the footprint
never changes. Demand-backed guests use the host-page backing tracker of the guest model
(``acma.mm`` host backing, see docs/host.md), where a host page is populated when the guest
first touches it and released only when every guest page in it is reported or ballooned.
"""

from __future__ import annotations


class Preallocated:
    """Every host page of ``nbytes`` (rounded up to whole host pages) backed for good."""

    def __init__(self, nbytes: int, host_page_size: int):
        self.host_page_size = host_page_size
        self._bytes = -(-nbytes // host_page_size) * host_page_size
        self.refused_discards = 0

    def backed_bytes(self) -> int:
        return self._bytes

    def discard(self, pfns, order: int) -> int:
        """ram_block_discard_range is disabled for pinned memory: nothing is released."""
        self.refused_discards += 1
        return 0
