"""Free page reporting (mm/page_reporting.c) for one guest, driven by the simulation clock.

The C core keeps the kernel's request state machine: freeing a block of at least the
reporting order moves IDLE to REQUESTED and queues the pass 2 s later. ``PageReporting.advance``
runs the guest to a time in slices that never skip a due pass (a request raised inside a slice
is due at least ``delay`` later, so slices of ``delay`` cannot overshoot it), and runs each pass
at its due time. A pass hands every full scatterlist (``capacity`` blocks) to ``report``, the
host's device: ``report(pfns, orders) -> bool``; False puts the blocks back unreported and ends
the pass, as an error from ``prdev->report`` does. Cost follows events: an idle guest with
nothing freed costs one C call per ``delay``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _core
from .._core import _check, ffi, lib
from ..errors import ConfigError

STATES = ("idle", "requested", "active")
DEFAULT_ORDER = _core.PAGEBLOCK_ORDER
DEFAULT_CAPACITY = 32
DEFAULT_DELAY_US = 2_000_000
_INFO_KEYS = ("order", "capacity", "in_pass", "delay_us", "due_us", "passes", "reports", "failed_reports",
              "blocks_reported", "pages_reported", "zones_skipped", "requests")
NO_WORK = 2**64 - 1

ReportFn = Callable[[np.ndarray, np.ndarray], bool]


class PageReporting:
    """page_reporting_register on ``guest`` with a device callback ``report``.

    ``report`` gets the isolated blocks' head pfns (uint32) and orders (uint8) and returns True
    when the host took them. Without one, reports succeed and, if ``backing`` (a
    :class:`acma.mm.backing.Backing`) is given, the host discards them as QEMU does.
    """

    def __init__(self, guest, report: ReportFn | None = None, order: int = DEFAULT_ORDER,
                 capacity: int = DEFAULT_CAPACITY, delay_us: int = DEFAULT_DELAY_US, backing=None):
        if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= _core.MAX_ORDER:
            raise ConfigError("reporting.order", order, f"page_reporting_order in [0, {_core.MAX_ORDER}]")
        cap_max = lib.ACMA_REPORTING_MAX_CAPACITY
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= cap_max:
            raise ConfigError("reporting.capacity", capacity, f"scatterlist entries in [1, {cap_max}]")
        if isinstance(delay_us, bool) or not isinstance(delay_us, int) or not 1 <= delay_us <= 3_600_000_000:
            raise ConfigError("reporting.delay_us", delay_us, "microseconds in [1, 3.6e9]")
        if report is not None and not callable(report):
            raise ConfigError("reporting.report", report, "a callable report(pfns, orders) -> bool")
        self.guest = guest
        self.backing = backing
        self.report = report or self._discard
        self.delay_us = delay_us
        self._pfns = np.zeros(capacity, dtype=np.uint32)
        self._orders = np.zeros(capacity, dtype=np.uint8)
        self._n = ffi.new("uint32_t *")
        _check("reporting_enable", lib.acma_reporting_enable(guest.core._m, order, capacity, delay_us))

    def _discard(self, pfns: np.ndarray, orders: np.ndarray) -> bool:
        if self.backing is not None:
            self.backing.discard_blocks(pfns, orders)
        return True

    def info(self) -> dict:
        """State, parameters and counters (passes, reports, blocks and pages reported...)."""
        out = ffi.new("acma_reporting_info *")
        _check("reporting_get", lib.acma_reporting_get(self.guest.core._m, out))
        d = {k: int(getattr(out, k)) for k in _INFO_KEYS}
        d["state"] = STATES[out.state]
        d["due_us"] = None if d["due_us"] == NO_WORK else d["due_us"]
        return d

    def next_due_us(self) -> int | None:
        """When the queued pass runs (None when no work is queued)."""
        return self.info()["due_us"]

    def run_due(self) -> int:
        """Run the pass if it is due at the guest's current time; returns reports made."""
        m = self.guest.core._m
        pf = ffi.from_buffer("uint32_t[]", self._pfns)
        od = ffi.from_buffer("uint8_t[]", self._orders)
        reports = 0
        while True:
            _check("reporting_next", lib.acma_reporting_next(m, pf, od, len(self._pfns), self._n))
            n = self._n[0]
            if n == 0:
                return reports
            try:
                ok = bool(self.report(self._pfns[:n].copy(), self._orders[:n].copy()))
            except BaseException:
                lib.acma_reporting_done(m, 0)   # the blocks go back before the error propagates
                raise
            _check("reporting_done", lib.acma_reporting_done(m, int(ok)))
            reports += 1

    def advance(self, t_us: int) -> int:
        """Run the guest to ``t_us`` with every pass at its due time; returns reports made."""
        if isinstance(t_us, bool) or not isinstance(t_us, int) or t_us < self.guest.now_us:
            raise ConfigError("t_us", t_us, f"a time >= now ({self.guest.now_us} µs)")
        reports = self.run_due()
        while self.guest.now_us < t_us:
            due = self.next_due_us()
            step = min(t_us, due if due is not None else self.guest.now_us + self.delay_us)
            self.guest.run_until(max(step, self.guest.now_us))
            reports += self.run_due()
        return reports

    def disable(self) -> None:
        """page_reporting_unregister: no more passes; Reported flags stay on their pages."""
        _check("reporting_disable", lib.acma_reporting_disable(self.guest.core._m))


def reported_bytes(guest) -> int:
    """Bytes in free blocks that carry PG_reported now."""
    p = guest.core.pages()
    heads = (p["flags"] & _core.PG_REPORTED) != 0
    return int((np.left_shift(1, p["order"][heads].astype(np.int64))).sum()) * 4096


__all__ = ["PageReporting", "reported_bytes", "STATES"]
