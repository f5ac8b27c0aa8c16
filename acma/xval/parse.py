"""Read what the guest printed: the workload's regions and phase times, the kernel's DAMON
snapshots (the ``damon_aggregated`` trace, turned into a damo-readable record), the scheme's
stats and /proc/vmstat counters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..damon.context import Attrs
from ..errors import FormatError
from ..io.damo_record import DamonRecord, Intervals, parse_record_bytes

__all__ = ["KernelRun", "parse_damon_output"]

_REGION = re.compile(r"@@ wl region (\S+) (\d+)-(\d+) in_use=(\d+)")
_PHASE = re.compile(r"@@ wl phase (\d+) (.*) t=(\d+\.\d+)$")
_TOUCHES = re.compile(r"@@ wl phase (\d+) touches done=(\d+) owed=(\d+)")
_MARK = re.compile(r"\s(\d+\.\d+): tracing_mark_write: xval phase (\d+)")
_END = re.compile(r"@@ wl end t=(\d+\.\d+)")
_KV = re.compile(r"(\w+)=(\d+)")


@dataclass
class KernelRun:
    """One guest DAMON run, as parsed; times are guest CLOCK_BOOTTIME seconds."""

    regions: dict[str, tuple[int, int]]
    phase_starts: list[tuple[int, str, float]]  # (phase index, name, start s)
    end_s: float
    touches: list[tuple[int, int, int]]  # (phase index, done, owed)
    scheme_stats: dict[str, int]
    vmstat: dict[str, int]
    record: DamonRecord
    kernel: str = ""
    paddr_range: tuple[int, int] | None = None
    marks: list[tuple[int, float]] = field(default_factory=list)  # (phase index, trace-clock s)

    @property
    def start_s(self) -> float:
        """When the workload's first phase began, on the trace's clock (its trace_marker write;
        the program's own clock reading if the marker is missing): the origin of compared times."""
        return self.marks[0][1] if self.marks else self.phase_starts[0][2]


def _kv(line: str) -> dict[str, int]:
    return {k: int(v) for k, v in _KV.findall(line)}


def parse_damon_output(lines: list[str], attrs: Attrs, source: str = "<guest console>") -> KernelRun:
    """A :class:`KernelRun` from a DAMON run's console lines; FormatError if a part is missing."""
    regions, phases, touches = {}, [], []
    stats, vmstat, end, kernel, prange = None, {}, None, "", None
    trace, marks = [], []
    inside = False
    for line in lines:
        if line.startswith("@@ trace begin"):
            inside = True
            continue
        if line.startswith("@@ trace end"):
            inside = False
            continue
        if inside:
            if m := _MARK.search(line):
                marks.append((int(m.group(2)), float(m.group(1))))
            else:
                trace.append(line)
            continue
        if not line.startswith("@@"):
            continue
        if m := _REGION.match(line):
            regions[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        elif m := _TOUCHES.match(line):
            touches.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
        elif m := _PHASE.match(line):
            phases.append((int(m.group(1)), m.group(2), float(m.group(3))))
        elif m := _END.match(line):
            end = float(m.group(1))
        elif line.startswith("@@ scheme stats"):
            stats = _kv(line)
        elif line.startswith("@@ vmstat"):
            vmstat = _kv(line)
        elif line.startswith("@@ boot"):
            kernel = line.split("kernel=")[1].split()[0] if "kernel=" in line else ""
        elif line.startswith("@@ paddr range"):
            a, b = line.split()[-1].split("-")
            prange = (int(a), int(b))
    missing = [what for what, v in (("workload regions", regions), ("phase starts", phases), ("end", end),
                                    ("scheme stats", stats), ("DAMON trace", trace)) if not v]
    if missing:
        raise FormatError(source, "console", f"the guest printed no {', '.join(missing)}")
    record = parse_record_bytes("\n".join(trace).encode(), source=f"{source} trace",
                                intervals=Intervals(attrs.sample_us, attrs.aggr_us, attrs.ops_update_us))
    return KernelRun(regions, phases, end, touches, stats, vmstat, record, kernel, prange, marks)
