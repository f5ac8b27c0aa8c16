"""acma monitor and acma report wss|heatmap: records damo reads, PNG and text heatmaps, clear errors."""


import numpy as np
import pytest
from click.testing import CliRunner

from acma.cli import main
from acma.damon import Attrs
from acma.errors import ConfigError
from acma.io.damo_record import DamonRecord, Intervals, Snapshot, TargetRecord, read_record
from acma.mm.guest import GuestConfig
from acma.monitor import build_monitor, default_duration_us, load_workload, monitor
from acma.report.heatmap import compute_heatmap, format_heatmap_text, heatmap_png_bytes
from acma.report.wss import format_wss_report
from acma.workloads.trace import TraceEvents, write_trace

MIB = 1 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Three regions (so vaddr finds three VMAs and two gaps), the hot one moving phase by phase.
# The third phase is 1050 ms long, so later phase changes fall inside aggregation intervals.
MASIM = """\
a, 33554432
b, 67108864
c, 16777216

only a
1000
a, 0, 4096, 1

b and c
1000
b, 1, 4096, 1
c, 0, 4096, 1

a and c
1050
a, 0, 4096, 1
c, 0, 4096, 1
"""
SMALL = ["--guest-size", "256MiB", "--swap", "256MiB", "--no-progress"]


def acma(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "moving.cfg"
    path.write_text(MASIM)
    return path


@pytest.fixture(scope="module")
def recorded(cfg, tmp_path_factory):
    """A 4 s vaddr record of the masim config, made through the CLI."""
    out = tmp_path_factory.mktemp("rec") / "moving.data"
    r = acma("monitor", cfg, "--duration", "4s", "--seed", 7, "-o", out, *SMALL)
    assert r.exit_code == 0, r.output
    assert "40 snapshots" in r.stdout and str(out) in r.stdout
    return out


# --------------------------------------------------------------------------- acma monitor


def test_record_reads_back_with_the_workload_in_it(recorded):
    rec = read_record(recorded)
    assert rec.intervals == Intervals(5000, 100_000, 1_000_000)
    [t] = rec.targets
    assert t.pid == 1 and t.target_id == 0 and len(t.snapshots) == 40
    for prev, s in zip(t.snapshots, t.snapshots[1:]):
        assert s.start_ns == prev.end_ns                    # contiguous windows
    assert t.snapshots[0].start_us == 0 and t.snapshots[-1].end_us == 4_000_000
    for s in t.snapshots:
        assert 3 <= s.nr_regions <= 1000 and int(s.nr_accesses.max()) <= 20
        assert 100_000 <= s.end_us - s.start_us < 105_000   # cut by an event at most once, by < 5 ms
    # the heap (region a) is hot during "only a" and cold during "b and c"
    heap = 0x5555_0000_0000
    first, second = t.snapshots[5], t.snapshots[15]
    in_a = (first.start >= heap) & (first.end <= heap + 32 * MIB)
    assert in_a.any() and (first.nr_accesses[in_a] >= 15).all() and (first.nr_accesses[~in_a] == 0).all()
    in_a = (second.start >= heap) & (second.end <= heap + 32 * MIB)
    assert (second.nr_accesses[in_a] == 0).all() and (second.nr_accesses[~in_a] >= 15).all()


def test_phase_change_inside_an_aggregation_is_sampled_on_both_sides(cfg):
    run = monitor(cfg, 4_200_000, guest=GuestConfig(size="256 MiB", swap="256 MiB", seed=7))
    s = run.record.targets[0].snapshots[40]                 # [4.0, 4.1) s, the phase changes at 4.05 s
    assert (s.start_us, s.end_us) == (4_000_000, 4_100_000)
    heap = s.start < 0x7F00_0000_0000
    assert 7 <= s.nr_accesses[heap].mean() <= 13            # a was hot for half of the samples
    assert 7 <= s.nr_accesses[~heap].mean() <= 13           # b and c for the other half


def test_same_seed_same_bytes_other_seed_other_bytes(cfg, tmp_path):
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths.append(tmp_path / f"{name}.data")
        r = acma("monitor", cfg, "--duration", "2s", "--seed", seed, "-o", paths[-1], *SMALL)
        assert r.exit_code == 0, r.output
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c


def test_paddr_monitors_the_whole_guest(cfg, tmp_path):
    out = tmp_path / "p.data"
    r = acma("monitor", cfg, "--ops", "paddr", "--duration", "1s", "-o", out, *SMALL)
    assert r.exit_code == 0, r.output
    [t] = read_record(out).targets
    assert t.pid is None
    assert all(int(s.start[0]) == 0 and int(s.end[-1]) == 256 * MIB for s in t.snapshots)
    assert max(int(s.nr_accesses.max()) for s in t.snapshots) > 10
    r = acma("monitor", cfg, "--ops", "paddr", "--range", "0", "64MiB", "--duration", "1s", "-o", out, *SMALL)
    assert r.exit_code == 0, r.output
    assert all(int(s.end[-1]) == 64 * MIB for s in read_record(out).targets[0].snapshots)


def test_fvaddr_sees_the_accesses(cfg):
    run = monitor(cfg, 1_000_000, ops="fvaddr", guest=GuestConfig(size="256 MiB", swap="256 MiB", seed=1))
    [t] = run.record.targets
    assert t.snapshots[0].regions()[0][0] == 0x5555_0000_0000       # the VMAs it started with
    assert max(int(s.nr_accesses.max()) for s in t.snapshots) > 10


def test_trace_workload_one_target_per_pid(tmp_path):
    rng = np.random.default_rng(0)
    times, pids, vpns = [], [], []
    for ms in range(0, 1000, 2):
        for pid, clusters in ((1, (0x1000, 0x40000, 0x80000)), (2, (0x2000, 0x50000, 0x90000))):
            base = clusters[0] if ms < 500 else clusters[1]
            v = list(base + rng.integers(0, 256, 32)) + ([clusters[2]] if ms % 100 == 0 else [])
            times += [ms * 1000] * len(v)
            pids += [pid] * len(v)
            vpns += v
    ev = TraceEvents(time=np.array(times, np.uint64), pid=np.array(pids, np.uint32),
                     vpn=np.array(vpns, np.uint64), write=np.zeros(len(times), bool))
    path = tmp_path / "two.trace"
    write_trace(path, ev, tick_ns=1000.0)
    out = tmp_path / "t.data"
    r = acma("monitor", path, "-o", out, "--guest-size", "256MiB", "--swap", "0", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "trace workload 'two' for 1.000 s" in r.stdout and "2 targets" in r.stdout
    rec = read_record(out)
    assert [(t.target_id, t.pid, len(t.snapshots)) for t in rec.targets] == [(0, 1, 10), (1, 2, 10)]
    for t in rec.targets:
        assert max(int(s.nr_accesses.max()) for s in t.snapshots[:4]) >= 5


def test_demo_workload_and_default_durations(cfg):
    assert default_duration_us(load_workload("demo"), 100_000) == 300_000_000
    assert default_duration_us(load_workload(cfg), 100_000) == 3_100_000     # 3.05 s, whole intervals
    assert default_duration_us(load_workload(cfg), 1_000_000) == 4_000_000
    mon = build_monitor("demo", attrs=Attrs(ops_update_us=1_000_000))
    mon.run(500_000)
    [t] = mon.record().targets
    assert len(t.snapshots) == 5 and t.pid == 1
    assert mon.sim.guest.config.size == "4 GiB"


# --------------------------------------------------------------------------- acma report


def test_report_wss_prints_format_wss_report(recorded):
    rec = read_record(recorded)
    r = acma("report", "wss", recorded)
    assert r.exit_code == 0, r.output
    assert r.stdout == format_wss_report(rec)
    r = acma("report", "wss", recorded, "--range", 0, 101, 25, "--human", "--exclude-snapshots", 0)
    assert r.stdout == format_wss_report(rec, range(0, 101, 25), raw_number=False, exclude_snapshots=0)


def test_report_heatmap_text_and_png(recorded, tmp_path):
    png = tmp_path / "map.png"
    r = acma("report", "heatmap", recorded, "--png", png, "--resol", 8, 40)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    rows = [ln for ln in lines if not ln.startswith("#")]
    assert len(rows) == 8
    assert all(ln.count("|") == 2 and len(ln) == 42 for ln in rows)     # 3 ranges, 40 columns
    heap, _, tail = rows[0].split("|")
    assert set(heap) == {"9"} and set(tail) == {"0"}                   # 0-0.5 s: "only a"
    heap, mmap, tail = rows[3].split("|")
    assert set(heap) == {"0"} and set(mmap) <= {"8", "9"} and set(tail) == {"9"}   # 1.5-2 s: "b and c"
    guide = "\n".join(ln for ln in lines if ln.startswith("#"))
    for words in ("time runs down the rows", "500 ms each", "[0x555500000000, 0x555502000000) 32.000 MiB",
                  "out of 20", "0 = never", "the gaps between them are left out"):
        assert words in guide
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image
    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[0] > 400 and img.shape[1] > 700


def test_heatmap_values_follow_the_regions():
    iv = Intervals(5000, 100_000, 1_000_000)
    tb = 1 << 40
    snaps = [Snapshot.from_regions(0, 100_000, [(0, 4 * MIB, 20, 0), (4 * MIB, 8 * MIB, 0, 0),
                                                (tb, tb + 8 * MIB, 10, 0)]),
             Snapshot.from_regions(100_000, 200_000, [(0, 4 * MIB, 0, 1), (4 * MIB, 6 * MIB, 20, 0),
                                                      (tb, tb + 8 * MIB, 5, 1)])]
    rec = DamonRecord(iv, [TargetRecord(0, 42, snaps)])
    hm = compute_heatmap(rec, time_cells=2, address_cells=4)
    assert [(b.start, b.end, b.count) for b in hm.bands] == [(0, 8 * MIB, 2), (tb, tb + 8 * MIB, 2)]
    assert np.allclose(hm.values[0], [20, 0, 10, 10])
    assert np.allclose(hm.values[1], [0, 20, 5, 5])       # [6, 8) MiB was not monitored: the average skips it
    hm = compute_heatmap(rec, time_cells=1, address_cells=4, address_ranges=[(0, 4 * MIB), (6 * MIB, 10 * MIB)])
    assert np.allclose(hm.values[0][:2], [10, 10])
    assert np.allclose(hm.values[0][2], 0.0) and np.isnan(hm.values[0][3])  # [8, 10) MiB: no region ever
    text = format_heatmap_text(hm)
    assert text.splitlines()[0] == "99|0 "                 # 10 is the hottest cell; [8, 10) MiB is blank
    assert "blank means no region was monitored" in text
    assert heatmap_png_bytes(hm).startswith(PNG_SIGNATURE)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("args,option", [
    (["--ops", "foo"], "--ops"),
    (["--sample", "5xs"], "--sample"),
    (["--sample", "200ms"], "--aggr"),
    (["--aggr", "0"], "--aggr"),
    (["--update", "soon"], "--update"),
    (["--duration", "10ms"], "--duration"),
    (["--min-nr-regions", "2"], "--min-nr-regions"),
    (["--max-nr-regions", "5"], "--max-nr-regions"),
    (["--guest-size", "3MiB"], "--guest-size"),
    (["--guest-size", "200MiB"], "--guest-size"),
    (["--guest-size", "lots"], "--guest-size"),
    (["--swap", "lots"], "--swap"),
    (["--seed", "-1"], "--seed"),
    (["--range", "0", "4096"], "--range"),
    (["--ops", "paddr", "--range", "0", "1GiB"], "--range"),
    (["--ops", "paddr", "--range", "8192", "4096"], "--range"),
    (["--ops", "fvaddr", "--range", "zero", "4096"], "--range"),
])
def test_bad_monitor_options_name_the_option(cfg, tmp_path, args, option):
    out = tmp_path / "never.data"
    r = acma("monitor", cfg, "-o", out, "--guest-size", "256MiB", "--no-progress", *args)
    assert r.exit_code == 2, r.output
    assert f"Invalid value for '{option}'" in r.output
    assert not out.exists()


def test_bad_workloads_say_what_is_allowed(tmp_path):
    r = acma("monitor", tmp_path / "missing.cfg", "--no-progress")
    assert r.exit_code == 2 and "Invalid value for 'WORKLOAD'" in r.output and "'demo', a masim" in r.output
    bad = tmp_path / "bad.cfg"
    bad.write_text("a, 10M\n\np\n100\na, 0, 4096, 1\n")
    r = acma("monitor", bad, "--no-progress")
    assert r.exit_code == 2 and "Invalid value for 'WORKLOAD'" in r.output and "line 1" in r.output
    two = tmp_path / "two.cfg"
    two.write_text("a, 4096000\nb, 4096000\n\np\n100\na, 0, 4096, 1\n")
    r = acma("monitor", two, "--guest-size", "256MiB", "--no-progress", "-o", tmp_path / "x.data")
    assert r.exit_code == 2 and "Invalid value for '--ops'" in r.output and "three VMAs" in r.output
    r = acma("monitor", two, "--ops", "paddr", "--guest-size", "256MiB", "--no-progress", "-o", tmp_path / "x.data",
             "--duration", "200ms")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("args,option", [
    (["heatmap", "--tid", "7"], "--tid"),
    (["heatmap", "--address-range", "8192", "4096"], "--address-range"),
    (["heatmap", "--time-range", "3s", "1s"], "--time-range"),
    (["heatmap", "--time-range", "1x", "2s"], "--time-range"),
    (["heatmap", "--time-range", "10s", "20s"], "--time-range"),
    (["heatmap", "--scale", "loud"], "--scale"),
    (["heatmap", "--resol", "0", "10"], "--resol"),
    (["wss", "--range", "50", "10", "1"], "--range"),
    (["wss", "--sort-by", "name"], "--sort-by"),
])
def test_bad_report_options_name_the_option(recorded, args, option):
    r = acma("report", args[0], recorded, *args[1:])
    assert r.exit_code == 2, r.output
    assert f"Invalid value for '{option}'" in r.output


def test_report_on_a_file_that_is_no_record(tmp_path):
    junk = tmp_path / "junk.data"
    junk.write_bytes(b"\x00\x01 not a record")
    for sub in ("wss", "heatmap"):
        r = acma("report", sub, junk)
        assert r.exit_code == 2 and "Invalid value for 'RECORD'" in r.output and "junk.data" in r.output


def test_demo_command_is_unchanged():
    r = acma("demo", "--minutes", "0")
    assert r.exit_code != 0 and "minutes" in r.output


# --------------------------------------------------------------------------- the real damo


@pytest.mark.damo
def test_damo_reads_the_monitor_record(damo, recorded):
    d = recorded.parent
    out = damo("report", "wss", "--input", recorded, cwd=d)
    assert out.startswith("# <percentile> <wss>") or "# target_id" in out
    assert damo("report", "wss", "--input", recorded, "-r", "1", "101", "1", "--raw_number", cwd=d) == \
        acma("report", "wss", recorded).stdout
    out = damo("report", "heatmap", "--input", recorded, "--stdout_skip_colorset_example", cwd=d)
    assert "# x-axis: space" in out and "# y-axis: time" in out
    damo("validate", "--input", recorded, cwd=d)


@pytest.mark.damo
def test_damo_reads_paddr_and_trace_records(damo, cfg, tmp_path):
    out = tmp_path / "p.data"
    r = acma("monitor", cfg, "--ops", "paddr", "--duration", "2s", "-o", out, *SMALL)
    assert r.exit_code == 0, r.output
    assert damo("report", "wss", "--input", out, "-r", "1", "101", "1", "--raw_number", "--exclude_samples", "0",
                cwd=tmp_path) == format_wss_report(read_record(out), exclude_snapshots=0)
    assert "# x-axis: space" in damo("report", "heatmap", "--input", out, cwd=tmp_path)


def test_monitor_library_validates_too(cfg):
    with pytest.raises(ConfigError) as e:
        monitor(cfg, 50_000, guest=GuestConfig(size="256 MiB", swap=0))
    assert e.value.field == "duration_us"
    with pytest.raises(ConfigError) as e:
        build_monitor(cfg, ops="vaddr", ranges=[(0, 4096)], guest=GuestConfig(size="256 MiB", swap=0))
    assert e.value.field == "ranges"
    with pytest.raises(ConfigError) as e:
        build_monitor(cfg, ops="xaddr")
    assert e.value.field == "ops"
    with pytest.raises(ConfigError) as e:
        load_workload(12)
    assert e.value.field == "workload"
    rec = DamonRecord(Intervals(), [TargetRecord(0, None, [])])
    with pytest.raises(ConfigError):
        compute_heatmap(rec)
