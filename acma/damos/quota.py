"""DAMOS quota state and its tuning (mm/damon/core.c: damos_adjust_quota,
damos_set_effective_quota, damon_feed_loop_next_input, damos_charge_quota), newest mainline.

Time is the guest's clock in µs (the kernel counts jiffies); the time quota's throughput comes
from the cost the action handlers report in the guest's cost units (acma.mm.costs), where the
kernel measures its own CPU time around ``ops.apply_scheme``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..units import PAGE_SIZE
from .scheme import ULONG_MAX, Quota

FEED_GOAL_BP = 10000
FEED_MIN_INPUT = 10000


def feed_loop_next_input(last: int, score: int) -> int:
    """damon_feed_loop_next_input with the goal fixed at 10000 bp: proportional steps toward
    the goal, never below 10000, back to the minimum when the score is twice the goal."""
    if score == FEED_GOAL_BP:
        return last
    if score >= FEED_GOAL_BP * 2:
        return FEED_MIN_INPUT
    diff = abs(score - FEED_GOAL_BP)
    if last and diff > ULONG_MAX // last:       # the kernel's overflow-safe order
        comp = last // FEED_GOAL_BP * diff
    else:
        comp = last * diff // FEED_GOAL_BP
    if score > FEED_GOAL_BP:
        return max(last - comp, FEED_MIN_INPUT) if last > comp else FEED_MIN_INPUT
    return min(last + comp, ULONG_MAX)


@dataclass
class QuotaState:
    """``struct damos_quota``'s private fields. Times in guest µs; ``charge_target_from`` is
    the target index + 1 of the resume point (0: none)."""

    esz: int = 0
    esz_bp: int = 0
    charged_sz: int = 0
    charged_from_us: int = 0
    total_charged_sz: int = 0
    total_charged_ns: float = 0.0
    charge_target_from: int = 0
    charge_addr_from: int = 0
    min_score: int = 0
    started: bool = False
    goal_state: dict = field(default_factory=dict)   # per goal index: last PSI total (µs)

    def full(self, quota: Quota, min_region_sz: int) -> bool:
        """[N] damos_quota_is_full: set, and nothing (or less than one region unit) left."""
        return quota.is_set and (self.charged_sz >= self.esz or self.esz - self.charged_sz < min_region_sz)

    def charge(self, quota: Quota, sz: int, applied: int) -> None:
        """[N] damos_charge_quota: failed bytes count num/denom of their size."""
        if not quota.fail_charge_denom or applied > sz:
            self.charged_sz += sz
        else:
            self.charged_sz += applied + (sz - applied) * quota.fail_charge_num // quota.fail_charge_denom

    def set_effective(self, quota: Quota, goal_score, min_region_sz: int) -> None:
        """damos_set_effective_quota: the goals' tuning, then the time and size limits.
        ``goal_score()`` measures the goals (max of current*10000/target)."""
        if not quota.ms and not quota.goals:
            self.esz = quota.sz
            return
        esz = ULONG_MAX
        if quota.goals:
            score = goal_score()
            if quota.goal_tuner == "temporal":
                self.esz_bp = 0 if score >= 10000 else (min(quota.sz * 10000, ULONG_MAX) if quota.sz else ULONG_MAX)
            else:
                self.esz_bp = feed_loop_next_input(max(self.esz_bp, 10000), score)
            esz = self.esz_bp // 10000
        if quota.ms:
            if self.total_charged_ns:
                thr = int(self.total_charged_sz * 1_000_000 // self.total_charged_ns)
            else:
                thr = PAGE_SIZE * 1024
            esz = max(min_region_sz, min(thr * quota.ms, esz))
        if quota.sz and quota.sz < esz:
            esz = quota.sz
        self.esz = esz

    def new_window_if_due(self, quota: Quota, now_us: int, goal_score, min_region_sz: int) -> bool:
        """damos_adjust_quota's window part; returns whether the old window ended full
        (the caller counts qt_exceeds)."""
        if not self.started:                      # [N] the first window
            self.started = True
            self.charged_from_us = now_us
            self.set_effective(quota, goal_score, min_region_sz)
            return False
        if now_us < self.charged_from_us + quota.reset_interval_ms * 1000:
            return False
        exceeded = bool(self.esz) and self.charged_sz >= self.esz
        self.total_charged_sz += self.charged_sz
        self.charged_from_us = now_us
        self.charged_sz = 0
        self.set_effective(quota, goal_score, min_region_sz)
        return exceeded


def min_score_for(histogram: list[int], esz: int) -> int:
    """The priority threshold: from the highest score present down, until the regions
    counted reach ``esz`` bytes (or score 0)."""
    scores = [s for s, b in enumerate(histogram) if b]
    score = max(scores) if scores else 0
    total = 0
    while True:
        total += histogram[score]
        if total >= esz or score == 0:
            return score
        score -= 1
