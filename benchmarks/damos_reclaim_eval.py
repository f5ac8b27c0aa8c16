"""DAMON_RECLAIM on a workload with a known cold fraction: memory saved against that fraction,
slowdown and PSI, against the same run without it (docs/damos-engine.md, BENCHMARKS.md).

The guest (1 GiB, 1 GiB zswap-like swap) runs one process: 256 MiB hot (every page touched
10 times a second) and 448 MiB cold (touched once an hour on average, so a page is idle for
120 s, DAMON_RECLAIM's min_age, with probability exp(-1/30) = 96.7 %). Free memory starts
near 30 %, between the module's low (20 %) and mid (40 %) watermarks, so it activates. The cold fraction is
measured, not assumed: the ground truth of the access model at the end of the run.

    PYTHONPATH=. python benchmarks/damos_reclaim_eval.py [--seconds 600] [--no-wmarks]
"""

from __future__ import annotations

import argparse
import json
import os

from acma.damon.context import Context, Target
from acma.damos.engine import Engine
from acma.damos.modules import reclaim
from acma.damos.scheme import Watermarks
from acma.mm.guest import Guest, GuestConfig

MiB = 1 << 20
S = 1_000_000
WORKLOAD_WAITS = ("refault", "direct_reclaim", "minor_fault", "major_fault")


def build_guest(seed: int):
    g = Guest(GuestConfig(size="1 GiB", swap="1 GiB", seed=seed))
    p = g.spawn("app")
    cold = p.mmap(448 * MiB)
    hot = p.mmap(256 * MiB)
    cold.set_rate(50.0)                  # fault everything in, cold first (apart physically)
    g.run_until(1 * S)
    cold.set_rate(1 / 3600)
    hot.set_rate(50.0)
    g.run_until(2 * S)
    hot.set_rate(10.0)
    return g, p, (hot, cold)


def used_bytes(g) -> int:
    s = g.states()
    return (s["anon"] + s["file"]) * 4096


def run(seconds: int, with_reclaim: bool, wmarks: bool, seed: int = 1) -> dict:
    g, p, vmas = build_guest(seed)
    t0 = g.now_us
    waits0 = g.stall_totals_us()
    psi0 = g.psi.total_us("some")
    eng = None
    if with_reclaim:
        setup = reclaim.build(reclaim.ReclaimParams(), system_ram=[(0, g.nr_pages * 4096)])
        schemes = setup.schemes if wmarks else tuple(s.replace(wmarks=Watermarks()) for s in setup.schemes)
        ctx = Context(g, "paddr", [Target(ranges=list(setup.regions))], setup.attrs, record=False)
        eng = Engine(ctx, schemes)
        runner = ctx.run_until
    else:
        runner = g.run_until
    samples = []
    for k in range(1, seconds // 10 + 1):
        runner(t0 + k * 10 * S)
        samples.append((k * 10, used_bytes(g)))
    end = g.now_us
    idle = sum(int((v.truth_accessed(max(0, end - 120 * S), end) == 0).sum()) for v in vmas)   # all in use
    waits = g.stall_totals_us()
    wait_us = sum(waits[k] - waits0[k] for k in WORKLOAD_WAITS)
    last = [u for t, u in samples if t > seconds - 60]
    out = {
        "reclaim": with_reclaim, "wmarks": wmarks, "seconds": seconds,
        "used_mib_last60s": sum(last) / len(last) / MiB,
        "idle_120s_mib": idle * 4096 / MiB,
        "workload_wait_s": wait_us / 1e6,
        "psi_some_total_s": (g.psi.total_us("some") - psi0) / 1e6,
        "psi_some_avg60": g.psi.format_proc().splitlines()[0],
        "pswpout": g.vmstat()["pswpout"], "pswpin": g.vmstat()["pswpin"],
        "series": samples,
    }
    if eng:
        st = eng.states[0]
        out["stats"] = vars(st.stats)
        out["kdamond_damos_cpu_pct"] = st.quota.total_charged_ns / ((end - t0) * 1e3) * 100
        out["engine_host_s"] = eng.seconds_total
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--no-wmarks", action="store_true")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    base = run(a.seconds, False, True)
    rec = run(a.seconds, True, not a.no_wmarks)
    used0 = base["used_mib_last60s"]
    saved = (used0 - rec["used_mib_last60s"]) / used0 * 100
    cold_frac = base["idle_120s_mib"] / used0 * 100
    slow = (rec["workload_wait_s"] - base["workload_wait_s"]) / a.seconds * 100
    summary = {"memory_saved_pct": saved, "cold_fraction_pct": cold_frac, "slowdown_pct": slow,
               "load": os.getloadavg()}
    print(json.dumps({"baseline": {k: v for k, v in base.items() if k != "series"},
                      "reclaim": {k: v for k, v in rec.items() if k != "series"}, "summary": summary}, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"baseline": base, "reclaim": rec, "summary": summary}, f)


if __name__ == "__main__":
    main()
