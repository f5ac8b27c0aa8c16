"""A simulation: one guest, the workloads and traces that run in it, and an event heap.

Events are ordered by (time, priority, sequence), as in SimPy, so runs are deterministic.
Between events the C core processes every fault and trace event on its own; Python sees only
phase changes, samples and whatever a user schedules with :meth:`Simulation.schedule`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import ConfigError
from .mm.guest import Guest, GuestConfig, Process, Vma
from .units import PAGE_SIZE
from .workloads.model import Workload
from .workloads.trace import Trace

PRIO_WORKLOAD = 0
PRIO_KERNEL = 5
PRIO_SAMPLE = 9
TRACE_VMA_GAP_PAGES = 512  # pages of a trace closer than 2 MiB share one VMA


class WorkloadRun:
    """A synthetic workload as a guest process: one VMA per region, phases applied on time."""

    def __init__(self, sim: "Simulation", workload: Workload, start_us: int, node: int, name: str):
        self.sim, self.workload, self.start_us = sim, workload, start_us
        self.process: Process = sim.guest.spawn(name or workload.name)
        self.vmas: dict[str, Vma] = {
            r.name: self.process.mmap(r.size, kind=r.kind, in_use=r.initial_pages * PAGE_SIZE, node=node, name=r.name)
            for r in workload.regions
        }
        self.phase_index: int | None = None
        sim.schedule(start_us, PRIO_WORKLOAD, self._enter_phase)

    def _enter_phase(self, t: int) -> None:
        at = self.workload.phase_at(t - self.start_us)
        if at is None:  # every repeat is over: the program idles, its memory stays mapped
            for v in self.vmas.values():
                v.set_rate(0.0, 0.0)
            self.phase_index = None
            return
        i, start = at
        phase = self.workload.phases[i]
        rates = phase.page_rates()
        for name, vma in self.vmas.items():
            if name in phase.sizes:
                vma.resize(-(-phase.sizes[name] // PAGE_SIZE))
            rate, writes = rates.get(name, (0.0, 0.0))
            vma.set_rate(rate, writes)
        self.phase_index = i
        self.sim.schedule(self.start_us + start + phase.duration_us, PRIO_WORKLOAD, self._enter_phase)


class TraceRun:
    """A recorded trace replayed as guest processes (one per traced pid) with explicit VMAs."""

    def __init__(self, sim: "Simulation", trace: Trace, start_us: int, name: str,
                 vma_gap_pages: int = TRACE_VMA_GAP_PAGES):
        ev = trace.events
        self.processes: dict[int, Process] = {}
        self.vmas: list[Vma] = []
        gvpn = np.zeros(len(ev), dtype=np.uint64)
        for pid in np.unique(ev.pid).tolist():
            sel = ev.pid == pid
            proc = sim.guest.spawn(f"{name or 'trace'}:{pid}")
            self.processes[pid] = proc
            pages = np.unique(ev.vpn[sel])
            breaks = np.flatnonzero(np.diff(pages) > vma_gap_pages) + 1
            starts = np.concatenate(([0], breaks))
            ends = np.concatenate((breaks, [len(pages)]))
            first = pages[starts]
            bases = np.zeros(len(starts), dtype=np.uint64)
            for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
                npages = int(pages[e - 1] - pages[s]) + 1
                vma = proc.mmap(npages * PAGE_SIZE, explicit=True, name=f"trace{k}")
                self.vmas.append(vma)
                bases[k] = vma.gbase
            idx = np.searchsorted(first, ev.vpn[sel], side="right") - 1
            gvpn[sel] = bases[idx] + (ev.vpn[sel] - first[idx])
        t = start_us + np.floor(ev.time.astype(np.float64) * trace.tick_ns / 1000.0).astype(np.uint64)
        self.time_us = t
        self.gvpn_w = (gvpn << np.uint64(1)) | ev.write.astype(np.uint64)


@dataclass
class Result:
    """Time series sampled during a run, and the guest's final counters."""

    series: dict[str, np.ndarray]
    vmstat: dict
    meminfo: dict
    psi: str
    stall_us: dict
    duration_us: int

    def summary(self) -> dict:
        """damon-tests style names where one exists (pgmajfaults, psi_mem_some_us...)."""
        dur_s = self.duration_us / 1e6
        s = self.series
        workload_stall = self.stall_us["refault"] + self.stall_us["direct_reclaim"] + self.stall_us["compact"]
        return {
            "runtime_s": dur_s,
            "memused.avg_kb": float(np.mean(s["memused_kb"])) if len(s["memused_kb"]) else 0.0,
            "memused.peak_kb": int(np.max(s["memused_kb"])) if len(s["memused_kb"]) else 0,
            "rss.avg_kb": float(np.mean(s["rss_kb"])) if len(s["rss_kb"]) else 0.0,
            "pgfaults": self.vmstat["pgfault"],
            "pgmajfaults": self.vmstat["pgmajfault"],
            "refaults": self.vmstat["workingset_refault"],
            "workingset_restore": self.vmstat["workingset_restore"],
            "pswpout": self.vmstat["pswpout"],
            "psi_mem_some_us": int(s["psi_some_total_us"][-1]) if len(s["psi_some_total_us"]) else 0,
            "psi_mem_full_us": int(s["psi_full_total_us"][-1]) if len(s["psi_full_total_us"]) else 0,
            "stall_fraction": workload_stall / self.duration_us if self.duration_us else 0.0,
            "fault_wait_fraction": (self.stall_us["minor_fault"] + self.stall_us["major_fault"]) / self.duration_us
            if self.duration_us else 0.0,
            "oom_kills": self.vmstat["oom_kill"],
        }


@dataclass
class KernelChurn:
    """Unmovable kernel allocations that come and go (slab, page tables), so the allocator
    fragments as a real guest's does: every ``interval_us``, ``nr`` order-``order`` pages are
    allocated, and the oldest are freed beyond ``target_pages``."""

    nr: int = 16
    order: int = 0
    target_pages: int = 8192
    interval_us: int = 100_000
    node: int = 0
    live: list = field(default_factory=list)
    sim: "Simulation | None" = None

    def validate(self) -> None:
        for name, v, lo, hi in (("nr", self.nr, 1, 1 << 20), ("order", self.order, 0, 10),
                                ("target_pages", self.target_pages, 0, 1 << 32),
                                ("interval_us", self.interval_us, 1, 10**12), ("node", self.node, 0, 63)):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"kernel_churn.{name}", v, f"an integer in [{lo}, {hi}]")

    def tick(self, t: int) -> None:
        g = self.sim.guest
        for _ in range(self.nr):
            self.live.append(g.kernel_alloc(self.order, self.node))
        while len(self.live) << self.order > self.target_pages:
            g.kernel_free(self.live.pop(0), self.order)
        self.sim.schedule(t + self.interval_us, PRIO_KERNEL, self.tick)


class Simulation:
    """A guest and what runs in it, advanced by events; ``run`` returns a :class:`Result`."""

    def __init__(self, guest_config: GuestConfig | None = None, sample_interval_us: int = 1_000_000):
        if not isinstance(sample_interval_us, int) or not 1000 <= sample_interval_us <= 3_600_000_000:
            raise ConfigError("sample_interval_us", sample_interval_us, "1 ms to 1 h in µs")
        self.guest = Guest(guest_config)
        self.sample_interval_us = sample_interval_us
        self._heap: list = []
        self._seq = 0
        self._traces: list[TraceRun] = []
        self._trace_armed = False
        self._samples: dict[str, list] = {}
        self.workloads: list[WorkloadRun] = []

    def schedule(self, t_us: int, priority: int, fn: Callable[[int], None]) -> None:
        """Call ``fn(t)`` at simulated time ``t_us`` (the extension hook)."""
        if t_us < self.guest.now_us:
            raise ConfigError("t_us", t_us, f"a time >= now ({self.guest.now_us})")
        self._seq += 1
        heapq.heappush(self._heap, (t_us, priority, self._seq, fn))

    def add_workload(self, workload: Workload, start_us: int = 0, node: int = 0, name: str = "") -> WorkloadRun:
        run = WorkloadRun(self, workload, max(start_us, self.guest.now_us), node, name)
        self.workloads.append(run)
        return run

    def add_trace(self, trace: Trace, start_us: int = 0, name: str = "",
                  vma_gap_pages: int | None = None) -> TraceRun:
        """Replay ``trace`` from ``start_us``: pages of a pid closer than ``vma_gap_pages`` share a
        VMA (default: the trace's ``meta["vma_gap_pages"]``, else 512 pages = 2 MiB)."""
        if vma_gap_pages is None:
            vma_gap_pages = trace.meta.get("vma_gap_pages", TRACE_VMA_GAP_PAGES)
        if self._trace_armed:
            raise ConfigError("add_trace", name, "traces added before the first run()")
        if isinstance(vma_gap_pages, bool) or not isinstance(vma_gap_pages, int) or not 1 <= vma_gap_pages <= 1 << 30:
            raise ConfigError("vma_gap_pages", vma_gap_pages, "an integer number of pages in [1, 2**30]")
        run = TraceRun(self, trace, start_us, name, vma_gap_pages)
        self._traces.append(run)
        return run

    def add_kernel_churn(self, churn: KernelChurn) -> None:
        churn.validate()
        if churn.node >= self.guest.nr_nodes:
            raise ConfigError("kernel_churn.node", churn.node, f"a node in [0, {self.guest.nr_nodes})")
        churn.sim = self
        self.schedule(self.guest.now_us, PRIO_KERNEL, churn.tick)

    def _arm_traces(self) -> None:
        self._trace_armed = True
        if not self._traces:
            return
        t = np.concatenate([r.time_us for r in self._traces])
        g = np.concatenate([r.gvpn_w for r in self._traces])
        order = np.argsort(t, kind="stable")
        self.guest.core.set_trace(np.ascontiguousarray(t[order]), np.ascontiguousarray(g[order]))

    def _sample(self, t: int) -> None:
        mi = self.guest.meminfo()
        vm = self.guest.vmstat()
        snap = self.guest.psi.snapshot()
        row = {
            "t_us": t,
            "memused_kb": mi["MemTotal"] - mi["MemFree"],
            "rss_kb": mi["AnonPages"] + mi["Cached"],
            "anon_kb": mi["AnonPages"], "file_kb": mi["Cached"], "free_kb": mi["MemFree"],
            "swap_used_kb": mi["SwapTotal"] - mi["SwapFree"],
            "pgfault": vm["pgfault"], "pgmajfault": vm["pgmajfault"], "refaults": vm["workingset_refault"],
            "psi_some_avg10": snap.some.avg10, "psi_full_avg10": snap.full.avg10,
            "psi_some_total_us": snap.some.total_us, "psi_full_total_us": snap.full.total_us,
        }
        for k, v in row.items():
            self._samples.setdefault(k, []).append(v)
        self.schedule(t + self.sample_interval_us, PRIO_SAMPLE, self._sample)

    def run(self, duration_us: int, progress: bool = False,
            advance: Callable[[int], None] | None = None) -> Result:
        """Advance ``duration_us`` of simulated time; samples every ``sample_interval_us``.

        ``advance(t)`` moves the guest to t between events (default ``guest.run_until``; a
        DAMON context passes its own ``run_until`` so the guest runs under monitoring)."""
        if isinstance(duration_us, bool) or not isinstance(duration_us, int) or not 0 < duration_us <= 10**12:
            raise ConfigError("duration_us", duration_us, "an integer in (0, 1e12] µs")
        start = self.guest.now_us
        end = start + duration_us
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=duration_us // 1_000_000, unit="sim-s", desc="simulating", leave=False)
        self.run_until(end, advance, bar)
        if bar is not None:
            bar.update(duration_us // 1_000_000 - bar.n)
            bar.close()
        return self.result()

    def run_until(self, end_us: int, advance: Callable[[int], None] | None = None, bar=None) -> None:
        """Process every event up to ``end_us`` and move the guest there (no Result is built,
        so a host can step many guests in small increments at no cost per sample kept)."""
        advance = advance or self.guest.run_until
        start = self.guest.now_us
        if isinstance(end_us, bool) or not isinstance(end_us, int) or not start <= end_us <= start + 10**12:
            raise ConfigError("end_us", end_us, f"an integer time in [now ({start}), now + 1e12] µs")
        if not self._trace_armed:
            self._arm_traces()
            self.schedule(start, PRIO_SAMPLE, self._sample)
        while self._heap and self._heap[0][0] <= end_us:
            t, _, _, fn = heapq.heappop(self._heap)
            advance(t)
            fn(t)
            if bar is not None and (t - start) // 1_000_000 > bar.n:
                bar.update((t - start) // 1_000_000 - bar.n)
        advance(end_us)

    def result(self) -> Result:
        """The samples so far and the guest's counters now."""
        return Result(
            series={k: np.asarray(v) for k, v in self._samples.items()},
            vmstat=self.guest.vmstat(), meminfo=self.guest.meminfo(), psi=self.guest.psi.format_proc(),
            stall_us=self.guest.stall_totals_us(), duration_us=self.guest.now_us,
        )
