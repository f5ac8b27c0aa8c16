"""The host run's summary with damon-tests-style names, and its plain-text table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .host import Host

GIB = float(1 << 30)
HOUR_US = 3_600_000_000


def _integral_gib_hours(t_us: np.ndarray, v: np.ndarray) -> float:
    """Trapezoid integral of bytes over µs, in GiB-hours."""
    if len(t_us) < 2:
        return 0.0
    return float(np.sum((v[1:] + v[:-1]) * 0.5 * np.diff(t_us))) / GIB / HOUR_US


def vm_summary(host: Host, vm) -> dict:
    """One guest's numbers over the run."""
    s = host.series.guest(vm.name)
    dur = max(1, host.now_us)
    g = vm.guest
    vs = g.vmstat()
    st = g.stall_totals_us()
    stall = st["refault"] + st["direct_reclaim"] + st["compact"] + vm.host_stall_us
    out = {
        "footprint.gib_hours": _integral_gib_hours(s["t_us"], s["footprint"]),
        "footprint.peak_gib": float(s["footprint"].max()) / GIB if len(s["t_us"]) else 0.0,
        "online.avg_gib": float(s["online"].mean()) / GIB if len(s["t_us"]) else 0.0,
        "demand.avg_gib": float(s["demand"].mean()) / GIB if len(s["t_us"]) else 0.0,
        "stall_fraction": stall / dur,
        "fault_wait_fraction": (st["minor_fault"] + st["major_fault"]) / dur,
        "host_stall_us": vm.host_stall_us,
        "host_swapins": vm.host_swapins,
        "psi_mem_some_us": g.psi.total_us("some"),
        "psi_mem_full_us": g.psi.total_us("full"),
        "pgmajfaults": vs["pgmajfault"],
        "refaults": vs["workingset_refault"],
        "pgmigrate_success": vs["pgmigrate_success"],
        "struct_page.avg_mib": float(s["struct_page"].mean()) / (1 << 20) if len(s["t_us"]) else 0.0,
        "killed": int(vm.killed),
    }
    if vm.balloon is not None:
        b = vm.balloon
        out.update({"reports": b.reports, "reported_gib": b.reported_pages * 4096 / GIB,
                    "balloon_inflated_pages": b.inflated_pages, "balloon_deflated_pages": b.deflated_pages,
                    "balloon_out_of_puff": b.driver.out_of_puff if b.driver else 0})
    if vm.hotplug is not None:
        h = vm.hotplug
        out.update({"hot_plugged_blocks": h.plugged, "hot_plug.failures": h.plug_failures,
                    "hot_unplugged_blocks": h.unplugged,
                    "hot_unplug.attempts": h.unplug_attempts, "hot_unplug.failures": h.unplug_failures,
                    "hot_unplug.migrated_pages": h.migrated_pages})
    out.update(host.policy.stats(vm))
    return out


def summarize(host: Host) -> dict:
    """Host-level numbers plus totals over guests; ``per_vm`` holds each guest's own."""
    h = host.series.host()
    t = h["t_us"]
    per_vm = {vm.name: vm_summary(host, vm) for vm in host.vms}
    static = host.static_bytes() * float(t[-1] - t[0] if len(t) else 0)
    static_gh = static / GIB / HOUR_US
    used_gh = _integral_gib_hours(t, h["used"])
    total = lambda k: sum(v.get(k, 0) for v in per_vm.values())
    return {
        "policy": host.policy.name,
        "runtime_s": host.now_us / 1e6,
        "host_mem_used.gib_hours": used_gh,
        "host_mem_static.gib_hours": static_gh,
        "host_mem_saved.gib_hours": static_gh - used_gh,
        "host_mem_saved.fraction": (static_gh - used_gh) / static_gh if static_gh else 0.0,
        "host_mem_used.peak_gib": float(h["used"].max()) / GIB if len(t) else 0.0,
        "host_mem_used.avg_gib": float(h["used"].mean()) / GIB if len(t) else 0.0,
        "host_capacity_gib": host.capacity / GIB,
        "overcommit_ratio": host.overcommit_ratio(),
        "host_failures.swap": sum(1 for f in host.failures if f.action == "swap"),
        "host_failures.kill": sum(1 for f in host.failures if f.action == "kill"),
        "guest_oom_stops": sum(1 for f in host.failures if f.action == "guest_oom"),
        "host_swap.peak_gib": float(h["host_swap_used"].max()) / GIB if len(t) else 0.0,
        "stall_fraction": float(np.mean([v["stall_fraction"] for v in per_vm.values()])),
        "stall_fraction.max": float(np.max([v["stall_fraction"] for v in per_vm.values()])),
        "psi_mem_some_us": total("psi_mem_some_us"),
        "pgmajfaults": total("pgmajfaults"),
        "refaults": total("refaults"),
        "reports": total("reports"),
        "compaction_migrations": total("compaction_migrations"),
        "hot_unplug.attempts": total("hot_unplug.attempts"),
        "hot_unplug.failures": total("hot_unplug.failures"),
        "struct_page.avg_mib": total("struct_page.avg_mib"),
        "per_vm": per_vm,
    }


def format_summary(summary: dict) -> str:
    """The host summary as aligned ``name value`` lines, then one line per guest."""
    lines = [f"policy: {summary['policy']}"]
    for k, v in summary.items():
        if k in ("policy", "per_vm"):
            continue
        lines.append(f"  {k:<28} {v:.4g}" if isinstance(v, float) else f"  {k:<28} {v}")
    for name, d in summary["per_vm"].items():
        parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items()]
        lines.append(f"  vm {name}: " + " ".join(parts))
    return "\n".join(lines)
