"""The compact page-access trace: round trips, damage detection, atomic writes and imports."""

import json
import math
import os
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acma.errors import ConfigError, FormatError
from acma.workloads.trace import (
    BLOCK_TAG,
    END_TAG,
    MAGIC,
    MAX_BLOCK_EVENTS,
    TraceEvents,
    TraceReader,
    TraceWriter,
    iter_trace_blocks,
    read_trace,
    trace_summary,
    write_trace,
)

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
TMP_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# --------------------------------------------------------------------------- helpers


def make_events(times, pids=None, vpns=None, writes=None):
    n = len(times)
    return TraceEvents(
        np.array(times, np.uint64),
        np.array(pids if pids is not None else [1] * n, np.uint32),
        np.array(vpns if vpns is not None else range(n), np.uint64),
        np.array(writes if writes is not None else [False] * n, bool),
    )


def assert_same(a: TraceEvents, b: TraceEvents):
    for name, dtype in (("time", np.uint64), ("pid", np.uint32), ("vpn", np.uint64), ("write", np.bool_)):
        got, want = getattr(a, name), getattr(b, name)
        assert got.dtype == dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def header(tick_ns=1000.0, meta=b"{}", version=1, magic=MAGIC):
    """A header built from the documented layout, independently of the writer."""
    fixed = struct.pack("<8sIdI", magic, version, tick_ns, len(meta)) + meta
    return fixed + struct.pack("<I", zlib.crc32(fixed))


def block(n, first, cols, crc=None, compress=zlib.compress):
    """A block record built from raw columns, following docs/trace-format.md."""
    head = struct.pack("<IQ", n, first)
    if crc is None:
        crc = zlib.crc32(b"".join(cols), zlib.crc32(head))
    out = BLOCK_TAG + head + struct.pack("<I", crc)
    for col in cols:
        packed = compress(col)
        out += struct.pack("<I", len(packed)) + packed
    return out + struct.pack("<I", zlib.crc32(out))


def raw_cols(times, vpns, pids=None, writes=None):
    """Uncompressed columns for a block, written out longhand."""
    n = len(times)
    pids = pids or [0] * n
    writes = writes or [0] * n
    deltas = struct.pack(f"<{n - 1}I", *(b - a for a, b in zip(times, times[1:])))
    zz = []
    prev = 0
    for v in vpns:
        d = (v - prev) % (1 << 64)
        d = d - (1 << 64) if d >= 1 << 63 else d
        zz.append(((d << 1) ^ (d >> 63)) % (1 << 64))
        prev = v
    bits = bytearray((n + 7) // 8)
    for i, w in enumerate(writes):
        bits[i // 8] |= w << (7 - i % 8)
    return [deltas, struct.pack(f"<{n}I", *pids), struct.pack(f"<{n}Q", *zz), bytes(bits)]


def end(total):
    return END_TAG + struct.pack("<Q", total)


def write_bytes(tmp_path, data, name="t.trc"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# --------------------------------------------------------------------------- strategies


@st.composite
def events_strategy(draw, max_size=200):
    n = draw(st.integers(0, max_size))
    delta = st.one_of(
        st.integers(0, 3), st.integers(0, U32_MAX), st.integers(U32_MAX - 1, U32_MAX + 2), st.integers(0, 1 << 40)
    )
    start = draw(st.integers(0, 1 << 62))
    deltas = draw(st.lists(delta, min_size=n, max_size=n))
    times = np.minimum(start + np.cumsum(np.array(deltas, dtype=object)), U64_MAX).astype(np.uint64) if n else []
    vpn = st.one_of(st.integers(0, 64), st.integers(0, U64_MAX), st.sampled_from([0, U64_MAX, 1 << 63]))
    return make_events(
        times,
        draw(st.lists(st.integers(0, U32_MAX), min_size=n, max_size=n)),
        draw(st.lists(vpn, min_size=n, max_size=n)),
        draw(st.lists(st.booleans(), min_size=n, max_size=n)),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 60), 1 << 60) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


# --------------------------------------------------------------------------- round trips


@TMP_SETTINGS
@given(ev=events_strategy(), block_size=st.integers(1, 64), tick_ns=st.floats(1e-3, 1e9),
       meta=st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_round_trip(tmp_path, ev, block_size, tick_ns, meta):
    p = tmp_path / "rt.trc"
    write_trace(p, ev, tick_ns, meta, block_size=block_size)
    tr = read_trace(p)
    assert tr.tick_ns == tick_ns
    assert tr.meta == meta
    assert_same(tr.events, ev)
    blocks = list(iter_trace_blocks(p))
    assert all(1 <= len(b) <= block_size for b in blocks)
    assert sum(len(b) for b in blocks) == len(ev)


@TMP_SETTINGS
@given(ev=events_strategy(), block_size=st.integers(1, 32), cuts=st.lists(st.integers(0, 200), max_size=6))
def test_streaming_writer_writes_the_same_bytes(tmp_path, ev, block_size, cuts):
    whole, streamed = tmp_path / "whole.trc", tmp_path / "streamed.trc"
    write_trace(whole, ev, block_size=block_size)
    bounds = sorted({0, len(ev), *(c for c in cuts if c <= len(ev))})
    with TraceWriter(streamed, block_size=block_size) as w:
        for a, b in zip(bounds, bounds[1:]):
            w.append(ev[a:b])
    assert whole.read_bytes() == streamed.read_bytes()


def test_empty_trace(tmp_path):
    p = tmp_path / "empty.trc"
    write_trace(p, make_events([]))
    tr = read_trace(p)
    assert len(tr.events) == 0 and tr.meta == {} and tr.tick_ns == 1000.0
    assert list(iter_trace_blocks(p)) == []
    assert p.read_bytes() == header() + end(0)


def test_single_event(tmp_path):
    p = tmp_path / "one.trc"
    ev = make_events([U64_MAX], [U32_MAX], [U64_MAX], [True])
    write_trace(p, ev, tick_ns=4.0, meta={"program": "gzip"})
    tr = read_trace(p)
    assert_same(tr.events, ev)
    assert tr.tick_ns == 4.0 and tr.meta == {"program": "gzip"}


def test_big_time_delta_starts_a_new_block(tmp_path):
    p = tmp_path / "gap.trc"
    times = [0, U32_MAX, 2 * U32_MAX + 1, 2 * U32_MAX + 1, 1 << 63]
    write_trace(p, make_events(times))
    blocks = list(iter_trace_blocks(p))
    assert [len(b) for b in blocks] == [2, 2, 1]
    assert_same(read_trace(p).events, make_events(times))


def test_many_blocks_and_default_block_size(tmp_path):
    rng = np.random.default_rng(7)
    n = MAX_BLOCK_EVENTS + 5
    ev = make_events(np.cumsum(rng.integers(0, 9, n)), rng.integers(0, 3, n), rng.integers(0, 1 << 40, n),
                     rng.random(n) < 0.5)
    p = tmp_path / "big.trc"
    write_trace(p, ev)
    assert [len(b) for b in iter_trace_blocks(p)] == [MAX_BLOCK_EVENTS, 5]
    write_trace(p, ev, block_size=100_000)
    assert len(list(iter_trace_blocks(p))) == 11
    assert_same(read_trace(p).events, ev)


def test_file_matches_the_documented_layout(tmp_path):
    """A file built by hand from docs/trace-format.md reads back, and the writer produces it."""
    times, vpns, pids, writes = [5, 5, 9, 1 << 33], [0x7F00, 0x7EFF, 3, 3], [1, 1, 2, 1], [1, 0, 0, 1]
    meta = json.dumps({"program": "x"}, separators=(",", ":")).encode()
    data = (header(250.0, meta) + block(3, 5, raw_cols(times[:3], vpns[:3], pids[:3], writes[:3]))
            + block(1, 1 << 33, raw_cols(times[3:], vpns[3:], pids[3:], writes[3:])) + end(4))
    p = write_bytes(tmp_path, data)
    ev = make_events(times, pids, vpns, writes)
    assert_same(read_trace(p).events, ev)
    q = tmp_path / "w.trc"
    write_trace(q, ev, 250.0, {"program": "x"})
    assert q.read_bytes() == data


def test_vpn_deltas_compress_well(tmp_path):
    n = 200_000
    ev = make_events(np.arange(n) // 10, [3] * n, 0x7F0000000 + np.arange(n) % 5000, np.arange(n) % 3 == 0)
    p = tmp_path / "seq.trc"
    write_trace(p, ev)
    assert os.path.getsize(p) < n  # 21 bytes per event raw; well under one compressed
    assert_same(read_trace(p).events, ev)


# --------------------------------------------------------------------------- writer validation


@pytest.mark.parametrize("kwargs, field", [
    (dict(time=[1, 2], pid=[0], vpn=[0, 1], write=[0, 1]), "events"),
    (dict(time=[2, 1], pid=[0, 0], vpn=[0, 1], write=[0, 1]), "events.time[1]"),
    (dict(time=[-1, 2], pid=[0, 0], vpn=[0, 1], write=[0, 1]), "events.time[0]"),
    (dict(time=[1, 2], pid=[0, -3], vpn=[0, 1], write=[0, 1]), "events.pid[1]"),
    (dict(time=[1, 2], pid=[0, 1 << 32], vpn=[0, 1], write=[0, 1]), "events.pid[1]"),
    (dict(time=[1, 2], pid=[0, 0], vpn=[-5, 1], write=[0, 1]), "events.vpn[0]"),
    (dict(time=[1, 2], pid=[0, 0], vpn=[0, 1], write=[0, 2]), "events.write[1]"),
    (dict(time=[1.5, 2], pid=[0, 0], vpn=[0, 1], write=[0, 1]), "events.time"),
    (dict(time=[[1, 2]], pid=[[0, 0]], vpn=[[0, 1]], write=[[0, 1]]), "events.time"),
    (dict(time=[1 << 64, 1], pid=[0, 0], vpn=[0, 1], write=[0, 1]), "events.time"),
])
def test_bad_events_raise_config_error(kwargs, field):
    with pytest.raises(ConfigError) as e:
        TraceEvents(**kwargs)
    assert e.value.field == field


@pytest.mark.parametrize("tick_ns", [0, -1.0, math.nan, math.inf, "1000", True, None])
def test_bad_tick_ns(tmp_path, tick_ns):
    with pytest.raises(ConfigError, match="tick_ns"):
        write_trace(tmp_path / "x.trc", make_events([1]), tick_ns=tick_ns)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("meta", [{"f": object()}, {"nan": math.nan}, [1, 2], "text", {(1, 2): 3}])
def test_bad_meta(tmp_path, meta):
    with pytest.raises(ConfigError, match="meta"):
        write_trace(tmp_path / "x.trc", make_events([1]), meta=meta)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("block_size", [0, MAX_BLOCK_EVENTS + 1, 2.0, True])
def test_bad_block_size(tmp_path, block_size):
    with pytest.raises(ConfigError, match="block_size"):
        write_trace(tmp_path / "x.trc", make_events([1]), block_size=block_size)


def test_writer_rejects_chunks_going_back_in_time_and_non_events(tmp_path):
    p = tmp_path / "x.trc"
    with pytest.raises(ConfigError, match="events.time"):
        with TraceWriter(p) as w:
            w.append(make_events([5, 10]))
            w.append(make_events([9]))
    with pytest.raises(ConfigError, match="TraceEvents"):
        write_trace(p, {"time": [1]})
    assert os.listdir(tmp_path) == []


def test_events_accepts_numpy_and_lists():
    ev = TraceEvents(np.array([1, 2], np.int32), [0, 7], np.array([3, 4], np.uint8), [True, False])
    assert_same(ev, make_events([1, 2], [0, 7], [3, 4], [True, False]))
    assert_same(TraceEvents([], [], [], []), make_events([]))
    assert len(ev[1:]) == 1
    with pytest.raises(TypeError):
        ev[0]


# --------------------------------------------------------------------------- atomic publication


def test_exception_in_writer_leaves_no_file(tmp_path):
    p = tmp_path / "x.trc"
    with pytest.raises(RuntimeError):
        with TraceWriter(p, block_size=2) as w:
            w.append(make_events(range(10)))
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "x.trc"
    write_trace(p, make_events([1, 2]))
    old = p.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk gone"):
        write_trace(p, make_events([3, 4, 5]))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["x.trc"]
    assert p.read_bytes() == old


def test_abort_and_close_are_idempotent(tmp_path):
    p = tmp_path / "x.trc"
    w = TraceWriter(p)
    w.append(make_events([1]))
    w.abort()
    w.abort()
    w.close()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError):
        w.append(make_events([2]))
    w = TraceWriter(p)
    w.close()
    w.close()
    assert os.listdir(tmp_path) == ["x.trc"]


# --------------------------------------------------------------------------- damage detection


def sample_file(tmp_path):
    """A small multi-block file: header with metadata, four blocks, end marker."""
    ev = make_events([0, 1, 1, 7, 7, 9, 1 << 35, (1 << 35) + 2], [1, 1, 2, 2, 1, 1, 3, 3],
                     [10, 11, 9, 1 << 40, 5, 5, 0, U64_MAX], [0, 1, 0, 1, 1, 0, 0, 1])
    p = tmp_path / "sample.trc"
    write_trace(p, ev, 2.5, {"program": "test", "window": 100}, block_size=3)
    return p.read_bytes()


def format_error(path):
    with pytest.raises(FormatError) as e:
        read_trace(path)
    assert e.value.source == str(path)
    return e.value


def test_every_single_byte_flip_is_detected(tmp_path):
    data = sample_file(tmp_path)
    for off in range(len(data)):
        for xor in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[off] ^= xor
            format_error(write_bytes(tmp_path, damaged, "flip.trc"))


def test_every_truncation_is_detected(tmp_path):
    data = sample_file(tmp_path)
    for size in range(len(data)):
        format_error(write_bytes(tmp_path, data[:size], "cut.trc"))


@TMP_SETTINGS
@given(ev=events_strategy(max_size=60), data=st.data())
def test_random_damage_is_always_a_format_error(tmp_path, ev, data):
    p = tmp_path / "r.trc"
    write_trace(p, ev, meta={"k": "v"}, block_size=16)
    raw = p.read_bytes()
    kind = data.draw(st.sampled_from(["flip", "truncate", "append"]))
    if kind == "flip":
        off = data.draw(st.integers(0, len(raw) - 1))
        damaged = bytearray(raw)
        damaged[off] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        damaged = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        damaged = raw + data.draw(st.binary(min_size=1, max_size=20))
    p.write_bytes(bytes(damaged))
    with pytest.raises(FormatError):
        read_trace(p)
    with pytest.raises(FormatError):
        for _ in iter_trace_blocks(p):
            pass


ONE_BLOCK = block(2, 10, raw_cols([10, 12], [4, 5]))


@pytest.mark.parametrize("data, match, where", [
    (b"", "truncated header", "byte 0"),
    (b"NOTATRC1" + header()[8:] + end(0), "bad magic", "byte 0"),
    (b"\x7fELF\x02\x01\x01\x00", "bad magic", "byte 0"),
    (header(version=2) + end(0), "unknown format version 2", "byte 8"),
    (header()[:20], "truncated header", "byte 0"),
    (header(meta=b'{"a": 1}')[:27], "truncated metadata", "byte 20"),
    (header(meta=b'{"a": 1}')[:33], "truncated header CRC", "byte 32"),
    (header(meta=b"[1, 2]") + end(0), "not an object", "byte 24"),
    (header(meta=b"{bad") + end(0), "not UTF-8 JSON", "byte 24"),
    (header(meta=b'"\xff"') + end(0), "not UTF-8 JSON", "byte 24"),
    (header(tick_ns=0.0) + end(0), "tick_ns", "byte 12"),
    (header(tick_ns=math.nan) + end(0), "tick_ns", "byte 12"),
    (header() + block(2, 10, raw_cols([10, 12], [4, 5]), crc=1) + end(2), "CRC mismatch", "block 0"),
    (header() + ONE_BLOCK[:-7], "past end of file", "block 0, write column"),
    (header() + ONE_BLOCK[:-1], "truncated block record CRC", "block 0"),
    (header() + ONE_BLOCK[:-1] + b"?" + end(2), "block record CRC mismatch", "block 0"),
    (header() + ONE_BLOCK[:10], "truncated block header", "block 0"),
    (header() + block(2, 10, raw_cols([10, 12], [4, 5]), compress=lambda c: b"\x78\x9c" + c) + end(2),
     "decompression failed", "block 0, time column"),
    (header() + block(2, 10, raw_cols([10, 12], [4, 5]), compress=lambda c: zlib.compress(c)[:-4]) + end(2),
     "decompression failed", "block 0, time column"),
    (header() + block(2, 10, raw_cols([10, 12], [4, 5]), compress=lambda c: zlib.compress(c) + b"x") + end(2),
     "stray bytes", "block 0, time column"),
    (header() + block(2, 10, [b"\0" * 8, b"\0" * 8, b"\0" * 16, b"\0"]) + end(2),
     "column length does not match", "block 0, time column"),
    (header() + block(2, 10, [b"\0" * 4, b"\0" * 4, b"\0" * 16, b"\0"]) + end(2),
     "column length does not match", "block 0, pid column"),
    (header() + block(0, 10, [b"", b"", b"", b""]) + end(0), "event count 0", "block 0"),
    (header() + block(MAX_BLOCK_EVENTS + 1, 0, [b""] * 4) + end(0), "event count", "block 0"),
    (header() + ONE_BLOCK + block(1, 11, raw_cols([11], [4])) + end(3), "time goes backwards", "block 1"),
    (header() + block(2, U64_MAX, raw_cols([0, 1], [4, 5])) + end(2), "overflow", "block 0"),
    (header() + ONE_BLOCK, "missing end marker", "byte"),
    (header() + ONE_BLOCK + b"TE", "missing end marker", "byte"),
    (header() + ONE_BLOCK + b"JUNK" + end(2), "unknown record tag", "byte"),
    (header() + ONE_BLOCK + end(3), "end marker counts 3 events, the blocks hold 2", "byte"),
    (header() + ONE_BLOCK + end(2)[:7], "truncated end marker", "byte"),
    (header() + ONE_BLOCK + end(2) + b"\0", "trailing garbage: 1 bytes", "byte"),
])
def test_each_format_error(tmp_path, data, match, where):
    err = format_error(write_bytes(tmp_path, data))
    assert match in err.problem
    assert err.where.startswith(where)


def test_reference_blocks_are_valid(tmp_path):
    """The hand-built pieces the error cases damage are themselves correct."""
    p = write_bytes(tmp_path, header() + ONE_BLOCK + block(1, 12, raw_cols([12], [4])) + end(3))
    assert_same(read_trace(p).events, make_events([10, 12, 12], [0, 0, 0], [4, 5, 4]))


def test_streaming_reader_yields_blocks_before_a_late_error(tmp_path):
    p = write_bytes(tmp_path, header() + ONE_BLOCK + ONE_BLOCK[:-1])
    it = iter_trace_blocks(p)
    assert len(next(it)) == 2
    with pytest.raises(FormatError, match="block 1"):
        next(it)


def test_reader_exposes_header_and_rereads(tmp_path):
    p = tmp_path / "h.trc"
    write_trace(p, make_events([1, 2, 3]), 4.0, {"program": "gzip"}, block_size=2)
    with TraceReader(p) as r:
        assert (r.tick_ns, r.meta) == (4.0, {"program": "gzip"})
        assert [len(b) for b in r.blocks()] == [2, 1]
        assert [len(b) for b in r.blocks()] == [2, 1]


# --------------------------------------------------------------------------- window records


def windows(*wins):
    """Windowed records (real-inputs.md §1): (first_icount, [(page, exec, write), ...])."""
    out = b""
    for first, pages in wins:
        out += struct.pack("<QI", first, len(pages))
        out += b"".join(struct.pack("<Q", page << 2 | x << 1 | w) for page, x, w in pages)
    return out


def test_window_records_import(tmp_path):
    data = windows((0, [(0x401, 1, 0), (0x7FFF0, 0, 1), (0x7FFF1, 0, 0)]), (100000, []),
                   (200000, [(0x401, 1, 0), (1 << 61, 1, 1)]))
    ev = TraceEvents.from_window_records(data, pid=42)
    assert_same(ev, make_events([0, 0, 0, 200000, 200000], [42] * 5,
                                [0x401, 0x7FFF0, 0x7FFF1, 0x401, 1 << 61], [0, 1, 0, 0, 1]))
    p = tmp_path / "w.trc"
    write_trace(p, ev, tick_ns=4.0, meta={"window_ticks": 100000})
    assert_same(read_trace(p).events, ev)
    assert len(TraceEvents.from_window_records(bytearray(), pid=0)) == 0
    assert len(TraceEvents.from_window_records(memoryview(data), pid=0)) == 5


@pytest.mark.parametrize("data, match", [
    (windows((0, [(1, 0, 0)]))[:-1], "truncated window:"),
    (windows((0, [(1, 0, 0)])) + b"\0" * 11, "truncated window header"),
    (windows((50, [(1, 0, 0)]), (10, [(2, 0, 0)])), "before the previous"),
])
def test_window_records_errors(data, match):
    with pytest.raises(FormatError, match=match) as e:
        TraceEvents.from_window_records(data, pid=1, source="gzip.bin")
    assert e.value.source == "gzip.bin"


@pytest.mark.parametrize("pid", [-1, 1 << 32, 1.0, True])
def test_window_records_bad_pid(pid):
    with pytest.raises(ConfigError, match="pid"):
        TraceEvents.from_window_records(windows(), pid=pid)


# --------------------------------------------------------------------------- summary


def test_trace_summary(tmp_path):
    ev = make_events([100, 150, 199, 200, 250, 450], [1, 1, 1, 1, 2, 1], [7, 7, 8, 7, 7, 9],
                     [0, 1, 0, 0, 0, 0])
    p = tmp_path / "s.trc"
    write_trace(p, ev, tick_ns=1e6, meta={"window_ticks": 100})
    s = trace_summary(read_trace(p))
    assert (s.events, s.footprint_pages, s.duration_ticks, s.window_ticks) == (6, 4, 350, 100)
    assert s.duration_s == pytest.approx(0.35)
    assert s.pages_per_window.tolist() == [2, 2, 0, 1]
    assert trace_summary(read_trace(p), window_ticks=1000).pages_per_window.tolist() == [4]
    write_trace(p, ev, tick_ns=1e6)
    assert trace_summary(read_trace(p)).window_ticks == 1000  # one second of ticks
    with pytest.raises(ConfigError, match="window_ticks"):
        trace_summary(read_trace(p), window_ticks=0)


def test_trace_summary_empty(tmp_path):
    p = tmp_path / "e.trc"
    write_trace(p, make_events([]))
    s = trace_summary(read_trace(p))
    assert (s.events, s.footprint_pages, s.duration_ticks, s.duration_s, len(s.pages_per_window)) == (0, 0, 0, 0.0, 0)


# --------------------------------------------------------------------------- speed


@pytest.mark.slow
def test_ten_million_events_read_in_a_few_seconds(tmp_path):
    rng = np.random.default_rng(3)
    n = 10_000_000
    ev = make_events(np.cumsum(rng.integers(0, 50, n)), rng.integers(0, 4, n),
                     0x7F0000000 + np.cumsum(rng.integers(-3, 4, n)) % 100_000, rng.random(n) < 0.3)
    p = tmp_path / "big.trc"
    write_trace(p, ev)
    t0 = time.perf_counter()
    tr = read_trace(p)
    assert time.perf_counter() - t0 < 5.0
    assert_same(tr.events, ev)
