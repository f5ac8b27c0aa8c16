"""DAMON's estimates against a replayed trace's ground truth.

:class:`~acma.damon.accuracy.AccuracyTracker` scores synthetic VMAs, whose truth is a Poisson
realisation, and skips trace VMAs. :class:`TraceAccuracyTracker` adds the trace VMAs: their truth
is the trace itself. For a window of N sampling intervals of length s ending at t1 (events in
[t1 - N s, t1), the instants ``Context`` samples at), a trace page's true count is the number of
sampling intervals in which the trace touched it; the page is in the true working set when that
count is at least 1, and hot when it is at least ``hot_threshold`` N. Evaluated pages are the
trace pages touched at least once before t1 (the pages the program has); for paddr, those that
are present in memory at t1 and lie in the target's ranges. Every metric keeps the meaning
docs/damon-accuracy.md gives it; the "expected" working set of a trace page is its realised one.
"""

from __future__ import annotations

import numpy as np

from ..damon.accuracy import AccuracyTracker, _region_nr
from ..units import PAGE_SIZE
from .replay import TraceTruth

__all__ = ["TraceAccuracyTracker"]


class TraceAccuracyTracker(AccuracyTracker):
    """An AccuracyTracker that also scores the pages of replayed traces (``sim.add_trace``)."""

    def __init__(self, truth: TraceTruth, **kwargs):
        super().__init__(**kwargs)
        self.truth = truth

    def _trace_part(self, addr: np.ndarray, counts: np.ndarray, starts, ends, nrs, n: int):
        """The metric sums over trace pages at byte addresses ``addr`` with true counts ``counts``."""
        thr = self.hot_threshold * n
        nr = _region_nr(starts, ends, nrs, addr.astype(np.float64))
        touched = counts >= 1
        true_hot, est_hot = counts >= thr, nr >= thr
        true_b = float(np.count_nonzero(touched)) * PAGE_SIZE
        return (float(len(addr)), true_b, true_b, float(np.count_nonzero(nr >= 1)) * PAGE_SIZE,
                float(np.count_nonzero(touched & (nr < 1))) * PAGE_SIZE,
                float(np.count_nonzero(true_hot & est_hot)), float(np.count_nonzero(~true_hot & est_hot)),
                float(np.count_nonzero(true_hot & ~est_hot)), float(np.count_nonzero(~true_hot & ~est_hot)),
                float(np.abs(nr - counts).sum()))

    def _vaddr(self, guest, target, starts, ends, nrs, t0, t1, n, s, clip=None):
        base = super()._vaddr(guest, target, starts, ends, nrs, t0, t1, n, s, clip)
        proc = getattr(target, "process", None)
        if not self.truth.has(proc):
            return base
        pages, counts = self.truth.window(proc, t0, t1, n, s)
        addr = pages.astype(np.uint64) * np.uint64(PAGE_SIZE)
        if clip is not None:
            keep = np.zeros(len(addr), bool)
            for rs, re_ in clip:
                keep |= (addr >= np.uint64(rs)) & (addr < np.uint64(re_))
            addr, counts = addr[keep], counts[keep]
        return tuple(a + b for a, b in zip(base, self._trace_part(addr, counts, starts, ends, nrs, n)))

    def _paddr(self, guest, target, index, starts, ends, nrs, t0, t1, n, s):
        total = super()._paddr(guest, target, index, starts, ends, nrs, t0, t1, n, s)
        for proc in self.truth.processes:
            pages, counts = self.truth.window(proc, t0, t1, n, s)
            pfn = self.truth.frames(proc, pages)
            addr = pfn * PAGE_SIZE
            keep = pfn >= 0
            keep &= np.logical_or.reduce([(addr >= a) & (addr < b) for a, b in target.ranges])
            part = self._trace_part(addr[keep], counts[keep], starts, ends, nrs, n)
            total = tuple(a + b for a, b in zip(total, part))
        return total
