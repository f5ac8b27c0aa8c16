"""Built-in workload shapes for cross-checks, sized for a small TCG guest (tens of MiB, seconds).

Rates are kept where the guest program can pay them (about 2 M touches per guest second in
total) and where DAMON's 5 ms samples see a hot page touched in nearly every sample
(``1 - exp(-rate * 5 ms)``: 99 % at 1000 Hz, 86 % at 400 Hz).
"""

from __future__ import annotations

from ..errors import ConfigError
from ..workloads.model import Pattern, Phase, Region, Workload

__all__ = ["SHAPES", "shape"]

MiB = 1 << 20


def moving_hot(phase_us: int = 2_000_000) -> Workload:
    """An 8 MiB hot region (1000 Hz a page) that moves across four slots; 32 MiB stay cold."""
    slots = tuple(Region(f"slot{i}", 8 * MiB) for i in range(4)) + (Region("cold", 32 * MiB),)
    phases = tuple(Phase(f"hot{i}", phase_us, (Pattern(f"slot{i}", 1000.0, 0.5),)) for i in range(4))
    return Workload("moving-hot", slots, phases, repeat=1)


def staircase(phase_us: int = 2_000_000) -> Workload:
    """Four 4 MiB steps (400 Hz a page): phase k touches steps 0..k, so the working set climbs."""
    steps = tuple(Region(f"step{i}", 4 * MiB) for i in range(4)) + (Region("cold", 16 * MiB),)
    phases = tuple(Phase(f"up{k}", phase_us, tuple(Pattern(f"step{i}", 400.0, 0.5) for i in range(k + 1)))
                   for k in range(4))
    return Workload("staircase", steps, phases, repeat=1)


def small_random(duration_us: int = 6_000_000) -> Workload:
    """A 1 MiB region touched at random (500 Hz a page) among 56 MiB of cold memory and a
    7 MiB region touched rarely (2 Hz a page)."""
    regions = (Region("cold", 56 * MiB), Region("small", 1 * MiB), Region("warm", 7 * MiB))
    return Workload("small-random", regions,
                    (Phase("run", duration_us, (Pattern("small", 500.0, 0.5), Pattern("warm", 2.0, 0.5))),),
                    repeat=1)


SHAPES = {"moving-hot": moving_hot, "staircase": staircase, "small-random": small_random}


def shape(name: str) -> Workload:
    """The built-in shape ``name``."""
    if name not in SHAPES:
        raise ConfigError("workload", name, f"one of {sorted(SHAPES)}, a masim .cfg or a workload .json file")
    return SHAPES[name]()
