"""Host memory per simulated page, and the time to simulate an hour of a 16 GiB guest.

The kernel spends 64 bytes (struct page) per 4 KiB page; acma's target is 32 or fewer. Both
the C core's own accounting (acma_mem_bytes) and the process's real RSS growth are recorded
(extra_info), at boot with every VMA mapped but untouched and after an hour of activity.
"""

from __future__ import annotations

import gc

from acma.mm.guest import Guest, GuestConfig


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_bytes_per_page_and_one_hour(benchmark):
    state = {}

    def one_hour():
        gc.collect()
        r0 = _rss()
        g = Guest(GuestConfig(size="16 GiB", swap="4 GiB", seed=1))
        p = g.spawn()
        for size, rate in (("6 GiB", 5.0), ("6 GiB", 0.2), ("4 GiB", 0.01)):  # 16 GiB of demand
            p.mmap(size).set_rate(rate)
        state["boot_acct"] = g.core.host_bytes() / g.nr_pages
        state["boot_rss"] = (_rss() - r0) / g.nr_pages
        for s in range(60, 3601, 60):
            g.run_until(s * 1_000_000)
        state["hour_acct"] = g.core.host_bytes() / g.nr_pages
        state["hour_rss"] = (_rss() - r0) / g.nr_pages
        state["faults"] = g.vmstat()["pgfault"]
        g.check()

    benchmark.pedantic(one_hour, rounds=1, iterations=1)
    benchmark.extra_info.update(kernel="1 simulated hour, 16 GiB guest", impl="C", work=3600, unit="sim-s",
                                **{k: round(v, 2) for k, v in state.items()})
