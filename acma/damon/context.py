"""A DAMON context: attributes, targets, and kdamond's loop over the guest model.

Follows mm/damon/core.c of newest mainline ("[N]" in shared/spec/kernel-damon.md): attributes
are validated whole by ``damon_set_attrs``'s rules and committed in one step; each aggregation
interval runs the sampling in C (csrc/damon.c) and then, in kdamond's order, merges regions
(ages updated on the first pass), applies min_nr_regions, calls the after-aggregation hooks,
tunes the intervals, resets the window and splits; every ops_update interval vaddr re-applies
its three regions. Time is counted in sampling intervals (``passed_sample_intervals``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .. import _core
from .._core import ffi, lib
from ..errors import ConfigError
from ..io.damo_record import DamonRecord, Intervals, Snapshot, TargetRecord
from ..mm.guest import Guest, Process
from ..units import PAGE_SIZE
from .regions import Regions, three_regions

OPS = ("vaddr", "fvaddr", "paddr")


@dataclass(frozen=True)
class IntervalsGoal:
    """Monitoring intervals auto-tuning (``damon_intervals_goal``); aggrs 0 disables it."""

    access_bp: int = 0
    aggrs: int = 0
    min_sample_us: int = 0
    max_sample_us: int = 0


@dataclass(frozen=True)
class Attrs:
    """``damon_attrs`` with ``damon_new_ctx``'s defaults."""

    sample_us: int = 5_000
    aggr_us: int = 100_000
    ops_update_us: int = 60_000_000
    min_nr_regions: int = 10
    max_nr_regions: int = 1000
    min_region_sz: int = PAGE_SIZE
    intervals_goal: IntervalsGoal = field(default_factory=IntervalsGoal)

    def validate(self) -> None:
        """``damon_set_attrs``: -EINVAL cases become ConfigError naming the field."""
        for name in ("sample_us", "aggr_us", "ops_update_us", "min_nr_regions", "max_nr_regions", "min_region_sz"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**63:
                raise ConfigError(f"attrs.{name}", v, "a non-negative integer")
        if self.sample_us < 1:
            raise ConfigError("attrs.sample_us", self.sample_us, "at least 1 µs (acma samples on a time grid)")
        if self.min_nr_regions < 3:
            raise ConfigError("attrs.min_nr_regions", self.min_nr_regions, "at least 3")
        if self.min_nr_regions > self.max_nr_regions:
            raise ConfigError("attrs.max_nr_regions", self.max_nr_regions, f">= min_nr_regions ({self.min_nr_regions})")
        if self.max_nr_regions > 1 << 20:
            raise ConfigError("attrs.max_nr_regions", self.max_nr_regions, "at most 2**20 (acma's limit)")
        if self.sample_us > self.aggr_us:
            raise ConfigError("attrs.aggr_us", self.aggr_us, f">= sample_us ({self.sample_us})")
        if self.min_region_sz < 1 or self.min_region_sz & (self.min_region_sz - 1):
            raise ConfigError("attrs.min_region_sz", self.min_region_sz, "a power of two")
        g = self.intervals_goal
        if not isinstance(g, IntervalsGoal):
            raise ConfigError("attrs.intervals_goal", g, "an IntervalsGoal")
        for name in ("access_bp", "aggrs", "min_sample_us", "max_sample_us"):
            v = getattr(g, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**63:
                raise ConfigError(f"attrs.intervals_goal.{name}", v, "a non-negative integer")
        if g.aggrs:
            if g.min_sample_us > g.max_sample_us:
                raise ConfigError("attrs.intervals_goal.min_sample_us", g.min_sample_us,
                                  f"<= max_sample_us ({g.max_sample_us})")
            if not g.min_sample_us <= self.sample_us <= g.max_sample_us:
                raise ConfigError("attrs.sample_us", self.sample_us,
                                  f"within the intervals goal [{g.min_sample_us}, {g.max_sample_us}]")

    @property
    def aggr_samples(self) -> int:
        return max(1, self.aggr_us // max(1, self.sample_us))


class Target:
    """A monitoring target: a process (vaddr), a process's fixed virtual ranges (fvaddr), or
    physical address ranges (paddr)."""

    def __init__(self, process: Process | None = None, ranges=None):
        if process is not None and not isinstance(process, Process):
            raise ConfigError("target.process", process, "a guest Process")
        self.process = process
        self.ranges = None if ranges is None else _check_ranges(ranges)
        self.regions: Regions | None = None
        self.record = TargetRecord(target_id=None, pid=process.pid if process else None)
        self._vma_arrays = None

    def vma_table(self):
        """The process's VMAs as sorted (start, end, gbase) arrays for the C sampler."""
        vmas = sorted(self.process.vmas, key=lambda v: v.start)
        self._vma_arrays = tuple(np.ascontiguousarray(a, dtype=np.uint64) for a in (
            [v.start for v in vmas], [v.start + v.npages * PAGE_SIZE for v in vmas], [v.gbase for v in vmas]))
        return self._vma_arrays


class Context:
    """One kdamond's worth of monitoring over a guest."""

    def __init__(self, guest: Guest, ops: str = "vaddr", targets: list[Target] | None = None,
                 attrs: Attrs | None = None, seed: int | None = None, record: bool = True):
        if ops not in OPS:
            raise ConfigError("ops", ops, f"one of {OPS}")
        attrs = attrs or Attrs()
        attrs.validate()
        targets = list(targets or [])
        if not targets:
            raise ConfigError("targets", targets, "at least one Target")
        for i, t in enumerate(targets):
            if ops != "paddr" and t.process is None:
                raise ConfigError(f"targets[{i}].process", t.process, f"a guest Process for {ops}")
            if ops != "vaddr" and not t.ranges:
                raise ConfigError(f"targets[{i}].ranges", t.ranges, f"address ranges for {ops}")
            t.record.target_id = i
        self.guest, self.ops, self.attrs, self.targets = guest, ops, attrs, targets
        s = guest.config.seed if seed is None else seed
        self.rng = np.array([_core._u64(s, "seed") ^ 0xDA3011], dtype=np.uint64)
        self.record_snapshots = record
        self.after_aggregation: list[Callable[["Context"], None]] = []
        self.passed = 0
        self.last_nr_regions = 0
        self.split_rotation = 0
        self.window_start_us = guest.now_us
        self.max_nr_accesses = 0
        self.aggregations = 0           # aggregation intervals run so far
        self.nr_regions_sum = 0         # and the sum of the region counts they ended with
        self._init_regions()
        self.next_aggregation = attrs.aggr_samples
        self.next_ops_update = max(1, attrs.ops_update_us // attrs.sample_us)
        self.next_intervals_tune = self.next_aggregation * attrs.intervals_goal.aggrs

    # --- regions
    def _ops_ranges(self, t: Target) -> list[tuple[int, int]]:
        if self.ops == "vaddr":
            return three_regions([(v.start, v.start + v.npages * PAGE_SIZE) for v in sorted(
                t.process.vmas, key=lambda v: v.start)], self.attrs.min_region_sz)
        return t.ranges

    def _init_regions(self) -> None:
        """vaddr's three-regions init (or the given ranges), then damon_apply_min_nr_regions."""
        cap = 3 * self.attrs.max_nr_regions + 64
        for t in self.targets:
            empty = Regions(cap)
            t.regions = empty.set_ranges(self._ops_ranges(t), self.attrs.min_region_sz).copy(cap)
        self.sz_limit = self._apply_min_nr_regions()

    def _total_size(self) -> int:
        return int(sum(int(t.regions.sizes().sum()) for t in self.targets))

    def _region_sz_limit(self) -> int:
        """damon_region_sz_limit: total size / min_nr_regions, at least min_region_sz."""
        return max(self._total_size() // self.attrs.min_nr_regions, self.attrs.min_region_sz)

    def _apply_min_nr_regions(self) -> int:
        mn = self.attrs.min_region_sz
        limit = self._region_sz_limit()
        max_sz = -(-limit // mn) * mn
        for t in self.targets:
            t.regions.apply_min(max_sz, mn)
        return max_sz

    def nr_regions(self) -> int:
        return sum(len(t.regions) for t in self.targets)

    # --- one aggregation interval
    def _c_targets(self):
        """The targets as the C sampler reads them (and the arrays that must outlive the call)."""
        ctargets = ffi.new("acma_damon_target[]", len(self.targets))
        keep = [ctargets]
        for ct, t in zip(ctargets, self.targets):
            ct.regions = t.regions.c
            if self.ops != "paddr":              # vaddr and fvaddr walk the process's VMAs
                vs, ve, vg = t.vma_table()
                keep.append((vs, ve, vg))
                ct.vma_start, ct.vma_end, ct.vma_gbase = (ffi.cast("uint64_t *", ffi.from_buffer(a)) for a in (vs, ve, vg))
                ct.nr_vmas = len(vs)
        return ctargets, keep

    def _c_ops(self) -> int:
        return lib.ACMA_OPS_PADDR if self.ops == "paddr" else lib.ACMA_OPS_VADDR

    def _sample(self, n: int) -> None:
        ctargets, _keep = self._c_targets()
        max_nr = ffi.new("uint32_t *")
        rc = lib.acma_damon_sample(self.guest.core._m, self._c_ops(), ctargets, len(self.targets),
                                   self.attrs.sample_us, n, ffi.cast("uint64_t *", ffi.from_buffer(self.rng)), max_nr)
        _core._check("damon_sample", rc)
        self.passed += n
        self.max_nr_accesses = max_nr[0]

    def _merge(self, threshold: int) -> None:
        """kdamond_merge_regions: repeat with a doubling threshold until max_nr_regions holds."""
        max_thres = self.attrs.aggr_samples
        first = True
        while True:
            for t in self.targets:
                t.regions.merge(threshold, self.sz_limit, update_age=first)
            first = False
            threshold = max(1, threshold * 2)
            if self.nr_regions() <= self.attrs.max_nr_regions or threshold // 2 >= max_thres:
                break

    def _split(self) -> None:
        """kdamond_split_regions, [N]."""
        nr, mx, mn = self.nr_regions(), self.attrs.max_nr_regions, self.attrs.min_region_sz
        if nr >= mx:
            pass
        elif nr > mx // 2:
            step = mx // (mx - nr)
            offset = self.split_rotation % step
            self.split_rotation += 1
            base = 0
            for t in self.targets:
                n = len(t.regions)
                t.regions.split_some(step, offset, base, mn, self.rng)
                base += n
        else:
            nr_subs = 3 if self.last_nr_regions == nr and nr < mx // 3 else 2
            for t in self.targets:
                t.regions.split(nr_subs, mn, self.rng)
        self.last_nr_regions = self.nr_regions()

    def _snapshot(self) -> None:
        for t in self.targets:
            r = t.regions
            t.record.snapshots.append(Snapshot(
                start_us=self.window_start_us, end_us=self.guest.now_us, start=r.start.copy(), end=r.end.copy(),
                nr_accesses=r.nr_accesses.copy(), age=r.age.copy()))

    def _tune_intervals(self) -> None:
        """kdamond_tune_intervals: scale the sampling interval toward the access_bp goal."""
        g, a = self.attrs.intervals_goal, self.attrs
        total = access = 0
        for t in self.targets:
            sz = t.regions.sizes().astype(np.float64)
            access += float((sz * t.regions.nr_accesses).sum())
            total += float(sz.sum()) * a.aggr_samples
        score = int(access * 10000 // max(1, int(total * g.access_bp // 10000)))
        adapt = _interval_adaptation_bp(score)
        if adapt == 10000:
            return
        sample = min(max(a.sample_us * adapt // 10000, g.min_sample_us), g.max_sample_us)
        self.set_attrs(replace(a, sample_us=sample, aggr_us=sample * a.aggr_samples))

    def step(self) -> None:
        """Run the guest through one aggregation interval under monitoring."""
        self._sample(max(1, self.next_aggregation - self.passed))
        self.guest.sync_psi()
        self._merge(self.max_nr_accesses // 10)
        self.sz_limit = self._apply_min_nr_regions()
        self.aggregations += 1
        self.nr_regions_sum += self.nr_regions()
        if self.record_snapshots:
            self._snapshot()
        for hook in self.after_aggregation:
            hook(self)
        g = self.attrs.intervals_goal
        if g.aggrs and self.passed >= self.next_intervals_tune:
            self.next_intervals_tune += self.attrs.aggr_samples * g.aggrs
            self._tune_intervals()
        self.next_aggregation = self.passed + self.attrs.aggr_samples
        for t in self.targets:                      # kdamond_reset_aggregated
            t.regions.last_nr_accesses[:] = t.regions.nr_accesses
            t.regions.nr_accesses[:] = 0
        self.window_start_us = self.guest.now_us
        self._split()
        self._ops_update_if_due()

    def _ops_update_if_due(self) -> None:
        """Every ops_update interval vaddr re-applies its three regions (damon_va_update)."""
        if self.passed >= self.next_ops_update:
            self.next_ops_update += max(1, self.attrs.ops_update_us // self.attrs.sample_us)
            if self.ops == "vaddr":
                for t in self.targets:
                    t.regions = t.regions.set_ranges(self._ops_ranges(t), self.attrs.min_region_sz).copy(
                        t.regions.cap)

    def needs_python_each_aggregation(self) -> bool:
        """Whether something must see every aggregation (snapshots, after-aggregation hooks):
        then run_until steps one aggregation at a time; otherwise whole runs of aggregation
        intervals go to C (acma_kdamond_run) with the same results."""
        return bool(self.record_snapshots or self.after_aggregation)

    def _aggregations_in_c(self, t_us: int) -> int:
        """How many whole aggregation intervals C may run now: those ending by ``t_us``, up to and
        including the one the ops update follows, and not the one the intervals tuning needs."""
        if self.needs_python_each_aggregation() or self.next_aggregation <= self.passed:
            return 0
        a, per = self.attrs.aggr_samples, self.attrs.aggr_samples * self.attrs.sample_us
        first_end = self.guest.now_us + (self.next_aggregation - self.passed) * self.attrs.sample_us
        n = 1 + (t_us - first_end) // per
        n = min(n, 1 + max(0, -(-(self.next_ops_update - self.next_aggregation) // a)), 1 << 30)
        if self.attrs.intervals_goal.aggrs:
            n = min(n, max(0, -(-(self.next_intervals_tune - self.next_aggregation) // a)))
        return max(0, n)

    def _run_in_c(self, n: int) -> None:
        """n aggregation intervals of step() in C (acma_kdamond_run), then the ops update."""
        a = self.attrs
        k = ffi.new("acma_kdamond *", dict(
            sample_us=a.sample_us, min_region_sz=a.min_region_sz, aggr_samples=a.aggr_samples,
            min_nr_regions=a.min_nr_regions, max_nr_regions=a.max_nr_regions, passed=self.passed,
            next_aggregation=self.next_aggregation, split_rotation=self.split_rotation, sz_limit=self.sz_limit,
            last_nr_regions=self.last_nr_regions, max_nr_accesses=self.max_nr_accesses))
        total = ffi.new("uint64_t *", 0)
        ctargets, _keep = self._c_targets()
        rc = lib.acma_kdamond_run(self.guest.core._m, self._c_ops(), ctargets, len(self.targets), k, n,
                                  ffi.cast("uint64_t *", ffi.from_buffer(self.rng)), total)
        self.passed, self.next_aggregation = k.passed, k.next_aggregation
        self.split_rotation, self.sz_limit = k.split_rotation, k.sz_limit
        self.last_nr_regions, self.max_nr_accesses = k.last_nr_regions, k.max_nr_accesses
        self.guest.sync_psi()
        if rc == lib.ACMA_ENOSPC:
            raise ConfigError("regions", self.nr_regions(), "room for the new regions (capacity exceeded)")
        _core._check("kdamond_run", rc)
        self.aggregations += n
        self.nr_regions_sum += total[0]
        self.window_start_us = self.guest.now_us
        self._ops_update_if_due()

    def mean_nr_regions(self) -> float:
        """The mean number of regions the aggregations so far ended with (what hooks see)."""
        return self.nr_regions_sum / self.aggregations if self.aggregations else float(self.nr_regions())

    def run_until(self, t_us: int) -> None:
        """Run the guest to ``t_us`` under monitoring, taking every sample that fits.

        Whole aggregation intervals run first (each ends with kdamond's aggregation step; in C
        when nothing needs to see each one, see needs_python_each_aggregation), then the whole
        sampling intervals of the current one that fit before ``t_us``; the rest (less than one
        sampling interval) runs unsampled, so whatever happens at ``t_us`` is on time.
        """
        g = self.guest
        while g.now_us + (self.next_aggregation - self.passed) * self.attrs.sample_us <= t_us:
            n = self._aggregations_in_c(t_us)
            if n:
                self._run_in_c(n)
            else:
                self.step()
        k = max(0, t_us - g.now_us) // self.attrs.sample_us
        if k > 0:   # part of an aggregation interval; step() samples the rest later
            self._sample(k)
            g.sync_psi()
        g.run_until(max(t_us, g.now_us))

    def set_attrs(self, attrs: Attrs) -> None:
        """``damon_set_attrs``: validate whole, convert the results (damon_update_monitoring_result,
        [N]: last_nr_accesses always, nr_accesses when not mid-window, age by aggr ratio), commit."""
        attrs.validate()
        old = self.attrs
        old_max, new_max = old.aggr_samples, attrs.aggr_samples
        mid = self.passed < self.next_aggregation
        for t in self.targets:
            r = t.regions
            r.last_nr_accesses[:] = (r.last_nr_accesses.astype(np.uint64) * 10000 // old_max * new_max // 10000)
            if not mid:
                r.nr_accesses[:] = (r.nr_accesses.astype(np.uint64) * 10000 // old_max * new_max // 10000)
            else:
                r.nr_accesses[:] = 0
            r.age[:] = (r.age.astype(np.uint64) * old.aggr_us // max(1, attrs.aggr_us))
        self.attrs = attrs
        self.next_aggregation = self.passed + attrs.aggr_samples
        self.next_ops_update = self.passed + max(1, attrs.ops_update_us // attrs.sample_us)

    def damon_record(self) -> DamonRecord:
        """Everything recorded so far, as damo reads it (see acma.io.damo_record)."""
        a = self.attrs
        return DamonRecord(intervals=Intervals(a.sample_us, a.aggr_us, a.ops_update_us),
                           targets=[t.record for t in self.targets])


def _check_ranges(ranges) -> list[tuple[int, int]]:
    """(start, end) byte pairs, sorted, non-empty, disjoint, below 2**64."""
    try:
        out = [(s, e) for s, e in ranges]
    except (TypeError, ValueError):
        raise ConfigError("target.ranges", ranges, "a list of (start, end) pairs") from None
    prev = -1
    for i, (s, e) in enumerate(out):
        for v in (s, e):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < 2**64:
                raise ConfigError(f"target.ranges[{i}]", (s, e), "integer addresses in [0, 2**64)")
        if not prev <= int(s) < int(e):
            raise ConfigError(f"target.ranges[{i}]", (s, e), "start < end, sorted and disjoint")
        prev = int(e)
    return [(int(s), int(e)) for s, e in out]


def _interval_adaptation_bp(score_bp: int) -> int:
    """kdamond_tune_intervals' factor in basis points, the closed form of its
    damon_feed_loop_next_input use: x2 with no access, x(2 - score) below the goal, shrinking
    from x1 to x0.5 between one and two times the goal, x0.5 beyond."""
    raw = min(max(20000 - score_bp, 1), 20000)
    return raw if raw > 10000 else 5000 + raw // 2
