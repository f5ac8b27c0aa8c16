"""What a trace looks like: its footprint, working set per window and phases.

A phase is a stretch of windows that touch much the same pages. Two consecutive windows are
compared by the Jaccard distance of their page sets, 1 - |A ∩ B| / |A ∪ B| (0: the same pages,
1: nothing in common); a distance above ``threshold`` starts a new phase, and a phase shorter
than ``min_windows`` is folded into the one before it so that one odd window does not make a
phase of its own. Everything is vectorised over (window, page) pairs: no loop per event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..units import PAGE_SIZE
from ..workloads.trace import Trace, trace_summary

DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_WINDOWS = 3


@dataclass(frozen=True)
class Phase:
    """Windows [first, last] (indices from the trace's first window) with similar page sets."""

    first: int
    last: int
    start_tick: int
    end_tick: int            # exclusive: the end of the last window
    distinct_pages: int      # pages touched anywhere in the phase
    mean_pages: float        # mean distinct pages per window (the phase's working set)


@dataclass(frozen=True)
class TraceProfile:
    """A trace's shape per window (``window_ticks``), with its phases."""

    events: int
    footprint_pages: int
    window_ticks: int
    first_tick: int                  # start of window 0
    pages_per_window: np.ndarray     # distinct pages touched in each window
    new_pages_per_window: np.ndarray  # pages touched for the first time in each window
    jaccard: np.ndarray              # distance between window i and i - 1 (element 0 is 0)
    phases: tuple[Phase, ...]

    @property
    def footprint_bytes(self) -> int:
        return self.footprint_pages * PAGE_SIZE


def _window_pages(trace: Trace, window_ticks: int):
    """Distinct (window, pid, vpn) triples, sorted by page then window."""
    ev = trace.events
    w = ev.time // np.uint64(window_ticks)
    w = (w - w[0]).astype(np.int64)
    order = np.lexsort((w, ev.vpn, ev.pid))
    w, pid, vpn = w[order], ev.pid[order], ev.vpn[order]
    keep = np.ones(len(w), bool)
    keep[1:] = (w[1:] != w[:-1]) | (pid[1:] != pid[:-1]) | (vpn[1:] != vpn[:-1])
    return w[keep], pid[keep], vpn[keep]


def _check(name: str, value, lo, hi, what: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(name, value, what)


def profile_trace(trace: Trace, window_ticks: int | None = None, threshold: float = DEFAULT_THRESHOLD,
                  min_windows: int = DEFAULT_MIN_WINDOWS) -> TraceProfile:
    """Pages per window, first touches per window, window-to-window Jaccard distance, phases."""
    summary = trace_summary(trace, window_ticks)      # validates window_ticks, picks the default
    _check("threshold", threshold, 0.0, 1.0, "a Jaccard distance in [0, 1]")
    if isinstance(min_windows, bool) or not isinstance(min_windows, int) or min_windows < 1:
        raise ConfigError("min_windows", min_windows, "an integer >= 1")
    wt = summary.window_ticks
    if not summary.events:
        empty = np.zeros(0, np.int64)
        return TraceProfile(0, 0, wt, 0, empty, empty, np.zeros(0), ())
    first_tick = int(trace.events.time[0]) // wt * wt
    w, pid, vpn = _window_pages(trace, wt)
    nwin = len(summary.pages_per_window)
    per = np.bincount(w, minlength=nwin)
    same_page = np.zeros(len(w), bool)
    same_page[1:] = (pid[1:] == pid[:-1]) & (vpn[1:] == vpn[:-1])
    new = np.bincount(w[~same_page], minlength=nwin)
    follows = np.zeros(len(w), bool)
    follows[1:] = same_page[1:] & (w[1:] == w[:-1] + 1)
    inter = np.bincount(w[follows], minlength=nwin)
    union = per + np.concatenate(([0], per[:-1])) - inter
    jac = np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 0.0)
    jac[0] = 0.0
    phases = _phases(jac, per, w, pid, vpn, threshold, min_windows, wt, first_tick)
    return TraceProfile(summary.events, summary.footprint_pages, wt, first_tick, per, new, jac, phases)


def _phases(jac, per, w, pid, vpn, threshold, min_windows, wt, first_tick) -> tuple[Phase, ...]:
    """Cut where the window-to-window distance exceeds ``threshold`` and the ``min_windows``
    windows after the cut also differ from the ``min_windows`` before it (so that one odd window
    makes no phase); phases are at least ``min_windows`` long."""
    order = np.argsort(w, kind="stable")
    ws = w[order]
    keys = (pid[order].astype(np.uint64) << np.uint64(52)) ^ vpn[order]   # one key per page

    def pages(a: int, b: int) -> np.ndarray:
        lo, hi = np.searchsorted(ws, [a, b])
        return np.unique(keys[lo:hi])

    nwin = len(per)
    starts = [0]
    for i in np.flatnonzero(jac > threshold).tolist():
        if i - starts[-1] < min_windows or nwin - i < min_windows:
            continue
        before, after = pages(i - min_windows, i), pages(i, i + min_windows)
        union = len(np.union1d(before, after))
        if union and 1.0 - len(np.intersect1d(before, after, assume_unique=True)) / union > threshold:
            starts.append(i)
    out = []
    for a, b in zip(starts, starts[1:] + [nwin]):
        out.append(Phase(a, b - 1, first_tick + a * wt, first_tick + b * wt, len(pages(a, b)),
                         float(per[a:b].mean())))
    return tuple(out)
