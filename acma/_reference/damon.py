"""References of acma_damon_sample (csrc/damon.c) for a guest where nothing faults or is
reclaimed while sampling (every sampled page present, no trace): then between prepare and
check only time moves, and a sample is accessed iff the page's realisation has a touch in
(lambda(t_prepare), lambda(t_check)]. Pure Python and NumPy versions, used by the equality
tests and by the benchmarks as the baselines of the C loop.
"""

from __future__ import annotations

import numpy as np

from .access import M64, first_arrival_after, first_arrival_after_np, mix64, mix64_np


def _vma_of(vmas, addr: int):
    for start, end, gbase, lam in vmas:
        if start <= addr < end:
            return gbase + ((addr - start) >> 12), lam
    return None, None


def sample_py(seed: int, vmas, starts, ends, nr_accesses, rng: int, t0: int, sample_us: int,
              nr_samples: int) -> tuple[list[int], int]:
    """vmas: [(start, end, gbase, lam(t) -> float)], regions by starts/ends. Returns the new
    nr_accesses and the RNG state. Every mapped page is assumed present, with its young flag
    clear after the prepare (as acma_damon_sample leaves it)."""
    nr = list(nr_accesses)
    t = t0
    for _ in range(nr_samples):
        picks = []
        for s, e in zip(starts, ends):
            addr = s + mix64(rng) % (e - s) if e > s else s
            rng = (rng + 1) & M64
            picks.append(_vma_of(vmas, addr))
        for i, (g, lam) in enumerate(picks):
            if g is not None:
                x0, x1 = lam(t), lam(t + sample_us)
                if x1 > x0 and first_arrival_after(seed, g, x0) <= x1:
                    nr[i] += 1
        t += sample_us
    return nr, rng


def sample_np(seed: int, vma_start, vma_end, vma_gbase, vma_lam0, vma_lam1, starts, ends, rng: int,
              nr_samples: int) -> tuple[np.ndarray, int]:
    """The same, vectorised over regions and samples for VMAs whose rate is constant over the
    sampled span: vma_lam0/vma_lam1 are each VMA's lambda at a sample's start and end offsets
    (arrays of nr_samples)."""
    n = len(starts)
    starts = np.asarray(starts, np.uint64)
    width = np.asarray(ends, np.uint64) - starts
    k = np.arange(nr_samples * n, dtype=np.uint64) + np.uint64(rng)
    addr = starts[np.tile(np.arange(n), nr_samples)] + mix64_np(k) % np.tile(width, nr_samples)
    vi = np.searchsorted(np.asarray(vma_start, np.uint64), addr, side="right") - 1
    ok = (vi >= 0) & (addr < np.asarray(vma_end, np.uint64)[np.clip(vi, 0, None)])
    g = np.asarray(vma_gbase, np.uint64)[np.clip(vi, 0, None)] + ((addr - np.asarray(vma_start, np.uint64)[
        np.clip(vi, 0, None)]) >> np.uint64(12))
    s_idx = np.repeat(np.arange(nr_samples), n)
    x0 = np.asarray(vma_lam0)[np.clip(vi, 0, None), s_idx]
    x1 = np.asarray(vma_lam1)[np.clip(vi, 0, None), s_idx]
    hit = ok & (x1 > x0) & (first_arrival_after_np(seed, g, x0) <= x1)
    return hit.reshape(nr_samples, n).sum(axis=0).astype(np.uint32), (rng + nr_samples * n) & M64
