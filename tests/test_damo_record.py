"""damo record files: golden reports, round trips, damaged input, and interop with the real damo."""

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acma.errors import ConfigError, FormatError
from acma.io.damo_record import (
    DamonRecord,
    Intervals,
    Snapshot,
    TargetRecord,
    detect_format,
    parse_record_bytes,
    perf_script_text,
    read_record,
    record_to_bytes,
    write_perf_script,
    write_record,
)
from acma.report.wss import (
    format_heatmap_guide,
    format_nr_regions_report,
    format_size,
    format_wss_report,
    heatmap_guide,
    nr_regions_percentiles,
    wss_distribution,
    wss_percentiles,
)

# /work/main/tests/this.py -> /work/shared/data/damo-golden (the shared tree sits beside the repo)
GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "damo-golden"
TMP_SETTINGS = settings(deadline=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
U64_MAX = (1 << 64) - 1


@pytest.fixture(scope="module")
def golden():
    if not GOLDEN.is_dir():
        pytest.skip(f"damo golden data not found at {GOLDEN} (shared/data/damo-golden beside the repo)")
    return read_record(GOLDEN / "damon.data")


def expect(name: str) -> str:
    return (GOLDEN / "expects" / name).read_text()


def snap(t0, t1, regions, **kw):
    return Snapshot.from_regions(t0, t1, regions, **kw)


def sample_record(nr_targets=2, nr_snapshots=30, seed=1, intervals=Intervals(5000, 100000, 1000000)):
    """Targets with 3-9 page-aligned regions per 100 ms snapshot."""
    rng = np.random.default_rng(seed)
    targets = []
    for k in range(nr_targets):
        snaps, t = [], 1_000_000
        for _ in range(nr_snapshots):
            n = int(rng.integers(3, 10))
            edges = np.sort(rng.choice(np.arange(1, 4000), n + 1, replace=False)) * 4096
            snaps.append(Snapshot(t, t + 100_000, edges[:-1], edges[1:], rng.integers(0, 21, n),
                                  rng.integers(0, 60, n)))
            t += 100_000
        targets.append(TargetRecord(k * 3, 1000 + k if k else None, snaps))
    return DamonRecord(intervals, targets)


def zjson(obj) -> bytes:
    return zlib.compress(json.dumps(obj).encode())


def _region(start, end, samples, age):
    return {"start": start, "end": end, "nr_accesses": {"samples": samples},
            "age": {"usec": None, "aggr_intervals": age}}


# the minimal record of ecosystem.md §1.4
MIN_JSON = [{"target_id": 0,
             "intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000},
             "snapshots": [
                 {"start_time": 0, "end_time": 100000000, "regions": [
                     _region(4096, 1052672, 20, 5), _region(1052672, 4198400, 0, 10)]},
                 {"start_time": 100000000, "end_time": 200000000, "regions": [
                     _region(4096, 1052672, 2, 0), _region(1052672, 4198400, 15, 0)]}]}]


# --------------------------------------------------------------------------- golden data


def test_golden_record_contents(golden):
    assert golden.intervals is None
    assert len(golden.targets) == 1
    t = golden.targets[0]
    assert t.target_id == 18446623438842320000 and t.pid is None
    assert len(t.snapshots) == 543
    assert {min(s.nr_regions for s in t.snapshots), max(s.nr_regions for s in t.snapshots)} == {7, 21}
    first = t.snapshots[0]
    assert (first.start_ns, first.end_ns) == (539809434100, 539914032967)  # nanoseconds kept exactly
    assert (first.start_us, first.end_us) == (539809434, 539914032)
    assert first.regions()[0] == (94827419009024, 94827423150080, 0, 0)  # comma-grouped strings, null age


def test_golden_wss_byte_for_byte(golden):
    assert format_wss_report(golden, range(1, 101, 1), raw_number=True) == expect("report-wss")


def test_golden_nr_regions_byte_for_byte(golden):
    assert format_nr_regions_report(golden, range(1, 101, 1)) == expect("report-nr_regions")


def test_golden_heatmap_guide_byte_for_byte(golden):
    # the expects file predates damo 3.x's kdamond_idx/context_idx header lines
    assert format_heatmap_guide(golden, show_indices=False) == expect("report-heats_guide")
    assert format_heatmap_guide(golden).startswith("kdamond_idx: 0\ncontext_idx: 0\ntarget_id: ")


def test_golden_numbers(golden):
    [(key, dist)] = wss_distribution(golden).items()
    assert key == 0 and len(dist) == 543 - 20
    assert dist.values == tuple(sorted(dist.values))
    assert int(dist.average) == 113456913
    pct = wss_percentiles(golden, [1, 50, 100])[0]
    assert pct[0] == (1, 99979264)
    assert nr_regions_percentiles(golden, [1, 100]) == {18446623438842320000: [(1, 16), (100, 21)]}
    [g] = heatmap_guide(golden)
    assert g.ranges[1] == (140271510761472, 140271717171200)


def test_golden_human_sizes(golden):
    text = format_wss_report(golden, range(0, 101, 25), raw_number=False)
    assert text.splitlines()[2] == "# avr:\t108.201 MiB"
    assert text.splitlines()[3].startswith("  0      95.160 MiB |")


def test_golden_round_trips(golden, tmp_path):
    write_record(tmp_path / "g.data", golden, min_regions=0)
    again = read_record(tmp_path / "g.data")
    assert again == golden
    assert format_wss_report(again) == expect("report-wss")
    # perf-script text keeps microseconds and infers the first start: the reports do not move
    write_perf_script(tmp_path / "g.perf", golden, min_regions=0)
    perf = read_record(tmp_path / "g.perf")
    assert format_wss_report(perf) == expect("report-wss")
    assert format_nr_regions_report(perf, range(1, 101, 1)) == expect("report-nr_regions")
    assert [s.regions() for s in perf.targets[0].snapshots] == [s.regions() for s in golden.targets[0].snapshots]


# --------------------------------------------------------------------------- the data model


def test_snapshot_validation():
    ok = snap(0, 100, [(0, 4096, 1, 2), (4096, 8192, 0, 0)])
    assert ok.total_bytes == 8192 and ok.nr_regions == 2
    assert ok.start.dtype == np.uint64 and ok.nr_accesses.dtype == np.uint32
    assert not ok.start.flags.writeable
    bad = [
        dict(regions=[(4096, 4096, 0, 0)]),  # empty region
        dict(regions=[(8192, 4096, 0, 0)]),  # end < start
        dict(regions=[(4096, 8192, 0, 0), (0, 4096, 0, 0)]),  # unsorted
        dict(regions=[(0, 8192, 0, 0), (4096, 12288, 0, 0)]),  # overlapping
        dict(regions=[(0, 4096, -1, 0)]),
        dict(regions=[(0, 4096, 1 << 32, 0)]),
        dict(regions=[(0, 1 << 64, 0, 0)]),
        dict(regions=[(0, 4096, 0, 0)], sz_filter_passed=[4097]),
        dict(regions=[(0, 4096, 0, 0)], sz_filter_passed=[1, 2]),
    ]
    for kw in bad:
        with pytest.raises(ConfigError):
            snap(0, 100, **kw)
    with pytest.raises(ConfigError):
        Snapshot(0, 1, [0], [1, 2], [0], [0])
    with pytest.raises(ConfigError):
        Snapshot(0, 1, [0.5], [1.5], [0], [0])
    with pytest.raises(ConfigError):
        snap(100, 50, [])
    with pytest.raises(ConfigError):
        snap(-1, 50, [])
    with pytest.raises(ConfigError):
        Snapshot(0, 1, [], [], [], [], times_ns=(5, 2000))  # does not round down to (0, 1)
    assert Snapshot(0, 1, [], [], [], [], times_ns=(5, 1999)).start_ns == 5


def test_target_and_record_validation():
    a, b = snap(0, 100, [(0, 4096, 0, 0)]), snap(100, 200, [(0, 4096, 0, 0)])
    TargetRecord(1, None, [a, b])
    with pytest.raises(ConfigError):
        TargetRecord(1, None, [b, a])
    with pytest.raises(ConfigError):
        TargetRecord(True, None, [])
    with pytest.raises(ConfigError):
        TargetRecord(1, -5, [])
    with pytest.raises(ConfigError):
        TargetRecord(-1, None, [])
    t = TargetRecord(np.uint64(U64_MAX), np.int32(7), [])
    assert type(t.target_id) is int and type(t.pid) is int
    assert parse_record_bytes(record_to_bytes(DamonRecord(None, [t]))).targets == [t]
    with pytest.raises(ConfigError):
        DamonRecord(None, [TargetRecord(1), TargetRecord(1)])
    with pytest.raises(ConfigError):
        Intervals(0, 100000, 1000000)
    with pytest.raises(ConfigError):
        DamonRecord("5ms", [])


def test_snapshot_equality():
    a = snap(0, 100, [(0, 4096, 3, 2)])
    assert a == snap(0, 100, [(0, 4096, 3, 2)])
    assert a != snap(0, 100, [(0, 4096, 3, 1)])
    assert a != snap(0, 101, [(0, 4096, 3, 2)])
    assert a != snap(0, 100, [(0, 4096, 3, 2)], sz_filter_passed=[0])
    with pytest.raises(TypeError):
        hash(a)


# --------------------------------------------------------------------------- writing


def test_written_file_is_zlib_json_in_damo_schema(tmp_path):
    rec = sample_record(nr_targets=2, nr_snapshots=2)
    write_record(tmp_path / "r", rec)
    raw = (tmp_path / "r").read_bytes()
    assert raw[:2] == b"\x78\x9c"
    obj = json.loads(zlib.decompress(raw))
    assert isinstance(obj, list) and len(obj) == 2
    r0 = obj[0]
    assert r0["target_id"] == 0 and r0["scheme_idx"] is None
    assert r0["intervals"] == {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000}
    s0 = r0["snapshots"][0]
    assert (s0["start_time"], s0["end_time"]) == (1_000_000_000, 1_100_000_000)
    reg = s0["regions"][0]
    n, a = reg["nr_accesses"]["samples"], reg["age"]["aggr_intervals"]
    assert reg["nr_accesses"]["percent"] == int(n * 100 / 20)
    assert reg["age"]["usec"] == a * 100000
    assert obj[1]["acma_pid"] == 1001 and "acma_pid" not in r0
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".acma-")]


def test_min_regions_split_keeps_reports():
    rec = DamonRecord(Intervals(), [TargetRecord(0, None, [
        snap(0, 100_000, [(4096, 4096 * 4, 7, 3)], sz_filter_passed=[5000]),
        snap(100_000, 200_000, [(0, 1, 1, 0), (1, 3, 2, 0)]),  # too small to split to page bounds
        snap(200_000, 300_000, [(0, 1, 1, 0)]),  # a 1-byte region cannot be split
    ])])
    back = parse_record_bytes(record_to_bytes(rec))
    s0, s1, s2 = back.targets[0].snapshots
    assert s0.regions() == [(4096, 8192, 7, 3), (8192, 12288, 7, 3), (12288, 16384, 7, 3)]
    assert s0.sz_filter_passed.sum() == 5000
    assert s1.regions() == [(0, 1, 1, 0), (1, 2, 2, 0), (2, 3, 2, 0)]
    assert s2.regions() == [(0, 1, 1, 0)]
    opts = dict(exclude_snapshots=0)
    assert format_wss_report(back, **opts) == format_wss_report(rec, **opts)
    assert parse_record_bytes(record_to_bytes(rec, min_regions=0)) == rec


def test_write_is_atomic_and_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "r.data"
    write_record(p, sample_record(1, 2))
    before = p.read_bytes()
    with pytest.raises(ConfigError):
        write_record(p, "not a record")
    bad = sample_record(1, 2)
    bad.targets.append(TargetRecord(0))  # duplicate id, appended after construction
    with pytest.raises(ConfigError):
        write_record(p, bad)
    assert p.read_bytes() == before


def test_perf_script_text_and_fake_snapshot():
    rec = DamonRecord(None, [TargetRecord(5, None, [snap(10_000_000, 10_100_000, [(4096, 1052672, 20, 5)])])])
    text = perf_script_text(rec, min_regions=0)
    assert text.splitlines() == [
        "kdamond.0 0 [000] 10.100000: damon:damon_aggregated: target_id=5 nr_regions=1 4096-1052672: 20 5",
        "kdamond.0 0 [000] 10.200000: damon:damon_aggregated: target_id=5 nr_regions=1 0-0: -1 -1",
    ]
    back = parse_record_bytes(text.encode())
    assert back == rec  # the fake snapshot gives the lone snapshot its start back, then goes
    with pytest.raises(ConfigError):
        perf_script_text(DamonRecord(None, [TargetRecord(None, None, [])]))
    with pytest.raises(ConfigError):
        perf_script_text(DamonRecord(None, [TargetRecord(1, None, [snap(0, 1, [])])]))


# --------------------------------------------------------------------------- round trips

@st.composite
def records(draw, contiguous=False, with_extras=True):
    intervals = draw(st.one_of(st.none(), st.builds(Intervals, st.integers(1, 10_000),
                                                     st.integers(1, 10**7), st.integers(0, 10**7))))
    nr_targets = draw(st.integers(0, 3))
    ids = draw(st.lists(st.integers(0, U64_MAX), min_size=nr_targets, max_size=nr_targets, unique=True))
    targets = []
    for tid in ids:
        t = draw(st.integers(0, 10**12))
        dur = draw(st.integers(1, 10**7))
        snaps = []
        for _ in range(draw(st.integers(0 if not contiguous else 1, 4))):
            if not contiguous:
                t += draw(st.integers(0, 10**6))
                dur = draw(st.integers(0, 10**7))
            bounds = sorted(draw(st.sets(st.integers(0, U64_MAX), min_size=2 if contiguous else 0, max_size=8)))
            pairs = list(zip(bounds[::2], bounds[1::2]))
            n = len(pairs)
            nrs = draw(st.lists(st.integers(0, (1 << 32) - 1), min_size=n, max_size=n))
            ages = draw(st.lists(st.integers(0, (1 << 32) - 1), min_size=n, max_size=n))
            sfp = None
            if with_extras and draw(st.booleans()):
                sfp = [draw(st.integers(0, b - a)) for a, b in pairs]
            times_ns = None
            if with_extras and draw(st.booleans()):
                times_ns = (t * 1000 + draw(st.integers(0, 999)), (t + dur) * 1000 + draw(st.integers(0, 999)))
                if times_ns[1] < times_ns[0]:
                    times_ns = (times_ns[0], times_ns[0])
                    dur = times_ns[1] // 1000 - t
            snaps.append(Snapshot(t, t + dur, [a for a, _ in pairs], [b for _, b in pairs], nrs, ages,
                                  sz_filter_passed=sfp, times_ns=times_ns))
            if times_ns is not None:
                t = t + dur + 1
            else:
                t += dur
        pid = draw(st.one_of(st.none(), st.integers(0, 2**31))) if with_extras else None
        targets.append(TargetRecord(tid, pid, snaps))
    return DamonRecord(intervals, targets)


@TMP_SETTINGS
@given(records())
def test_json_round_trip(rec):
    if not rec.targets:
        rec = DamonRecord(None, [])  # damo keeps the intervals per target: none without targets
    data = record_to_bytes(rec, min_regions=0)
    assert detect_format(data) == "json_compressed"
    assert parse_record_bytes(data) == rec
    plain = json.dumps(rec.to_damo()).encode()
    assert detect_format(plain) == "json"
    assert parse_record_bytes(plain) == rec
    assert DamonRecord.from_damo(rec.to_damo()) == rec
    assert json.loads(zlib.decompress(data)) == rec.to_damo()  # the fast writer says the same


@TMP_SETTINGS
@given(records(contiguous=True, with_extras=False))
def test_perf_script_round_trip(rec):
    rec = DamonRecord(None, [t for t in rec.targets if t.snapshots])
    if not rec.targets:
        return
    back = parse_record_bytes(perf_script_text(rec, min_regions=0).encode())
    assert back == rec


def test_round_trip_through_files(tmp_path):
    rec = sample_record()
    write_record(tmp_path / "rec.perf", rec)  # the name lies: detection is by content
    assert read_record(tmp_path / "rec.perf") == rec
    write_perf_script(tmp_path / "rec.data", rec)
    perf = read_record(tmp_path / "rec.data")
    assert perf.intervals is None and [t.pid for t in perf.targets] == [None, None]
    assert read_record(tmp_path / "rec.data", intervals=rec.intervals).intervals == rec.intervals
    assert read_record(tmp_path / "rec.perf", intervals=Intervals(1, 2, 3)).intervals == rec.intervals
    assert [[s.regions() for s in t.snapshots] for t in perf.targets] == \
        [[s.regions() for s in t.snapshots] for t in rec.targets]
    (tmp_path / "rec.json.z").write_text(json.dumps(rec.to_damo()))
    assert read_record(tmp_path / "rec.json.z") == rec


# --------------------------------------------------------------------------- what damo accepts


def test_reads_the_minimal_record_and_its_variants():
    rec = parse_record_bytes(zjson(MIN_JSON))
    assert rec.intervals == Intervals(5000, 100000, 1000000)
    assert rec.targets[0].snapshots[0].regions() == [(4096, 1052672, 20, 5), (1052672, 4198400, 0, 10)]
    text = format_wss_report(rec, range(0, 101, 50), exclude_snapshots=0)
    bar = "|" + "*" * 59 + "|"
    assert text.splitlines()[2:] == ["# avr:\t2621440",
                                     "  0         1048576 |" + "*" * 14 + " " * 45 + "|",
                                     " 50         4194304 " + bar,
                                     "100         4194304 " + bar]
    # human strings, percent only, usec only, null target id (all accepted by damo 3.4)
    variant = json.loads(json.dumps(MIN_JSON))
    variant[0]["target_id"] = None
    s = variant[0]["snapshots"][1]
    s["start_time"], s["end_time"] = "100 ms", "200,000,000"
    r0 = s["regions"][0]
    r0["start"], r0["end"] = "4 KiB", "1,052,672"
    r0["nr_accesses"] = {"percent": "10 %"}
    r0["age"] = {"usec": "300 ms", "aggr_intervals": None}
    r0["sz_filter_passed"] = "1 KiB"
    rec = parse_record_bytes(json.dumps(variant).encode())
    got = rec.targets[0].snapshots[1]
    assert rec.targets[0].target_id is None
    assert (got.start_us, got.end_us) == (100000, 200000)
    assert got.regions()[0] == (4096, 1052672, 2, 3)
    assert got.sz_filter_passed.tolist() == [1024, 0]


def test_golden_guide_of_minimal_record_back_dates_by_age():
    rec = parse_record_bytes(zjson(MIN_JSON))
    [g] = heatmap_guide(rec)
    assert (g.start_ns, g.end_ns) == (-1_000_000_000, 200_000_000)  # age 10 x 100 ms before 0


def _bad(obj_or_bytes, *fragments):
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    with pytest.raises(FormatError) as e:
        parse_record_bytes(data, source="src")
    msg = str(e.value)
    assert msg.startswith("src: ")
    for f in fragments:
        assert f in msg, msg
    return e.value


def _mut(fn):
    obj = json.loads(json.dumps(MIN_JSON))
    fn(obj)
    return obj


def test_schema_errors_name_the_place():
    _bad(_mut(lambda o: o[0]["snapshots"][0]["regions"][1].pop("age")), "records[0].snapshots[0].regions[1]", "age")
    _bad(_mut(lambda o: o[0]["snapshots"][0]["regions"][1]["age"].pop("usec")), "usec")
    _bad(_mut(lambda o: o[0].pop("target_id")), "records[0]", "target_id")
    _bad(_mut(lambda o: o[0].pop("snapshots")), "snapshots")
    _bad(_mut(lambda o: o[0]["snapshots"][0]["regions"][0].update(start=2_000_000)),
         "records[0].snapshots[0].regions[0]", "end > start")
    _bad(_mut(lambda o: o[0]["snapshots"][0]["regions"].reverse()), "regions[1]", "sorted")
    _bad(_mut(lambda o: o[0]["snapshots"][0]["regions"][0]["nr_accesses"].update(samples=-3)), "nr_accesses")
    _bad(_mut(lambda o: o[0]["snapshots"][0]["regions"][0]["nr_accesses"].update(samples="lots")), "samples")
    _bad(_mut(lambda o: (o[0].update(intervals=None),
                         o[0]["snapshots"][0]["regions"][0].update(nr_accesses={"percent": 5}))), "percent")
    _bad(_mut(lambda o: o[0].update(scheme_idx=0)), "scheme_idx")
    _bad(_mut(lambda o: o.append(dict(o[0]))), "records[1].target_id", "already")
    _bad(_mut(lambda o: o.append(dict(o[0], target_id=1, intervals=None))), "records[1].intervals")
    _bad(_mut(lambda o: o[0]["snapshots"].reverse()), "time order")
    _bad(_mut(lambda o: o[0]["snapshots"][0].update(end_time="soon")), "end_time")
    _bad(_mut(lambda o: o[0]["snapshots"][0].update(start_time=True)), "start_time")
    _bad(_mut(lambda o: o[0]["intervals"].pop("aggr_us")), "intervals", "aggr_us")
    _bad({"damo_record_ver": 1, "damo_records": []}, "wrapper")
    _bad({"a": 1}, "top level")
    _bad(b"[1, 2", "JSON line 1")
    _bad(b"[" * 100000, "JSON")
    _bad(b'[{"target_id": 0, "snapshots": [{"start_time": NaN, "end_time": 1, "regions": []}]}]', "start_time")


def test_zlib_damage_is_reported():
    good = zjson(MIN_JSON)
    _bad(good[:-5], "zlib stream", "truncated")
    _bad(good + b"junk", f"byte {len(good)}", "garbage")
    _bad(good[:2] + bytes(b ^ 0x55 for b in good[2:40]) + good[40:], "zlib")
    _bad(zlib.compress(b"\xff\xfe not utf-8"), "decompressed JSON", "UTF-8")
    _bad(zlib.compress(b'{"x": 1}'), "top level")


def test_perf_script_errors():
    line = "kdamond.0 4452 [000] {t}: damon:damon_aggregated: target_id=0 nr_regions={n} {r}: 20 5\n"
    ok = line.format(t="1.0", n=1, r="0-4096") + line.format(t="1.1", n=1, r="0-4096")
    assert len(parse_record_bytes(ok.encode()).targets[0].snapshots) == 2
    _bad(line.format(t="1.0", n=2, r="0-4096").encode(), "line 1", "incomplete")
    _bad((line.format(t="1.0", n=2, r="0-4096") + line.format(t="1.0", n=3, r="4096-8192")).encode(),
         "line 2", "nr_regions")
    _bad((line.format(t="2.0", n=1, r="0-4096") + line.format(t="1.0", n=1, r="0-4096")).encode(),
         "line 2", "time-sorted")
    _bad(line.format(t="x1.0", n=1, r="0-4096").encode(), "line 1", "timestamp")
    _bad(line.format(t="1.0", n=1, r="4096-0").encode(), "line 1", "region")
    _bad(line.format(t="1.0", n=1, r="0-0x10").encode(), "line 1")
    _bad((line.format(t="1.0", n=2, r="4096-8192") + line.format(t="1.0", n=2, r="0-4096")).encode(),
         "line 1", "sorted")
    _bad(b"kdamond.0 1 [0] 1.0: damon:damon_aggregated: target_id=0 nr_regions=1\n", "line 1", "fields")
    _bad(b"hello world\nnothing to see\n", "whole file", "no DAMON")
    _bad(b"", "empty")
    _bad(b"\xff\xfe\x00garbage", "UTF-8")
    # trace-cmd report lines, other events, headers and the intervals tune event are fine
    text = ("cpus=2\n"
            "kdamond.0-12 [001] ..... 5.000000: damon_aggregated:     target_id=3 nr_regions=1 0-4096: 1 2\n"
            "kdamond.0 12 [001] 5.050000: damon:damon_monitor_intervals_tune: sample_us=400\n"
            "bash 1 [000] 5.060000: sched:sched_switch: prev_comm=bash\n"
            "kdamond.0-12 [001] 5.100000: damon_aggregated:     target_id=3 nr_regions=1 0-4096: 4 0\n")
    rec = parse_record_bytes(text.encode())
    s0, s1 = rec.targets[0].snapshots
    assert rec.targets[0].target_id == 3
    assert (s0.start_us, s0.end_us, s1.start_us, s1.end_us) == (4_900_000, 5_000_000, 5_000_000, 5_100_000)
    # damos_before_apply lines are read like damo does: target_idx becomes the target id
    apply = (b"kdamond.0 1 [0] 2.0: damon:damos_before_apply: "
             b"ctx_idx=0 scheme_idx=0 target_idx=1 nr_regions=1 0-4096: 0 9\n")
    assert parse_record_bytes(apply).targets[0].snapshots[0].regions() == [(0, 4096, 0, 9)]
    # a lone snapshot without the fake one: its duration is unknown, taken as 0
    lone = parse_record_bytes(line.format(t="3.000001", n=1, r="0-4096").encode())
    assert (lone.targets[0].snapshots[0].start_us, lone.targets[0].snapshots[0].end_us) == (3_000_001, 3_000_001)


def test_detection_does_not_trust_zlib_lookalike_text():
    # 'x ' is a valid zlib header (0x78 0x20); a perf line whose comm is 'x' must still parse
    text = b"x 1 [000] 1.0: damon:damon_aggregated: target_id=0 nr_regions=1 0-4096: 1 0\n"
    assert (text[0] << 8 | text[1]) % 31 == 0
    assert detect_format(text) == "perf_script"
    assert parse_record_bytes(text).targets[0].snapshots[0].regions() == [(0, 4096, 1, 0)]


# --------------------------------------------------------------------------- fuzz: only FormatError


def _only_format_error(data: bytes):
    try:
        rec = parse_record_bytes(data, source="fuzz")
    except FormatError:
        return None
    assert isinstance(rec, DamonRecord)
    rec.validate()
    return rec


@TMP_SETTINGS
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    _only_format_error(data)
    _only_format_error(zlib.compress(data))


_GOOD_JSON = json.dumps(MIN_JSON).encode()
_GOOD_Z = zjson(MIN_JSON)
_GOOD_PERF = perf_script_text(parse_record_bytes(_GOOD_Z)).encode()


@TMP_SETTINGS
@given(st.sampled_from([_GOOD_JSON, _GOOD_Z, _GOOD_PERF]), st.data())
def test_fuzz_damaged_files(good, data):
    buf = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del buf[pos:pos + data.draw(st.integers(1, 16))]
    _only_format_error(bytes(buf))


_PERF_TOKENS = st.sampled_from([
    "kdamond.0", "4452", "[000]", "1.5:", "2.25:", "9" * 40 + ":", "damon:damon_aggregated:", "damon_aggregated:",
    "damon:damos_before_apply:", "damon:damon_monitor_intervals_tune:", "target_id=0", "target_id=1",
    "target_id=" + "9" * 5000, "nr_regions=1", "nr_regions=2", "nr_regions=0", "ctx_idx=0", "scheme_idx=0",
    "target_idx=0", "sample_us=5", "0-4096:", "4096-8192:", "0-0:", "8192-4096:", "0-" + "9" * 5000 + ":",
    "0", "20", "-1", "99999999999", "9" * 5000, "x"])


@TMP_SETTINGS
@given(st.lists(st.lists(_PERF_TOKENS, max_size=12).map(" ".join), max_size=8))
def test_fuzz_perf_lines(lines):
    _only_format_error("\n".join(lines).encode())


@TMP_SETTINGS
@given(st.recursive(st.none() | st.booleans() | st.integers(-2, 2**65) | st.floats() | st.text(max_size=6),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
                        st.sampled_from(["target_id", "snapshots", "regions", "start", "end", "start_time",
                                         "end_time", "nr_accesses", "age", "samples", "percent", "usec",
                                         "aggr_intervals", "intervals", "sample_us", "aggr_us",
                                         "ops_update_us", "sz_filter_passed", "scheme_idx", "acma_pid"]),
                        kids, max_size=6), max_leaves=30))
def test_fuzz_json_shapes(obj):
    _only_format_error(json.dumps(obj).encode())
    _only_format_error(json.dumps([{"target_id": 0, "intervals": None, "snapshots": [
        {"start_time": 0, "end_time": 1, "regions": [obj]}]}]).encode())


# --------------------------------------------------------------------------- report details


def test_wss_options():
    rec = DamonRecord(Intervals(), [TargetRecord(0, None, [
        snap(0, 1, [(0, 4096, 0, 0), (4096, 12288, 1, 0)]),
        snap(1, 2, [(0, 4096, 5, 0), (4096, 12288, 0, 0)]),
        snap(2, 3, [(0, 4096, 1, 0), (4096, 12288, 2, 0)])]),
        TargetRecord(9, None, [snap(0, 1, [(0, 100, 1, 0)])])])
    assert wss_distribution(rec, exclude_snapshots=0)[0].values == (100 + 4096, 8192, 12288)
    per = wss_distribution(rec, exclude_snapshots=0, collapse_targets=False, sort_by="time")
    assert per[0].values == (8192, 4096, 12288) and per[9].values == (100,)
    assert wss_distribution(rec, exclude_snapshots=0, acc_thres=2, collapse_targets=False)[0].values == (0, 4096, 8192)
    big_only = wss_distribution(rec, exclude_snapshots=0, sz_thres=5000, collapse_targets=False)
    assert big_only[0].values == (0, 8192, 8192)
    # windows shorter than work_time are merged: the first snapshot's regions, plus later rates
    merged = wss_distribution(rec, exclude_snapshots=0, work_time_us=2, acc_thres=3, collapse_targets=False)
    # snapshots 0 and 1 fill one 2 us window: [0,4096) 0+5, [4096,12288) 1+0; snapshot 2 never fills one
    assert merged[0].values == (4096,)
    assert wss_distribution(rec, exclude_snapshots=5)[0].values == ()
    assert format_wss_report(rec, exclude_snapshots=5) == "# target_id\t0\n# <percentile> <wss>\n# no snapshot\n"
    assert wss_percentiles(rec, exclude_snapshots=5) == {0: []}
    text = format_wss_report(rec, [0, 100], exclude_snapshots=0, all_wss=True)
    assert text.endswith("# avr:\t8225\n0 4196\n1 8192\n2 12288\n")
    for bad in (dict(sort_by="name"), dict(exclude_snapshots=-1), dict(work_time_us=1.5)):
        with pytest.raises(ConfigError):
            wss_distribution(rec, **bad)
    with pytest.raises(ConfigError):
        format_wss_report(rec, [101])


def test_merge_of_short_windows_follows_damo():
    # second snapshot's region straddles two kept regions: the first one it overlaps takes its
    # count, its remainder is placed again, and a part outside everything becomes a new region
    rec = DamonRecord(None, [TargetRecord(0, None, [
        Snapshot(0, 0, [0, 100], [100, 200], [1, 0], [0, 0], times_ns=(0, 400)),
        Snapshot(0, 0, [50], [300], [3], [0], times_ns=(400, 800)),
        Snapshot(0, 1, [0], [10], [7], [0], times_ns=(800, 1200))])])
    d = wss_distribution(rec, exclude_snapshots=0, acc_thres=3)[0]
    # kept: [0,100) 1+3+7=11, [100,200) 0+3=3, [200,300) 3 -> all >= 3
    assert d.values == (300,)
    d = wss_distribution(rec, exclude_snapshots=0, acc_thres=4)[0]
    assert d.values == (100,)


def test_format_size_matches_damo_thresholds():
    assert format_size(1024) == "1024 B"  # a unit only above one of it
    assert format_size(1025) == "1.001 KiB"
    assert format_size(3 << 30) == "3.000 GiB"
    assert format_size(U64_MAX) == "max"
    assert format_size(1234.9, raw_number=True) == "1234"


def test_heatmap_guide_gaps():
    rec = DamonRecord(None, [TargetRecord(1, None, [
        snap(0, 10, [(100, 200, 1, 0), (300, 400, 0, 0), (600, 700, 0, 0)]),
        snap(10, 20, [(100, 250, 1, 0), (280, 400, 0, 0), (600, 800, 0, 0)])]),
        TargetRecord(2, None, [snap(0, 10, [(0, 10, 0, 0)])])])
    g1, g2 = heatmap_guide(rec)
    # gap [200,300) narrows to [250,280); gap [400,600) stays; the widest target comes first
    assert g1.target_id == 1 and g1.ranges == ((100, 250), (280, 400), (600, 800))
    assert g2.ranges == ((0, 10),)
    assert format_heatmap_guide(rec, show_indices=False).splitlines()[:3] == [
        "target_id: 1", "time: [0, 20000) (20000)", "region\t 0: [100, 250) (150)"]


# --------------------------------------------------------------------------- interop with damo


@pytest.fixture(scope="module")
def damo_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("damo")
    rec = sample_record(nr_targets=2, nr_snapshots=30)
    write_record(d / "rec.data", rec)
    write_perf_script(d / "rec.perf", rec)
    lone = DamonRecord(Intervals(), [TargetRecord(4, None, [
        snap(2_000_000, 2_100_000, [(4096, 8192, 3, 1), (8192, 65536, 0, 7), (65536, 1 << 20, 20, 2)])])])
    write_record(d / "lone.data", lone)
    write_perf_script(d / "lone.perf", lone)
    return d, rec, lone


@pytest.mark.damo
def test_damo_version(damo, tmp_path):
    assert damo("version", cwd=tmp_path).strip().startswith("3.4")


@pytest.mark.damo
def test_damo_reports_match_ours(damo, damo_files):
    d, rec, _ = damo_files
    assert (d / "rec.data").is_file()
    out = damo("report", "wss", "--input", "rec.data", "-r", "0", "101", "5", "--exclude_samples", "0",
               "--raw_number", cwd=d)
    assert out == format_wss_report(rec, range(0, 101, 5), exclude_snapshots=0)
    out = damo("report", "wss", "--input", "rec.data", "--per_target", cwd=d)
    assert out == format_wss_report(rec, range(0, 101, 25), raw_number=False, collapse_targets=False)
    out = damo("report", "nr_regions", "--input", "rec.data", "-r", "0", "101", "10", cwd=d)
    assert out == format_nr_regions_report(read_record(d / "rec.data"), range(0, 101, 10))
    out = damo("report", "heatmap", "--guide", "--input", "rec.data", cwd=d)
    assert out == format_heatmap_guide(rec)


@pytest.mark.damo
def test_damo_accepts_our_files(damo, damo_files):
    d, rec, _ = damo_files
    out = damo("report", "access", "--input", "rec.data", "--raw_number", cwd=d)
    assert "intervals: sample 5000 aggr 100000" in out and "total size:" in out
    out = damo("report", "heatmap", "--input", "rec.data", "--resol", "6", "12", cwd=d)
    assert "# x-axis: space" in out
    damo("validate", "--input", "rec.data", "--aggr", "90000", "110000", "--nr_accesses", "0", "20", cwd=d)
    damo("validate", "--input", "lone.data", "--aggr", "90000", "110000", "--nr_accesses", "0", "20", cwd=d)
    # perf-script text (no intervals): damo's wss and guide agree with ours
    perf = read_record(d / "rec.perf")
    out = damo("report", "wss", "--input", "rec.perf", "-r", "1", "101", "1", "--raw_number",
               "--exclude_samples", "0", cwd=d)
    assert out == format_wss_report(perf, exclude_snapshots=0)
    assert out == format_wss_report(rec, exclude_snapshots=0)
    assert damo("report", "heatmap", "--guide", "--input", "lone.perf", cwd=d) == \
        format_heatmap_guide(read_record(d / "lone.perf"))


@pytest.mark.damo
def test_damo_conversions_read_back(damo, damo_files):
    d, rec, lone = damo_files
    damo("convert_record_format", "--record_file", "rec.data", "--format", "json", "--output_file", "conv.json", cwd=d)
    damo("convert_record_format", "--record_file", "lone.data", "--format", "perf_script",
         "--output_file", "lone_conv.perf", cwd=d)
    conv = read_record(d / "conv.json")  # damo's own plain JSON: numbers as strings, sz_filter_passed 0
    assert conv.intervals == rec.intervals
    for a, b in zip(conv.targets, read_record(d / "rec.data").targets):
        assert a.target_id == b.target_id
        assert [(s.start_ns, s.end_ns, s.regions()) for s in a.snapshots] == \
            [(s.start_ns, s.end_ns, s.regions()) for s in b.snapshots]
    assert "0-0: -1 -1" in (d / "lone_conv.perf").read_text()  # damo's fake snapshot
    back = read_record(d / "lone_conv.perf")
    [s] = back.targets[0].snapshots
    assert (s.start_us, s.end_us) == (2_000_000, 2_100_000)
    assert s.regions() == lone.targets[0].snapshots[0].regions()


@pytest.mark.damo
def test_damo_golden_still_matches(damo, golden):
    out = damo("report", "wss", "--input", str(GOLDEN / "damon.data"), "-r", "1", "101", "1", "--raw_number",
               cwd=GOLDEN)
    assert out == expect("report-wss") == format_wss_report(golden)
