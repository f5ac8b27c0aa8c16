"""damo spec import/export: round trips (hypothesis), real damo 3.4.3 parsing every exported
spec (in process and through its CLI), legacy .damos lines, and errors that name the key."""

import contextlib
import importlib.util
import io
import json
import math
import os
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acma.damon import Attrs, IntervalsGoal
from acma.damos import (AGGR_INTERVALS, GOAL_METRICS, MAX, NUMA_NO_NODE, SAMPLES,
                        PERCENT, ULONG_MAX, USEC, AccessPattern, Filter, Quota, QuotaGoal, Scheme, Watermarks,
                        action_info)
from acma.damos import spec
from acma.damos.scheme import MEMCG_METRICS, NID_METRICS
from acma.errors import ConfigError, FormatError

# --- strategies --------------------------------------------------------------------------------

_sizes = st.one_of(st.integers(0, 1 << 50), st.sampled_from([4096, 2 << 20, 1 << 30]), st.just(MAX))
_times = st.one_of(st.integers(0, 10**12), st.sampled_from([5_000, 100_000, 1_000_000, 120_000_000]))
_percents = st.one_of(st.integers(0, 100), st.floats(0, 100, allow_subnormal=False))


def _pair(values):
    return st.tuples(values, values).map(sorted)


@st.composite
def patterns(draw):
    sz = draw(_pair(_sizes))
    if draw(st.booleans()):
        nr, nr_unit = draw(_pair(st.one_of(st.integers(0, 10**6), st.just(MAX)))), SAMPLES
    else:
        nr, nr_unit = draw(st.one_of(_pair(_percents), _pair(_percents).map(lambda p: [p[0], MAX]))), PERCENT
    if draw(st.booleans()):
        age, age_unit = draw(_pair(st.one_of(st.integers(0, 10**6), st.just(MAX)))), AGGR_INTERVALS
    else:
        age, age_unit = draw(_pair(st.one_of(_times, st.just(MAX)))), USEC
    return AccessPattern(sz[0], sz[1], nr[0], nr[1], nr_unit, age[0], age[1], age_unit)


@st.composite
def goals(draw):
    metric = draw(st.sampled_from(GOAL_METRICS))
    return QuotaGoal(metric, draw(st.integers(1, 10**9)), draw(st.integers(0, 10**9)),
                     draw(st.integers(0, 7)) if metric in NID_METRICS else None,
                     draw(st.sampled_from(["/", "/vm1", "/a/b"])) if metric in MEMCG_METRICS else None)


_ms = st.one_of(st.integers(0, 10**9), st.just(ULONG_MAX))
quotas = st.builds(Quota, _ms, st.one_of(st.integers(0, 1 << 50), st.just(ULONG_MAX)), _ms,
                   st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6),
                   st.lists(goals(), max_size=3).map(tuple), st.sampled_from(["consist", "temporal"]),
                   st.integers(0, 1000), st.integers(0, 1000))


@st.composite
def wmarks(draw):
    if draw(st.booleans()):
        return Watermarks()
    low, mid, high = sorted(draw(st.lists(st.integers(0, 1000), min_size=3, max_size=3)))
    return Watermarks("free_mem_rate", draw(_times), high, mid, low)


@st.composite
def filters(draw):
    t = draw(st.sampled_from(["anon", "active", "memcg", "young", "hugepage_size", "unmapped", "addr", "target"]))
    args = {}
    if t == "memcg":
        args["memcg_path"] = draw(st.sampled_from(["/", "/vm1", "/a/b c"]))
    elif t == "addr":
        args["addr_range"] = tuple(draw(_pair(st.integers(0, 1 << 48))))
    elif t == "target":
        args["target_idx"] = 0
    elif t == "hugepage_size":
        args["hugepage_size"] = tuple(draw(_pair(st.sampled_from([4096, 2 << 20, 1 << 30, 12345]))))
    return Filter(t, draw(st.booleans()), draw(st.booleans()), **args)


@st.composite
def schemes(draw, ops="paddr"):
    action = draw(st.sampled_from([a for a in ("willneed", "cold", "pageout", "hugepage", "nohugepage", "lru_prio",
                                               "lru_deprio", "migrate_hot", "migrate_cold", "stat")
                                   if ops in action_info(a).ops]))
    return Scheme(draw(patterns()), action, draw(_times), draw(quotas), draw(wmarks()),
                  draw(st.integers(-1, 7)), tuple(draw(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 100)),
                                                                max_size=3))),
                  tuple(draw(st.lists(filters(), max_size=3))), draw(st.integers(0, 100)))


@st.composite
def kdamonds_specs(draw):
    ops = draw(st.sampled_from(["paddr", "vaddr", "fvaddr"]))
    sample = draw(st.integers(1, 100_000))
    attrs = Attrs(sample_us=sample, aggr_us=sample * draw(st.integers(1, 100)),
                  ops_update_us=draw(st.integers(0, 10**8)), min_nr_regions=draw(st.integers(3, 20)),
                  max_nr_regions=draw(st.integers(20, 5000)),
                  intervals_goal=draw(st.sampled_from([IntervalsGoal(), IntervalsGoal(400, 3, 1, 10**7)])))
    target = spec.TargetSpec(None if ops == "paddr" else draw(st.integers(1, 10**6)),
                             tuple(sorted(draw(st.lists(st.tuples(st.integers(0, 2**40), st.integers(1, 2**20))
                                                        .map(lambda t: (t[0], t[0] + t[1])), max_size=2)))))
    ctx = spec.ContextSpec(ops, (target,), attrs, tuple(draw(st.lists(schemes(ops), max_size=3))))
    return spec.KdamondsSpec((spec.KdamondSpec((ctx,), draw(st.integers(0, 10_000))),))


# --- round trips -------------------------------------------------------------------------------

@given(kdamonds_specs(), st.sampled_from(["json", "yaml"]))
def test_export_import_round_trip(s, fmt):
    text = spec.dumps(s, fmt)
    assert spec.loads(text, fmt) == s


@given(st.lists(schemes(), max_size=4).map(tuple), st.sampled_from(["json", "yaml"]))
def test_bare_scheme_list_round_trip(ss, fmt):
    text = spec.dumps_schemes(ss, fmt)
    assert spec.loads_schemes(text, fmt) == ss
    if fmt == "json":
        assert isinstance(json.loads(text), list)


def _legacy_ok(s: Scheme) -> Scheme:
    p = s.pattern
    if p.nr_accesses_unit != PERCENT:
        p = p.replace(min_nr_accesses=min(p.min_nr_accesses, 100), max_nr_accesses=MAX, nr_accesses_unit=PERCENT)
    if p.age_unit != USEC:
        p = p.replace(min_age_region=min(p.min_age_region, 10**6) * 1000, max_age_region=MAX, age_unit=USEC)
    q = s.quota.replace(goals=(), goal_tuner="consist", fail_charge_num=0, fail_charge_denom=0)
    return Scheme(p, s.action, quota=q, wmarks=s.wmarks)


@given(st.lists(schemes().map(_legacy_ok), max_size=4).map(tuple))
def test_legacy_lines_round_trip(ss):
    text = spec.format_damos_lines(ss)
    assert spec.parse_damos_lines(text) == ss


def test_files_by_extension(tmp_path):
    s = spec.KdamondsSpec.single("paddr", [Scheme(action="pageout")], targets=[spec.TargetSpec(None, ((0, 1 << 30),))])
    for name in ("k.json", "k.yaml", "k.yml"):
        spec.save(s, tmp_path / name)
        assert spec.load(str(tmp_path / name)) == s
    ss = (Scheme(AccessPattern(4096, MAX, 0, 0, PERCENT, 5_000_000, MAX, USEC), "pageout",
                 quota=spec.DAMO_DEFAULT_QUOTA),)
    for name in ("s.json", "s.yaml", "s.damos"):
        spec.save_schemes(ss, str(tmp_path / name))
        assert spec.load_schemes(str(tmp_path / name)) == ss
    assert (tmp_path / "s.damos").read_text() == "4KiB max 0 0 5s max pageout\n"
    with pytest.raises(ConfigError, match="path"):
        spec.load(str(tmp_path / "s.damos"))
    with pytest.raises(ConfigError, match="path"):
        spec.save(s, str(tmp_path / "k.txt"))
    with pytest.raises(FormatError):
        spec.load(str(tmp_path / "missing.json"))


# --- what damo writes and what the ecosystem uses -------------------------------------------------

def test_ecosystem_examples_import():
    tiny = spec.loads("""{"kdamonds":[{"contexts":[{"ops":"paddr","targets":[{"pid":null,"regions":[
        {"start":4096,"end":1073741824}]}],"schemes":[{"action":"pageout","access_pattern":{"sz_bytes":
        {"min":"4 KiB","max":"max"},"nr_accesses":{"min":"0 %","max":"0 %"},"age":{"min":"5 s","max":"max"}}}]}]}]}""")
    c = tiny.contexts[0]
    assert c.attrs == spec.DAMO_DEFAULT_ATTRS and c.targets[0].regions == ((4096, 1 << 30),)
    s = c.schemes[0]
    assert s.pattern == AccessPattern(4096, MAX, 0, 0, PERCENT, 5_000_000, MAX, USEC)
    assert s.quota == spec.DAMO_DEFAULT_QUOTA and s.wmarks == Watermarks()
    full = spec.scheme_from_kvpairs(json.loads("""{"action": "pageout",
        "quotas": {"time_ms":"10 ms","sz_bytes":"128 MiB","reset_interval_ms":"1 s",
                   "weights":{"sz_permil":0,"nr_accesses_permil":0,"age_permil":1},
                   "goals":[{"metric":"some_mem_psi_us","target_value":"1000","current_value":"0"}]},
        "watermarks": {"metric":"free_mem_rate","interval_us":"5 s","high_permil":"50 %","mid_permil":"40 %",
                       "low_permil":"20 %"}}"""))
    assert full.quota == Quota(10, 128 << 20, 1000, 0, 0, 1, (QuotaGoal("some_mem_psi_us", 1000),))
    assert full.wmarks == Watermarks("free_mem_rate", 5_000_000, 500, 400, 200)


def test_damo_number_forms():
    # damo's own output: commas, "4.000 KiB", "0 ns", "max" counts in samples, raw floats
    kv = {"action": "stat", "access_pattern": {"sz_bytes": {"min": "4.000 KiB", "max": "max"},
          "nr_accesses": {"min": "0 samples", "max": "18,446,744,073,709,551,615 samples"},
          "age": {"min": "1 m 30 s", "max": "max"}},
          "apply_interval_us": "0 ns",
          "quotas": {"time_ms": "1.5 s", "sz_bytes": "1,048,576", "reset_interval_ms": 1000,
          "weights": {"sz_permil": "0.000000", "nr_accesses_permil": "10 %", "age_permil": 900},
          "goals": [{"metric": "node_mem_free_bp", "nid": "1", "target_value": "12.34 %", "current_value": "0",
                     "complement": False, "memcg_path": None}],
          "effective_sz_bytes": "0 B", "goal_tuner": None}}
    s = spec.scheme_from_kvpairs(kv)
    assert s.pattern.min_sz_region == 4096 and s.pattern.max_nr_accesses == MAX
    assert s.pattern.min_age_region == 90_000_000 and s.pattern.age_unit == USEC
    assert (s.quota.ms, s.quota.sz, s.quota.weight_nr_accesses, s.quota.weight_age) == (1500, 1 << 20, 100, 900)
    assert s.quota.goals == (QuotaGoal("node_mem_free_bp", 1234, 0, 1),)
    old = spec.scheme_from_kvpairs({"quotas": {"goals": [{"target_value_bp": 5000, "current_value_bp": 10}]},
                                    "filters": [{"filter_type": "anon", "matching": "yes", "filter_pass": True}]})
    assert old.quota.goals == (QuotaGoal("user_input", 5000, 10),) and old.filters == (Filter("anon", True, True),)
    # damo's default goal has target 0, which sysfs drops: so do we
    zero = spec.scheme_from_kvpairs({"quotas": {"goals": [{"metric": "user_input", "target_value": "0",
                                                           "current_value": "0"}, {"target_value_bp": 0}]}})
    assert zero.quota.goals == ()


@pytest.mark.parametrize("kv, field", [
    ({"actoin": "stat"}, "scheme.actoin"),
    ({"action": "reclaim"}, "scheme (scheme.action)"),
    ({"access_pattern": {"sz_bytes": {"min": "4 KB/s"}}}, "scheme.access_pattern.sz_bytes.min"),
    ({"access_pattern": {"sz_bytes": {"min": "1.5 B"}}}, "scheme.access_pattern.sz_bytes.min"),
    ({"access_pattern": {"nr_accesses": {"min": "1 samples", "max": "50 %"}}}, "scheme.access_pattern.nr_accesses"),
    ({"access_pattern": {"age": {"min": "1 fortnight"}}}, "scheme.access_pattern.age.min"),
    ({"access_pattern": {"nr_accesses": {"max": "150 %"}}}, "scheme.access_pattern (pattern.max_nr_accesses)"),
    ({"quotas": {"time_ms": "1 us"}}, "scheme.quotas.time_ms"),
    ({"quotas": {"weights": {"sz_permil": "0.01 %"}}}, "scheme.quotas.weights.sz_permil"),
    ({"quotas": {"goals": [{"metric": "user_input", "complement": True}]}}, "scheme.quotas.goals[0].complement"),
    ({"quotas": {"goals": [{"metric": "psi"}]}}, "scheme.quotas.goals[0] (goal.metric)"),
    ({"watermarks": {"metric": "free_mem_rate", "high_permil": "10 %", "mid_permil": "20 %"}},
     "scheme.watermarks (wmarks.mid)"),
    ({"filters": [{"filter_type": "addr", "matching": True}]}, "scheme.filters[0].address_range"),
    ({"filters": [{"filter_type": "anon", "matching": "maybe"}]}, "scheme.filters[0].matching"),
    ({"filters": [{"filter_type": "anon", "matching": True, "probe_hits_wsum_range": [0, 1]}]},
     "scheme.filters[0].probe_hits_wsum_range"),
    ({"dests": [{"id": 1, "weight": -3}]}, "scheme.dests[0].weight"),
    ({"target_nid": "x"}, "scheme.target_nid"),
    ({"filters": "anon"}, "scheme.filters"),
])
def test_bad_scheme_keys_name_the_path(kv, field):
    with pytest.raises(ConfigError) as e:
        spec.scheme_from_kvpairs(kv)
    assert e.value.field == field


def test_bad_documents():
    with pytest.raises(FormatError, match="line 1"):
        spec.loads("{", "json")
    with pytest.raises(FormatError):
        spec.loads("a: [", "yaml")
    with pytest.raises(ConfigError, match="format"):
        spec.loads("{}", "toml")
    with pytest.raises(ConfigError) as e:
        spec.loads('{"kdamonds": [{"contexts": [{"ops": "vaddr", "targets": [], '
                   '"schemes": [{"action": "lru_prio"}]}]}]}')
    assert e.value.field.startswith("kdamonds[0].contexts[0] (schemes[0].action")
    with pytest.raises(ConfigError) as e:
        spec.loads('{"kdamonds": [{"contexts": [{"ops": "paddr", "targets": [], "pause": true}]}]}')
    assert e.value.field == "kdamonds[0].contexts[0].pause"
    with pytest.raises(ConfigError) as e:
        spec.loads('{"kdamonds": [{"contexts": [{"ops": "paddr", "targets": [], '
                   '"intervals": {"sample_us": "10 ms", "aggr_us": "5 ms"}}]}]}')
    assert e.value.field == "kdamonds[0].contexts[0] (attrs.aggr_us)"
    with pytest.raises(ConfigError):
        spec.loads('{"kdamonds": [{"contexts": [{"targets": []}]}]}')
    with pytest.raises(ConfigError, match="spec.kdamond"):
        spec.loads('{"kdamond": []}')


def test_legacy_formats():
    text = """
    # damo's documented examples (v0: 7 fields)
    min    max      80      max     100ms   max willneed
    2M      max     0       25      100ms   max nohugepage   # trailing comment
    4K max    min min    1s max    stat 100MB 1s
    4K max 0 0 5s max pageout 128M 1s 0 0 1
    4K max 0 0 5s max pageout 128M 1s 0 0 1 free_mem_rate 5s 500 400 200
    4K max 0 0 2m max PAGEOUT 10ms 128M 1s 0 0 1 free_mem_rate 5s 500 400 200
    """
    ss = spec.parse_damos_lines(text)
    assert ss[0].pattern == AccessPattern(0, MAX, 80, MAX, PERCENT, 100_000, MAX, USEC)
    assert ss[0].action == "willneed" and ss[0].quota == spec.DAMO_DEFAULT_QUOTA
    assert ss[1].pattern.min_sz_region == 2 << 20 and ss[1].action == "nohugepage"
    assert (ss[2].quota.sz, ss[2].quota.reset_interval_ms) == (100 << 20, 1000)
    assert ss[3].quota.weight_age == 1 and ss[3].wmarks == Watermarks()
    assert ss[4].wmarks == Watermarks("free_mem_rate", 5_000_000, 500, 400, 200) and ss[4].quota.ms == 0
    assert ss[5].quota.ms == 10 and ss[5].action == "pageout" and ss[5].pattern.min_age_region == 120_000_000
    with pytest.raises(ConfigError) as e:
        spec.parse_damos_lines("4K max 0 0 5s max\n", "x.damos")
    assert e.value.field == "x.damos:1"
    with pytest.raises(ConfigError, match="x.damos:2"):
        spec.parse_damos_lines("4K max 0 0 5s max stat\n4K max 0 0 5s max zap\n", "x.damos")
    for bad in (Scheme(AccessPattern()), Scheme(AccessPattern(nr_accesses_unit=PERCENT, age_unit=USEC), target_nid=1),
                Scheme(AccessPattern(nr_accesses_unit=PERCENT, age_unit=USEC), quota=Quota(goals=(QuotaGoal(),)))):
        with pytest.raises(ConfigError):
            spec.format_damos_line(bad)


# --- real damo ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def damo_lib():
    """damo 3.4.3's own parser modules, imported in process (they read files only)."""
    found = importlib.util.find_spec("damo")
    if found is None:
        pytest.fail("damo is not installed: these interop tests need it (pip install 'damo==3.4.3')")
    path = os.path.dirname(found.origin)
    if path not in sys.path:
        sys.path.append(path)
    import _damo_deprecated
    import _damon
    import _damon_args
    _damo_deprecated.avoid_crashing_single_line_scheme_for_testing = True
    _damo_deprecated.avoid_crashing_v1_v3_schemes_for_testing = True
    return _damon, _damon_args, _damo_deprecated


def _close(a, b):
    return a == b or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9))


def _check_against_damo(ours: Scheme, theirs, legacy: bool = False):
    """damo's parsed Damos holds the same raw values as our Scheme."""
    p, ap = ours.pattern, theirs.access_pattern
    assert ap.sz_bytes == [p.min_sz_region, p.max_sz_region]
    for mine, got in zip((p.min_nr_accesses, p.max_nr_accesses), ap.nr_acc_min_max):
        assert _close(mine, got.samples if p.nr_accesses_unit == SAMPLES else got.percent)
    assert ap.nr_accesses_unit == p.nr_accesses_unit
    for mine, got in zip((p.min_age_region, p.max_age_region), ap.age_min_max):
        assert _close(mine, got.aggr_intervals if p.age_unit == AGGR_INTERVALS else got.usec)
    assert theirs.action == ours.action
    q, tq = ours.quota, theirs.quotas
    assert (tq.time_ms, tq.sz_bytes, tq.reset_interval_ms) == (q.ms, q.sz, q.reset_interval_ms)
    # damo computes ratios in floating point ("0.7 %" -> 7.000000000000001 permil)
    assert all(map(_close, (tq.weight_sz_permil, tq.weight_nr_accesses_permil, tq.weight_age_permil),
                   (q.weight_sz, q.weight_nr_accesses, q.weight_age)))
    w, tw = ours.wmarks, theirs.watermarks
    assert (tw.metric, tw.interval_us) == (w.metric, w.interval_us)
    assert all(map(_close, (tw.high_permil, tw.mid_permil, tw.low_permil), (w.high, w.mid, w.low)))
    if legacy:
        return
    assert theirs.apply_interval_us == ours.apply_interval_us
    assert (tq.goal_tuner, tq.fail_charge_num, tq.fail_charge_denom) == (q.goal_tuner, q.fail_charge_num,
                                                                         q.fail_charge_denom)
    assert len(tq.goals) == len(q.goals)
    for g, tg in zip(q.goals, tq.goals):
        assert (tg.metric, tg.nid, tg.current_value) == (g.metric, g.nid, g.current_value)
        assert _close(tg.target_value, g.target_value)
        if g.metric in MEMCG_METRICS:
            assert tg.memcg_path == g.memcg_path
    assert [(d.id, d.weight) for d in theirs.dests] == list(ours.migrate_dests)
    assert (theirs.target_nid if theirs.target_nid is not None else NUMA_NO_NODE) == ours.target_nid
    assert len(theirs.filters) == len(ours.filters)
    for f, tf in zip(ours.filters, theirs.filters):
        assert (tf.filter_type, tf.matching, tf.allow) == (f.type, f.matching, f.allow)
        if f.type == "memcg":
            assert tf.memcg_path == f.memcg_path
        if f.type == "addr":
            assert (tf.address_range.start, tf.address_range.end) == f.addr_range
        if f.type == "target":
            assert tf.damon_target_idx == f.target_idx
        if f.type == "hugepage_size":
            assert tuple(tf.hugepage_size) == f.hugepage_size


@pytest.mark.damo
@settings(max_examples=40)
@given(kdamonds_specs(), st.sampled_from(["json", "yaml"]))
def test_damo_parses_every_exported_spec(damo_lib, tmp_path_factory, s, fmt):
    _damon, damon_args, _ = damo_lib
    path = tmp_path_factory.mktemp("spec") / f"kd.{fmt}"
    spec.save(s, str(path))
    loader = damon_args.kdamonds_from_yaml_arg if fmt == "yaml" else damon_args.kdamonds_from_json_arg
    kdamonds, err = loader(str(path))
    assert err is None, err
    assert damon_args.verify_kdamonds(kdamonds) is None
    ctx, theirs = s.contexts[0], kdamonds[0].contexts[0]
    assert theirs.ops == ctx.ops
    assert (theirs.intervals.sample, theirs.intervals.aggr, theirs.intervals.ops_update) == \
        (ctx.attrs.sample_us, ctx.attrs.aggr_us, ctx.attrs.ops_update_us)
    g, tg = ctx.attrs.intervals_goal, theirs.intervals.intervals_goal
    assert (tg.access_bp, tg.aggrs, tg.min_sample_us, tg.max_sample_us) == \
        (g.access_bp, g.aggrs, g.min_sample_us, g.max_sample_us)
    assert (theirs.nr_regions.minimum, theirs.nr_regions.maximum) == (ctx.attrs.min_nr_regions,
                                                                      ctx.attrs.max_nr_regions)
    assert [(t.pid, [(r.start, r.end) for r in t.regions]) for t in theirs.targets] == \
        [(t.pid, list(t.regions)) for t in ctx.targets]
    assert len(theirs.schemes) == len(ctx.schemes)
    for ours, their in zip(ctx.schemes, theirs.schemes):
        _check_against_damo(ours, their)


@pytest.mark.damo
@settings(max_examples=40)
@given(st.lists(schemes().map(_legacy_ok), min_size=1, max_size=3))
def test_damo_parses_every_exported_legacy_line(damo_lib, ss):
    _, _, deprecated = damo_lib
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # damo prints its deprecation notice
        theirs, err = deprecated.damo_single_line_schemes_to_damos(spec.format_damos_lines(ss))
    assert err is None, err
    for ours, their in zip(ss, theirs):
        _check_against_damo(ours, their, legacy=True)


@pytest.mark.damo
def test_damo_cli_reads_our_spec_and_we_read_its_output(damo, tmp_path):
    """``damo args damon`` (its offline spec normaliser) takes our JSON and YAML; its
    human-formatted output imports back to the same spec (damo drops max_nr_snapshots)."""
    s = spec.KdamondsSpec.single("paddr", [
        Scheme(AccessPattern(4096, MAX, 0, 0, SAMPLES, 1200, MAX, AGGR_INTERVALS), "pageout",
               quota=Quota(10, 128 << 20, 1000, 0, 0, 1, (QuotaGoal("some_mem_psi_us", 1000),
                                                          QuotaGoal("user_input", 10_000, 3000))),
               wmarks=Watermarks("free_mem_rate", 5_000_000, 500, 400, 200),
               filters=(Filter("anon", True), Filter("addr", True, True, addr_range=(0, 1 << 30)))),
        Scheme(AccessPattern(2 << 20, MAX, 50, 100, PERCENT, 0, MAX, USEC), "migrate_hot", 1_000_000,
               target_nid=1, migrate_dests=((1, 3), (2, 1)),
               quota=Quota(sz=1 << 30, reset_interval_ms=1000, goals=(QuotaGoal("node_mem_used_bp", 7000, nid=1),),
                           goal_tuner="temporal")),
    ], targets=[spec.TargetSpec(None, ((4096, 1 << 32),))])
    for fmt in ("json", "yaml"):
        path = tmp_path / f"kd.{fmt}"
        spec.save(s, str(path))
        args = ["args", "damon", "--format", fmt]
        args += ["--kdamonds", path] if fmt == "json" else [path]
        out = damo(*args, cwd=tmp_path)
        assert spec.loads(out, fmt) == s


def test_spec_to_context_and_back():
    from acma.mm.guest import Guest, GuestConfig
    guest = Guest(GuestConfig(size="256 MiB", seed=1))
    proc = guest.spawn("w")
    for _ in range(3):
        proc.mmap("8 MiB")
    cold = Scheme(AccessPattern(4096, MAX, 0, 0, PERCENT, 5_000_000, MAX, USEC), "pageout")
    s = spec.KdamondsSpec.single("paddr", [cold], targets=[spec.TargetSpec(None, ())])
    ctx = spec.context_for(s.contexts[0], guest)
    assert ctx.ops == "paddr" and ctx.targets[0].ranges == [(0, 256 << 20)]
    assert spec.spec_for(ctx, [cold]).contexts[0].targets[0].regions == ((0, 256 << 20),)
    v = spec.KdamondsSpec.single("vaddr", [Scheme(action="cold")], targets=[spec.TargetSpec(proc.pid)])
    vctx = spec.context_for(v.contexts[0], guest)
    assert vctx.targets[0].process is proc
    assert spec.spec_for(vctx, [Scheme(action="cold")]) == v
    with pytest.raises(ConfigError, match="targets\\[0\\].pid"):
        spec.context_for(spec.ContextSpec("vaddr", (spec.TargetSpec(999),)), guest)
    with pytest.raises(ConfigError, match="targets\\[0\\].regions"):
        spec.context_for(spec.ContextSpec("paddr", (spec.TargetSpec(None, ((0, 1 << 40),)),)), guest)
    with pytest.raises(ConfigError, match="target_nid"):
        spec.context_for(spec.ContextSpec("paddr", (spec.TargetSpec(),), schemes=(Scheme(target_nid=3),)), guest)


_json = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8)
                     | st.sampled_from(["max", "min", "5 ms", "4 KiB", "50 %", "1 samples", "paddr", "anon", "addr"]),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
                     max_leaves=8)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@given(kdamonds_specs(), st.data())
def test_any_broken_value_is_a_clear_error(s, data):
    """Replace one value of a valid exported spec with anything JSON can hold: the import either
    succeeds or raises ConfigError, never another exception."""
    doc = spec.to_kvpairs(s)
    paths = [p for p in _paths(doc) if p]
    where = data.draw(st.sampled_from(paths))
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = data.draw(_json)
    try:
        spec.from_kvpairs(doc)
    except ConfigError:
        pass


@given(_json)
def test_any_document_is_a_clear_error(doc):
    for load in (spec.from_kvpairs, spec.scheme_from_kvpairs):
        try:
            load(doc)
        except ConfigError:
            pass


@given(st.text(max_size=60), st.sampled_from(["json", "yaml", "damos"]))
def test_any_text_is_a_clear_error(text, fmt):
    try:
        spec.parse_damos_lines(text) if fmt == "damos" else spec.loads(text, fmt)
    except (ConfigError, FormatError):
        pass
