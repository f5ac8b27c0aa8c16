"""Which host pages back a guest (csrc/backing.c): populated on the guest's first write,
released when every guest page of a host page has been discarded (reported, ballooned, or
handed over by a driver such as ACMA), with exact time integrals for host GiB-hours.

Boot state: by default the tracker starts at "unbacked until touched" (a fresh VM without
memory preallocation): only host pages holding guest data now are backed. ``prefaulted=True``
starts fully backed (QEMU's ``prealloc=on``, or a guest that has run long enough to touch all).
"""

from __future__ import annotations

import numpy as np

from .._core import _buf, _check, _u64, ffi, lib
from ..errors import ConfigError
from ..units import finite_in, parse_size

PAGE_SIZE = 4096
DEFAULT_HOST_FAULT_US = 2.0
_INFO_KEYS = ("hp_order", "nr_host_pages", "backed", "discarded", "faults", "fault_ns", "released",
              "discard_calls", "fault_us", "zero_us")


class Backing:
    """The backing tracker of ``guest`` with host pages of ``host_page`` bytes (4 KiB..1 GiB).

    ``fault_us`` is one host fault (EPT violation, host page-fault path; an estimate, a
    parameter), ``zero_us`` the host's zeroing of 4 KiB (default: the guest's Costs.zero_page_us).
    A host fault populates the whole host page and costs fault_us + zero_us x its 4 KiB pages,
    charged to the guest's fault wait (stall totals' "minor_fault") and counted in fault_ns.
    """

    def __init__(self, guest, host_page: int | str = "2 MiB", prefaulted: bool = False,
                 fault_us: float = DEFAULT_HOST_FAULT_US, zero_us: float | None = None):
        size = parse_size(host_page, "backing.host_page")
        if size < PAGE_SIZE or size & (size - 1) or size > 1 << 30:
            raise ConfigError("backing.host_page", host_page, "a power of two from 4 KiB to 1 GiB")
        if guest.nr_pages * PAGE_SIZE % size:
            raise ConfigError("backing.host_page", host_page, "a size that divides the guest's memory")
        if not isinstance(prefaulted, bool):
            raise ConfigError("backing.prefaulted", prefaulted, "True or False")
        zero_us = guest.config.costs.zero_page_us if zero_us is None else zero_us
        for name, v in (("backing.fault_us", fault_us), ("backing.zero_us", zero_us)):
            if not finite_in(v, 0, 1e6):
                raise ConfigError(name, v, "microseconds in [0, 1e6]")
        self.guest = guest
        self.host_page = size
        self.hp_order = (size // PAGE_SIZE).bit_length() - 1
        _check("backing_enable", lib.acma_backing_enable(guest.core._m, self.hp_order, int(prefaulted),
                                                         float(fault_us), float(zero_us)))

    def info(self) -> dict:
        """Host pages backed now, guest pages discarded, and totals since enable."""
        out = ffi.new("acma_backing_info *")
        _check("backing_get", lib.acma_backing_get(self.guest.core._m, out))
        d = {k: getattr(out, k) for k in _INFO_KEYS}
        d["backed_bytes"] = int(out.backed) * self.host_page
        return d

    @property
    def backed_bytes(self) -> int:
        return self.info()["backed_bytes"]

    def discard(self, pfn: int, npages: int) -> int:
        """The host drops guest pages [pfn, pfn + npages); returns host pages released.
        CoreError(EBUSY), with nothing changed, if one of them holds guest data."""
        out = ffi.new("uint64_t *")
        _check("backing_discard", lib.acma_backing_discard(self.guest.core._m, _u64(pfn, "pfn"),
                                                           _u64(npages, "npages"), out))
        return out[0]

    def discard_blocks(self, pfns: np.ndarray, orders: np.ndarray) -> int:
        """The same for naturally aligned blocks (a report's or a balloon batch's entries)."""
        pf = np.ascontiguousarray(pfns, dtype=np.uint32)
        od = np.ascontiguousarray(orders, dtype=np.uint8)
        if len(pf) != len(od):
            raise ConfigError("orders", len(od), f"one order per pfn ({len(pf)})")
        out = ffi.new("uint64_t *")
        _check("backing_discard_blocks", lib.acma_backing_discard_blocks(
            self.guest.core._m, _buf(pf, np.uint32, None, "pfns"), _buf(od, np.uint8, None, "orders"),
            len(pf), out))
        return out[0]

    def discard_pfns(self, pfns: np.ndarray) -> int:
        """4 KiB pages, as a balloon inflate batch names them."""
        pf = np.ascontiguousarray(pfns, dtype=np.uint32)
        return self.discard_blocks(pf, np.zeros(len(pf), dtype=np.uint8))

    def drain(self) -> dict:
        """Since the last drain: integral of backed host memory (byte-µs and GiB-hours), peak
        bytes backed, and the window; the next window starts now."""
        out = ffi.new("acma_backing_window *")
        _check("backing_drain", lib.acma_backing_drain(self.guest.core._m, out))
        return {"backed_byte_us": int(out.backed_us) * self.host_page,
                "gib_hours": int(out.backed_us) * self.host_page / 2**30 / 3.6e9,
                "peak_bytes": int(out.peak_backed) * self.host_page,
                "since_us": int(out.since_us), "until_us": int(out.until_us)}

    def backed_map(self) -> np.ndarray:
        """One bool per host page: backed now."""
        n = self.guest.nr_pages >> self.hp_order
        out = np.zeros(n, dtype=np.uint8)
        _check("backing_map", lib.acma_backing_map(self.guest.core._m, _buf(out, np.uint8, n, "out", True), n))
        return out.astype(bool)

    def disable(self) -> None:
        _check("backing_disable", lib.acma_backing_disable(self.guest.core._m))


__all__ = ["Backing"]
