"""The regions' hot and cold scores for quota prioritisation (mm/damon/ops-common.c,
``damon_hot_score`` / ``damon_cold_score``), all in the kernel's integer arithmetic."""

from __future__ import annotations

DAMOS_MAX_SCORE = 99
DAMON_MAX_SUBSCORE = 100
DAMON_MAX_AGE_IN_LOG = 32


def _c_div(a: int, b: int) -> int:
    """C's integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def hot_score(nr_accesses: int, age: int, max_nr_accesses: int, aggr_us: int,
              weight_nr_accesses: int, weight_age: int) -> int:
    """0..99, higher for busier regions; among idle ones, for younger ones."""
    freq = nr_accesses * DAMON_MAX_SUBSCORE // max(1, max_nr_accesses)
    age_s = age * aggr_us // 1_000_000
    log = 0
    while log < DAMON_MAX_AGE_IN_LOG and age_s:
        log += 1
        age_s >>= 1
    if freq == 0:            # idle for a long time: the coldest
        log = -log
    age_sub = _c_div(_c_div((log + DAMON_MAX_AGE_IN_LOG) * DAMON_MAX_SUBSCORE, DAMON_MAX_AGE_IN_LOG), 2)
    hot = weight_nr_accesses * freq + weight_age * age_sub
    if weight_nr_accesses + weight_age:
        hot //= weight_nr_accesses + weight_age
    return hot * DAMOS_MAX_SCORE // DAMON_MAX_SUBSCORE


def cold_score(*args) -> int:
    """``DAMOS_MAX_SCORE - hot_score``."""
    return DAMOS_MAX_SCORE - hot_score(*args)


def score(kind: str | None, *args) -> int:
    """The score of an action's kind ("hot", "cold"; None: every region scores 99)."""
    if kind == "hot":
        return hot_score(*args)
    if kind == "cold":
        return cold_score(*args)
    return DAMOS_MAX_SCORE


def score_array(kind: str | None, nr, age, max_nr_accesses: int, aggr_us: int,
                weight_nr_accesses: int, weight_age: int):
    """:func:`score` of every region at once (numpy int64 arrays in, the same integers out)."""
    import numpy as np

    nr, age = np.asarray(nr, np.int64), np.asarray(age, np.int64)
    if kind not in ("hot", "cold"):
        return np.full(nr.shape, DAMOS_MAX_SCORE, np.int64)
    freq = nr * DAMON_MAX_SUBSCORE // max(1, max_nr_accesses)
    age_s = age * aggr_us // 1_000_000
    log = np.zeros(age_s.shape, np.int64)
    rest = age_s.copy()
    while rest.any() and (log < DAMON_MAX_AGE_IN_LOG).any():   # bit length, capped
        step = (rest > 0) & (log < DAMON_MAX_AGE_IN_LOG)
        log += step
        rest >>= 1
    log = np.where(freq == 0, -log, log)
    age_sub = (log + DAMON_MAX_AGE_IN_LOG) * DAMON_MAX_SUBSCORE // DAMON_MAX_AGE_IN_LOG // 2
    hot = weight_nr_accesses * freq + weight_age * age_sub
    if weight_nr_accesses + weight_age:
        hot //= weight_nr_accesses + weight_age
    hot = hot * DAMOS_MAX_SCORE // DAMON_MAX_SUBSCORE
    return hot if kind == "hot" else DAMOS_MAX_SCORE - hot
