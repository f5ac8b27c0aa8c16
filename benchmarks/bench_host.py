"""One simulated hour of the built-in 2-guest host (2 x 2 GiB on 3 GiB) under each policy.

Run: pytest benchmarks/bench_host.py -m benchmark --benchmark-json=.benchmarks/host.json
Wall time per simulated hour, and today's pipeline against static allocation in the same run
(the pipeline's extra cost: DAMON_RECLAIM sampling, reporting passes, compaction, hotplug).
"""

from __future__ import annotations

import pytest

from acma.host.examples import two_guest_host
from acma.host.host import Host
from acma.host.policy import make_policy

HOUR_US = 3_600_000_000


@pytest.mark.parametrize("policy", ["static", "today"])
def test_one_hour_two_guests(benchmark, policy):
    def run():
        host = Host(two_guest_host(), make_policy(policy))
        host.run(HOUR_US)
        return host

    host = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(simulated_s=3600, guests=len(host.vms), ticks=len(host.series))
