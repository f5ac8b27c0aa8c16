"""How accurate DAMON is: its estimates against the ground truth the simulation knows.

A real kernel cannot say how wrong DAMON's regions are, because nobody knows which pages were
really touched. acma does: every page of a synthetic VMA is touched by one realisation of a
Poisson process (docs/access-model.md), so for each DAMON snapshot we can compare

- the working-set size DAMON implies (damo's definition: the total size of the regions with
  ``nr_accesses >= 1``) with the bytes of in-use pages really touched in the window;
- the per-page access frequency DAMON implies (the page's region's ``nr_accesses`` over the
  window's number of samples) with the frequency a perfect monitor would report on average: the
  expected number of samples that find the page accessed, divided by the number of samples;
- hot/cold classification by a frequency threshold, page-weighted precision and recall;
- the heatmap error: the page-weighted mean absolute difference between the two frequencies.

:class:`AccuracyTracker` does this for every aggregation window of a :class:`~acma.damon.Context`
(attach it: it becomes an after-aggregation hook), or for snapshots read after the run.
docs/damon-accuracy.md defines every number precisely and shows a study made with it.

Cost. For vaddr (and fvaddr) the frequency metrics are exact and cost O(regions + VMAs) per window: every
in-use page of a VMA has the same rate, so regions and VMAs are intersected as intervals. The
realised working set is exact with ``sample_pages=None`` (one pass over the VMAs' pages in C,
O(pages of the target)) or estimated from a fixed, seeded random subset of about
``sample_pages`` pages spread over the VMAs in proportion to their size (O(sample_pages)).
paddr works page by page over the monitored physical pages (all of them, or a fixed random
subset of ``sample_pages``), and copies the page array of the guest once per window.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .._core import PS_ANON, PS_FILE, CoreError, lib
from ..errors import ConfigError
from ..io.damo_record import Snapshot
from ..units import PAGE_SIZE

__all__ = ["AccuracyTracker", "WindowAccuracy", "AccuracySummary", "HOT_THRESHOLD"]

# The default hot threshold, as a fraction of a window's samples: a page is hot when at least
# half of the samples find it accessed (DAMON_LRU_SORT's default hot_thres_access_freq, 500 per
# mille, uses the same cut).
HOT_THRESHOLD = 0.5
OPS = ("vaddr", "fvaddr", "paddr")
# the smallest per-VMA page sample when the realised working set is estimated from a subset
MIN_VMA_SAMPLE = 64


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _region_nr(starts: np.ndarray, ends: np.ndarray, nrs: np.ndarray, addr: np.ndarray) -> np.ndarray:
    """nr_accesses of the region holding each address; 0 where no region does."""
    if not len(starts):
        return np.zeros(len(addr))
    ri = np.searchsorted(starts, addr, "right") - 1
    rc = np.maximum(ri, 0)
    return np.where((ri >= 0) & (addr < ends[rc]), nrs[rc], 0.0)


@dataclass(frozen=True)
class WindowAccuracy:
    """DAMON against the truth over one aggregation window of one target.

    The window is the part of the run DAMON sampled: ``nr_samples`` sampling intervals of
    ``sample_us`` ending at ``end_us`` (so ``start_us = end_us - nr_samples * sample_us``).
    Sizes are bytes; page counts are floats because a page sample weighs each sampled page by
    the pages it stands for. "Evaluated pages" are the in-use pages of the target's synthetic
    (rate-driven) VMAs (for fvaddr, those inside the target's ranges); for paddr, the monitored
    physical pages mapped by such VMAs at the end of the window.
    """

    target: int
    start_us: int
    end_us: int
    sample_us: int
    nr_samples: int
    nr_regions: int
    pages: float                # evaluated pages
    true_wss: float             # bytes of evaluated pages touched in the window (realised)
    expected_wss: float         # its expectation, sum of size * (1 - exp(-touches per page))
    est_wss: int                # damo: total size of the regions with nr_accesses >= 1
    est_wss_outside: float      # part of est_wss on no evaluated page (gaps, unused tails)
    wss_missed: float           # part of true_wss on pages whose region has nr_accesses 0
    hot_tp: float               # pages hot by both DAMON and the truth
    hot_fp: float               # hot by DAMON only
    hot_fn: float               # hot by the truth only
    hot_tn: float               # cold by both
    heatmap_abs: float          # sum over pages of |nr_accesses - expected nr_accesses|

    @property
    def wss_error(self) -> float:
        """Signed relative error (est - true) / true; NaN when nothing was touched."""
        return _ratio(self.est_wss - self.true_wss, self.true_wss)

    @property
    def wss_extra(self) -> float:
        """Untouched evaluated bytes that DAMON's working set counts (in regions with
        nr_accesses >= 1); est_wss = true_wss - wss_missed + wss_extra + est_wss_outside."""
        return self.est_wss - self.est_wss_outside - (self.true_wss - self.wss_missed)

    @property
    def hot_precision(self) -> float:
        return _ratio(self.hot_tp, self.hot_tp + self.hot_fp)

    @property
    def hot_recall(self) -> float:
        return _ratio(self.hot_tp, self.hot_tp + self.hot_fn)

    @property
    def cold_precision(self) -> float:
        return _ratio(self.hot_tn, self.hot_tn + self.hot_fn)

    @property
    def cold_recall(self) -> float:
        return _ratio(self.hot_tn, self.hot_tn + self.hot_fp)

    @property
    def heatmap_error(self) -> float:
        """Page-weighted mean |estimated - expected frequency|, in [0, 1]."""
        return _ratio(self.heatmap_abs, self.pages * self.nr_samples)


@dataclass(frozen=True)
class AccuracySummary:
    """A run of windows of one target: errors over windows, classification over all pages."""

    windows: int
    wss_windows: int            # windows with a non-empty true working set (the WSS statistics)
    wss_error_mean: float       # mean |relative error|
    wss_error_median: float     # median |relative error|
    wss_bias: float             # mean signed relative error (> 0: DAMON overestimates)
    wss_missed: float           # mean wss_missed / true_wss: touched but in a region with nr 0
    wss_extra: float            # mean wss_extra / true_wss: untouched but in a region with nr >= 1
    wss_outside: float          # mean est_wss_outside / true_wss: counted bytes of no page
    hot_precision: float        # summed over windows (micro average)
    hot_recall: float
    cold_precision: float
    cold_recall: float
    heatmap_error: float        # page-weighted over windows
    mean_regions: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class AccuracyTracker:
    """Scores every aggregation window of a DAMON context against the ground truth.

    ``hot_threshold``: a page is hot when its frequency (accessed samples / samples in the
    window) is at least this, for DAMON (its region's nr_accesses) and for the truth (expected
    accessed samples) alike. ``sample_pages``: None computes the realised working set over
    every page; a number estimates it from a fixed random subset of about that many pages per
    target (chosen from ``seed``). Results accumulate in ``windows``; ``seconds`` and
    ``cpu_seconds`` are the wall and CPU time spent scoring (to tell it apart from DAMON's cost).
    """

    def __init__(self, hot_threshold: float = HOT_THRESHOLD, sample_pages: int | None = None, seed: int = 0):
        if isinstance(hot_threshold, bool) or not isinstance(hot_threshold, (int, float)) or not (
                0 < hot_threshold <= 1):
            raise ConfigError("hot_threshold", hot_threshold, "a fraction of the samples in (0, 1]")
        if sample_pages is not None and (isinstance(sample_pages, bool) or not isinstance(sample_pages, int)
                                         or not 1 <= sample_pages <= 1 << 26):
            raise ConfigError("sample_pages", sample_pages, "None (every page) or pages in [1, 2**26]")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise ConfigError("seed", seed, "an integer in [0, 2**64)")
        self.hot_threshold = float(hot_threshold)
        self.sample_pages = sample_pages
        self.seed = seed
        self.windows: list[WindowAccuracy] = []
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._ctx = None
        self._passed = 0
        self._draws: dict = {}
        self._explicit: dict = {}
        self._memo: dict = {}

    # --- attaching to a context
    def attach(self, ctx) -> "AccuracyTracker":
        """Score each of ``ctx``'s windows from now on (an after-aggregation hook)."""
        if ctx.ops not in OPS:
            raise ConfigError("ctx.ops", ctx.ops, f"one of {OPS}")
        if self._ctx is not None:
            raise ConfigError("ctx", ctx, "a tracker attaches to one context")
        self._ctx, self._passed = ctx, ctx.passed
        ctx.after_aggregation.append(self)
        return self

    def __call__(self, ctx) -> None:
        t, c = time.perf_counter(), time.process_time()
        n = ctx.passed - self._passed
        self._passed = ctx.passed
        if n > 0:
            for i, tg in enumerate(ctx.targets):
                r = tg.regions
                self.windows.append(self._evaluate(ctx.guest, ctx.ops, tg, i, r.start, r.end, r.nr_accesses,
                                                   ctx.guest.now_us, n, ctx.attrs.sample_us))
        self.seconds += time.perf_counter() - t
        self.cpu_seconds += time.process_time() - c

    def evaluate_snapshot(self, guest, ops: str, target, snapshot: Snapshot, sample_us: int,
                          target_index: int = 0) -> WindowAccuracy:
        """Score a snapshot read after the run (its window: end_us back by whole samples).

        The truth is the same realisation, but the VMAs' in-use sizes are today's: exact when
        no VMA was resized after the snapshot was taken.
        """
        if ops not in OPS:
            raise ConfigError("ops", ops, f"one of {OPS}")
        if ops != "paddr" and getattr(target, "process", None) is None:
            raise ConfigError("target.process", None, f"a guest Process for {ops}")
        if ops != "vaddr" and not getattr(target, "ranges", None):
            raise ConfigError("target.ranges", None, f"address ranges for {ops}")
        if isinstance(sample_us, bool) or not isinstance(sample_us, int) or sample_us < 1:
            raise ConfigError("sample_us", sample_us, "a sampling interval >= 1 us")
        n = max(1, round((snapshot.end_us - snapshot.start_us) / sample_us))
        n = min(n, snapshot.end_us // sample_us) or 1
        w = self._evaluate(guest, ops, target, target_index, snapshot.start, snapshot.end, snapshot.nr_accesses,
                           snapshot.end_us, n, sample_us)
        self.windows.append(w)
        return w

    # --- summaries
    def summary(self, target: int = 0, since_us: int = 0, until_us: int | None = None) -> AccuracySummary:
        """Windows of ``target`` that end after ``since_us`` (skip a warm-up with it) and no
        later than ``until_us``."""
        ws = [w for w in self.windows if w.target == target and w.end_us > since_us
              and (until_us is None or w.end_us <= until_us)]
        errs = np.array([w.wss_error for w in ws], dtype=np.float64)
        errs = errs[np.isfinite(errs)]
        scored = [w for w in ws if w.true_wss > 0]
        rel = lambda f: float(np.mean([f(w) / w.true_wss for w in scored])) if scored else math.nan  # noqa: E731
        tot = lambda f: float(sum(getattr(w, f) for w in ws))  # noqa: E731
        tp, fp, fn, tn = tot("hot_tp"), tot("hot_fp"), tot("hot_fn"), tot("hot_tn")
        return AccuracySummary(
            windows=len(ws), wss_windows=int(errs.size),
            wss_error_mean=float(np.abs(errs).mean()) if errs.size else math.nan,
            wss_error_median=float(np.median(np.abs(errs))) if errs.size else math.nan,
            wss_bias=float(errs.mean()) if errs.size else math.nan,
            wss_missed=rel(lambda w: w.wss_missed), wss_extra=rel(lambda w: w.wss_extra),
            wss_outside=rel(lambda w: w.est_wss_outside),
            hot_precision=_ratio(tp, tp + fp), hot_recall=_ratio(tp, tp + fn),
            cold_precision=_ratio(tn, tn + fn), cold_recall=_ratio(tn, tn + fp),
            heatmap_error=_ratio(tot("heatmap_abs"), float(sum(w.pages * w.nr_samples for w in ws))),
            mean_regions=float(np.mean([w.nr_regions for w in ws])) if ws else math.nan)

    # --- the scoring
    def _evaluate(self, guest, ops, target, index, starts, ends, nrs, t1, n, s) -> WindowAccuracy:
        starts = np.asarray(starts, dtype=np.uint64).astype(np.float64)
        ends = np.asarray(ends, dtype=np.uint64).astype(np.float64)
        nrs = np.asarray(nrs, dtype=np.float64)
        t0 = max(0, t1 - n * s)
        if ops == "vaddr":
            acc = self._vaddr(guest, target, starts, ends, nrs, t0, t1, n, s)
        elif ops == "fvaddr":
            acc = self._vaddr(guest, target, starts, ends, nrs, t0, t1, n, s, clip=sorted(target.ranges))
        else:
            acc = self._paddr(guest, target, index, starts, ends, nrs, t0, t1, n, s)
        est = int(np.round((ends - starts)[nrs >= 1].sum()))
        pages, true_b, exp_b, est_in, missed, tp, fp, fn, tn, heat = acc
        return WindowAccuracy(target=index, start_us=t0, end_us=t1, sample_us=s, nr_samples=n,
                              nr_regions=len(starts), pages=pages, true_wss=true_b, expected_wss=exp_b,
                              est_wss=est, est_wss_outside=max(0.0, est - est_in), wss_missed=missed,
                              hot_tp=tp, hot_fp=fp, hot_fn=fn, hot_tn=tn, heatmap_abs=heat)

    def _vma_model(self, vma, t0, t1, n, s):
        """(lambda at t0, lambda at t1, expected accessed samples) of a synthetic VMA's page.

        Sample i finds the page accessed with probability 1 - exp(-(lambda(t0 + (i+1)s) -
        lambda(t0 + is))). When the first and the last sampling interval both see the window's
        mean rate, the rate is taken as constant (n equal terms); otherwise every sampling
        interval is read (a rate change inside the window)."""
        lam = vma.lambda_at
        x0, x1 = lam(t0), lam(t1)
        d = max(0.0, x1 - x0)
        if n <= 2:
            grid = [x0] + [lam(t0 + i * s) for i in range(1, n)] + [x1]
            return x0, x1, float(-np.expm1(-np.maximum(np.diff(grid), 0.0)).sum())
        first, last = lam(t0 + s) - x0, x1 - lam(t1 - s)
        tol = 1e-9 * max(d, 1e-300)
        if abs(first * n - d) <= tol and abs(last * n - d) <= tol:
            return x0, x1, -math.expm1(-d / n) * n
        grid = [x0] + [lam(t0 + i * s) for i in range(1, n)] + [x1]
        return x0, x1, float(-np.expm1(-np.maximum(np.diff(grid), 0.0)).sum())

    def _is_explicit(self, guest, vma) -> bool:
        """Trace-driven VMAs have no rate and so no ground truth here; asked once per VMA."""
        key = (id(guest), vma.id)
        if key not in self._explicit:
            try:
                vma.truth_accessed(0, 0)      # refused up front for explicit VMAs
                self._explicit[key] = False
            except CoreError:
                self._explicit[key] = True
        return self._explicit[key]

    def _draw(self, guest, kind: int, which: int, k: int) -> np.ndarray:
        """A fixed stream of uniforms for a VMA (kind 0) or a paddr target (kind 1), from the
        tracker's seed alone: the same pages every window and every run."""
        key = (id(guest), kind, which)
        u = self._draws.get(key)
        if u is None or len(u) < k:
            u = np.random.default_rng([self.seed, kind, which]).random(max(k, 1))
            self._draws[key] = u
        return u[:k]

    def _touched(self, guest, gvpns: np.ndarray, x0: np.ndarray, x1: np.ndarray, memo=None) -> np.ndarray:
        """The realisation, page by page: a touch of gvpn on the lambda axis in (x0, x1].

        ``memo`` (the pages' next touch after an earlier x0, and that x0) spares the lookup of
        every page whose known next touch still lies ahead: cold pages are looked up about once
        per touch, not once per window. Same answers, fewer calls into C."""
        seed = guest.config.seed
        fa = lib.acma_first_arrival_after
        if memo is None:
            nxt = np.array([fa(seed, g, a) for g, a in zip(gvpns.tolist(), x0.tolist())], dtype=np.float64)
        else:
            nxt, since = memo
            stale = np.flatnonzero((x0 < since) | (x0 >= nxt))
            for i, g, a in zip(stale.tolist(), gvpns[stale].tolist(), x0[stale].tolist()):
                nxt[i] = fa(seed, g, a)
            since[:] = x0
        return (x1 > x0) & (nxt <= x1)

    def _vaddr(self, guest, target, starts, ends, nrs, t0, t1, n, s, clip=None):
        """vaddr (and fvaddr, whose fixed ``clip`` ranges bound the evaluated pages)."""
        thr = self.hot_threshold * n
        est_hot = nrs >= thr
        pieces = []                     # (vma, first page, end page): in-use pages to score
        for v in target.process.vmas:
            if self._is_explicit(guest, v):
                continue
            nalloc = v.info()["nalloc"]
            if clip is None:
                pieces += [(v, 0, nalloc)] if nalloc else []
                continue
            for rs, re_ in clip:
                lo = max(0, (rs - v.start) // PAGE_SIZE)
                hi = min(nalloc, -(-(re_ - v.start) // PAGE_SIZE))
                if hi > lo:
                    pieces.append((v, lo, hi))
        total = max(1, sum(hi - lo for _, lo, hi in pieces))
        pages = true_b = exp_b = est_in = missed = tp = fp = fn = tn = heat = 0.0
        models = {}
        for v, lo, hi in pieces:
            if v.id not in models:
                models[v.id] = self._vma_model(v, t0, t1, n, s)
            x0, x1, e = models[v.id]
            npg = hi - lo
            a, b = float(v.start + lo * PAGE_SIZE), float(v.start + hi * PAGE_SIZE)
            i0, i1 = np.searchsorted(ends, a, "right"), np.searchsorted(starts, b, "left")
            ov = np.clip(np.minimum(ends[i0:i1], b) - np.maximum(starts[i0:i1], a), 0.0, None) / PAGE_SIZE
            nr, eh = nrs[i0:i1], est_hot[i0:i1]
            bare = max(0.0, npg - float(ov.sum()))        # pages no region covers: nr_accesses 0
            pages += npg
            heat += float((ov * np.abs(nr - e)).sum()) + bare * e
            est_in += float(ov[nr >= 1].sum()) * PAGE_SIZE
            on = float(ov[eh].sum())
            if e >= thr:
                tp, fn = tp + on, fn + npg - on
            else:
                fp, tn = fp + on, tn + npg - on
            exp_b += npg * -math.expm1(-max(0.0, x1 - x0)) * PAGE_SIZE
            touched, unseen = self._true_pages(guest, v, lo, hi, x0, x1, t0, t1, total, starts, ends, nrs)
            true_b += touched * PAGE_SIZE
            missed += unseen * PAGE_SIZE
        return pages, true_b, exp_b, est_in, missed, tp, fp, fn, tn, heat

    def _true_pages(self, guest, v, lo, hi, x0, x1, t0, t1, total, starts, ends, nrs):
        """(pages of [lo, hi) touched in the window, of which on pages that DAMON put in a region
        with nr_accesses 0 or in no region): exact, or estimated from a fixed page sample."""
        if x1 <= x0:
            return 0.0, 0.0
        npg = hi - lo
        if self.sample_pages is None:
            offs, weight = lo + np.flatnonzero(v.truth_accessed(t0, t1)[lo:hi]), 1.0
        else:
            k = max(MIN_VMA_SAMPLE, -(-self.sample_pages * npg // total))
            if npg <= k:
                offs, weight = np.arange(lo, hi, dtype=np.uint64), 1.0
            else:
                offs = lo + (self._draw(guest, 0, v.id, k) * npg).astype(np.uint64)
                weight = npg / k
            key = (id(guest), v.id, lo)
            memo = self._memo.get(key)
            if memo is None or memo[0] != (hi, len(offs)):
                memo = ((hi, len(offs)), np.full(len(offs), -1.0), np.full(len(offs), np.inf))
                self._memo[key] = memo
            _, nxt, since = memo
            hit = self._touched(guest, offs + np.uint64(v.gbase), np.full(len(offs), x0), np.full(len(offs), x1),
                                (nxt, since))
            offs = offs[hit]
        addr = float(v.start) + offs.astype(np.float64) * PAGE_SIZE
        seen = _region_nr(starts, ends, nrs, addr) >= 1
        return float(len(offs)) * weight, float(np.count_nonzero(~seen)) * weight

    def _paddr(self, guest, target, index, starts, ends, nrs, t0, t1, n, s):
        thr = self.hot_threshold * n
        pfns = np.concatenate([np.arange(a // PAGE_SIZE, -(-b // PAGE_SIZE), dtype=np.int64)
                               for a, b in target.ranges])
        pfns = pfns[pfns < guest.nr_pages]
        weight = 1.0
        if self.sample_pages is not None and len(pfns) > self.sample_pages:
            u = self._draw(guest, 1, index, self.sample_pages)
            pick = np.unique((u * len(pfns)).astype(np.int64))
            weight, pfns = len(pfns) / len(pick), pfns[pick]
        pg = guest.core.pages()
        state, owner = pg["state"][pfns], pg["owner"][pfns].astype(np.int64)
        vmas = sorted((v for p in guest.processes for v in p.vmas), key=lambda v: v.gbase)
        vmas = [v for v in vmas if not self._is_explicit(guest, v)]
        gb = np.array([v.gbase for v in vmas], dtype=np.int64)
        npg = np.array([v.npages for v in vmas], dtype=np.int64)
        vi = np.searchsorted(gb, owner, "right") - 1
        ok = ((state == PS_ANON) | (state == PS_FILE)) & (vi >= 0)
        ok[ok] &= owner[ok] < gb[vi[ok]] + npg[vi[ok]]
        pfns, owner, vi = pfns[ok], owner[ok], vi[ok]
        used = np.unique(vi)
        x0 = np.zeros(len(vmas))
        x1 = np.zeros(len(vmas))
        e = np.zeros(len(vmas))
        for j in used.tolist():
            x0[j], x1[j], e[j] = self._vma_model(vmas[j], t0, t1, n, s)
        nr = _region_nr(starts, ends, nrs, pfns.astype(np.float64) * PAGE_SIZE)
        pe = e[vi]
        true_hot, est_hot = pe >= thr, nr >= thr
        if self.sample_pages is None:
            hit = np.zeros(len(pfns), dtype=bool)
            for j in used.tolist():
                sel = vi == j
                truth = vmas[j].truth_accessed(t0, t1)
                hit[sel] = truth[owner[sel] - gb[j]]
        else:
            hit = self._touched(guest, owner.astype(np.uint64), x0[vi], x1[vi])
        w = weight
        return (w * len(pfns), w * float(np.count_nonzero(hit)) * PAGE_SIZE,
                w * float(-np.expm1(-np.maximum(x1 - x0, 0.0))[vi].sum()) * PAGE_SIZE,
                w * float(np.count_nonzero(nr >= 1)) * PAGE_SIZE,
                w * float(np.count_nonzero(hit & (nr < 1))) * PAGE_SIZE,
                w * float(np.count_nonzero(true_hot & est_hot)), w * float(np.count_nonzero(~true_hot & est_hot)),
                w * float(np.count_nonzero(true_hot & ~est_hot)), w * float(np.count_nonzero(~true_hot & ~est_hot)),
                w * float(np.abs(nr - pe).sum()))
