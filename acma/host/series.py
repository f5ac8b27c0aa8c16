"""Host and per-guest time series, one row per control tick, as numpy arrays or a tidy CSV."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

import numpy as np

from ..io.atomic import write_text_atomic

if TYPE_CHECKING:
    from .host import Host
    from .vm import VM

HOST_COLUMNS = ("t_us", "used", "capacity", "guest_footprint", "overhead", "host_swap_used", "live_vms")
GUEST_COLUMNS = ("t_us", "footprint", "backed", "host_swapped", "online", "memused", "demand", "balloon",
                 "psi_some_total_us", "pgmajfault", "refaults", "host_stall_us", "struct_page", "killed")


def guest_row(vm: VM, t_us: int) -> tuple:
    """One guest's numbers at ``t_us`` (bytes, counters, µs); a killed guest keeps its last
    counters and has no memory."""
    if vm.killed:
        return (t_us, 0, 0, 0, 0, 0, 0, 0, vm.guest.psi.total_us("some"), vm.guest.vmstat()["pgmajfault"],
                vm.guest.vmstat()["workingset_refault"], vm.host_stall_us, 0, 1)
    g = vm.guest
    mi = g.meminfo()
    vs = g.vmstat()
    balloon = vm.balloon.actual_bytes() if vm.balloon is not None else 0
    return (t_us, vm.footprint(), vm.backed_bytes(), vm.host_swapped, vm.online_bytes(),
            (mi["MemTotal"] - mi["MemFree"]) * 1024, vm.demand_bytes(), balloon, g.psi.total_us("some"),
            vs["pgmajfault"], vs["workingset_refault"], vm.host_stall_us, vm.struct_page_bytes(), 0)


class HostSeries:
    """Rows appended by the host at every booking; ``host()``/``guest(name)`` give arrays."""

    def __init__(self, host: Host):
        self._host = host
        self._rows: list[tuple] = []
        self._guest_rows: dict[str, list[tuple]] = {vm.name: [] for vm in host.vms}

    def sample(self, t_us: int) -> None:
        h = self._host
        fp = sum(vm.footprint() for vm in h.vms)
        self._rows.append((t_us, fp + h.overhead(), h.capacity, fp, h.overhead(), h.host_swap_used(), len(h.live())))
        for vm in h.vms:
            self._guest_rows[vm.name].append(guest_row(vm, t_us))

    def __len__(self) -> int:
        return len(self._rows)

    def host(self) -> dict[str, np.ndarray]:
        """Host columns (HOST_COLUMNS) as int64/float arrays of one entry per tick."""
        a = np.array(self._rows, dtype=np.float64).reshape(-1, len(HOST_COLUMNS))
        return {c: a[:, i] for i, c in enumerate(HOST_COLUMNS)}

    def guest(self, name: str) -> dict[str, np.ndarray]:
        """One guest's columns (GUEST_COLUMNS), one entry per tick."""
        a = np.array(self._guest_rows[name], dtype=np.float64).reshape(-1, len(GUEST_COLUMNS))
        return {c: a[:, i] for i, c in enumerate(GUEST_COLUMNS)}

    def names(self) -> list[str]:
        return list(self._guest_rows)

    def to_csv(self) -> str:
        """A tidy (long) table: one row per tick, vm ("host" for the host) and metric."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(("t_us", "vm", "metric", "value"))
        for r in self._rows:
            for c, v in zip(HOST_COLUMNS[1:], r[1:]):
                w.writerow((r[0], "host", c, v))
        for name, rows in self._guest_rows.items():
            for r in rows:
                for c, v in zip(GUEST_COLUMNS[1:], r[1:]):
                    w.writerow((r[0], name, c, round(v, 3) if isinstance(v, float) else v))
        return out.getvalue()

    def write_csv(self, path: str) -> None:
        write_text_atomic(path, self.to_csv())
