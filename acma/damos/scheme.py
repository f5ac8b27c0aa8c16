"""DAMOS configuration: access patterns, actions, quotas and goals, filters, watermarks, schemes.

Plain frozen data, validated whole on construction (every object raises ConfigError naming the
field and the allowed range). Names and defaults follow the kernel's sysfs interface
(mm/damon/sysfs-schemes.c and include/linux/damon.h of newest mainline, "[N]" in
shared/spec/kernel-damon.md, 2026) and damo 3.4.3's kdamonds spec where the kernel has no
opinion (units). Applying schemes is acma.damos' engine's job, not this module's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from ..errors import ConfigError
from ..units import finite_in

ULONG_MAX = 2**64 - 1
UINT_MAX = 2**32 - 1
NUMA_NO_NODE = -1
MAX = ULONG_MAX
"""The "max" bound of an access pattern, as damo writes it ('max' is ULONG_MAX)."""

# Units a user may give nr_accesses and age in (damo's names); the kernel takes samples and
# aggregation intervals.
SAMPLES = "samples"
PERCENT = "percent"
AGGR_INTERVALS = "aggr_intervals"
USEC = "usec"
NR_ACCESSES_UNITS = (SAMPLES, PERCENT)
AGE_UNITS = (AGGR_INTERVALS, USEC)

OPS_ALL = ("vaddr", "fvaddr", "paddr")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_in(path: str, v, lo: int, hi: int, what: str = "an integer") -> None:
    if not _is_int(v) or not lo <= v <= hi:
        raise ConfigError(path, v, f"{what} in [{lo}, {hi}]")


def _bool(path: str, v) -> None:
    if not isinstance(v, bool):
        raise ConfigError(path, v, "True or False")


def _validate_items(path: str, items, cls) -> None:
    """A tuple of ``cls`` objects, each validated under ``path[i]``."""
    if not isinstance(items, tuple):
        raise ConfigError(path, items, f"a tuple of {cls.__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, cls):
            raise ConfigError(f"{path}[{i}]", item, f"a {cls.__name__}")
        item.validate(f"{path}[{i}]")


def _has_numpy(v) -> bool:
    return any(isinstance(x, (np.integer, np.floating, np.ndarray)) or (isinstance(x, (tuple, list)) and _has_numpy(x))
               for x in v)


def _plain(v):
    """Python ints/floats and tuples in place of numpy scalars, arrays and lists, so that values hash,
    compare and serialise like the ones users type."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (list, tuple)):
        return tuple(_plain(x) for x in v)
    return v


def _prefixed(err: ConfigError, prefix: str) -> ConfigError:
    """The same error with its field path under ``prefix`` (e.g. ``schemes[2].``)."""
    return ConfigError(prefix + err.field, err.value, err.allowed)


class _Validated:
    """Frozen config objects validate themselves whole when built (and so on every replace)."""

    _path = ""

    def __post_init__(self):
        for f in dataclasses.fields(self):   # numpy numbers and lists become plain ints and tuples
            v = getattr(self, f.name)
            if isinstance(v, (np.integer, np.floating, np.ndarray, list)) or (isinstance(v, tuple) and _has_numpy(v)):
                object.__setattr__(self, f.name, _plain(v))
        self.validate(self._path)

    def validate(self, path: str) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def replace(self, **changes):
        """A copy with ``changes`` applied, validated whole; ``quota__ms=5`` reaches inside."""
        return replace(self, **changes)


def replace(obj, **changes):
    """``dataclasses.replace`` that validates the result and accepts nested ``a__b`` keys."""
    direct, nested = {}, {}
    for key, value in changes.items():
        head, sep, rest = key.partition("__")
        if sep:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[key] = value
    names = {f.name for f in dataclasses.fields(obj)}
    for key in list(direct) + list(nested):
        if key not in names:
            raise ConfigError(f"{type(obj).__name__}.{key}", changes.get(key, key),
                              f"one of the fields {sorted(names)}")
    for head, sub in nested.items():
        base = direct.get(head, getattr(obj, head))
        if not dataclasses.is_dataclass(base):
            raise ConfigError(f"{type(obj).__name__}.{head}", base, "a config object to replace fields in")
        direct[head] = replace(base, **sub)
    return dataclasses.replace(obj, **direct)


# --- access pattern ------------------------------------------------------------------------

@dataclass(frozen=True)
class RawPattern:
    """``struct damos_access_pattern`` in the kernel's units: bytes, samples per aggregation
    interval (the moving sum's scale), aggregation intervals; all bounds inclusive."""

    min_sz_region: int
    max_sz_region: int
    min_nr_accesses: int
    max_nr_accesses: int
    min_age_region: int
    max_age_region: int

    def matches(self, size: int, nr_accesses: int, age: int) -> bool:
        """``__damos_valid_target``'s pattern test."""
        return (self.min_sz_region <= size <= self.max_sz_region
                and self.min_nr_accesses <= nr_accesses <= self.max_nr_accesses
                and self.min_age_region <= age <= self.max_age_region)


@dataclass(frozen=True)
class AccessPattern(_Validated):
    """Which regions a scheme acts on, in the units the user chose.

    Sizes are bytes. ``nr_accesses`` bounds are samples per aggregation interval
    (``nr_accesses_unit="samples"``, the kernel's unit) or a percent of the maximum
    (``"percent"``, damo's); ages are aggregation intervals (``age_unit="aggr_intervals"``, the
    kernel's) or microseconds (``"usec"``, damo's). ``MAX`` (ULONG_MAX) is "no upper bound" in
    every unit. Defaults match every region, as damo's do (a fresh sysfs scheme dir holds 0..0
    ranges instead, which match nothing). min > max is rejected, as the kernel's old debugfs
    interface did (sysfs takes it and the scheme never matches).
    """

    min_sz_region: int = 0
    max_sz_region: int = MAX
    min_nr_accesses: float = 0
    max_nr_accesses: float = MAX
    nr_accesses_unit: str = SAMPLES
    min_age_region: int = 0
    max_age_region: int = MAX
    age_unit: str = AGGR_INTERVALS
    _path = "pattern"

    def validate(self, path: str) -> None:
        p = path + "."
        for name in ("min_sz_region", "max_sz_region"):
            _int_in(p + name, getattr(self, name), 0, ULONG_MAX, "bytes")
        if self.nr_accesses_unit not in NR_ACCESSES_UNITS:
            raise ConfigError(p + "nr_accesses_unit", self.nr_accesses_unit, f"one of {NR_ACCESSES_UNITS}")
        for name in ("min_nr_accesses", "max_nr_accesses"):
            v = getattr(self, name)
            if self.nr_accesses_unit == SAMPLES:
                _int_in(p + name, v, 0, MAX, "samples")
            elif v != MAX and (not isinstance(v, (int, float)) or not finite_in(v, 0, 100)):
                raise ConfigError(p + name, v, "a percent in [0, 100] or MAX")
        if self.age_unit not in AGE_UNITS:
            raise ConfigError(p + "age_unit", self.age_unit, f"one of {AGE_UNITS}")
        for name in ("min_age_region", "max_age_region"):
            _int_in(p + name, getattr(self, name), 0, MAX, self.age_unit)
        for lo, hi in (("min_sz_region", "max_sz_region"), ("min_nr_accesses", "max_nr_accesses"),
                       ("min_age_region", "max_age_region")):
            if getattr(self, lo) > getattr(self, hi):
                raise ConfigError(p + hi, getattr(self, hi), f">= {lo} ({getattr(self, lo)})")

    def resolve(self, attrs) -> RawPattern:
        """The kernel's raw pattern under DAMON ``attrs`` (acma.damon.Attrs).

        Conversions are damo's: percent -> ``int(pct * (aggr/sample) / 100)`` samples, time ->
        ``usec // aggr_us`` intervals; ``MAX`` becomes UINT_MAX, the kernel's field width.
        """
        max_samples = attrs.aggr_us / attrs.sample_us

        def nr(v):
            if v >= MAX:
                return UINT_MAX
            if self.nr_accesses_unit == PERCENT:
                return min(UINT_MAX, int(v * max_samples / 100))
            return min(UINT_MAX, int(v))

        def age(v):
            if v >= MAX:
                return UINT_MAX
            if self.age_unit == USEC:
                return min(UINT_MAX, v // attrs.aggr_us)
            return min(UINT_MAX, v)

        return RawPattern(self.min_sz_region, self.max_sz_region, nr(self.min_nr_accesses),
                          nr(self.max_nr_accesses), age(self.min_age_region), age(self.max_age_region))


# --- actions ---------------------------------------------------------------------------------

HOT, COLD = "hot", "cold"


@dataclass(frozen=True)
class ActionInfo:
    """What the engine needs to know about an action name.

    ``ops``: the operations sets that implement it (others make it a no-op in the kernel, so
    validate_all rejects the pair). ``score``: per ops set, which ``get_scheme_score`` it uses
    for quota prioritization: "hot", "cold", or None (every region scores 99, DAMOS_MAX_SCORE).
    """

    name: str
    ops: tuple[str, ...]
    score: Mapping[str, str | None] = field(default_factory=dict)

    def score_kind(self, ops: str) -> str | None:
        return self.score.get(ops)


_VA = ("vaddr", "fvaddr")
# Newest mainline (kernel-damon.md §3 "Actions" and "Score functions"); migrate on vaddr is 6.17+.
_ACTIONS: dict[str, ActionInfo] = {}


def register_action(name: str, ops: Iterable[str] = OPS_ALL,
                    score: Mapping[str, str | None] | str | None = None) -> ActionInfo:
    """Add an action name (e.g. ACMA's ``alloc``/``free``) that schemes may then use.

    ``score`` is one kind for every ops set or a mapping ops -> kind (kinds: "hot", "cold",
    None). Registering a name twice with the same info is allowed; a different one is an error.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError("action.name", name, "an identifier such as 'alloc'")
    ops = tuple(ops)
    for o in ops:
        if o not in OPS_ALL:
            raise ConfigError(f"action[{name}].ops", o, f"one of {OPS_ALL}")
    if not isinstance(score, Mapping):
        score = {o: score for o in ops}
    for o, kind in score.items():
        if o not in ops or kind not in (HOT, COLD, None):
            raise ConfigError(f"action[{name}].score", dict(score),
                              f"a kind among hot, cold, None for ops among {ops}")
    info = ActionInfo(name, ops, dict(score))
    old = _ACTIONS.get(name)
    if old is not None and old != info:
        raise ConfigError("action.name", name, f"a name not registered already ({sorted(_ACTIONS)})")
    _ACTIONS[name] = info
    return info


for _name, _ops, _score in (
        ("willneed", _VA, None), ("cold", _VA, None),
        ("pageout", OPS_ALL, {"vaddr": COLD, "fvaddr": COLD, "paddr": COLD}),
        ("hugepage", _VA, None), ("nohugepage", _VA, None),
        ("lru_prio", ("paddr",), {"paddr": HOT}), ("lru_deprio", ("paddr",), {"paddr": COLD}),
        ("migrate_hot", OPS_ALL, {"paddr": HOT}), ("migrate_cold", OPS_ALL, {"paddr": COLD}),
        ("stat", OPS_ALL, None)):
    register_action(_name, _ops, _score)

KERNEL_ACTIONS = tuple(_ACTIONS)
"""The sysfs action names of newest mainline, in the kernel's enum order."""


def action_info(name: str) -> ActionInfo:
    """The registered ActionInfo of ``name``; ConfigError listing the known names otherwise."""
    try:
        return _ACTIONS[name]
    except (KeyError, TypeError):
        raise ConfigError("action", name, f"one of {sorted(_ACTIONS)}") from None


def actions() -> tuple[str, ...]:
    """Every action name known now (kernel's plus registered)."""
    return tuple(_ACTIONS)


# --- quotas ----------------------------------------------------------------------------------

GOAL_METRICS = ("user_input", "some_mem_psi_us", "node_mem_used_bp", "node_mem_free_bp",
                "node_memcg_used_bp", "node_memcg_free_bp", "active_mem_bp", "inactive_mem_bp",
                "node_eligible_mem_bp")
NID_METRICS = ("node_mem_used_bp", "node_mem_free_bp", "node_memcg_used_bp", "node_memcg_free_bp",
               "node_eligible_mem_bp")
MEMCG_METRICS = ("node_memcg_used_bp", "node_memcg_free_bp")
GOAL_TUNERS = ("consist", "temporal")


@dataclass(frozen=True)
class QuotaGoal(_Validated):
    """``struct damos_quota_goal`` (sysfs ``quotas/goals/<N>/``): metric, target_value,
    current_value (read only for ``user_input``; the others are measured), ``nid`` for the node
    metrics, ``memcg_path`` for the memcg ones. target_value must be >= 1: the score divides by
    it, and sysfs drops a goal whose target is 0 (damos_sysfs_add_quota_score), as our damo
    spec import does."""

    metric: str = "user_input"
    target_value: int = 1
    current_value: int = 0
    nid: int | None = None
    memcg_path: str | None = None
    _path = "goal"

    def validate(self, path: str) -> None:
        p = path + "."
        if self.metric not in GOAL_METRICS:
            raise ConfigError(p + "metric", self.metric, f"one of {GOAL_METRICS}")
        _int_in(p + "target_value", self.target_value, 1, ULONG_MAX)
        _int_in(p + "current_value", self.current_value, 0, ULONG_MAX)
        if self.metric in NID_METRICS:
            _int_in(p + "nid", self.nid, 0, 1023, f"a NUMA node id (needed by {self.metric})")
        elif self.nid is not None:
            raise ConfigError(p + "nid", self.nid, f"None ({self.metric} has no node)")
        if self.metric in MEMCG_METRICS:
            if not isinstance(self.memcg_path, str) or not self.memcg_path.startswith("/"):
                raise ConfigError(p + "memcg_path", self.memcg_path,
                                  f"a cgroup path such as '/workload' (needed by {self.metric})")
        elif self.memcg_path is not None:
            raise ConfigError(p + "memcg_path", self.memcg_path, f"None ({self.metric} has no memcg)")


@dataclass(frozen=True)
class Quota(_Validated):
    """``struct damos_quota`` (sysfs ``quotas/``), defaults as sysfs creates them (all 0: no
    limit). ``ms`` time and ``sz`` bytes per ``reset_interval_ms``; weights are the relative
    ``sz_permil``/``nr_accesses_permil``/``age_permil`` files; ``goal_tuner`` and
    ``fail_charge_num``/``_denom`` are newest mainline ([N])."""

    ms: int = 0
    sz: int = 0
    reset_interval_ms: int = 0
    weight_sz: int = 0
    weight_nr_accesses: int = 0
    weight_age: int = 0
    goals: tuple[QuotaGoal, ...] = ()
    goal_tuner: str = "consist"
    fail_charge_num: int = 0
    fail_charge_denom: int = 0
    _path = "quota"

    def validate(self, path: str) -> None:
        p = path + "."
        for name in ("ms", "sz", "reset_interval_ms"):
            _int_in(p + name, getattr(self, name), 0, ULONG_MAX)
        for name in ("weight_sz", "weight_nr_accesses", "weight_age", "fail_charge_num", "fail_charge_denom"):
            _int_in(p + name, getattr(self, name), 0, UINT_MAX)
        if self.goal_tuner not in GOAL_TUNERS:
            raise ConfigError(p + "goal_tuner", self.goal_tuner, f"one of {GOAL_TUNERS}")
        _validate_items(p + "goals", self.goals, QuotaGoal)

    @property
    def is_set(self) -> bool:
        """Whether any limit is active (the kernel skips ``damos_adjust_quota`` otherwise)."""
        return bool(self.ms or self.sz or self.goals)


# --- filters ---------------------------------------------------------------------------------

CORE_FILTER_TYPES = ("addr", "target")
OPS_FILTER_TYPES = ("anon", "active", "memcg", "young", "hugepage_size", "unmapped")
FILTER_TYPES = OPS_FILTER_TYPES + CORE_FILTER_TYPES
# the argument each type needs; the others must be None
_FILTER_ARG = {"memcg": "memcg_path", "addr": "addr_range", "target": "target_idx",
               "hugepage_size": "hugepage_size"}


@dataclass(frozen=True)
class Filter(_Validated):
    """``struct damos_filter`` (sysfs ``filters/<N>/``): a region or page "hits" when its
    ``type`` predicate equals ``matching``; the first hit decides (``allow`` or reject).

    Arguments by type: ``memcg_path`` (memcg), ``addr_range`` = (start, end) bytes, start <= end, end
    exclusive (addr), ``target_idx`` (target), ``hugepage_size`` = (min, max) bytes inclusive.
    ``addr`` and ``target`` are core filters (per region); the rest run in the ops layer (per
    folio).
    """

    type: str
    matching: bool
    allow: bool = False
    memcg_path: str | None = None
    addr_range: tuple[int, int] | None = None
    target_idx: int | None = None
    hugepage_size: tuple[int, int] | None = None
    _path = "filter"

    @property
    def core(self) -> bool:
        """Handled by DAMON's core (per region) rather than the ops layer (per folio)."""
        return self.type in CORE_FILTER_TYPES

    def validate(self, path: str) -> None:
        p = path + "."
        if self.type not in FILTER_TYPES:
            raise ConfigError(p + "type", self.type, f"one of {FILTER_TYPES}")
        _bool(p + "matching", self.matching)
        _bool(p + "allow", self.allow)
        needed = _FILTER_ARG.get(self.type)
        for name in set(_FILTER_ARG.values()) - {needed}:
            if getattr(self, name) is not None:
                raise ConfigError(p + name, getattr(self, name), f"None for a {self.type} filter")
        if self.type == "memcg" and (not isinstance(self.memcg_path, str) or not self.memcg_path.startswith("/")):
            raise ConfigError(p + "memcg_path", self.memcg_path, "a cgroup path such as '/workload'")
        if self.type == "target":
            _int_in(p + "target_idx", self.target_idx, 0, UINT_MAX, "a DAMON target index")
        if self.type in ("addr", "hugepage_size"):   # damon_sysfs_add_scheme_filters' checks
            name = _FILTER_ARG[self.type]
            v = getattr(self, name)
            if not (isinstance(v, tuple) and len(v) == 2 and all(_is_int(x) and 0 <= x <= ULONG_MAX for x in v)
                    and v[0] <= v[1]):
                raise ConfigError(p + name, v, "a (low, high) pair of byte values in [0, 2**64), low <= high")


# --- watermarks ------------------------------------------------------------------------------

WMARK_METRICS = ("none", "free_mem_rate")


@dataclass(frozen=True)
class Watermarks(_Validated):
    """``struct damos_watermarks`` (sysfs ``watermarks/``): per-mille thresholds of
    ``free_mem_rate`` checked every ``interval_us``; ``none`` keeps the scheme always active.
    high >= mid >= low is required, the rule of the kernel's debugfs interface (sysfs does not
    check it; inverted marks only make the activation rule meaningless)."""

    metric: str = "none"
    interval_us: int = 0
    high: int = 0
    mid: int = 0
    low: int = 0
    _path = "wmarks"

    def validate(self, path: str) -> None:
        p = path + "."
        if self.metric not in WMARK_METRICS:
            raise ConfigError(p + "metric", self.metric, f"one of {WMARK_METRICS}")
        for name in ("interval_us", "high", "mid", "low"):
            _int_in(p + name, getattr(self, name), 0, ULONG_MAX)
        if self.mid > self.high:
            raise ConfigError(p + "mid", self.mid, f"<= high ({self.high})")
        if self.low > self.mid:
            raise ConfigError(p + "low", self.low, f"<= mid ({self.mid})")


# --- scheme ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scheme(_Validated):
    """``struct damos`` as sysfs builds it (``schemes/<N>/``), newest mainline.

    ``apply_interval_us`` 0 means every aggregation interval. ``target_nid`` is the migrate
    actions' destination (``NUMA_NO_NODE`` = none); ``migrate_dests`` is the weighted
    destination list ``((node, weight), ...)`` (``dests/``), which wins when non-empty.
    ``max_nr_snapshots`` 0 means no limit ([N]).
    """

    pattern: AccessPattern = field(default_factory=AccessPattern)
    action: str = "stat"
    apply_interval_us: int = 0
    quota: Quota = field(default_factory=Quota)
    wmarks: Watermarks = field(default_factory=Watermarks)
    target_nid: int = NUMA_NO_NODE
    migrate_dests: tuple[tuple[int, int], ...] = ()
    filters: tuple[Filter, ...] = ()
    max_nr_snapshots: int = 0
    _path = "scheme"

    def validate(self, path: str) -> None:
        p = path + "."
        for name, cls in (("pattern", AccessPattern), ("quota", Quota), ("wmarks", Watermarks)):
            v = getattr(self, name)
            if not isinstance(v, cls):
                raise ConfigError(p + name, v, f"a {cls.__name__}")
            v.validate(p + name)
        if not isinstance(self.action, str) or self.action not in _ACTIONS:
            raise ConfigError(p + "action", self.action, f"one of {sorted(_ACTIONS)}")
        _int_in(p + "apply_interval_us", self.apply_interval_us, 0, ULONG_MAX, "microseconds")
        _int_in(p + "target_nid", self.target_nid, NUMA_NO_NODE, 1023, "a node id or NUMA_NO_NODE (-1)")
        if not isinstance(self.migrate_dests, tuple):
            raise ConfigError(p + "migrate_dests", self.migrate_dests, "a tuple of (node, weight) pairs")
        for i, d in enumerate(self.migrate_dests):
            if not (isinstance(d, tuple) and len(d) == 2):
                raise ConfigError(f"{p}migrate_dests[{i}]", d, "a (node, weight) pair")
            _int_in(f"{p}migrate_dests[{i}].node", d[0], 0, 1023, "a node id")
            _int_in(f"{p}migrate_dests[{i}].weight", d[1], 0, UINT_MAX)
        _validate_items(p + "filters", self.filters, Filter)
        _int_in(p + "max_nr_snapshots", self.max_nr_snapshots, 0, ULONG_MAX)

    @property
    def core_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.core)

    @property
    def ops_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if not f.core)

    def raw_pattern(self, attrs) -> RawPattern:
        return self.pattern.resolve(attrs)


def validate_all(schemes: Iterable[Scheme], attrs=None, ops: str | None = None,
                 nr_targets: int | None = None, nr_nodes: int | None = None) -> tuple[Scheme, ...]:
    """Check a whole parameter set before anything is committed; return it as a tuple.

    Beyond each scheme's own checks: ``attrs`` valid (acma.damon.Attrs) and every pattern
    resolvable under it; with ``ops``, every action implemented by that ops set; with
    ``nr_targets``, every target filter's index exists; with ``nr_nodes``, every node id exists.
    Errors name the field as ``schemes[i].<field>``.
    """
    schemes = tuple(schemes)
    if attrs is not None:
        attrs.validate()
    if ops is not None and ops not in OPS_ALL:
        raise ConfigError("ops", ops, f"one of {OPS_ALL}")
    for i, s in enumerate(schemes):
        p = f"schemes[{i}]"
        if not isinstance(s, Scheme):
            raise ConfigError(p, s, "a Scheme")
        try:
            s.validate(p)
        except ConfigError as e:
            if e.field.startswith(p):
                raise
            raise _prefixed(e, p + ".") from None
        if ops is not None and ops not in action_info(s.action).ops:
            raise ConfigError(p + ".action", s.action,
                              f"an action the {ops} operations set implements "
                              f"({[a for a in actions() if ops in action_info(a).ops]})")
        for j, f in enumerate(s.filters):
            if nr_targets is not None and f.type == "target" and f.target_idx >= nr_targets:
                raise ConfigError(f"{p}.filters[{j}].target_idx", f.target_idx, f"in [0, {nr_targets - 1}]")
        if nr_nodes is not None:
            nodes = [("target_nid", s.target_nid)] + [(f"migrate_dests[{k}].node", d[0])
                                                      for k, d in enumerate(s.migrate_dests)]
            nodes += [(f"quota.goals[{k}].nid", g.nid) for k, g in enumerate(s.quota.goals) if g.nid is not None]
            for name, nid in nodes:
                if nid >= nr_nodes:
                    raise ConfigError(f"{p}.{name}", nid, f"a node id in [0, {nr_nodes - 1}]")
        if attrs is not None:
            s.pattern.resolve(attrs)
    return schemes
