"""The DAMOS engine: applies schemes to a DAMON context's regions after each aggregation,
as kdamond_apply_schemes and damon_do_apply_schemes do (mm/damon/core.c, newest mainline,
"[N]" in shared/spec/kernel-damon.md §3).

Per aggregation: every due scheme (apply interval) checks its watermarks and adjusts its
quota (window, effective size with goals and time cost, the score threshold); then the walk
goes over every region of every target and, for each due and active scheme, applies the
resume rule, the access pattern and score, the size cut, the core filters, the action (its
handler from acma.damos.handlers) and the charge. Stats follow the kernel's rules.

Attach with ``Engine(ctx, schemes)``: it adds :meth:`Engine.apply` to the context's
``after_aggregation`` hooks (called after merging, before the window reset and split).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..mm import memcg
from . import goals as _goals
from .handlers import ActionRequest, handler_of
from .quota import QuotaState, min_score_for
from .score import DAMOS_MAX_SCORE, score, score_array
from .scheme import Scheme, action_info, validate_all


@dataclass
class Stats:
    """``struct damos_stat``."""

    nr_tried: int = 0
    sz_tried: int = 0
    nr_applied: int = 0
    sz_applied: int = 0
    sz_ops_filter_passed: int = 0
    qt_exceeds: int = 0
    nr_snapshots: int = 0


@dataclass(frozen=True)
class TriedRegion:
    """A region a scheme was applied to in its latest walk (sysfs ``tried_regions/``)."""

    target_idx: int
    start: int
    end: int
    nr_accesses: int
    age: int
    sz_filter_passed: int


@dataclass
class SchemeState:
    """One scheme with its run-time state (what damon_commit keeps across updates)."""

    scheme: Scheme
    quota: QuotaState = field(default_factory=QuotaState)
    stats: Stats = field(default_factory=Stats)
    active: bool = True
    next_wmark_check_us: int = 0
    next_apply_sis: int = 0
    tried_regions: list = field(default_factory=list)

    def derive(self, ctx) -> None:
        """What follows from the scheme and the context: raw pattern, score kind, filters and
        the default rules (damos_set_filters_default_reject)."""
        s = self.scheme
        self.raw = s.raw_pattern(ctx.attrs)
        self.score_kind = action_info(s.action).score_kind(ctx.ops)
        self.core_filters, self.ops_filters = s.core_filters, s.ops_filters
        self.ops_default_reject = bool(self.ops_filters) and self.ops_filters[-1].allow
        # with ops filters, the core layer lets undecided regions through to them
        self.core_default_reject = (not self.ops_filters and bool(self.core_filters)
                                    and self.core_filters[-1].allow)
        self.handler = handler_of(s.action)


class Engine:
    """DAMOS over one DAMON context (one kdamond): its schemes, their state and stats."""

    def __init__(self, ctx, schemes=(), attach: bool = True):
        self.ctx = ctx
        self.states: list[SchemeState] = []
        self.seconds_in_handlers = 0.0     # host time spent in action handlers (the C part)
        self.seconds_total = 0.0           # host time of whole apply() calls
        self.commit(schemes)
        if attach:
            ctx.after_aggregation.append(self.apply)

    # --- configuration
    @property
    def schemes(self) -> tuple[Scheme, ...]:
        return tuple(st.scheme for st in self.states)

    def commit(self, schemes) -> None:
        """Replace the schemes in one step (damon_commit_ctx): the new set is validated whole
        first, nothing changes on error; scheme i keeps the quota, watermark and stat state
        of the old scheme i, as damos_commit keeps them."""
        ctx = self.ctx
        schemes = validate_all(schemes, attrs=ctx.attrs, ops=ctx.ops, nr_targets=len(ctx.targets),
                               nr_nodes=ctx.guest.nr_nodes)
        for i, s in enumerate(schemes):
            try:
                handler_of(s.action)
            except ConfigError as e:
                raise ConfigError(f"schemes[{i}].action", s.action, e.allowed) from None
            if s.action in ("hugepage", "nohugepage"):
                raise NotImplementedError(f"schemes[{i}].action {s.action}: acma has no THP model yet")
        new = []
        for i, s in enumerate(schemes):
            st = SchemeState(s) if i >= len(self.states) else self.states[i]
            if i >= len(self.states):
                st.next_apply_sis = ctx.passed + self._apply_samples(s)
            st.scheme = s
            st.derive(ctx)
            new.append(st)
        self.states = new

    def _apply_samples(self, s: Scheme) -> int:
        a = self.ctx.attrs
        return max(1, (s.apply_interval_us or a.aggr_us) // a.sample_us)

    def stats(self) -> list[Stats]:
        return [st.stats for st in self.states]

    # --- the after-aggregation hook
    def apply(self, ctx=None) -> None:
        """kdamond_apply_schemes for the context's current regions."""
        ctx = ctx or self.ctx
        t0 = time.perf_counter()
        now = ctx.guest.now_us
        due = []
        for st in self.states:
            if ctx.passed < st.next_apply_sis:
                continue
            self._update_wmarks(st, now)
            if st.active:
                self._adjust_quota(st)
                due.append(st)
        if due:
            for st in due:
                st.tried_regions = []
            self._vma_memcg = memcg.vma_cgroup_ids(ctx.guest)
            for ti, t in enumerate(ctx.targets):
                self._apply_target(due, ti, t)
            for st in self.states:
                if ctx.passed >= st.next_apply_sis:
                    st.next_apply_sis = ctx.passed + self._apply_samples(st.scheme)
        self.seconds_total += time.perf_counter() - t0

    # --- watermarks (damos_wmark_wait_us)
    def _free_mem_rate(self) -> int:
        """NR_FREE_PAGES * 1000 / totalram, per mille."""
        zones = [self.ctx.guest.core.zone_info(z) for z in range(self.ctx.guest.nr_nodes * 2)]
        total = sum(z["managed"] for z in zones)
        return sum(z["free"] for z in zones) * 1000 // total if total else 0

    def _update_wmarks(self, st: SchemeState, now: int) -> None:
        w = st.scheme.wmarks
        if w.metric == "none":
            st.active = True
            return
        if not st.active and now < st.next_wmark_check_us:
            return
        metric = self._free_mem_rate()
        if metric > w.high or metric < w.low:
            st.active = False
            st.next_wmark_check_us = now + w.interval_us
        elif not st.active and w.mid <= metric:
            st.next_wmark_check_us = now + w.interval_us
        else:
            st.active = True

    # --- quota (damos_adjust_quota)
    def _eligible(self, st: SchemeState, nid: int) -> tuple[int, int]:
        """node_eligible_mem_bp's (bytes on nid, all bytes) of pattern-eligible regions
        (paddr; other ops sets have no physical placement: 0 on every node)."""
        on, total = 0, 0
        for t in self.ctx.targets:
            r = t.regions
            for s, e, nr, age in zip(r.start.tolist(), r.end.tolist(), r.nr_accesses.tolist(), r.age.tolist()):
                if st.raw.matches(e - s, nr, age):
                    total += e - s
                    if self.ctx.ops == "paddr":
                        on += _goals.node_of_bytes(self.ctx.guest, s, e, nid)
        return on, total

    def _adjust_quota(self, st: SchemeState) -> None:
        quota, q, ctx = st.scheme.quota, st.quota, self.ctx
        if not quota.is_set:
            return
        mn = ctx.attrs.min_region_sz

        def goal_score():
            return _goals.goals_score(quota.goals, q.goal_state, ctx.guest, lambda nid: self._eligible(st, nid))

        if q.new_window_if_due(quota, ctx.guest.now_us, goal_score, mn):
            st.stats.qt_exceeds += 1
        hist = [0] * (DAMOS_MAX_SCORE + 1)
        if not st.core_filters:          # the same histogram, vectorized
            a = ctx.attrs
            for t in ctx.targets:
                r = t.regions
                sz = (r.end - r.start).astype(np.int64)
                nr, age = r.nr_accesses.astype(np.int64), r.age.astype(np.int64)
                p = st.raw
                ok = ((sz >= p.min_sz_region) & (sz <= min(p.max_sz_region, 2**63 - 1))
                      & (nr >= p.min_nr_accesses) & (nr <= p.max_nr_accesses)
                      & (age >= p.min_age_region) & (age <= p.max_age_region))
                sc = score_array(st.score_kind, nr[ok], age[ok], a.aggr_samples, a.aggr_us,
                                 quota.weight_nr_accesses, quota.weight_age)
                for k, b in enumerate(np.bincount(sc, weights=sz[ok], minlength=DAMOS_MAX_SCORE + 1).tolist()):
                    hist[k] += int(b)
            q.min_score = min_score_for(hist, q.esz)
            return
        for ti, t in enumerate(ctx.targets):
            i = 0
            while i < len(t.regions):
                r = t.regions
                sz, nr, age = int(r.end[i] - r.start[i]), int(r.nr_accesses[i]), int(r.age[i])
                if st.raw.matches(sz, nr, age) and self._core_filter_out(st, ti, t, i) is not True:
                    hist[self._score(st, nr, age)] += int(t.regions.end[i] - t.regions.start[i])
                i += 1
        q.min_score = min_score_for(hist, q.esz)

    def _score(self, st: SchemeState, nr: int, age: int) -> int:
        a, quota = self.ctx.attrs, st.scheme.quota
        return score(st.score_kind, nr, age, a.aggr_samples, a.aggr_us, quota.weight_nr_accesses, quota.weight_age)

    # --- core filters (damos_core_filter_out)
    def _core_filter_out(self, st: SchemeState, ti: int, t, i: int):
        """True: rejected; False: passed by default; "allowed": an allow filter hit (the
        ops layer then skips its filters). An addr filter may split region i first."""
        mn = self.ctx.attrs.min_region_sz
        for f in st.core_filters:
            if f.type == "target":
                hit = ti == f.target_idx
            else:
                lo, hi = f.addr_range[0] // mn * mn, f.addr_range[1] // mn * mn
                rs, re_ = int(t.regions.start[i]), int(t.regions.end[i])
                if lo <= rs and re_ <= hi:
                    hit = True
                elif re_ <= lo or rs >= hi:
                    hit = False
                elif rs < lo:
                    t.regions.split_at(i, lo - rs)
                    hit = False
                else:
                    t.regions.split_at(i, hi - rs)
                    hit = True
            if hit == f.matching:
                return "allowed" if f.allow else True
        return st.core_default_reject

    # --- the walk
    def _apply_target(self, due: list[SchemeState], ti: int, t) -> None:
        """damos_apply_target: every region with every due scheme; [N] merges a piece back
        into its predecessor when nothing tells them apart. The region values are read once
        into lists and re-read after anything changed them (a split, an age reset)."""
        i, stale = 0, True
        while True:
            if stale:
                r = t.regions
                S, E, NR, AGE, LAST = (a.tolist() for a in (r.start, r.end, r.nr_accesses, r.age,
                                                            r.last_nr_accesses))
                stale = False
            if i >= len(S):
                break
            for st in due:   # a region no pattern wants is left alone unless a resume is pending
                if st.quota.charge_target_from or st.raw.matches(E[i] - S[i], NR[i], AGE[i]):
                    if self._do_apply(st, ti, t, i):
                        r = t.regions
                        if len(r) != len(S):     # a split: re-read all
                            S, E, NR, AGE, LAST = (a.tolist() for a in (r.start, r.end, r.nr_accesses, r.age,
                                                                        r.last_nr_accesses))
                        else:                    # an age reset of region i
                            AGE[i] = int(r.age[i])
            if (i and E[i - 1] == S[i] and AGE[i - 1] == AGE[i] and NR[i - 1] == NR[i]
                    and LAST[i - 1] == LAST[i] and E[i] - S[i - 1] <= self.ctx.sz_limit):
                t.regions.merge_two(i - 1)
                stale = True
                continue
            i += 1
        for st in due:
            st.stats.nr_snapshots += 1

    def _skip_charged(self, st: SchemeState, ti: int, t, i: int) -> bool:
        """damos_skip_charged_region, [N]: resume where the last full window stopped."""
        q, mn = st.quota, self.ctx.attrs.min_region_sz
        if not q.charge_target_from:
            return False
        if q.charge_target_from != ti + 1:
            return True
        r = t.regions
        if i == len(r) - 1:
            q.charge_target_from, q.charge_addr_from = 0, 0
            return True
        start, end = int(r.start[i]), int(r.end[i])
        if q.charge_addr_from and end <= q.charge_addr_from:
            return True
        if q.charge_addr_from and start < q.charge_addr_from:
            skip = (q.charge_addr_from - start) // mn * mn
            if not skip:
                if end - start <= mn:
                    return True
                skip = mn
            r.split_at(i, skip)
            return True
        q.charge_target_from, q.charge_addr_from = 0, 0
        return False

    def _do_apply(self, st: SchemeState, ti: int, t, i: int) -> bool:
        """damon_do_apply_schemes for one scheme on region i; True if the regions changed
        (a split, an age reset)."""
        s, q, stats, mn = st.scheme, st.quota, st.stats, self.ctx.attrs.min_region_sz
        n0 = len(t.regions)
        if q.full(s.quota, mn) or self._skip_charged(st, ti, t, i):
            return len(t.regions) != n0
        if s.max_nr_snapshots and stats.nr_snapshots >= s.max_nr_snapshots:
            return len(t.regions) != n0
        r = t.regions
        sz, nr, age = int(r.end[i] - r.start[i]), int(r.nr_accesses[i]), int(r.age[i])
        if not st.raw.matches(sz, nr, age):
            return len(t.regions) != n0
        if s.quota.is_set and self._score(st, nr, age) < q.min_score:
            return len(t.regions) != n0
        # damos_apply_scheme
        if q.esz and q.charged_sz + sz > q.esz:
            sz = (q.esz - q.charged_sz) // mn * mn
            if not sz:
                stats.nr_tried += 1
                return len(t.regions) != n0
            r.split_at(i, sz)
        core = self._core_filter_out(st, ti, t, i)
        if core is True:
            return len(t.regions) != n0
        start, end = int(r.start[i]), int(r.end[i])
        sz = end - start
        req = ActionRequest(self.ctx.guest, self.ctx.ops, t, ti, start, end, s,
                            () if core == "allowed" else st.ops_filters,
                            False if core == "allowed" else st.ops_default_reject, self._vma_memcg)
        h0 = time.perf_counter()
        res = st.handler(req)
        self.seconds_in_handlers += time.perf_counter() - h0
        q.total_charged_ns += res.cost_ns
        q.charge(s.quota, sz, res.applied)
        if s.quota.is_set and q.charged_sz >= q.esz:
            q.charge_target_from, q.charge_addr_from = ti + 1, end
        st.tried_regions.append(TriedRegion(ti, start, end, int(r.nr_accesses[i]), int(r.age[i]), res.passed))
        if s.action != "stat":
            r.age[i] = 0
        stats.nr_tried += 1
        stats.sz_tried += sz
        if res.applied:
            stats.nr_applied += 1
            stats.sz_applied += res.applied
        stats.sz_ops_filter_passed += res.passed
        return True
