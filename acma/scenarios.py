"""Built-in scenarios: the guest and workloads ``acma demo`` runs."""

from __future__ import annotations

from .mm.guest import GuestConfig
from .sim import KernelChurn, Simulation
from .workloads.model import Pattern, Phase, Region, Workload

MIB = 1 << 20


def demo_workload() -> Workload:
    """A service with a hot core, a warm tail and a page cache, plus a batch job that
    allocates 1.5 GiB, works on it and frees it: more than the 4 GiB guest holds at peak."""
    return Workload(
        name="demo",
        regions=(
            Region("hot", 512 * MIB),
            Region("warm", 1536 * MIB),
            Region("cache", 1024 * MIB, kind="file"),
            Region("batch", 1536 * MIB, initial_size=0),
        ),
        phases=(
            Phase("steady", 120_000_000, (Pattern("hot", 50.0, 0.3), Pattern("warm", 0.05, 0.5),
                                          Pattern("cache", 0.02, 0.0))),
            Phase("batch", 120_000_000, (Pattern("hot", 50.0, 0.3), Pattern("warm", 0.02, 0.5),
                                         Pattern("cache", 0.01, 0.0), Pattern("batch", 5.0, 1.0)),
                  sizes={"batch": 1536 * MIB}),
            Phase("quiet", 60_000_000, (Pattern("hot", 20.0, 0.3), Pattern("warm", 0.01, 0.5)),
                  sizes={"batch": 0}),
        ),
    )


def demo_simulation(seed: int = 0) -> Simulation:
    """A 4 GiB guest with 2 GiB of swap running :func:`demo_workload` and kernel churn."""
    sim = Simulation(GuestConfig(size="4 GiB", swap="2 GiB", seed=seed))
    sim.add_workload(demo_workload())
    sim.add_kernel_churn(KernelChurn(nr=8, target_pages=16384, interval_us=200_000))
    return sim
