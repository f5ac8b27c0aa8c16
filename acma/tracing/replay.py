"""Replaying a recorded program in a simulated guest: time scale, repetition, and the truth.

:meth:`acma.sim.Simulation.add_trace` replays a trace as guest processes: each cluster of the
program's pages (pages closer than 2 MiB) becomes an explicit VMA of the process, laid out by
acma's own address-space layout (heap first, then mmap areas), and every event touches its page
through the process's page table. vaddr monitoring sees the process's VMAs, paddr monitoring the
frames the pages fault into, so both work on a replayed program.

A real program runs for a fraction of a second; ``retime`` stretches it (a larger tick_ns, as
if each instruction took longer) and ``repeat_trace`` runs it again and again, so that DAMON's
intervals see enough windows. :class:`TraceTruth` knows, for every replayed process, which
virtual page was touched when: the ground truth that :mod:`acma.tracing.accuracy` scores
DAMON against.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from ..errors import ConfigError
from ..units import PAGE_SIZE, finite_in
from ..workloads.trace import Trace, TraceEvents, read_trace

MAX_REPEAT = 100_000


def retime(trace: Trace, tick_ns: float) -> Trace:
    """The same events with another tick length (e.g. 10 ns per instruction instead of 0.25)."""
    if not finite_in(tick_ns, 0, 1e12) or tick_ns == 0:
        raise ConfigError("tick_ns", tick_ns, "a finite number of nanoseconds per tick > 0")
    return dataclasses.replace(trace, tick_ns=float(tick_ns))


def repeat_trace(trace: Trace, times: int, gap_ticks: int = 0) -> Trace:
    """The trace run ``times`` times back to back (each copy starts ``gap_ticks`` after the
    previous copy's last window ends; the window is ``meta["window_ticks"]`` or 1 tick)."""
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_REPEAT:
        raise ConfigError("repeat", times, f"an integer in [1, {MAX_REPEAT}]")
    if isinstance(gap_ticks, bool) or not isinstance(gap_ticks, int) or gap_ticks < 0:
        raise ConfigError("gap_ticks", gap_ticks, "an integer >= 0")
    ev = trace.events
    if times == 1 or not len(ev):
        return trace
    window = trace.meta.get("window_ticks", 1)
    first = int(ev.time[0])
    period = int(ev.time[-1]) - first + (window if isinstance(window, int) and window > 0 else 1) + gap_ticks
    copies = [TraceEvents(ev.time + np.uint64(k * period), ev.pid, ev.vpn, ev.write) for k in range(times)]
    meta = dict(trace.meta, repeat=times, repeat_period_ticks=period)
    return Trace(trace.tick_ns, meta, TraceEvents.concatenate(copies))


def load_replay_trace(path: str | os.PathLike, tick_ns: float | None = None, repeat: int = 1,
                      cover_us: int | None = None) -> Trace:
    """Read a trace for replay, optionally retimed and repeated: ``repeat`` times, or (with
    ``cover_us``) as many times as it takes to run for at least ``cover_us`` µs. This is the
    ``trace`` workload kind of scenario files (docs/real-workloads.md §4)."""
    tr = read_trace(path)
    if tick_ns is not None:
        tr = retime(tr, tick_ns)
    if cover_us is not None:
        if isinstance(cover_us, bool) or not isinstance(cover_us, int) or cover_us < 1:
            raise ConfigError("cover_us", cover_us, "a duration in µs >= 1")
        once = max(1, trace_length_us(tr))
        repeat = min(MAX_REPEAT, -(-cover_us // once))
    return repeat_trace(tr, repeat)


def trace_length_us(trace: Trace) -> int:
    """Simulated µs from time 0 to just after the trace's last event."""
    if not len(trace.events):
        return 0
    return math.floor(int(trace.events.time[-1]) * trace.tick_ns / 1000.0) + 1


class TraceTruth:
    """Which virtual page of which replayed process was touched when (time-ordered per process).

    Built from the :class:`~acma.sim.TraceRun` objects of a simulation; pages are the virtual
    page numbers of the simulated process (``vma.start // 4096 + offset``), as vaddr DAMON sees them.
    """

    def __init__(self, runs):
        self._by_pid: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]] = {}
        self.processes = []
        for run in runs:
            gvpn = run.gvpn_w >> np.uint64(1)
            for proc in run.processes.values():
                vmas = sorted(proc.vmas, key=lambda v: v.gbase)
                gb = np.array([v.gbase for v in vmas], dtype=np.uint64)
                ends = gb + np.array([v.npages for v in vmas], dtype=np.uint64)
                vi = np.searchsorted(gb, gvpn, side="right") - 1
                ok = vi >= 0
                ok[ok] &= gvpn[ok] < ends[vi[ok]]
                vi_ok = vi[ok]
                starts = np.array([v.start // PAGE_SIZE for v in vmas], dtype=np.uint64)
                vpage = starts[vi_ok] + (gvpn[ok] - gb[vi_ok])
                t = run.time_us[ok]
                order = np.argsort(t, kind="stable")
                t, vpage = t[order], vpage[order]
                pages, first_idx = np.unique(vpage, return_index=True)
                self._by_pid[proc.pid] = (t, vpage, pages, t[first_idx], vmas)
                self.processes.append(proc)

    def has(self, process) -> bool:
        return process is not None and process.pid in self._by_pid

    def window(self, process, t0: int, t1: int, n: int, s: int):
        """(pages existing before t1, samples of [t0, t1) in which each was touched)."""
        t, vpage, pages, first, _ = self._by_pid[process.pid]
        exist = pages[first < t1]
        lo, hi = np.searchsorted(t, [t0, t1], side="left")
        n = max(n, 1)
        k = np.minimum((t[lo:hi] - np.uint64(t0)) // np.uint64(max(s, 1)), np.uint64(n - 1))
        if n < 1 << 27:              # one u64 key per (page, sample): virtual pages are below 2**36
            pairs = np.unique(vpage[lo:hi] * np.uint64(n) + k) // np.uint64(n)
        else:
            pairs = np.unique(np.stack([vpage[lo:hi], k]), axis=1)[0]
        touched, counts = np.unique(pairs, return_counts=True)
        c = np.zeros(len(exist), dtype=np.float64)
        c[np.searchsorted(exist, touched)] = counts
        return exist, c

    def frames(self, process, pages: np.ndarray) -> np.ndarray:
        """The page frame each virtual page of ``process`` is mapped to now; -1 if not present."""
        out = np.full(len(pages), -1, dtype=np.int64)
        for v in self._by_pid[process.pid][4]:
            first = v.start // PAGE_SIZE
            sel = np.flatnonzero((pages >= first) & (pages < first + v.npages))
            if not len(sel):
                continue
            pte = v.ptes()[(pages[sel] - np.uint64(first)).astype(np.int64)].astype(np.int64)
            present = (pte & 0x80000000) == 0
            out[sel[present]] = pte[present]
        return out
