"""Region arrays and the region operations of mm/damon/core.c, as public functions.

A :class:`Regions` holds one target's regions in numpy arrays with spare capacity; the C core
works on them in place (csrc/damon.c). Each method names the kernel function it follows, so it
can be checked alone against the kernel's behaviour (docs/api.md lists them).
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._core import ffi, lib
from ..errors import ConfigError

_FIELDS64 = ("start", "end", "sampling_addr")
_FIELDS32 = ("nr_accesses", "last_nr_accesses", "age")


class Regions:
    """Sorted, non-overlapping [start, end) regions with their access counters."""

    def __init__(self, cap: int):
        if not isinstance(cap, int) or not 1 <= cap <= 1 << 24:
            raise ConfigError("cap", cap, "an integer in [1, 2**24]")
        self._arrays = {f: np.zeros(cap, np.uint64) for f in _FIELDS64}
        self._arrays.update({f: np.zeros(cap, np.uint32) for f in _FIELDS32})
        self.c = ffi.new("acma_regions *")
        for f in _FIELDS64:
            setattr(self.c, f, ffi.cast("uint64_t *", ffi.from_buffer(self._arrays[f])))
        for f in _FIELDS32:
            setattr(self.c, f, ffi.cast("uint32_t *", ffi.from_buffer(self._arrays[f])))
        self.c.n, self.c.cap = 0, cap

    @classmethod
    def from_ranges(cls, ranges, cap: int | None = None) -> "Regions":
        """Fresh regions (all counters zero) covering the given (start, end) pairs."""
        ranges = [(int(s), int(e)) for s, e in ranges]
        r = cls(cap or max(16, 4 * len(ranges)))
        if len(ranges) > r.c.cap:
            raise ConfigError("ranges", len(ranges), f"at most cap ({r.c.cap}) ranges")
        for i, (s, e) in enumerate(ranges):
            r._arrays["start"][i], r._arrays["end"][i] = s, e
            r._arrays["sampling_addr"][i] = s
        r.c.n = len(ranges)
        r._check("regions")
        return r

    def __len__(self) -> int:
        return int(self.c.n)

    def __getattr__(self, name):
        if name in _FIELDS64 or name in _FIELDS32:
            return self._arrays[name][: self.c.n]
        raise AttributeError(name)

    @property
    def cap(self) -> int:
        return int(self.c.cap)

    def sizes(self) -> np.ndarray:
        return self.end - self.start

    def copy(self, cap: int | None = None) -> "Regions":
        out = Regions(cap or self.cap)
        n = len(self)
        if n > out.cap:
            raise ConfigError("cap", cap, f"at least {n}")
        for f, a in self._arrays.items():
            out._arrays[f][:n] = a[:n]
        out.c.n = n
        return out

    def _check(self, op: str) -> None:
        if lib.acma_regions_check(self.c):
            raise ConfigError(op, len(self), "sorted, non-overlapping regions with end > start")

    def _rc(self, op: str, rc: int, allowed: str) -> None:
        if rc == lib.ACMA_ENOSPC:
            raise ConfigError(op, len(self), f"room for the new regions (capacity {self.cap})")
        if rc:
            raise ConfigError(op, rc, allowed)

    # --- the kernel's region operations
    def split_at(self, i: int, sz: int) -> None:
        """damon_split_region_at: region i keeps [start, start+sz); the right piece copies counters."""
        self._rc("split_at", lib.acma_regions_split_at(self.c, _core._u64(i, "i"), _core._u64(sz, "sz")),
                 "i < len and 0 < sz < size of region i, with room for one more")

    def merge_two(self, i: int) -> None:
        """damon_merge_two_regions of regions i and i+1 (they must be adjacent)."""
        self._rc("merge_two", lib.acma_regions_merge_two(self.c, _core._u64(i, "i")),
                 "i + 1 < len, regions i and i+1 adjacent")

    def merge(self, thres: int, sz_limit: int, update_age: bool = True) -> None:
        """damon_merge_regions_of ([N]: ages updated on the first pass only)."""
        lib.acma_regions_merge(self.c, _core._u32(thres, "thres"), _core._u64(sz_limit, "sz_limit"), bool(update_age))

    def split(self, nr_subs: int, min_sz: int, rng: np.ndarray) -> None:
        """damon_split_regions_of for every region: up to nr_subs pieces at 10-90 % points."""
        self._rc("split", lib.acma_regions_split(self.c, _core._u32(nr_subs, "nr_subs"), _core._u64(min_sz, "min_sz"),
                                                 _rng_ptr(rng)), "nr_subs in [1, 16], min_sz > 0")

    def split_some(self, step: int, offset: int, index_base: int, min_sz: int, rng: np.ndarray) -> None:
        """[N] damon_split_some_regions: regions whose global index is offset mod step split once."""
        self._rc("split_some", lib.acma_regions_split_some(self.c, _core._u64(step, "step"), _core._u64(offset, "offset"),
                                                           _core._u64(index_base, "index_base"),
                                                           _core._u64(min_sz, "min_sz"), _rng_ptr(rng)),
                 "step > 0, min_sz > 0")

    def evenly_split(self, i: int, n: int, min_sz: int) -> None:
        """damon_va_evenly_split_region (2024 fix): exactly n pieces, the last to the end."""
        self._rc("evenly_split", lib.acma_regions_evenly_split(self.c, _core._u64(i, "i"), _core._u32(n, "n"),
                                                               _core._u64(min_sz, "min_sz")),
                 "i < len, n > 0, a piece of at least min_sz")

    def set_ranges(self, ranges, min_sz: int) -> "Regions":
        """damon_set_regions: a new Regions fitted to the ranges, keeping what overlaps them."""
        flat = np.ascontiguousarray(np.asarray(ranges, dtype=np.uint64).reshape(-1))
        out = Regions(max(self.cap, 2 * len(self) + 2 * (len(flat) // 2) + 2))
        self._rc("set_ranges", lib.acma_regions_set(self.c, _core._buf(flat, np.uint64, None, "ranges"),
                                                    len(flat) // 2, _core._u64(min_sz, "min_sz"), out.c),
                 "aligned ranges that are non-empty, sorted and disjoint")
        return out

    def apply_min(self, max_sz: int, min_sz: int) -> None:
        """[N] damon_apply_min_nr_regions' split of every region larger than max_sz."""
        self._rc("apply_min", lib.acma_regions_apply_min(self.c, _core._u64(max_sz, "max_sz"),
                                                         _core._u64(min_sz, "min_sz")),
                 "max_sz a positive multiple of min_sz")

    def moving_sum(self, passed: int, next_aggregation: int, aggr_samples: int) -> np.ndarray:
        """[N] damon_nr_accesses_mvsum: the window's count plus the decayed last count."""
        window = max(aggr_samples, 1)
        left = next_aggregation - passed if passed < next_aggregation else 0
        left_bp = left * 10000 // window
        if left_bp == 10000:
            return self.last_nr_accesses.astype(np.uint64)
        return self.nr_accesses.astype(np.uint64) + self.last_nr_accesses.astype(np.uint64) * left_bp // 10000


def _rng_ptr(rng: np.ndarray):
    if not isinstance(rng, np.ndarray) or rng.dtype != np.uint64 or rng.shape != (1,):
        raise ConfigError("rng", rng, "a numpy uint64 array of shape (1,) (the context's RNG state)")
    return ffi.cast("uint64_t *", ffi.from_buffer(rng))


def three_regions(vmas: list[tuple[int, int]], min_sz: int) -> list[tuple[int, int]]:
    """__damon_va_three_regions: the two largest gaps between VMAs cut their span in three."""
    if len(vmas) < 3:
        raise ConfigError("vmas", len(vmas), "at least three VMAs (two gaps)")
    vs = np.ascontiguousarray([v[0] for v in vmas], dtype=np.uint64)
    ve = np.ascontiguousarray([v[1] for v in vmas], dtype=np.uint64)
    out = np.zeros(6, np.uint64)
    rc = lib.acma_three_regions(_core._buf(vs, np.uint64, None, "vstart"), _core._buf(ve, np.uint64, None, "vend"),
                                len(vmas), _core._u64(min_sz, "min_sz"), _core._buf(out, np.uint64, 6, "out"))
    if rc:
        raise ConfigError("vmas", len(vmas), "sorted, non-overlapping VMAs with two gaps")
    return [(int(out[0]), int(out[1])), (int(out[2]), int(out[3])), (int(out[4]), int(out[5]))]
