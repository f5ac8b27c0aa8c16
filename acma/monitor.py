"""``acma monitor``: run a workload in a simulated guest under a DAMON context and keep the record.

The workload is the built-in demo workload (``"demo"``), a masim ``.cfg`` file or an acma trace
file (told apart by content: trace files start with their magic bytes). It runs as one guest
process (a masim or demo workload) or one process per traced pid, and a :class:`Context`
monitors it:

* ``vaddr`` (default): one target per process, its VMAs found again every ``ops_update_us``;
* ``fvaddr``: one target per process over fixed ranges, by default the VMAs it starts with;
* ``paddr``: one target over the guest's physical memory (or the given ranges).

While monitoring, DAMON's sampling drives the guest's clock: between two events of the
simulation (phase changes, samples of meminfo) the context samples as many whole sampling
intervals as fit, and an event that falls inside a sampling interval cuts that interval short
(the guest runs on unsampled to the event, and sampling resumes from there). Events therefore
happen on time, and an aggregation window is longer than ``aggr_us`` by the cut pieces, which
are shorter than one sampling interval each and only occur when an event is off the sampling
grid. ``docs/monitor.md`` has the details and the command line.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from .damon import Attrs, Context, Target
from .damon.context import OPS
from .errors import ConfigError
from .io.damo_record import DamonRecord, write_record
from .mm.guest import GuestConfig, Process
from .scenarios import demo_workload
from .sim import Result, Simulation
from .units import PAGE_SIZE
from .workloads.masim import load_masim, masim_to_workload
from .workloads.model import Workload
from .workloads.trace import MAGIC as TRACE_MAGIC
from .workloads.trace import Trace, read_trace

__all__ = ["DEMO", "LoadedWorkload", "Monitor", "MonitorRun", "load_workload", "monitor"]

DEMO = "demo"
WORKLOAD_ALLOWED = "'demo', a masim .cfg file or an acma trace file"


@dataclass(frozen=True)
class LoadedWorkload:
    """A workload ready to be added to a simulation: a model (demo, masim) or a trace."""

    kind: str  # "demo", "masim" or "trace"
    name: str
    length_us: int  # one pass of the phases, or the trace's span
    workload: Workload | None = None
    trace: Trace | None = None


def load_workload(spec: str | os.PathLike) -> LoadedWorkload:
    """``"demo"``, or a file: an acma trace (recognised by its magic bytes) or a masim config.

    Raises ConfigError (field ``workload``) when the file does not exist, FormatError when it is
    not valid in its format.
    """
    if isinstance(spec, str) and spec == DEMO:
        wl = demo_workload()
        return LoadedWorkload(DEMO, wl.name, wl.cycle_us, workload=wl)
    if not isinstance(spec, (str, os.PathLike)):
        raise ConfigError("workload", spec, WORKLOAD_ALLOWED)
    path = os.fspath(spec)
    if not os.path.isfile(path):
        raise ConfigError("workload", path, f"{WORKLOAD_ALLOWED} (no such file)")
    name = os.path.splitext(os.path.basename(path))[0] or "workload"
    with open(path, "rb") as f:
        head = f.read(len(TRACE_MAGIC))
    if head == TRACE_MAGIC:
        trace = read_trace(path)
        if len(trace.events) == 0:
            raise ConfigError("workload", path, "a trace with at least one event")
        last_us = math.floor(int(trace.events.time.max()) * trace.tick_ns / 1000.0)
        return LoadedWorkload("trace", name, last_us + 1, trace=trace)
    wl = masim_to_workload(load_masim(path), name=name)
    return LoadedWorkload("masim", name, wl.cycle_us, workload=wl)


def _check_ranges(ranges, field: str, limit: int | None = None) -> list[tuple[int, int]]:
    out = []
    for i, r in enumerate(ranges):
        try:
            s, e = (int(x) for x in r)
        except (TypeError, ValueError):
            raise ConfigError(f"{field}[{i}]", r, "a pair (start, end) of addresses") from None
        if not 0 <= s < e or (limit is not None and e > limit):
            hi = f" within the guest's physical memory [0x0, {limit:#x})" if limit is not None else ""
            raise ConfigError(f"{field}[{i}]", f"[{s:#x}, {e:#x})", f"start < end{hi}")
        out.append((s, e))
    out.sort()
    for (s0, e0), (s1, e1) in zip(out, out[1:]):
        if s1 < e0:
            raise ConfigError(field, [(s0, e0), (s1, e1)], "ranges that do not overlap")
    return out


@dataclass
class Monitor:
    """A simulation with a workload in it and the DAMON context that watches it."""

    sim: Simulation
    ctx: Context
    loaded: LoadedWorkload
    processes: list[Process] = field(default_factory=list)

    def run(self, duration_us: int, progress: bool = False) -> Result:
        """Advance ``duration_us`` of simulated time under monitoring (see the module doc)."""
        return self.sim.run(duration_us, progress=progress, advance=self.ctx.run_until)

    def record(self) -> DamonRecord:
        return self.ctx.damon_record()


def build_monitor(workload: str | os.PathLike | LoadedWorkload, *, ops: str = "vaddr", attrs: Attrs | None = None,
                  ranges=None, guest: GuestConfig | None = None) -> Monitor:
    """A :class:`Monitor` at time 0: the guest, the workload added, the context created.

    ``ranges`` (pairs of addresses) are for ``fvaddr`` (applied to every process; default: each
    process's VMAs) and ``paddr`` (default: the whole guest); ``vaddr`` takes none.
    """
    if ops not in OPS:
        raise ConfigError("ops", ops, f"one of {OPS}")
    attrs = attrs or Attrs(ops_update_us=1_000_000)
    attrs.validate()
    loaded = workload if isinstance(workload, LoadedWorkload) else load_workload(workload)
    if ranges is not None and ops == "vaddr":
        raise ConfigError("ranges", ranges, "no ranges for vaddr (it follows the VMAs); use fvaddr or paddr")
    sim = Simulation(guest or GuestConfig(size="4 GiB", swap="2 GiB"))
    if loaded.trace is not None:
        procs = list(sim.add_trace(loaded.trace, name=loaded.name).processes.values())
    else:
        procs = [sim.add_workload(loaded.workload, name=loaded.name).process]
    size = sim.guest.nr_pages * PAGE_SIZE
    if ops == "paddr":
        targets = [Target(ranges=_check_ranges(ranges, "ranges", size) if ranges else [(0, size)])]
    elif ops == "fvaddr":
        fixed = _check_ranges(ranges, "ranges") if ranges else None
        targets = [Target(process=p, ranges=fixed or [(v.start, v.end) for v in sorted(p.vmas, key=lambda v: v.start)])
                   for p in procs]
    else:
        for p in procs:
            if len(p.vmas) < 3:
                raise ConfigError(
                    "ops", "vaddr", f"a process with at least three VMAs (vaddr splits the address space at "
                    f"the two largest gaps between them); {loaded.kind} workload '{loaded.name}' maps "
                    f"{len(p.vmas)} in process {p.name!r}: use fvaddr or paddr, or give it more regions")
        targets = [Target(process=p) for p in procs]
    ctx = Context(sim.guest, ops, targets, attrs)
    return Monitor(sim, ctx, loaded, procs)


@dataclass
class MonitorRun:
    """What :func:`monitor` did: the monitor (simulation and context), the run's result and record."""

    monitor: Monitor
    result: Result
    record: DamonRecord
    duration_us: int


def default_duration_us(loaded: LoadedWorkload, aggr_us: int) -> int:
    """The workload's length rounded up to whole aggregation intervals."""
    return max(1, -(-loaded.length_us // aggr_us)) * aggr_us


def monitor(workload: str | os.PathLike | LoadedWorkload, duration_us: int | None = None, *, ops: str = "vaddr",
            attrs: Attrs | None = None, ranges=None, guest: GuestConfig | None = None,
            out: str | os.PathLike | None = None, progress: bool = False) -> MonitorRun:
    """Monitor ``workload`` for ``duration_us`` (default: its length) and write the record to ``out``.

    The record is damo's json_compressed format, written atomically. Everything is determined
    by the guest's seed: the same arguments give the same record, byte for byte.
    """
    attrs = attrs or Attrs(ops_update_us=1_000_000)
    mon = build_monitor(workload, ops=ops, attrs=attrs, ranges=ranges, guest=guest)
    if duration_us is None:
        duration_us = default_duration_us(mon.loaded, attrs.aggr_us)
    if isinstance(duration_us, bool) or not isinstance(duration_us, int) or not attrs.aggr_us <= duration_us <= 10**12:
        raise ConfigError("duration_us", duration_us, f"an integer in [aggr_us ({attrs.aggr_us}), 1e12] µs")
    result = mon.run(duration_us, progress=progress)
    record = mon.record()
    if out is not None:
        write_record(out, record)
    return MonitorRun(mon, result, record, duration_us)
