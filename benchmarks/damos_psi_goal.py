"""A some_mem_psi_us quota goal on a steady workload: the feed loop tunes the quota until the
measured PSI per window is near the goal (docs/damos-engine.md, BENCHMARKS.md).

The guest (1 GiB, zswap-like swap) runs one process: 192 MiB hot (10 touches/s per page) and
WARM_MIB (default 512) MiB warm (one touch per page every 30 s in the measured phase). A
refault is a memstall only for a page that had PG_workingset (kernel and acma alike), which
only reclaim's deactivation of active pages gives; so a warm-up first makes the warm pages
busy (1 touch/s), then squeezes memory with a 640 MiB batch job for 10 s (kswapd activates
and later deactivates them), then ends the job. Measured phase: a DAMON_RECLAIM-like vaddr
pageout scheme (pages idle for 5 s, oldest first) with a size quota of 64 MiB per second and
the goal ``some_mem_psi_us`` = GOAL µs per quota window; paging out more causes more
thrashing refaults.

    PYTHONPATH=. python benchmarks/damos_psi_goal.py [--seconds 300] [--goal 20000] [--png out.png]
"""

from __future__ import annotations

import argparse
import json
import os

from acma.damon.context import Attrs, Context, Target
from acma.damos.engine import Engine
from acma.damos.scheme import AccessPattern, Quota, QuotaGoal, Scheme
from acma.mm.guest import Guest, GuestConfig

MiB = 1 << 20
S = 1_000_000
WARM_MIB = int(os.environ.get("WARM_MIB", "512"))


def run(seconds: int, goal_us: int, seed: int = 1) -> dict:
    g = Guest(GuestConfig(size="1 GiB", swap="1 GiB", seed=seed))
    p = g.spawn("app")
    warm = p.mmap(WARM_MIB * MiB)
    hot = p.mmap(192 * MiB)
    warm.set_rate(1.0)
    hot.set_rate(10.0)
    g.run_until(20 * S)
    batch = g.spawn("batch").mmap(640 * MiB)
    batch.set_rate(100.0)
    g.run_until(30 * S)
    batch.resize(0)
    p.mmap(4 * MiB).set_rate(1.0)             # a third VMA: vaddr's three regions need two gaps
    warm.set_rate(1 / 30)
    attrs = Attrs(sample_us=5_000, aggr_us=100_000, ops_update_us=0)
    ctx = Context(g, "vaddr", [Target(p)], attrs, record=False)
    scheme = Scheme(pattern=AccessPattern(min_sz_region=4096, max_nr_accesses=0, min_age_region=50),
                    action="pageout",
                    quota=Quota(sz=64 * MiB, reset_interval_ms=1000, weight_age=1,
                                goals=(QuotaGoal("some_mem_psi_us", target_value=goal_us),)))
    eng = Engine(ctx, [scheme])
    series = []
    last_psi = g.psi.total_us("some")
    ctx.run_until(60 * S)                      # the scheme starts from the bottom
    last_psi = g.psi.total_us("some")
    for k in range(1, seconds + 1):
        ctx.run_until(60 * S + k * S)
        psi = g.psi.total_us("some")
        series.append({"t_s": k, "esz_mib": eng.states[0].quota.esz / MiB, "psi_us": psi - last_psi,
                       "swapped_mib": warm.info()["swapped"] * 4096 / MiB})
        last_psi = psi
    tail = series[len(series) // 2:]
    mean_psi = sum(x["psi_us"] for x in tail) / len(tail)
    within = sum(abs(x["psi_us"] - goal_us) <= goal_us / 5 for x in tail) / len(tail)
    return {"goal_us": goal_us, "seconds": seconds, "mean_psi_second_half_us": mean_psi,
            "error_pct": (mean_psi - goal_us) / goal_us * 100, "windows_within_20pct_second_half": within,
            "mean_esz_second_half_mib": sum(x["esz_mib"] for x in tail) / len(tail), "series": series,
            "stats": vars(eng.stats()[0]), "load": os.getloadavg()}


def plot(result: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [x["t_s"] for x in result["series"]]
    fig, ax1 = plt.subplots(figsize=(8, 4))
    ax1.plot(t, [x["psi_us"] / 1000 for x in result["series"]], color="tab:red", lw=0.8, label="PSI some (ms per s)")
    ax1.axhline(result["goal_us"] / 1000, color="tab:red", ls="--", lw=1, label="goal")
    ax1.set_xlabel("time (s, after a 60 s warm-up)")
    ax1.set_ylabel("memory PSI some, ms per 1 s window", color="tab:red")
    ax2 = ax1.twinx()
    ax2.plot(t, [x["esz_mib"] for x in result["series"]], color="tab:blue", lw=1, label="effective quota")
    ax2.set_ylabel("effective quota esz (MiB per window)", color="tab:blue")
    fig.suptitle("DAMOS pageout with a some_mem_psi_us goal (feed-loop tuner)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--goal", type=int, default=20_000)
    ap.add_argument("--png", default="")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    r = run(a.seconds, a.goal)
    print(json.dumps({k: v for k, v in r.items() if k != "series"}, indent=1))
    print("t_s esz_mib psi_us swapped_mib")
    for x in r["series"][:: max(1, len(r["series"]) // 30)]:
        print(x["t_s"], round(x["esz_mib"], 2), x["psi_us"], round(x["swapped_mib"], 1))
    if a.png:
        plot(r, a.png)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f)


if __name__ == "__main__":
    main()
