"""The synthetic workload model: named regions touched at per-page rates that change by phase.

A workload is what a program does to its memory, not how the guest's mm reacts. Each region
becomes one VMA of a simulated process. In each phase every page *in use* of a region is
touched as a Poisson process with the phase's rate (touches per second per page); writes are a
fraction of the touches. ``Phase.sizes`` changes how many bytes of a region are in use (an
allocation that grows, shrinks, or is freed with 0); pages past the in-use size are unmapped.
masim configs are converted to this model by :mod:`acma.workloads.masim`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..errors import ConfigError
from ..units import PAGE_SIZE, finite_in

REGION_KINDS = ("anon", "file")


def _check_name(name, field_name: str) -> None:
    if not isinstance(name, str) or not name or "," in name or name != name.strip():
        raise ConfigError(field_name, name, "a non-empty name without commas or edge spaces")


@dataclass(frozen=True)
class Region:
    """A virtual range of ``size`` bytes (rounded up to pages); ``kind`` anon or file."""

    name: str
    size: int
    kind: str = "anon"
    initial_size: int | None = None  # bytes in use at start; None means all of ``size``

    def validate(self, where: str) -> None:
        _check_name(self.name, f"{where}.name")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not (
            PAGE_SIZE <= self.size <= 1 << 40
        ):
            raise ConfigError(f"{where}.size", self.size, "bytes in [4096, 2**40]")
        if self.kind not in REGION_KINDS:
            raise ConfigError(f"{where}.kind", self.kind, f"one of {REGION_KINDS}")
        if self.initial_size is not None and (
            not isinstance(self.initial_size, int) or not 0 <= self.initial_size <= self.size
        ):
            raise ConfigError(f"{where}.initial_size", self.initial_size, f"bytes in [0, {self.size}]")

    @property
    def npages(self) -> int:
        return -(-self.size // PAGE_SIZE)

    @property
    def initial_pages(self) -> int:
        size = self.size if self.initial_size is None else self.initial_size
        return -(-size // PAGE_SIZE)


@dataclass(frozen=True)
class Pattern:
    """During a phase, each in-use page of ``region`` is touched ``rate_hz`` times a second."""

    region: str
    rate_hz: float
    write_fraction: float = 1.0

    def validate(self, where: str) -> None:
        _check_name(self.region, f"{where}.region")
        if not finite_in(self.rate_hz, 0, 1e9):
            raise ConfigError(f"{where}.rate_hz", self.rate_hz, "touches/s per page in [0, 1e9]")
        if not finite_in(self.write_fraction, 0, 1):
            raise ConfigError(f"{where}.write_fraction", self.write_fraction, "a fraction in [0, 1]")


@dataclass(frozen=True)
class Phase:
    """``duration_us`` of the given patterns; ``sizes`` maps a region to its new in-use bytes."""

    name: str
    duration_us: int
    patterns: tuple[Pattern, ...] = ()
    sizes: Mapping[str, int] = field(default_factory=dict)

    def validate(self, where: str, regions: Mapping[str, Region]) -> None:
        if not isinstance(self.name, str):
            raise ConfigError(f"{where}.name", self.name, "a string")
        if not isinstance(self.duration_us, int) or not 1 <= self.duration_us <= 10**12:
            raise ConfigError(f"{where}.duration_us", self.duration_us, "an integer in [1, 1e12] µs")
        for i, p in enumerate(self.patterns):
            p.validate(f"{where}.patterns[{i}]")
            if p.region not in regions:
                raise ConfigError(f"{where}.patterns[{i}].region", p.region, f"one of {sorted(regions)}")
        for name, size in self.sizes.items():
            if name not in regions:
                raise ConfigError(f"{where}.sizes", name, f"region names among {sorted(regions)}")
            if not isinstance(size, int) or not 0 <= size <= regions[name].size:
                raise ConfigError(f"{where}.sizes[{name}]", size, f"bytes in [0, {regions[name].size}]")

    def page_rates(self) -> dict[str, tuple[float, float]]:
        """Per region: (total touch rate per page, write fraction) summed over patterns."""
        out: dict[str, tuple[float, float]] = {}
        for p in self.patterns:
            rate, writes = out.get(p.region, (0.0, 0.0))
            out[p.region] = (rate + p.rate_hz, writes + p.rate_hz * p.write_fraction)
        return {k: (r, (w / r if r > 0 else 0.0)) for k, (r, w) in out.items()}


@dataclass(frozen=True)
class Workload:
    """Regions and phases; phases run in order ``repeat`` times (0 = forever)."""

    name: str
    regions: tuple[Region, ...]
    phases: tuple[Phase, ...]
    repeat: int = 0

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("workload.name", self.name, "a non-empty string")
        if not self.regions:
            raise ConfigError("workload.regions", self.regions, "at least one region")
        if len(self.regions) > 4096:
            raise ConfigError("workload.regions", len(self.regions), "at most 4096 regions")
        by_name: dict[str, Region] = {}
        for i, r in enumerate(self.regions):
            r.validate(f"workload.regions[{i}]")
            if r.name in by_name:
                raise ConfigError(f"workload.regions[{i}].name", r.name, "a name not used by another region")
            by_name[r.name] = r
        if not self.phases:
            raise ConfigError("workload.phases", self.phases, "at least one phase")
        for i, ph in enumerate(self.phases):
            ph.validate(f"workload.phases[{i}]", by_name)
        if not isinstance(self.repeat, int) or not 0 <= self.repeat <= 10**9:
            raise ConfigError("workload.repeat", self.repeat, "an integer in [0, 1e9]; 0 repeats forever")

    @property
    def cycle_us(self) -> int:
        return sum(p.duration_us for p in self.phases)

    def phase_at(self, t_us: int) -> tuple[int, int] | None:
        """(phase index, phase start µs) at time ``t_us``, or None once all repeats are over."""
        cycle = self.cycle_us
        n = t_us // cycle
        if self.repeat and n >= self.repeat:
            return None
        off = t_us - n * cycle
        start = n * cycle
        for i, ph in enumerate(self.phases):
            if off < ph.duration_us:
                return i, start
            off -= ph.duration_us
            start += ph.duration_us
        raise AssertionError("unreachable: offset inside a cycle")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "repeat": self.repeat,
            "regions": [
                {"name": r.name, "size": r.size, "kind": r.kind, "initial_size": r.initial_size}
                for r in self.regions
            ],
            "phases": [
                {
                    "name": ph.name,
                    "duration_us": ph.duration_us,
                    "patterns": [
                        {"region": p.region, "rate_hz": p.rate_hz, "write_fraction": p.write_fraction}
                        for p in ph.patterns
                    ],
                    "sizes": dict(ph.sizes),
                }
                for ph in self.phases
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "Workload":
        try:
            return cls(
                name=d["name"],
                repeat=d.get("repeat", 0),
                regions=tuple(Region(**r) for r in d["regions"]),
                phases=tuple(
                    Phase(
                        name=ph["name"],
                        duration_us=ph["duration_us"],
                        patterns=tuple(Pattern(**p) for p in ph.get("patterns", ())),
                        sizes=dict(ph.get("sizes", {})),
                    )
                    for ph in d["phases"]
                ),
            )
        except (KeyError, TypeError) as e:
            raise ConfigError("workload", d, f"a dict with name, regions and phases ({e})") from None
