"""damo's parameter specs: the kdamonds spec (JSON/YAML), bare scheme lists, legacy .damos lines.

The kdamonds spec is what ``damo start``/``damo args damon`` take (shared/spec/ecosystem.md
§1.5): ``{"kdamonds": [{"contexts": [{"ops", "targets", "intervals", "nr_regions",
"schemes"}]}]}``. We export every key damo 3.4.3 needs, with unit strings ("5 ms", "128 MiB",
"50 %") written exactly, and import damo's own output as well as hand-written specs (bare
numbers mean the field's unit, as in damo). A bare scheme list is the ``--schemes`` file
(damon-tests/perf/schemes/*.json); a legacy .damos file has one scheme per line
(``<min> <max> size, <min> <max> freq %, <min> <max> age, <action>`` and the optional quota and
watermark fields of damo's v1..v4 line formats).

Keys damo writes for information only (``effective_sz_bytes``, ``state``, ``pid`` of a
kdamond, ``obsolete`` of a target, scheme ``stats`` other than ``max_nr_snapshots``) are
accepted and ignored; features acma does not model (probes, sample control, pause, goal
``complement``) are accepted only at their defaults. Any other key is an error naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..damon.context import OPS, Attrs, Context, IntervalsGoal, Target
from ..errors import ConfigError, FormatError
from ..io.atomic import write_text_atomic
from ..units import PAGE_SIZE
from . import textunits as tu
from .scheme import (AGGR_INTERVALS, MAX, MEMCG_METRICS, NID_METRICS, NUMA_NO_NODE, PERCENT, SAMPLES, ULONG_MAX,
                     USEC, AccessPattern, Filter, Quota, QuotaGoal, Scheme, Watermarks, validate_all)

DAMO_DEFAULT_ATTRS = Attrs(sample_us=5_000, aggr_us=100_000, ops_update_us=1_000_000,
                           min_nr_regions=10, max_nr_regions=1000)
"""damo's context defaults (5 ms, 100 ms, 1 s, 10..1000 regions), used for missing keys."""
DAMO_DEFAULT_QUOTA = Quota(reset_interval_ms=ULONG_MAX)
"""damo's quota when a scheme has no ``quotas`` key (reset interval 'max')."""


# --- spec objects ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TargetSpec:
    """A monitoring target: a pid (vaddr/fvaddr) and fixed regions as (start, end) pairs."""

    pid: int | None = None
    regions: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ContextSpec:
    """One DAMON context: ops, attrs (intervals, intervals goal, nr_regions), targets, schemes.

    Validated whole on construction with acma.damos.validate_all (actions the ops implement,
    target filter indexes that exist, patterns resolvable under attrs).
    """

    ops: str = "paddr"
    targets: tuple[TargetSpec, ...] = ()
    attrs: Attrs = DAMO_DEFAULT_ATTRS
    schemes: tuple[Scheme, ...] = ()
    addr_unit: int = 1

    def __post_init__(self):
        for name in ("targets", "schemes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.ops not in OPS:
            raise ConfigError("context.ops", self.ops, f"one of {OPS}")
        if not isinstance(self.attrs, Attrs):
            raise ConfigError("context.attrs", self.attrs, "an acma.damon.Attrs")
        if isinstance(self.addr_unit, bool) or not isinstance(self.addr_unit, int) or self.addr_unit < 1 \
                or (self.addr_unit != 1 and self.ops != "paddr"):
            raise ConfigError("context.addr_unit", self.addr_unit, "1 (or a positive integer for paddr)")
        for i, t in enumerate(self.targets):
            if not isinstance(t, TargetSpec):
                raise ConfigError(f"context.targets[{i}]", t, "a TargetSpec")
        validate_all(self.schemes, self.attrs, ops=self.ops, nr_targets=len(self.targets) or None)


@dataclass(frozen=True)
class KdamondSpec:
    contexts: tuple[ContextSpec, ...] = ()
    refresh_ms: int = 0

    def __post_init__(self):
        object.__setattr__(self, "contexts", tuple(self.contexts))


@dataclass(frozen=True)
class KdamondsSpec:
    """The whole damo spec: a list of kdamonds, each with its contexts."""

    kdamonds: tuple[KdamondSpec, ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "kdamonds", tuple(self.kdamonds))

    @classmethod
    def single(cls, ops: str, schemes=(), attrs: Attrs = DAMO_DEFAULT_ATTRS, targets=()) -> "KdamondsSpec":
        """One kdamond with one context: the usual shape."""
        return cls((KdamondSpec((ContextSpec(ops, tuple(targets), attrs, tuple(schemes)),)),))

    @property
    def contexts(self) -> tuple[ContextSpec, ...]:
        return tuple(c for k in self.kdamonds for c in k.contexts)


# --- running them on a guest -------------------------------------------------------------------

def context_for(c: ContextSpec, guest, seed: int | None = None, record: bool = True) -> Context:
    """A DAMON Context on ``guest`` as the spec describes it: paddr targets over their regions
    (or the whole guest), vaddr/fvaddr targets by pid among ``guest.processes``. The schemes
    are checked against the guest's nodes here; applying them is the engine's job
    (acma.damos.engine.Engine(ctx, c.schemes))."""
    validate_all(c.schemes, c.attrs, ops=c.ops, nr_targets=len(c.targets), nr_nodes=guest.nr_nodes)
    by_pid = {p.pid: p for p in guest.processes}
    size = guest.nr_pages * PAGE_SIZE
    targets = []
    for i, t in enumerate(c.targets):
        if c.ops == "paddr":
            ranges = list(t.regions) or [(0, size)]
            if any(e > size for _, e in ranges):
                raise ConfigError(f"targets[{i}].regions", t.regions, f"ranges within the guest's memory [0, {size})")
            targets.append(Target(ranges=ranges))
            continue
        if t.pid not in by_pid:
            raise ConfigError(f"targets[{i}].pid", t.pid, f"the pid of a guest process ({sorted(by_pid)})")
        targets.append(Target(process=by_pid[t.pid], ranges=list(t.regions) if c.ops == "fvaddr" else None))
    return Context(guest, c.ops, targets, c.attrs, seed=seed, record=record)


def spec_for(ctx: Context, schemes=()) -> KdamondsSpec:
    """What a running Context (and the schemes applied to it) looks like as a damo spec."""
    targets = tuple(TargetSpec(t.process.pid if t.process is not None else None,
                               tuple(t.ranges) if t.ranges and ctx.ops != "vaddr" else ()) for t in ctx.targets)
    return KdamondsSpec.single(ctx.ops, tuple(schemes), ctx.attrs, targets)


# --- export ----------------------------------------------------------------------------------

def _pattern_kv(p: AccessPattern) -> dict:
    if p.nr_accesses_unit == PERCENT:
        nr = [tu.format_ratio(v, 100) for v in (p.min_nr_accesses, p.max_nr_accesses)]
    else:
        nr = [f"{'max' if v == MAX else v} samples" for v in (p.min_nr_accesses, p.max_nr_accesses)]
    if p.age_unit == USEC:
        age = [tu.format_time(v) for v in (p.min_age_region, p.max_age_region)]
    else:
        age = [f"{'max' if v == MAX else v} aggr_intervals" for v in (p.min_age_region, p.max_age_region)]
    return {"sz_bytes": {"min": tu.format_size(p.min_sz_region), "max": tu.format_size(p.max_sz_region)},
            "nr_accesses": {"min": nr[0], "max": nr[1]},
            "age": {"min": age[0], "max": age[1]}}


def _goal_target_str(g: QuotaGoal) -> str:
    """The target in damo's unit for the metric: µs for PSI, a percent for the *_bp metrics
    damo parses as bp, a plain number otherwise (damo reads node_eligible_mem_bp that way)."""
    if g.metric == "some_mem_psi_us":
        return tu.format_time(g.target_value)
    if g.metric.endswith("_bp") and g.metric != "node_eligible_mem_bp":
        return tu.format_ratio(g.target_value, 10000)
    return str(g.target_value)


def _quota_kv(q: Quota) -> dict:
    goals = []
    for g in q.goals:
        goals.append({"metric": g.metric, "target_value": _goal_target_str(g),
                      "current_value": str(g.current_value), "nid": g.nid, "memcg_path": g.memcg_path})
    return {"time_ms": tu.format_time(q.ms, "ms"), "sz_bytes": tu.format_size(q.sz),
            "reset_interval_ms": tu.format_time(q.reset_interval_ms, "ms"),
            "weights": {"sz_permil": tu.format_ratio(q.weight_sz, 1000),
                        "nr_accesses_permil": tu.format_ratio(q.weight_nr_accesses, 1000),
                        "age_permil": tu.format_ratio(q.weight_age, 1000)},
            "goals": goals, "goal_tuner": q.goal_tuner,
            "fail_charge_num": str(q.fail_charge_num), "fail_charge_denom": str(q.fail_charge_denom)}


def _filter_kv(f: Filter) -> dict:
    kv = {"filter_type": f.type, "matching": f.matching, "allow": f.allow}
    if f.type == "memcg":
        kv["memcg_path"] = f.memcg_path
    elif f.type == "addr":
        kv["address_range"] = {"start": f.addr_range[0], "end": f.addr_range[1]}
    elif f.type == "target":
        kv["damon_target_idx"] = f.target_idx
    elif f.type == "hugepage_size":
        kv["hugepage_size"] = [tu.format_size(v) for v in f.hugepage_size]
    return kv


def scheme_to_kvpairs(s: Scheme) -> dict:
    """One scheme as a damo spec object (all keys, unit strings)."""
    w = s.wmarks
    kv = {"action": s.action,
          "access_pattern": _pattern_kv(s.pattern),
          "apply_interval_us": tu.format_time(s.apply_interval_us),
          "target_nid": s.target_nid,
          "dests": [{"id": n, "weight": wt} for n, wt in s.migrate_dests],
          "quotas": _quota_kv(s.quota),
          "watermarks": {"metric": w.metric, "interval_us": tu.format_time(w.interval_us),
                         "high_permil": tu.format_ratio(w.high, 1000), "mid_permil": tu.format_ratio(w.mid, 1000),
                         "low_permil": tu.format_ratio(w.low, 1000)},
          "filters": [_filter_kv(f) for f in s.filters]}
    if s.max_nr_snapshots:   # damo 3.4.3 keeps it under stats and does not read it back
        kv["stats"] = {"max_nr_snapshots": str(s.max_nr_snapshots)}
    return kv


def _attrs_kv(a: Attrs) -> tuple[dict, dict]:
    g = a.intervals_goal
    intervals = {"sample_us": tu.format_time(a.sample_us), "aggr_us": tu.format_time(a.aggr_us),
                 "ops_update_us": tu.format_time(a.ops_update_us),
                 "intervals_goal": {"access_bp": tu.format_ratio(g.access_bp, 10000), "aggrs": str(g.aggrs),
                                    "min_sample_us": tu.format_time(g.min_sample_us),
                                    "max_sample_us": tu.format_time(g.max_sample_us)}}
    return intervals, {"min": str(a.min_nr_regions), "max": str(a.max_nr_regions)}


def context_to_kvpairs(c: ContextSpec) -> dict:
    intervals, nr_regions = _attrs_kv(c.attrs)
    return {"ops": c.ops, "addr_unit": str(c.addr_unit),
            "targets": [{"pid": t.pid, "regions": [{"start": s, "end": e} for s, e in t.regions]}
                        for t in c.targets],
            "intervals": intervals, "nr_regions": nr_regions,
            "schemes": [scheme_to_kvpairs(s) for s in c.schemes]}


def to_kvpairs(spec: KdamondsSpec) -> dict:
    """The whole spec as plain dicts and lists, ready for json/yaml."""
    return {"kdamonds": [{"refresh_ms": k.refresh_ms, "contexts": [context_to_kvpairs(c) for c in k.contexts]}
                         for k in spec.kdamonds]}


def _dump(obj, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(obj, indent=4) + "\n"
    if fmt == "yaml":
        return _yaml().safe_dump(obj, sort_keys=False, default_flow_style=False)
    raise ConfigError("format", fmt, "'json' or 'yaml'")


def dumps(spec: KdamondsSpec, fmt: str = "json") -> str:
    """The kdamonds spec as JSON or YAML text."""
    return _dump(to_kvpairs(spec), fmt)


def dumps_schemes(schemes, fmt: str = "json") -> str:
    """A bare scheme list (damo's ``--schemes`` file)."""
    return _dump([scheme_to_kvpairs(s) for s in schemes], fmt)


# --- import ----------------------------------------------------------------------------------

def _obj(kv, path: str, known: set[str]) -> dict:
    if not isinstance(kv, dict):
        raise ConfigError(path, kv, "an object")
    for key in kv:
        if key not in known:
            raise ConfigError(f"{path}.{key}", kv[key], f"a known key ({sorted(known)})")
    return kv


def _list(v, path: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(path, v, "a list")
    return v


def _bool(v, path: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("y", "yes", "true", "n", "no", "false"):
        return v.strip().lower() in ("y", "yes", "true")
    raise ConfigError(path, v, "true or false")


def _build(cls, path: str, **kwargs):
    """Construct a config object; its own ConfigError is re-raised under the spec path."""
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{path} ({e.field})", e.value, e.allowed) from None


def _pattern_from(kv, path: str) -> AccessPattern:
    kv = _obj(kv, path, {"sz_bytes", "nr_accesses", "age"})
    out = {}
    sz = _obj(kv.get("sz_bytes", {}), f"{path}.sz_bytes", {"min", "max"})
    out["min_sz_region"] = tu.parse_size(sz.get("min", "min"), f"{path}.sz_bytes.min")
    out["max_sz_region"] = tu.parse_size(sz.get("max", "max"), f"{path}.sz_bytes.max")
    for key, unit_key, raw_unit, other_unit, names in (
            ("nr_accesses", "nr_accesses_unit", SAMPLES, PERCENT, ("min_nr_accesses", "max_nr_accesses")),
            ("age", "age_unit", AGGR_INTERVALS, USEC, ("min_age_region", "max_age_region"))):
        d = _obj(kv.get(key, {}), f"{path}.{key}", {"min", "max"})
        vals = [d.get("min", "min"), d.get("max", "max")]
        raw = [tu.parse_with_unit(v, f"{path}.{key}.{b}", (raw_unit,)) for v, b in zip(vals, ("min", "max"))]
        if all(raw):
            out[unit_key] = raw_unit
            out[names[0]], out[names[1]] = raw[0][0], raw[1][0]
        elif any(raw):
            raise ConfigError(f"{path}.{key}", d, f"min and max in the same unit ({raw_unit} or {other_unit})")
        else:
            out[unit_key] = other_unit
            for v, b, name in zip(vals, ("min", "max"), names):
                p = f"{path}.{key}.{b}"
                out[name] = tu.parse_ratio(v, p, 100, whole=False) if key == "nr_accesses" else tu.parse_time(v, p)
    return _build(AccessPattern, path, **out)


_GOAL_KEYS = {"metric", "target_value", "current_value", "nid", "memcg_path", "complement",
              "target_value_bp", "current_value_bp"}


def _goal_from(kv, path: str) -> QuotaGoal | None:
    """A goal, or None for a zero target (dropped, as sysfs drops it)."""
    kv = _obj(kv, path, _GOAL_KEYS)
    if "target_value_bp" in kv:   # damo's old naming: a user_input goal
        tv = tu.parse_count(kv["target_value_bp"], f"{path}.target_value_bp")
        return _build(QuotaGoal, path, metric="user_input", target_value=tv,
                      current_value=tu.parse_count(kv.get("current_value_bp", 0), f"{path}.current_value_bp")) \
            if tv else None
    if kv.get("complement") not in (None, False, "false", "n", "no"):
        raise ConfigError(f"{path}.complement", kv["complement"], "false (acma does not model complement goals)")
    metric = kv.get("metric", "user_input")
    target = kv.get("target_value", 0)
    p = f"{path}.target_value"
    if metric == "some_mem_psi_us":
        tv = tu.parse_time(target, p)
    elif isinstance(metric, str) and metric.endswith("_bp"):
        tv = tu.parse_ratio(target, p, 10000)
    else:
        tv = tu.parse_count(target, p)
    nid = kv.get("nid")
    memcg = kv.get("memcg_path")
    # checked whole even with a zero target, which sysfs then skips (damos_sysfs_add_quota_score)
    goal = _build(QuotaGoal, path, metric=metric, target_value=tv or 1,
                  current_value=tu.parse_count(kv.get("current_value", 0), f"{path}.current_value"),
                  nid=tu.parse_count(nid, f"{path}.nid") if nid is not None and metric in NID_METRICS else None,
                  memcg_path=memcg if memcg not in (None, "") and metric in MEMCG_METRICS else None)
    return goal if tv else None


def _quota_from(kv, path: str) -> Quota:
    if kv is None:
        return DAMO_DEFAULT_QUOTA
    kv = _obj(kv, path, {"time_ms", "sz_bytes", "reset_interval_ms", "weights", "goals", "goal_tuner",
                         "effective_sz_bytes", "fail_charge_num", "fail_charge_denom"})
    w = _obj(kv.get("weights", {}), f"{path}.weights", {"sz_permil", "nr_accesses_permil", "age_permil"})
    return _build(
        Quota, path,
        ms=tu.parse_time(kv.get("time_ms", 0), f"{path}.time_ms", "ms"),
        sz=tu.parse_size(kv.get("sz_bytes", 0), f"{path}.sz_bytes"),
        reset_interval_ms=tu.parse_time(kv.get("reset_interval_ms", "max"), f"{path}.reset_interval_ms", "ms"),
        weight_sz=tu.parse_ratio(w.get("sz_permil", 0), f"{path}.weights.sz_permil", 1000),
        weight_nr_accesses=tu.parse_ratio(w.get("nr_accesses_permil", 0), f"{path}.weights.nr_accesses_permil", 1000),
        weight_age=tu.parse_ratio(w.get("age_permil", 0), f"{path}.weights.age_permil", 1000),
        goals=tuple(g for g in (_goal_from(g, f"{path}.goals[{i}]")
                                for i, g in enumerate(_list(kv.get("goals"), f"{path}.goals"))) if g is not None),
        goal_tuner=kv.get("goal_tuner") or "consist",
        fail_charge_num=tu.parse_count(kv.get("fail_charge_num", 0), f"{path}.fail_charge_num"),
        fail_charge_denom=tu.parse_count(kv.get("fail_charge_denom", 0), f"{path}.fail_charge_denom"))


def _wmarks_from(kv, path: str) -> Watermarks:
    if kv is None:
        return Watermarks()
    kv = _obj(kv, path, {"metric", "interval_us", "high_permil", "mid_permil", "low_permil"})
    return _build(Watermarks, path, metric=kv.get("metric", "none"),
                  interval_us=tu.parse_time(kv.get("interval_us", 0), f"{path}.interval_us"),
                  **{k: tu.parse_ratio(kv.get(f"{k}_permil", 0), f"{path}.{k}_permil", 1000)
                     for k in ("high", "mid", "low")})


def _filter_from(kv, path: str) -> Filter:
    kv = _obj(kv, path, {"filter_type", "matching", "allow", "filter_pass", "memcg_path", "address_range",
                         "damon_target_idx", "hugepage_size", "probe_hits_wsum_range"})
    if kv.get("probe_hits_wsum_range") is not None:
        raise ConfigError(f"{path}.probe_hits_wsum_range", kv["probe_hits_wsum_range"],
                          "null (acma does not model probes)")
    ftype = kv.get("filter_type")
    args = {}
    if ftype == "memcg":
        args["memcg_path"] = kv.get("memcg_path")
    elif ftype == "addr":
        ar = _obj(kv.get("address_range"), f"{path}.address_range", {"start", "end"})
        args["addr_range"] = (tu.parse_size(ar.get("start"), f"{path}.address_range.start"),
                              tu.parse_size(ar.get("end"), f"{path}.address_range.end"))
    elif ftype == "target":
        args["target_idx"] = tu.parse_count(kv.get("damon_target_idx"), f"{path}.damon_target_idx")
    elif ftype == "hugepage_size":
        hs = kv.get("hugepage_size")
        if not isinstance(hs, list) or len(hs) != 2:
            raise ConfigError(f"{path}.hugepage_size", hs, "a [min, max] pair of sizes")
        args["hugepage_size"] = tuple(tu.parse_size(v, f"{path}.hugepage_size[{i}]") for i, v in enumerate(hs))
    allow = kv.get("allow", kv.get("filter_pass", False))
    return _build(Filter, path, type=ftype, matching=_bool(kv.get("matching"), f"{path}.matching"),
                  allow=_bool(allow, f"{path}.allow"), **args)


def scheme_from_kvpairs(kv, path: str = "scheme") -> Scheme:
    """One damo spec scheme object as a Scheme (missing keys take damo's defaults)."""
    kv = _obj(kv, path, {"action", "access_pattern", "target_nid", "apply_interval_us", "dests", "quotas",
                         "watermarks", "filters", "stats", "tried_regions", "tried_bytes"})
    stats = kv.get("stats") or {}
    if not isinstance(stats, dict):
        raise ConfigError(f"{path}.stats", stats, "an object")
    nid = kv.get("target_nid")
    dests = []
    for i, d in enumerate(_list(kv.get("dests"), f"{path}.dests")):
        d = _obj(d, f"{path}.dests[{i}]", {"id", "weight"})
        dests.append((tu.parse_count(d.get("id"), f"{path}.dests[{i}].id"),
                      tu.parse_count(d.get("weight", 0), f"{path}.dests[{i}].weight")))
    if nid is not None and not (isinstance(nid, int) and nid == NUMA_NO_NODE):
        nid = tu.parse_count(nid, f"{path}.target_nid") if nid != "-1" else NUMA_NO_NODE
    return _build(
        Scheme, path,
        pattern=_pattern_from(kv.get("access_pattern", {}), f"{path}.access_pattern"),
        action=kv.get("action", "stat"),
        apply_interval_us=tu.parse_time(kv.get("apply_interval_us", 0), f"{path}.apply_interval_us"),
        quota=_quota_from(kv.get("quotas"), f"{path}.quotas"),
        wmarks=_wmarks_from(kv.get("watermarks"), f"{path}.watermarks"),
        target_nid=NUMA_NO_NODE if nid is None else nid,
        migrate_dests=tuple(dests),
        filters=tuple(_filter_from(f, f"{path}.filters[{i}]")
                      for i, f in enumerate(_list(kv.get("filters"), f"{path}.filters"))),
        max_nr_snapshots=tu.parse_count(stats.get("max_nr_snapshots", 0), f"{path}.stats.max_nr_snapshots"))


def _attrs_from(intervals, nr_regions, path: str) -> Attrs:
    d = DAMO_DEFAULT_ATTRS
    iv = _obj(intervals if intervals is not None else {}, f"{path}.intervals",
              {"sample_us", "aggr_us", "ops_update_us", "intervals_goal"})
    nr = _obj(nr_regions if nr_regions is not None else {}, f"{path}.nr_regions", {"min", "max"})
    gp = f"{path}.intervals.intervals_goal"
    g = _obj(iv.get("intervals_goal") or {}, gp, {"access_bp", "aggrs", "min_sample_us", "max_sample_us"})
    goal = IntervalsGoal(access_bp=tu.parse_ratio(g.get("access_bp", 0), f"{gp}.access_bp", 10000),
                         aggrs=tu.parse_count(g.get("aggrs", 0), f"{gp}.aggrs"),
                         min_sample_us=tu.parse_time(g.get("min_sample_us", 0), f"{gp}.min_sample_us"),
                         max_sample_us=tu.parse_time(g.get("max_sample_us", 0), f"{gp}.max_sample_us"))
    attrs = Attrs(sample_us=tu.parse_time(iv.get("sample_us", d.sample_us), f"{path}.intervals.sample_us"),
                  aggr_us=tu.parse_time(iv.get("aggr_us", d.aggr_us), f"{path}.intervals.aggr_us"),
                  ops_update_us=tu.parse_time(iv.get("ops_update_us", d.ops_update_us),
                                              f"{path}.intervals.ops_update_us"),
                  min_nr_regions=tu.parse_count(nr.get("min", d.min_nr_regions), f"{path}.nr_regions.min"),
                  max_nr_regions=tu.parse_count(nr.get("max", d.max_nr_regions), f"{path}.nr_regions.max"),
                  intervals_goal=goal)
    try:
        attrs.validate()
    except ConfigError as e:
        raise ConfigError(f"{path} ({e.field})", e.value, e.allowed) from None
    return attrs


_DEFAULT_SAMPLE_CONTROL = {"primitives_enabled": {"page_table": True, "page_fault": False}, "sample_filters": []}


def context_from_kvpairs(kv, path: str = "context") -> ContextSpec:
    kv = _obj(kv, path, {"ops", "addr_unit", "targets", "intervals", "nr_regions", "schemes", "probes",
                         "sample_control", "pause", "ops_attrs"})
    for key, default in (("probes", []), ("sample_control", _DEFAULT_SAMPLE_CONTROL), ("pause", False)):
        if kv.get(key, default) not in (default, None) and not (key == "sample_control" and kv[key] == {}):
            raise ConfigError(f"{path}.{key}", kv[key], f"{default!r} (acma does not model {key})")
    targets = []
    for i, t in enumerate(_list(kv.get("targets"), f"{path}.targets")):
        tp = f"{path}.targets[{i}]"
        t = _obj(t, tp, {"pid", "regions", "obsolete"})
        if t.get("obsolete") not in (None, False):
            raise ConfigError(f"{tp}.obsolete", t["obsolete"], "false")
        regions = []
        for j, r in enumerate(_list(t.get("regions"), f"{tp}.regions")):
            r = _obj(r, f"{tp}.regions[{j}]", {"start", "end", "nr_accesses", "age", "probe_hits",
                                              "sz_filter_passed"})
            regions.append((tu.parse_size(r.get("start"), f"{tp}.regions[{j}].start"),
                            tu.parse_size(r.get("end"), f"{tp}.regions[{j}].end")))
        pid = t.get("pid")
        targets.append(TargetSpec(None if pid is None else tu.parse_count(pid, f"{tp}.pid"), tuple(regions)))
    attrs = _attrs_from(kv.get("intervals"), kv.get("nr_regions"), path)
    schemes = tuple(scheme_from_kvpairs(s, f"{path}.schemes[{i}]")
                    for i, s in enumerate(_list(kv.get("schemes"), f"{path}.schemes")))
    addr_unit = tu.parse_size(kv.get("addr_unit", 1), f"{path}.addr_unit")
    if "ops" not in kv:
        raise ConfigError(f"{path}.ops", None, f"one of {OPS}")
    try:
        return ContextSpec(kv["ops"], tuple(targets), attrs, schemes, addr_unit)
    except ConfigError as e:
        raise ConfigError(f"{path} ({e.field})", e.value, e.allowed) from None


def from_kvpairs(kv) -> KdamondsSpec:
    """A KdamondsSpec from parsed JSON/YAML; ConfigError names the spec path at fault."""
    kv = _obj(kv, "spec", {"kdamonds"})
    kdamonds = []
    for i, k in enumerate(_list(kv.get("kdamonds"), "spec.kdamonds")):
        p = f"kdamonds[{i}]"
        k = _obj(k, p, {"contexts", "refresh_ms", "state", "pid"})
        ctxs = tuple(context_from_kvpairs(c, f"{p}.contexts[{j}]")
                     for j, c in enumerate(_list(k.get("contexts"), f"{p}.contexts")))
        kdamonds.append(KdamondSpec(ctxs, tu.parse_count(k.get("refresh_ms", 0), f"{p}.refresh_ms")))
    return KdamondsSpec(tuple(kdamonds))


def _yaml():
    try:
        import yaml
    except ModuleNotFoundError:  # pragma: no cover - pyyaml is a dependency
        raise ConfigError("format", "yaml", "json (PyYAML is not installed)") from None
    return yaml


def _parse(text: str, fmt: str, source: str):
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise FormatError(source, f"line {e.lineno} column {e.colno}", e.msg) from None
    if fmt == "yaml":
        yaml = _yaml()
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "document"
            raise FormatError(source, where, str(getattr(e, "problem", e))) from None
    raise ConfigError("format", fmt, "'json' or 'yaml'")


def loads(text: str, fmt: str = "json", source: str = "<string>") -> KdamondsSpec:
    """A kdamonds spec from JSON or YAML text."""
    return from_kvpairs(_parse(text, fmt, source))


def loads_schemes(text: str, fmt: str = "json", source: str = "<string>") -> tuple[Scheme, ...]:
    """A bare scheme list (JSON or YAML)."""
    doc = _parse(text, fmt, source)
    return tuple(scheme_from_kvpairs(s, f"schemes[{i}]") for i, s in enumerate(_list(doc, source)))


# --- legacy single-line schemes ----------------------------------------------------------------

# field counts of damo's deprecated one-line formats: v0 pattern+action; v1 + quota size and
# reset interval; v2 + three weights; v3 + watermarks; v4 = v0 + time quota, size quota, reset,
# weights and watermarks.
_LEGACY_COUNTS = (7, 9, 12, 17, 18)


def _legacy_line(line: str, where: str) -> Scheme:
    f = line.split()
    if len(f) not in _LEGACY_COUNTS:
        raise ConfigError(where, line, f"a scheme line of {list(_LEGACY_COUNTS)} whitespace-separated fields")
    pattern = _build(AccessPattern, f"{where}.pattern",
                     min_sz_region=tu.parse_size(f[0], f"{where}.min_size"),
                     max_sz_region=tu.parse_size(f[1], f"{where}.max_size"),
                     min_nr_accesses=tu.parse_ratio(f[2], f"{where}.min_freq", 100, whole=False),
                     max_nr_accesses=tu.parse_ratio(f[3], f"{where}.max_freq", 100, whole=False),
                     nr_accesses_unit=PERCENT,
                     min_age_region=tu.parse_time(f[4], f"{where}.min_age"),
                     max_age_region=tu.parse_time(f[5], f"{where}.max_age"), age_unit=USEC)
    q = {"reset_interval_ms": ULONG_MAX}
    rest = f[7:]
    if len(f) == 18:
        q["ms"] = tu.parse_time(rest.pop(0), f"{where}.quota_ms", "ms")
    if rest:
        q["sz"] = tu.parse_size(rest[0], f"{where}.quota_sz")
        q["reset_interval_ms"] = tu.parse_time(rest[1], f"{where}.quota_reset_interval", "ms")
    if len(rest) >= 5:
        for k, v in zip(("weight_sz", "weight_nr_accesses", "weight_age"), rest[2:5]):
            q[k] = tu.parse_count(v, f"{where}.{k}", 2**32 - 1)
    wm = Watermarks()
    if len(rest) == 10:
        wm = _build(Watermarks, f"{where}.wmarks", metric=rest[5].lower(),
                    interval_us=tu.parse_time(rest[6], f"{where}.wmarks_interval"),
                    high=tu.parse_count(rest[7], f"{where}.wmarks_high"),
                    mid=tu.parse_count(rest[8], f"{where}.wmarks_mid"),
                    low=tu.parse_count(rest[9], f"{where}.wmarks_low"))
    return _build(Scheme, where, pattern=pattern, action=f[6].lower(), quota=_build(Quota, f"{where}.quota", **q),
                  wmarks=wm)


def parse_damos_lines(text: str, source: str = "<string>") -> tuple[Scheme, ...]:
    """Schemes from legacy .damos text: one per line, '#' comments and blank lines skipped."""
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(_legacy_line(line, f"{source}:{n}"))
    return tuple(out)


def _compact(s: str) -> str:
    return s.replace(" ", "")


def format_damos_line(s: Scheme) -> str:
    """One scheme as a legacy line: the 7-field form when it has no quota or watermarks (as
    damo reads them), else the 18-field v4 form. The format has no filters, goals, node
    targets, apply interval or snapshot limit, and only percent/time units: anything else is a
    ConfigError naming the field."""
    p = s.pattern
    if p.nr_accesses_unit != PERCENT or p.age_unit != USEC:
        raise ConfigError("scheme.pattern", p, "nr_accesses in percent and age in usec (the .damos units)")
    for name, default in (("filters", ()), ("migrate_dests", ()), ("target_nid", NUMA_NO_NODE),
                          ("apply_interval_us", 0), ("max_nr_snapshots", 0)):
        if getattr(s, name) != default:
            raise ConfigError(f"scheme.{name}", getattr(s, name), f"{default!r} (not expressible in .damos lines)")
    q = s.quota
    if q.goals or q.goal_tuner != "consist" or q.fail_charge_num or q.fail_charge_denom:
        raise ConfigError("scheme.quota", q, "no goals, tuner or fail charge (not expressible in .damos lines)")
    nr = [("max" if v == MAX else repr(v) if isinstance(v, float) else str(v))
          for v in (p.min_nr_accesses, p.max_nr_accesses)]
    fields = [_compact(tu.format_size(p.min_sz_region)), _compact(tu.format_size(p.max_sz_region)), *nr,
              _compact(tu.format_time(p.min_age_region)), _compact(tu.format_time(p.max_age_region)), s.action]
    if q != DAMO_DEFAULT_QUOTA or s.wmarks != Watermarks():
        w = s.wmarks
        fields += [_compact(tu.format_time(q.ms, "ms")), _compact(tu.format_size(q.sz)),
                   _compact(tu.format_time(q.reset_interval_ms, "ms")),
                   str(q.weight_sz), str(q.weight_nr_accesses), str(q.weight_age),
                   w.metric, _compact(tu.format_time(w.interval_us)), str(w.high), str(w.mid), str(w.low)]
    return " ".join(fields)


def format_damos_lines(schemes) -> str:
    return "".join(format_damos_line(s) + "\n" for s in schemes)


# --- files -----------------------------------------------------------------------------------

def _fmt_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext in (".yaml", ".yml"):
        return "yaml"
    if ext == ".json":
        return "json"
    if ext == ".damos":
        return "damos"
    raise ConfigError("path", path, "a file name ending in .json, .yaml, .yml (or .damos for schemes)")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(path, "file", str(e)) from None


def load(path: str) -> KdamondsSpec:
    """A kdamonds spec file (.json, .yaml or .yml)."""
    fmt = _fmt_of(path)
    if fmt == "damos":
        raise ConfigError("path", path, "a .json/.yaml kdamonds spec (a .damos file holds schemes: load_schemes)")
    return loads(_read(path), fmt, path)


def save(spec: KdamondsSpec, path: str) -> None:
    fmt = _fmt_of(path)
    if fmt == "damos":
        raise ConfigError("path", path, "a .json/.yaml kdamonds spec path (save_schemes writes .damos)")
    _write(path, dumps(spec, fmt))


def load_schemes(path: str) -> tuple[Scheme, ...]:
    """Schemes from a bare list (.json/.yaml) or legacy lines (.damos)."""
    fmt = _fmt_of(path)
    text = _read(path)
    return parse_damos_lines(text, path) if fmt == "damos" else loads_schemes(text, fmt, path)


def save_schemes(schemes, path: str) -> None:
    fmt = _fmt_of(path)
    _write(path, format_damos_lines(schemes) if fmt == "damos" else dumps_schemes(schemes, fmt))


def _write(path: str, text: str) -> None:
    write_text_atomic(path, text)
