"""Pure-Python and NumPy references of the access model (csrc/access.c, csrc/internal.h).

Each page g of a synthetic VMA is touched as a Poisson process on the cumulative intensity
axis lambda: unit cell k of page g holds Poisson(1) touches at k + u01(hash4(seed, g, k, j)).
first_arrival_after is that realisation's next touch after x; vma_lambda turns time into
lambda; page_young / idle_bitmap are the test-and-clear views DAMON and page_idle read.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

M64 = (1 << 64) - 1
INF_KEY = 1e300
LAMBDA_MAX = float(2**52)  # access.c: a page's touches saturate here
EXP_MINUS_1 = 0.36787944117144233
POISSON_CAP = 24
CELL_SALT = 0x5EED

PS_ANON, PS_FILE = 1, 2
PG_YOUNG = 1


# ---------------------------------------------------------------------- hashing (internal.h)

def mix64(z: int) -> int:
    """internal.h mix64: the splitmix64 finaliser, on Python ints reduced mod 2**64."""
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def hash4(a: int, b: int, c: int, d: int) -> int:
    """internal.h hash4."""
    return mix64(mix64(mix64(mix64(a) ^ b) ^ c) ^ d)


def u01(h: int) -> float:
    """internal.h u01: the top 53 bits as a double in [0, 1)."""
    return (h >> 11) * 2.0 ** -53


def poisson1(u: float) -> int:
    """The touch count of one cell: Poisson(1) by inversion of u, capped at 24, with the
    same sequence of floating-point steps as first_arrival_after's inner loop."""
    p = c = EXP_MINUS_1
    n = 0
    while u > c and n < POISSON_CAP:
        n += 1
        p /= n
        c += p
    return n


def first_arrival_after(seed: int, gvpn: int, x: float) -> float:
    """access.c first_arrival_after: the lambda value of page gvpn's first touch strictly
    after x (INF_KEY once x reaches LAMBDA_MAX, NaN included)."""
    if not x < LAMBDA_MAX:
        return INF_KEY
    if x < 0:
        x = 0.0
    k = int(x)
    while True:
        n = poisson1(u01(hash4(seed, gvpn, k, CELL_SALT)))
        best = INF_KEY
        for j in range(1, n + 1):
            pos = float(k) + u01(hash4(seed, gvpn, k, j))
            if x < pos < best:
                best = pos
        if best < INF_KEY:
            return best
        k += 1


def touched_between(seed: int, gvpn: int, x0: float, x1: float) -> bool:
    """access.c touched_between: is there a touch of page gvpn in (x0, x1]? By definition the
    first touch after x0 is at most x1 (the C version reads fewer cells for the same answer)."""
    return x1 > x0 and first_arrival_after(seed, gvpn, x0) <= x1


# ---------------------------------------------------------------------- NumPy variant

def _poisson_cdf_table() -> np.ndarray:
    """The c values the inversion loop compares u with, computed with the loop's own steps."""
    p = c = EXP_MINUS_1
    out = [c]
    for n in range(1, POISSON_CAP):
        p /= n
        c += p
        out.append(c)
    return np.array(out, dtype=np.float64)


_CDF = _poisson_cdf_table()


def poisson1_np(u: np.ndarray) -> np.ndarray:
    """poisson1 over an array: the loop stops at the first partial sum c >= u, and the sums
    never decrease, so that is a sorted search in the table of the loop's own sums."""
    return np.searchsorted(_CDF, np.asarray(u, dtype=np.float64), side="left")


def mix64_np(z: np.ndarray) -> np.ndarray:
    """mix64 over a uint64 array (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _u01_np(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def first_arrival_after_np(seed: int, gvpns, x) -> np.ndarray:
    """first_arrival_after over an array of gvpns (x a scalar or an array of the same shape).

    Cells are scanned for all still-open pages at once, with poisson1_np for the touch
    counts; the results are bit-identical to the scalar version.
    """
    g = np.ascontiguousarray(gvpns, dtype=np.uint64).ravel()
    xs = np.broadcast_to(np.asarray(x, dtype=np.float64), g.shape).astype(np.float64)
    out = np.full(g.shape, INF_KEY)
    with np.errstate(over="ignore", invalid="ignore"):
        open_ = np.flatnonzero(xs < LAMBDA_MAX)
        xs = np.where(xs < 0, 0.0, xs)
        k = np.zeros(g.shape, dtype=np.uint64)
        k[open_] = xs[open_].astype(np.uint64)
        hseed = mix64_np(np.array([seed], dtype=np.uint64))[0]
        while open_.size:
            gi, ki, xi = g[open_], k[open_], xs[open_]
            hgk = mix64_np(mix64_np(hseed ^ gi) ^ ki)
            u = _u01_np(mix64_np(hgk ^ np.uint64(CELL_SALT)))
            n = poisson1_np(u)
            kf = ki.astype(np.float64)
            best = np.full(open_.shape, INF_KEY)
            for j in range(1, int(n.max(initial=0)) + 1):
                pos = kf + _u01_np(mix64_np(hgk ^ np.uint64(j)))
                take = (j <= n) & (pos > xi) & (pos < best)
                best = np.where(take, pos, best)
            done = best < INF_KEY
            out[open_[done]] = best[done]
            open_ = open_[~done]
            k[open_] += np.uint64(1)
    return out.reshape(np.shape(gvpns))


# ---------------------------------------------------------------------- lambda and young bits

@dataclass
class VmaModel:
    """A VMA's breakpoints (t µs, lambda, rate per µs), as acma_vma_add / set_rate keep them."""

    gbase: int
    npages: int
    explicit_only: bool = False
    bp: list = field(default_factory=list)

    @classmethod
    def new(cls, gbase: int, npages: int, now: int, explicit_only: bool = False) -> "VmaModel":
        """acma_vma_add: one breakpoint (now, 0, 0)."""
        return cls(gbase, npages, explicit_only, [(now, 0.0, 0.0)])

    def set_rate(self, now: int, rate_hz: float) -> None:
        """vma.c acma_vma_set_rate's breakpoint update."""
        t, lam, rate = self.bp[-1]
        r = rate_hz / 1e6
        if t == now:
            self.bp[-1] = (t, lam, r)
        elif rate != r:
            self.bp.append((now, self.lam(now), r))

    def lam(self, t: int) -> float:
        """access.c vma_lambda: the cumulative touches per page at time t."""
        return vma_lambda(self.bp, t)


def vma_lambda(bp, t: int) -> float:
    """access.c vma_lambda over breakpoints [(t, lambda, rate per µs), ...] sorted by t."""
    i = max(0, bisect_right([b[0] for b in bp], t) - 1)
    t0, lam, rate = bp[i]
    if t <= t0:
        return lam
    return lam + rate * float(t - t0)


class YoungModel:
    """The accessed-bit state of every physical page: page_young and the two bulk views.

    state, flags and owner come from the C core (acma_copy_pages); last_clear is the model's
    own (None where unknown: only allowed while the page's YOUNG flag is set).
    """

    def __init__(self, seed: int, vmas: list[VmaModel], state, flags, owner, last_clear, now: int):
        self.seed, self.vmas, self.now = seed, vmas, now
        self.state = [int(s) for s in state]
        self.flags = [int(f) for f in flags]
        self.owner = [int(o) for o in owner]
        self.last_clear = list(last_clear)

    def vma_of(self, g: int) -> VmaModel | None:
        """access.c vma_of."""
        for v in self.vmas:
            if v.gbase <= g < v.gbase + v.npages:
                return v
        return None

    def page_young(self, pfn: int, clear: bool) -> bool:
        """access.c page_young: the YOUNG flag, else a touch of the model since last_clear."""
        if self.state[pfn] not in (PS_ANON, PS_FILE):
            return False
        young = bool(self.flags[pfn] & PG_YOUNG)
        if not young:
            lc = self.last_clear[pfn]
            if lc is None:
                raise ValueError(f"pfn {pfn}: last clear unknown and the young flag is clear")
            if lc < self.now:
                g = self.owner[pfn]
                v = self.vma_of(g)
                if v is not None and not v.explicit_only:
                    x0, x1 = v.lam(lc), v.lam(self.now)
                    young = touched_between(self.seed, g, x0, x1)
        if clear:
            self.flags[pfn] &= ~PG_YOUNG & 0xFF
            self.last_clear[pfn] = self.now
        return young

    def young_pfns(self, pfns, clear: bool) -> list[bool]:
        """acma_young_pfns."""
        return [self.page_young(int(p), clear) for p in pfns]

    def young_gvpns(self, gvpns, pte_of, clear: bool) -> list[bool]:
        """acma_young_gvpns: pte_of(g) is g's page-table entry (present when bit 31 is clear)."""
        out = []
        for g in gvpns:
            p = int(pte_of(int(g)))
            out.append(False if p & 0x80000000 else self.page_young(p, clear))
        return out

    def idle_bitmap(self, pfn_start: int, npages: int) -> list[int]:
        """acma_idle_bitmap, a page_idle read then write: a young page loses PG_idle and gains
        PG_young; the bit is PG_idle; then every mapped page is marked idle again. flags2 (the
        model's own, starting clear as on freshly faulted pages) holds PG_young 1, PG_idle 2."""
        if not hasattr(self, "flags2"):
            self.flags2 = [0] * len(self.state)
        words = [0] * ((npages + 63) // 64)
        for i in range(npages):
            pfn = pfn_start + i
            if self.state[pfn] not in (PS_ANON, PS_FILE):
                continue
            if self.page_young(pfn, True):
                self.flags2[pfn] = (self.flags2[pfn] | 1) & ~2
            if self.flags2[pfn] & 2:
                words[i >> 6] |= 1 << (i & 63)
            self.flags2[pfn] |= 2
        return words
