"""The text summary of a run: memory, faults, reclaim and pressure at a glance."""

from __future__ import annotations

from ..sim import Result


def format_summary(result: Result) -> str:
    s = result.summary()
    mi = result.meminfo
    gib = 1 << 20  # kB per GiB
    lines = [
        f"simulated {s['runtime_s']:.0f} s",
        "memory (GiB)  total {:.2f}  used avg {:.2f}  peak {:.2f}  anon {:.2f}  file {:.2f}  swap {:.2f}".format(
            mi["MemTotal"] / gib, s["memused.avg_kb"] / gib, s["memused.peak_kb"] / gib, mi["AnonPages"] / gib,
            mi["Cached"] / gib, (mi["SwapTotal"] - mi["SwapFree"]) / gib),
        "faults        {:,} total  {:,} major  {:,} refaults  {:,} workingset restores".format(
            s["pgfaults"], s["pgmajfaults"], s["refaults"], s["workingset_restore"]),
        "reclaim       {:,} pages swapped out  {:,} scanned by kswapd  {:,} direct  {:,} OOM kills".format(
            s["pswpout"], result.vmstat["pgscan_kswapd"], result.vmstat["pgscan_direct"], s["oom_kills"]),
        "stall         {:.3%} of the time in memory stalls  {:.3%} waiting on faults".format(
            s["stall_fraction"], s["fault_wait_fraction"]),
        "/proc/pressure/memory:",
    ]
    lines += ["  " + ln for ln in result.psi.splitlines()]
    return "\n".join(lines)
