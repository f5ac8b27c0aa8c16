"""The built-in host scenario ``acma host run`` uses: two modest guests overcommitting a host."""

from __future__ import annotations

from ..mm.guest import GuestConfig, NodeConfig
from ..sim import KernelChurn
from ..workloads.model import Pattern, Phase, Region, Workload
from .config import HostConfig, VMSpec

MIB = 1 << 20
MIN_US = 60_000_000


def service_workload() -> Workload:
    """A service whose hot set is small but whose heap and page cache grow over a busy phase
    and shrink back (frees), repeating every 20 minutes."""
    return Workload(
        name="service",
        regions=(Region("hot", 256 * MIB), Region("heap", 768 * MIB, initial_size=256 * MIB),
                 Region("cache", 512 * MIB, kind="file", initial_size=256 * MIB)),
        phases=(
            Phase("quiet", 8 * MIN_US, (Pattern("hot", 20.0, 0.3), Pattern("heap", 0.02, 0.5),
                                        Pattern("cache", 0.01, 0.0))),
            Phase("busy", 8 * MIN_US, (Pattern("hot", 50.0, 0.3), Pattern("heap", 2.0, 0.5),
                                       Pattern("cache", 0.5, 0.0)),
                  sizes={"heap": 768 * MIB, "cache": 512 * MIB}),
            Phase("cool", 4 * MIN_US, (Pattern("hot", 20.0, 0.3), Pattern("heap", 0.01, 0.5)),
                  sizes={"heap": 256 * MIB}),
        ),
    )


def batch_workload() -> Workload:
    """A batch job: idle, then allocates 1 GiB and works on it, then frees it."""
    return Workload(
        name="batch",
        regions=(Region("base", 128 * MIB), Region("job", 1024 * MIB, initial_size=0)),
        phases=(
            Phase("idle", 10 * MIN_US, (Pattern("base", 5.0, 0.5),)),
            Phase("run", 15 * MIN_US, (Pattern("base", 5.0, 0.5), Pattern("job", 2.0, 1.0)),
                  sizes={"job": 1024 * MIB}),
            Phase("done", 5 * MIN_US, (Pattern("base", 1.0, 0.5),), sizes={"job": 0}),
        ),
    )


def guest_config(size_mib: int, min_mib: int, seed: int) -> GuestConfig:
    """A guest whose memory above ``min_mib`` is ZONE_MOVABLE, so hot-unplug can empty it."""
    return GuestConfig(size=size_mib * MIB, swap=size_mib * MIB // 2, seed=seed,
                       nodes=(NodeConfig(size=size_mib * MIB, movable=(size_mib - min_mib) * MIB),))


def two_guest_host(capacity: str = "3 GiB", seed: int = 0, **host_options) -> HostConfig:
    """Two 2 GiB guests (a service and a batch job) on a 3 GiB host: 4/3 overcommitted."""
    churn = KernelChurn(nr=8, target_pages=4096, interval_us=500_000)
    return HostConfig(
        capacity=capacity, seed=seed,
        vms=(VMSpec("service", guest_config(2048, 512, 1), (service_workload(),), churn, min_mem=512 * MIB),
             VMSpec("batch", guest_config(2048, 512, 2), (batch_workload(),), churn, min_mem=512 * MIB)),
        **host_options)
