"""Recording machinery without qemu: plugin output parsing, trace writing, profiles, replay truth."""

import io
import os
import struct
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from acma.cli import main
from acma.damon import Attrs, Context, Target
from acma.errors import ConfigError, FormatError
from acma.mm.guest import GuestConfig
from acma.sim import Simulation
from acma.tracing import qemu as tq
from acma.tracing.accuracy import TraceAccuracyTracker
from acma.tracing.analysis import profile_trace
from acma.tracing.lackey import compare_pages, elf_image_pages, parse_lackey
from acma.tracing.plugin_output import iter_window_chunks, parse_stats
from acma.tracing.record import RecordOptions, record
from acma.tracing.replay import TraceTruth, load_replay_trace, repeat_trace, retime, trace_length_us
from acma.workloads.trace import Trace, TraceEvents, write_trace

STATS = ("format=acma_pages 1\ninstructions=1000\naccesses=300\nwindow=100\nwindows=3\npage_events=9\nbytes=132\n"
         "vcpus=1\nthread_at=0\nthreads=0\nforks=2\nclone3=0\nwrite_error=0\n")


def windows(*wins):
    """Window records: (first_icount, [(page, exec, write), ...]) ..."""
    out = b""
    for t, pages in wins:
        out += struct.pack("<QI", t, len(pages)) + b"".join(
            struct.pack("<Q", p << 2 | x << 1 | w) for p, x, w in pages)
    return out


def test_parse_stats_reads_every_counter():
    s = parse_stats(STATS)
    assert (s.instructions, s.windows, s.forks, s.vcpus) == (1000, 3, 2, 1)
    assert not s.multithreaded
    assert parse_stats(STATS.replace("vcpus=1", "vcpus=2")).multithreaded


@pytest.mark.parametrize("text, where", [
    (STATS.replace("format=acma_pages 1", "format=other"), "line 1"),
    (STATS.replace("forks=2\n", ""), "forks"),
    (STATS.replace("forks=2", "forks=x"), "forks"),
    (STATS.replace("forks=2", "forks=-1"), "forks"),
    (STATS + "garbage\n", "line 14"),
])
def test_parse_stats_rejects_damage(text, where):
    with pytest.raises(FormatError) as e:
        parse_stats(text, "s.txt")
    assert e.value.where == where


def test_window_chunks_match_a_whole_parse_and_keep_exec_pages_as_reads():
    data = windows((0, [(5, 1, 0), (7, 0, 1)]), (100, [(5, 0, 0)]), (300, [(9, 1, 0), (5, 0, 1), (6, 0, 0)]))
    whole = TraceEvents.from_window_records(data, 1)
    for chunk in (1, 7, 20, 1 << 20):
        parts = list(iter_window_chunks(io.BytesIO(data), 1, chunk_bytes=chunk))
        ev = TraceEvents.concatenate(parts)
        for col in ("time", "pid", "vpn", "write"):
            assert np.array_equal(getattr(ev, col), getattr(whole, col))
    assert whole.vpn.tolist() == [5, 7, 5, 9, 5, 6]
    assert whole.write.tolist() == [False, True, False, False, True, False]


def test_window_chunks_reject_a_truncated_window():
    data = windows((0, [(5, 0, 0), (6, 0, 0)]))[:-3]
    with pytest.raises(FormatError):
        list(iter_window_chunks(io.BytesIO(data), 1, chunk_bytes=8))


@pytest.mark.parametrize("field, kw", [
    ("window", {"window": 0}), ("tick_ns", {"tick_ns": float("nan")}), ("tick_ns", {"tick_ns": 0}),
    ("seed", {"seed": -1}), ("env['A=B']", {"env": {"A=B": "1"}}), ("cwd", {"cwd": "/no/such/dir"}),
    ("stdin", {"stdin": "/no/such/file"}),
])
def test_record_options_are_checked_before_anything_runs(field, kw, tmp_path):
    with pytest.raises(ConfigError) as e:
        record(tmp_path / "x.trace", "true", [], RecordOptions(**kw))
    assert e.value.field == field
    assert not os.listdir(tmp_path)


def test_cli_record_names_a_bad_program_or_output(tmp_path):
    out = CliRunner().invoke(main, ["trace", "record", "-o", str(tmp_path / "x.trace"), "--", "no-such-program-xyz"])
    assert out.exit_code == 2 and "program" in out.output
    out = CliRunner().invoke(main, ["trace", "record", "-o", str(tmp_path / "no" / "x.trace"), "--", "true"])
    assert out.exit_code == 2 and "out" in out.output
    assert not os.listdir(tmp_path)


def test_missing_qemu_names_the_setup_command(monkeypatch, tmp_path):
    monkeypatch.setattr(tq.shutil, "which", lambda name, **kw: None if name == tq.QEMU else "/bin/" + name)
    with pytest.raises(tq.ToolMissing, match="acma trace setup"):
        record(tmp_path / "x.trace", sys.executable, [])
    monkeypatch.setattr(tq.os, "geteuid", lambda: 1000)
    plan = tq.setup_plan()
    assert plan.needed and not plan.as_root and "apt-get install" in plan.message and "qemu-user" in plan.message


def test_plugin_builds_into_the_cache_once(monkeypatch, tmp_path):
    monkeypatch.setenv("ACMA_CACHE_DIR", str(tmp_path))
    so = tq.build_plugin()
    assert so.startswith(str(tmp_path)) and os.path.isfile(so)
    mtime = os.path.getmtime(so)
    assert tq.build_plugin() == so and os.path.getmtime(so) == mtime


def _phased_trace(window=100):
    """Windows 0-9 touch pages 0-19, windows 10-19 touch pages 100-129, window 5 adds one odd page."""
    t, v = [], []
    for w in range(20):
        pages = list(range(20)) if w < 10 else list(range(100, 130))
        if w == 5:
            pages.append(999)
        t += [w * window] * len(pages)
        v += pages
    ev = TraceEvents(np.array(t), np.ones(len(t), np.uint32), np.array(v), np.zeros(len(t), bool))
    return Trace(1.0, {"window_ticks": window}, ev)


def test_profile_finds_the_two_phases_and_ignores_one_odd_window():
    p = profile_trace(_phased_trace())
    assert p.footprint_pages == 51
    assert p.pages_per_window.tolist() == [20] * 5 + [21] + [20] * 4 + [30] * 10
    assert p.new_pages_per_window.tolist() == [20, 0, 0, 0, 0, 1, 0, 0, 0, 0, 30] + [0] * 9
    assert p.jaccard[10] == 1.0 and p.jaccard[1] == 0.0 and p.jaccard[5] == pytest.approx(1 / 21)
    assert [(ph.first, ph.last, ph.distinct_pages) for ph in p.phases] == [(0, 9, 21), (10, 19, 30)]
    assert p.phases[1].start_tick == 1000 and p.phases[1].mean_pages == 30


def test_profile_checks_its_parameters():
    with pytest.raises(ConfigError):
        profile_trace(_phased_trace(), threshold=1.5)
    with pytest.raises(ConfigError):
        profile_trace(_phased_trace(), min_windows=0)


def test_trace_info_cli(tmp_path):
    tr = _phased_trace()
    path = tmp_path / "p.trace"
    write_trace(path, tr.events, tr.tick_ns, dict(tr.meta, program="/bin/x", args=["a"], instructions=2000))
    out = CliRunner().invoke(main, ["trace", "info", str(path)])
    assert out.exit_code == 0, out.output
    assert "footprint    51 pages" in out.output and "phases       2" in out.output
    js = CliRunner().invoke(main, ["trace", "info", str(path), "--json", "--window", "1000"])
    assert js.exit_code == 0 and '"windows": 2' in js.output
    bad = CliRunner().invoke(main, ["trace", "info", str(path), "--threshold", "2"])
    assert bad.exit_code == 2


def test_retime_and_repeat():
    tr = _phased_trace()
    assert retime(tr, 5.0).tick_ns == 5.0
    with pytest.raises(ConfigError):
        retime(tr, 0)
    r = repeat_trace(tr, 3)
    assert len(r.events) == 3 * len(tr.events) and r.meta["repeat_period_ticks"] == 2000
    assert int(r.events.time[len(tr.events)]) == 2000
    assert trace_length_us(retime(r, 1000.0)) == 5900 + 1
    with pytest.raises(ConfigError):
        repeat_trace(tr, 0)


def test_load_replay_trace_covers_a_duration(tmp_path):
    tr = _phased_trace()                        # 1900 ticks of 1 ns: 2 µs
    path = tmp_path / "p.trace"
    write_trace(path, tr.events, tr.tick_ns, tr.meta)
    r = load_replay_trace(path, tick_ns=1000.0, cover_us=10_000)   # 1.9 ms per copy
    assert r.meta["repeat"] == 6 and trace_length_us(r) >= 10_000
    with pytest.raises(ConfigError):
        load_replay_trace(path, cover_us=0)


def test_lackey_parser_and_comparison():
    text = (b"==1== Lackey\nI  00401000,3\n L 00402008,8\n S 1ffefff000,8\n M 00403000,4\nI  00401ffe,4\n"
            b"==1== guest instrs: 2\n")
    lk = parse_lackey(text)
    assert lk.instructions == 2
    assert [hex(p) for p in lk.pages] == ["0x401", "0x402", "0x403", "0x1ffefff"]
    c = compare_pages(np.array([0x401, 0x402, 0x4000, 0x4001]), 2, lk, (0x400, 0x410))
    assert (c.image_plugin, c.image_lackey, c.image_common, c.other_plugin, c.other_lackey) == (2, 3, 2, 2, 1)
    assert c.image_jaccard == pytest.approx(2 / 3)
    with pytest.raises(FormatError):
        parse_lackey(b"I  zz,3\n")
    lo, hi = elf_image_pages(os.path.realpath(sys.executable))
    assert 0 <= lo < hi


def test_trace_truth_and_accuracy_on_a_replayed_trace():
    """A trace touching 64 pages every 1 ms and 64 others once: DAMON's windows against it."""
    ms = 1000
    t, v = [], []
    for k in range(2000):                       # 2 s of 1 ms windows (tick = 1 µs)
        t += [k * ms] * 64
        v += list(range(64))
        if k == 0:
            t += [0] * 64
            v += list(range(4096, 4160))        # a second cluster, touched once
    v += list(range(1 << 20, (1 << 20) + 8))    # a third cluster (vaddr needs three VMAs)
    t += [0] * 8
    order = np.argsort(t, kind="stable")
    ev = TraceEvents(np.array(t)[order], np.ones(len(t), np.uint32), np.array(v)[order], np.zeros(len(t), bool))
    tr = Trace(1000.0, {"window_ticks": ms}, ev)
    sim = Simulation(GuestConfig(size="256 MiB", swap="0", seed=1))
    run = sim.add_trace(tr, vma_gap_pages=16)
    proc = next(iter(run.processes.values()))
    assert len(proc.vmas) == 3
    truth = TraceTruth([run])
    pages, counts = truth.window(proc, 0, 10_000, 10, 1000)
    assert len(pages) == 136 and int((counts == 10).sum()) == 64 and int((counts == 1).sum()) == 72
    for ops in ("vaddr", "paddr"):
        sim = Simulation(GuestConfig(size="256 MiB", swap="0", seed=1))
        run = sim.add_trace(tr, vma_gap_pages=16)
        procs = list(run.processes.values())
        targets = [Target(process=procs[0])] if ops == "vaddr" else [Target(ranges=[(0, 256 << 20)])]
        ctx = Context(sim.guest, ops, targets, Attrs(sample_us=5000, aggr_us=100_000, ops_update_us=1_000_000))
        tk = TraceAccuracyTracker(TraceTruth([run])).attach(ctx)
        sim.run(2_000_000, advance=ctx.run_until)
        s = tk.summary(0, since_us=500_000)
        late = [w for w in tk.windows if w.end_us > 500_000]
        assert all(w.true_wss == 64 * 4096 and w.pages == 136 for w in late), ops
        assert 0 <= s.hot_recall <= 1 and 0 <= s.hot_precision <= 1
        if ops == "vaddr":       # paddr over 256 MiB with 136 pages is DAMON's hard case: no bound
            assert s.hot_recall > 0.9 and s.hot_precision > 0.9, s
            assert s.wss_error_mean < 0.5, s


window_lists = st.lists(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 1), st.integers(0, 1)),
                                 max_size=12), max_size=12)


@given(window_lists, st.integers(1, 200))
def test_chunked_window_reading_equals_one_parse(wins, chunk):
    data = windows(*[(100 * i, pages) for i, pages in enumerate(wins)])
    whole = TraceEvents.from_window_records(data, 3)
    ev = TraceEvents.concatenate(list(iter_window_chunks(io.BytesIO(data), 3, chunk_bytes=chunk)))
    assert ev.vpn.tolist() == whole.vpn.tolist() and ev.time.tolist() == whole.time.tolist()


@given(st.lists(st.lists(st.integers(0, 40), max_size=15), min_size=1, max_size=15), st.integers(1, 4))
def test_profile_matches_python_sets(wins, min_windows):
    """Pages, first touches and Jaccard distances per window against plain Python sets."""
    t = [i * 10 for i, pages in enumerate(wins) for _ in pages]
    v = [p for pages in wins for p in pages]
    if not v:
        return
    ev = TraceEvents(np.array(t), np.zeros(len(t), np.uint32), np.array(v), np.zeros(len(t), bool))
    prof = profile_trace(Trace(1.0, {}, ev), 10, 0.5, min_windows)
    first = t[0] // 10
    sets = [set(p) for p in wins[first:t[-1] // 10 + 1]]
    assert prof.pages_per_window.tolist() == [len(s) for s in sets]
    seen: set = set()
    for i, s in enumerate(sets):
        assert prof.new_pages_per_window[i] == len(s - seen)
        seen |= s
        if i:
            union = sets[i - 1] | s
            want = 1 - len(sets[i - 1] & s) / len(union) if union else 0.0
            assert prof.jaccard[i] == pytest.approx(want)
    assert sum(p.last - p.first + 1 for p in prof.phases) == len(sets)
    assert all(p.last - p.first + 1 >= min_windows for p in prof.phases[:-1])
