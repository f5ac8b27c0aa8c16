"""Fuzzing every parser and every C entry point through its checked wrapper (issue 9).

The contract: whatever the input, acma answers with a result or with one of its own errors
(:class:`acma.errors.AcmaError` and its subclasses), a ValueError or TypeError, or MemoryError.
Nothing else escapes, the interpreter never crashes, and after every call on a guest, failed or
not, ``check()`` (every invariant, recounted in C) still passes.

Targets: masim configs (text, bytes, mutated valid files), trace files (arbitrary bytes,
mutated valid files, hand-built records with correct CRCs around bad fields, window records),
the trace writer's inputs, ``GuestConfig.resolve``/``Guest``/``Costs``, every public method of
``acma._core.CoreMem`` plus ``CoreMem()`` itself and ``first_arrival_after``, the Guest facade,
C snapshots (``acma_mem_load``) and checkpoint files, damo records in all three formats, the
DAMON region operations, ``three_regions`` and ``Context``, and ``Workload.from_dict``.
``test_every_core_method_is_fuzzed`` fails when a method is added to CoreMem without a fuzz
signature here.

Default run: a few hundred examples per target (well under a minute). Long run, opt-in:
``pytest -m slow tests/test_fuzz.py``; ``ACMA_FUZZ_SCALE=10`` multiplies its example counts.
Under ``.ci/sanitize.sh`` AddressSanitizer and UBSan watch the C core during all of it
(``.ci/sanitize.sh -m slow -k test_fuzz`` for the long run).
Coverage-guided, also opt-in, with atheris installed: ``python tests/test_fuzz.py TARGET
CORPUS_DIR [libFuzzer options]`` for TARGET masim, trace, damo or snapshot (see the end).
docs/robustness.md lists the bad inputs, the runs and what they found.

Inputs that reach a known, reported and not yet fixed bug are steered around (``KNOWN_BUGS``),
so everything else keeps being fuzzed; delete an entry when its bug is fixed and the fuzzer
covers that input again. Work limits (``RUN_TOUCH_BUDGET``, ``MAX_FUZZ_*``) keep a call from
legitimately simulating for hours or allocating gigabytes; they are limits, not bugs.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from acma import _core
from acma.errors import AcmaError, ConfigError, FormatError
from acma.mm.costs import Costs
from acma.mm.guest import Guest, GuestConfig, NodeConfig
from acma.units import parse_size
from acma.workloads.masim import (
    MasimConfig,
    MasimPattern,
    MasimPhase,
    MasimRegion,
    format_masim,
    load_masim,
    masim_to_workload,
    parse_masim,
)
from acma.workloads.model import Workload
from acma.workloads import trace as trace_mod
from acma.workloads.trace import (
    BLOCK_TAG,
    END_TAG,
    MAGIC,
    Trace,
    TraceEvents,
    iter_trace_blocks,
    read_trace,
    write_trace,
)

# Wild numpy scalars make numpy warn (overflow, invalid value) inside acma's argument handling;
# the errors that matter are asserted, the warnings are expected noise.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

MIB = 1 << 20
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1

# What may come out of any call: acma's errors, ValueError/TypeError, MemoryError.
ALLOWED = (AcmaError, ValueError, TypeError, MemoryError)

# Known bugs found by this file and reported, not fixed yet. Each guard below that steers
# around one names it; delete the entry once the bug is fixed, and the guard turns itself off.
KNOWN_BUGS = {
    "core_init_unchecked": "acma/_core.py CoreMem.__init__: block_pages=0 raises ZeroDivisionError, "
    "numpy-integer sizes raise OverflowError (nr_pages // np.uint8(255)), "
    "costs that is not a dict of known names raises AttributeError, cost values are not checked "
    "(negative, NaN or huge costs reach C: undefined float-to-integer casts in charge_stall), Python "
    "ints > 255 in the block arrays raise OverflowError, numpy ints wrap silently",
    "regions_coerce": "acma/damon/regions.py Regions.from_ranges and set_ranges store the ranges "
    "with numpy's uint64 conversion: a negative or >= 2**64 bound raises OverflowError",
}


def bug(name: str) -> bool:
    """Whether the known bug ``name`` is still open (so inputs reaching it are skipped)."""
    return name in KNOWN_BUGS


def _scale(n: int) -> int:
    return max(1, int(n * float(os.environ.get("ACMA_FUZZ_SCALE", "1"))))


HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
          HealthCheck.function_scoped_fixture, HealthCheck.large_base_example]


def quick(n: int):
    """Settings of a default-run fuzz test."""
    return settings(max_examples=n, deadline=None, suppress_health_check=HEALTH)


def long(n: int):
    """Settings of the opt-in long run (``-m slow``), scaled by ACMA_FUZZ_SCALE."""
    return settings(max_examples=_scale(n), deadline=None, suppress_health_check=HEALTH)


def twin(body, quick_n: int, long_n: int, **strategies):
    """A short default test and a long ``slow`` one from one body and one set of strategies."""
    short = quick(quick_n)(given(**strategies)(body))
    soak = pytest.mark.slow(long(long_n)(given(**strategies)(body)))
    return short, soak


def call(fn, *args, **kwargs):
    """(True, result) or (False, exception) for an allowed exception; anything else propagates."""
    try:
        return True, fn(*args, **kwargs)
    except ALLOWED as e:
        return False, e


# --------------------------------------------------------------------------- wild values

EDGE_INTS = (0, 1, 2, 3, -1, -2, 7, 63, 64, 255, 256, 511, 512, 1023, 1024, 4096, 65535, 65536,
             2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1,
             2**64, 2**100, 2**1024, -(2**31), -(2**63), -(2**64), -(2**1024))
ODD_OBJECTS = (None, "", "0", "1", "4 KiB", "-1", "nan", "\x00", b"", b"\x00\x01", [], [1], (), (0,), {},
               {"a": 1}, True, False, 1j, object(), range(3), Ellipsis)
NUMPY_SCALARS = (np.int8(-1), np.uint8(255), np.int32(-(2**31)), np.uint32(U32_MAX), np.int64(-1),
                 np.uint64(U64_MAX), np.float64("nan"), np.float32(1.5), np.float64("inf"),
                 np.bool_(True), np.uint64(3), np.int64(2**40))


def opaque(strategy):
    """One branch of an enclosing one_of, however many it has inside (one_of flattens nested
    one_ofs and drops repeated branches, which would skew every weighting below)."""
    return strategy.map(lambda x: x)


def weighted(*choices):
    """Pick a strategy by weight: ``weighted((3, plausible), (1, wild))``. Shrinks to the first."""
    total = sum(w for w, _ in choices)

    @st.composite
    def pick(draw):
        k = draw(st.integers(0, total - 1))
        for w, strategy in choices:
            if k < w:
                return draw(strategy)
            k -= w
    return pick()


wild_ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers(-5, 5000), st.integers())
wild_floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.5, -1.0, 1e9, 1e9 + 1, 1e300,
                                                      5e-324, math.nan, math.inf, -math.inf]))
wild = opaque(st.one_of(wild_ints, wild_floats, st.sampled_from(ODD_OBJECTS), st.sampled_from(NUMPY_SCALARS),
                        st.text(max_size=6)))


def _int_like(x) -> bool:
    """What the wrappers' _u32/_u64 take for an integer: int (bool included) or a numpy integer."""
    return isinstance(x, (int, np.integer))


def _float_overflows(x) -> bool:
    """float(x) would raise OverflowError (an int too large for a double)."""
    return _int_like(x) and abs(int(x)) >= 2**1023


def mostly(plausible, weight: int = 2):
    """Plausible values ``weight`` times as often as wild ones."""
    return weighted((weight, plausible), (1, wild))


def wild_arrays(dtype, elements, max_len: int = 12):
    """Arrays of ``dtype`` built from ``elements``, and every way to get one wrong."""
    base = st.lists(elements, max_size=max_len)

    def build(xs, dt=dtype):
        """Integers wrapped to 64 bits, then cast as C would (numpy's unsafe cast)."""
        return np.array([int(x) % 2**64 for x in xs], dtype=np.uint64).astype(dt)

    good = base.map(build)
    bad = opaque(st.one_of(
        base.map(lambda xs: build(xs, np.int64)),
        base.map(lambda xs: build(xs, np.float64)),
        base.map(lambda xs: build(xs, np.uint8)),
        base.map(lambda xs: np.array(xs + [None], dtype=object)[:-1]),
        base.map(lambda xs: build(xs, np.dtype(dtype).newbyteorder(">"))),
        base.map(lambda xs: np.repeat(build(xs), 2)[::2]),          # non-contiguous
        base.map(lambda xs: build(xs + xs).reshape(2, -1)),        # 2-D
        base.map(lambda xs: build(xs)[None, :].T),                  # 2-D column
        base.map(lambda xs: _readonly(build(xs))),
        base.map(lambda xs: build(xs).astype(bool)),
        base,                                                        # a list
        st.just(np.zeros((), dtype=dtype)),                         # 0-d
        st.just(np.zeros(0, dtype=dtype)),
        wild,
    ))
    return weighted((3, good), (2, bad))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------- masim configs

TEXT_TOKENS = [",", ", ", "\n", "\n\n", " ", "\t", "#", "# c\n", "-1", "0", "1", "+5", "007",
               "99999999999999999999999999999999999999999999", "ro", "wo", "rw", "none", "xx", "\r",
               "\r\n", "\0", "é", "\u2028", "10M", "1e3", "nan", "4096", "2147483648", "a", "b"]

masim_chars = st.sampled_from(list("ab ,\n\t#0123456789-+rowne\r\0é"))
masim_texts = st.one_of(
    st.text(max_size=400),
    st.text(masim_chars, max_size=400),
    st.lists(st.sampled_from(TEXT_TOKENS), max_size=60).map("".join),
)

_NAME = st.text(st.sampled_from(list("abcxyz_-. 09é")), min_size=1, max_size=6).filter(
    lambda s: s == s.strip() and not s.startswith("#"))


@st.composite
def valid_masim_texts(draw):
    names = draw(st.lists(_NAME, min_size=1, max_size=4, unique=True))
    regions = tuple(MasimRegion(n, draw(st.sampled_from([1, 4096, 10 << 20, 1 << 40]) | st.integers(1, 1 << 40)),
                                draw(st.none() | st.just("data.bin"))) for n in names)
    pattern = st.builds(MasimPattern, region=st.sampled_from(names), random=st.booleans(),
                        stride=st.integers(1, 2**31 - 1), probability=st.integers(1, 100),
                        rw=st.sampled_from(["ro", "wo", "rw"]))
    phases = draw(st.lists(st.builds(MasimPhase, name=_NAME, time_ms=st.integers(1, 10**9),
                                     patterns=st.lists(pattern, min_size=1, max_size=3).map(tuple)),
                           min_size=1, max_size=3))
    return format_masim(MasimConfig(regions, tuple(phases)))


text_edits = st.lists(st.tuples(st.sampled_from(["delete", "insert", "replace", "dup_line", "swap_lines",
                                                 "truncate", "digits"]),
                                st.integers(0, 10_000), st.integers(0, 10_000), st.sampled_from(TEXT_TOKENS)),
                      min_size=1, max_size=4)


def mutate_text(text: str, edits) -> str:
    for op, a, b, token in edits:
        n = len(text)
        i, j = sorted((a % (n + 1), b % (n + 1)))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + token + text[i:]
        elif op == "replace":
            text = text[:i] + token + text[min(n, i + 1):]
        elif op == "truncate":
            text = text[:i]
        elif op == "digits":
            text = text[:i] + "".join("9" if c.isdigit() else c for c in text[i:j]) + "0" * (b % 5) + text[j:]
        else:
            lines = text.split("\n")
            k, m = a % len(lines), b % len(lines)
            if op == "dup_line":
                lines.insert(k, lines[k])
            else:
                lines[k], lines[m] = lines[m], lines[k]
            text = "\n".join(lines)
    return text


def check_masim(text: str, default_rw="wo") -> None:
    ok, got = call(parse_masim, text, "fuzz.cfg", default_rw)
    if not ok:
        assert isinstance(got, (FormatError, ConfigError)), repr(got)
        if isinstance(got, FormatError):
            assert got.source == "fuzz.cfg"
            assert got.where.startswith("line ")
            assert 1 <= int(got.where[5:]) <= text.count("\n") + 1, got
        return
    assert isinstance(got, MasimConfig)
    assert parse_masim(format_masim(got), "again.cfg") == got   # what parses, formats back
    ok, wl = call(masim_to_workload, got)
    assert ok or isinstance(wl, ConfigError), repr(wl)
    if ok:
        assert Workload.from_dict(wl.to_dict()) == wl


def _masim_text(text, default_rw):
    check_masim(text, default_rw)


test_masim_text, test_masim_text_long = twin(
    _masim_text, 400, 40_000, text=masim_texts, default_rw=st.sampled_from(["wo", "ro", "rw"]) | wild)


def _masim_mutated(text, edits):
    check_masim(mutate_text(text, edits))


test_masim_mutated, test_masim_mutated_long = twin(
    _masim_mutated, 400, 40_000, text=valid_masim_texts(), edits=text_edits)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _masim_bytes(fuzz_dir, data):
    p = fuzz_dir / "in.cfg"
    p.write_bytes(data)
    ok, got = call(load_masim, p)
    assert ok or isinstance(got, (FormatError, ConfigError)), repr(got)


test_load_masim_bytes, test_load_masim_bytes_long = twin(
    _masim_bytes, 150, 20_000,
    data=st.one_of(st.binary(max_size=300), valid_masim_texts().map(lambda t: t.encode()),
                   st.tuples(valid_masim_texts(), st.binary(max_size=4), st.integers(0, 500)).map(
                       lambda x: x[0].encode()[:x[2]] + x[1] + x[0].encode()[x[2]:])))


# --------------------------------------------------------------------------- traces

_HEADER = struct.Struct("<8sIdI")


def trace_header(tick_ns=1000.0, meta=b"{}", version=1, magic=MAGIC) -> bytes:
    fixed = _HEADER.pack(magic, version, tick_ns, len(meta)) + meta
    return fixed + struct.pack("<I", zlib.crc32(fixed))


def check_trace_file(path) -> None:
    """read_trace and iter_trace_blocks agree: the same events, or FormatError."""
    ok, tr = call(read_trace, path)
    if ok:
        assert isinstance(tr, Trace)
        ev = tr.events
        assert math.isfinite(tr.tick_ns) and tr.tick_ns > 0 and isinstance(tr.meta, dict)
        assert len(ev.time) == len(ev.pid) == len(ev.vpn) == len(ev.write)
        assert not len(ev) or bool(np.all(ev.time[1:] >= ev.time[:-1]))
    else:
        assert isinstance(tr, FormatError), repr(tr)
        assert tr.source == os.fspath(path)
    streamed, blocks = [], None
    try:
        for b in iter_trace_blocks(path):
            streamed.append(b)
    except FormatError as e:
        blocks = e
    except ALLOWED as e:  # pragma: no cover - the contract says FormatError only
        raise AssertionError(f"iter_trace_blocks raised {e!r}") from e
    if ok:
        assert blocks is None and sum(len(b) for b in streamed) == len(tr.events)
    else:
        assert blocks is not None, "read_trace refused a file iter_trace_blocks accepted"


def _trace_bytes(fuzz_dir, data):
    p = fuzz_dir / "in.trc"
    p.write_bytes(data)
    check_trace_file(p)


raw_trace_bytes = st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=400).map(lambda b: MAGIC + b),
    st.tuples(st.floats(), st.binary(max_size=40), st.binary(max_size=400)).map(
        lambda x: trace_header(x[0], x[1]) + x[2]),
)

test_trace_bytes, test_trace_bytes_long = twin(_trace_bytes, 300, 30_000, data=raw_trace_bytes)


@st.composite
def small_events(draw, max_size=40):
    n = draw(st.integers(0, max_size))
    deltas = draw(st.lists(st.sampled_from([0, 1, 7, U32_MAX, U32_MAX + 1]) | st.integers(0, 1000),
                           min_size=n, max_size=n))
    start = draw(st.sampled_from([0, 1, 2**40, 2**62]))
    times = np.minimum(start + np.cumsum(np.array(deltas, dtype=object)), U64_MAX).astype(np.uint64) \
        if n else np.zeros(0, np.uint64)
    vpn = st.sampled_from([0, 1, 2, 0x7F00, U64_MAX, 2**63]) | st.integers(0, U64_MAX)
    return TraceEvents(times, np.array(draw(st.lists(st.integers(0, U32_MAX), min_size=n, max_size=n)), np.uint32),
                       np.array(draw(st.lists(vpn, min_size=n, max_size=n)), np.uint64),
                       np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool))


byte_edits = st.lists(st.tuples(st.sampled_from(["flip", "set", "delete", "insert", "truncate", "dup"]),
                                st.integers(0, 1 << 20), st.integers(0, 255), st.binary(min_size=1, max_size=8)),
                      min_size=1, max_size=4)


def mutate_bytes(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for op, pos, val, chunk in edits:
        i = pos % (len(b) + 1)
        if op == "flip" and b:
            b[i % len(b)] ^= 1 << (val % 8)
        elif op == "set" and b:
            b[i % len(b)] = val
        elif op == "delete":
            del b[i:i + 1 + val % 16]
        elif op == "insert":
            b[i:i] = chunk
        elif op == "truncate":
            del b[i:]
        elif op == "dup":
            b[i:i] = b[i:i + 1 + val]
    return bytes(b)


def trace_bytes(ev: TraceEvents, block_size: int, meta=None) -> bytes:
    """The bytes write_trace writes, built in memory with its own encoders (no fsync per example)."""
    blocks = [trace_mod._encode_block(ev[a:b]) for a, b in trace_mod._block_bounds(ev.time, block_size)]
    return (trace_mod._header_bytes(1000.0, trace_mod._meta_bytes(meta)) + b"".join(blocks)
            + END_TAG + struct.pack("<Q", len(ev)))


def test_trace_bytes_helper_matches_the_writer(tmp_path):
    ev = TraceEvents(np.array([0, 5, 5, 2**33], np.uint64), np.array([1, 2, 1, 1], np.uint32),
                     np.array([7, 2**63, 0, 7], np.uint64), np.array([1, 0, 0, 1], bool))
    write_trace(tmp_path / "w.trc", ev, 1000.0, {"program": "fuzz"}, block_size=2)
    assert (tmp_path / "w.trc").read_bytes() == trace_bytes(ev, 2, {"program": "fuzz"})


def _trace_mutated(fuzz_dir, ev, block_size, edits):
    p = fuzz_dir / "mutated.trc"
    p.write_bytes(mutate_bytes(trace_bytes(ev, block_size, {"program": "fuzz"}), edits))
    check_trace_file(p)


test_trace_mutated, test_trace_mutated_long = twin(
    _trace_mutated, 300, 30_000, ev=small_events(), block_size=st.integers(1, 16), edits=byte_edits)


@st.composite
def crafted_records(draw):
    """A header and records whose CRCs are right around fields that may be wrong: the checks past
    the CRCs (counts, lengths, zlib streams, time order and overflow, end marker) get reached."""
    out = [trace_header(draw(st.sampled_from([1000.0, 4.0, 0.0, -1.0, math.nan, math.inf, 1e-300])),
                        draw(st.sampled_from([b"{}", b"[]", b"{", b"\xff", b'{"window_ticks": 3}', b"[" * 2000])))]
    total = 0
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["block", "block", "block", "tag"]))
        if kind == "tag":
            out.append(draw(st.binary(min_size=0, max_size=6)))
            continue
        n = draw(st.sampled_from([0, 1, 2, 5, 2**20, 2**20 + 1, U32_MAX]) | st.integers(1, 8))
        first = draw(st.sampled_from([0, 5, U64_MAX, U64_MAX - 3, 2**63]) | st.integers(0, 1000))
        small = min(n, 8)
        sizes = (4 * max(small - 1, 0), 4 * small, 8 * small, (small + 7) // 8)
        cols = [draw(st.binary(min_size=s, max_size=s) | st.binary(max_size=s + 3)) for s in sizes]
        head = struct.pack("<IQ", n, first)
        crc = zlib.crc32(b"".join(cols), zlib.crc32(head))
        if draw(st.booleans()):
            crc ^= draw(st.integers(0, U32_MAX))
        rec = BLOCK_TAG + head + struct.pack("<I", crc)
        for col in cols:
            packed = draw(st.sampled_from(["zlib", "zlib", "raw", "trailing", "cut"]))
            z = zlib.compress(col)
            z = {"zlib": z, "raw": col, "trailing": z + b"x", "cut": z[:-1]}[packed]
            rec += struct.pack("<I", len(z)) + z
        out.append(rec + struct.pack("<I", zlib.crc32(rec)))
        total += n
    if draw(st.booleans()):
        out.append(END_TAG + struct.pack("<Q", draw(st.sampled_from([total, total + 1, 0, U64_MAX]))))
    out.append(draw(st.sampled_from([b"", b"", b"x", b"\0" * 9])))
    return b"".join(out)


test_trace_crafted, test_trace_crafted_long = twin(_trace_bytes, 300, 30_000, data=crafted_records())


def _window_records(data, pid):
    ok, got = call(TraceEvents.from_window_records, data, pid)
    assert ok or isinstance(got, (FormatError, ConfigError)), repr(got)


test_window_records, test_window_records_long = twin(
    _window_records, 200, 20_000,
    data=st.one_of(st.binary(max_size=200),
                   st.lists(st.tuples(st.integers(0, U64_MAX), st.lists(st.integers(0, U64_MAX), max_size=4)),
                            max_size=4).map(lambda ws: b"".join(
                                struct.pack("<QI", t, len(p)) + struct.pack(f"<{len(p)}Q", *p) for t, p in ws))),
    pid=mostly(st.integers(0, U32_MAX)))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10)


@pytest.fixture
def no_fsync(monkeypatch):
    """Durability is not what the writer fuzz tests: skip the fsyncs that make each write slow."""
    monkeypatch.setattr(trace_mod.os, "fsync", lambda fd: None)


def _trace_writer(no_fsync, fuzz_dir, time, pid, vpn, write, tick_ns, meta, block_size):
    """Wild columns, tick lengths, metadata and block sizes: ConfigError, or a file that reads back."""
    if bug("isfinite_overflow"):
        assume(not _float_overflows(tick_ns))
    ok, ev = call(TraceEvents, time, pid, vpn, write)
    if not ok:
        assert isinstance(ev, ConfigError), repr(ev)
        return
    p = fuzz_dir / "w.trc"
    ok, err = call(write_trace, p, ev, tick_ns, meta, block_size=block_size)
    if not ok:
        assert isinstance(err, ConfigError), repr(err)
        return
    tr = read_trace(p)
    assert tr.tick_ns == float(tick_ns) and len(tr.events) == len(ev)
    np.testing.assert_array_equal(tr.events.vpn, ev.vpn)


_columns = wild_arrays(np.int64, st.sampled_from([0, 1, -1, 2**31, U32_MAX]) | st.integers(0, 100), 6)
test_trace_writer, test_trace_writer_long = twin(
    _trace_writer, 200, 20_000, time=_columns, pid=_columns, vpn=_columns, write=_columns,
    tick_ns=mostly(st.floats(1e-3, 1e6)), meta=st.one_of(json_values, wild),
    block_size=mostly(st.integers(1, 8)))


# --------------------------------------------------------------------------- Workload.from_dict

# What JSON (or a YAML/TOML loader) can produce: no numpy scalars or arbitrary objects.
json_like = opaque(st.one_of(json_values, st.sampled_from(EDGE_INTS), wild_floats, st.text(max_size=6)))


@st.composite
def workload_dicts(draw):
    """Valid workload dicts with, usually, one value replaced, one key dropped or one added."""
    names = draw(st.lists(st.sampled_from(["a", "b", "heap", "c d"]), min_size=1, max_size=3, unique=True))
    d = {
        "name": "w", "repeat": draw(st.integers(0, 3)),
        "regions": [{"name": n, "size": draw(st.sampled_from([4096, 1 << 20, 1 << 40])), "kind": "anon",
                     "initial_size": None} for n in names],
        "phases": [{"name": "p", "duration_us": 1000,
                    "patterns": [{"region": names[0], "rate_hz": 1.0, "write_fraction": 0.5}],
                    "sizes": {names[0]: 4096}}],
    }
    paths = [("name",), ("repeat",), ("regions",), ("phases",), ("regions", 0), ("regions", 0, "name"),
             ("regions", 0, "size"), ("regions", 0, "kind"), ("regions", 0, "initial_size"), ("phases", 0),
             ("phases", 0, "name"), ("phases", 0, "duration_us"), ("phases", 0, "patterns"),
             ("phases", 0, "patterns", 0), ("phases", 0, "patterns", 0, "region"),
             ("phases", 0, "patterns", 0, "rate_hz"), ("phases", 0, "patterns", 0, "write_fraction"),
             ("phases", 0, "sizes"), ("phases", 0, "sizes", names[0])]
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(paths))
        parent = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            op = draw(st.sampled_from(["set", "set", "del", "add"]))
            if op == "set":
                parent[path[-1]] = draw(json_like)
            elif op == "del" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=4))] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            pass
    return d


def _has_float_overflow(obj) -> bool:
    if isinstance(obj, dict):
        return any(_has_float_overflow(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_float_overflow(v) for v in obj)
    return _float_overflows(obj)


def _from_dict(d):
    if bug("isfinite_overflow"):
        assume(not _has_float_overflow(d))
    ok, wl = call(Workload.from_dict, d)
    if ok:
        assert isinstance(wl, Workload)
        assert Workload.from_dict(wl.to_dict()) == wl
        assert wl.phase_at(0) is not None and wl.cycle_us >= 1
    else:
        assert isinstance(wl, (ConfigError, ValueError, TypeError)), repr(wl)


test_workload_from_dict, test_workload_from_dict_long = twin(
    _from_dict, 400, 40_000, d=weighted((3, workload_dicts()), (1, json_like)))


# --------------------------------------------------------------------------- GuestConfig and Guest

MAX_FUZZ_GUEST_PAGES = 1 << 16  # a guest costs ~23 bytes of host memory a page; fuzz only small ones

size_values = st.one_of(
    st.sampled_from([0, 4096, 4 * MIB, 32 * MIB, 64 * MIB, 128 * MIB, 96 * MIB, (1 << 40) + 4 * MIB, 1 << 40,
                     "64 MiB", "64MiB", "64 mib", "0.0625 GiB", "64 MiB 4 KiB", "1,024 KiB", "4 MiB", "-4 MiB",
                     " 64 MiB ", "64 MiB!", "1e3 MiB", "64 XiB", "1.5 B", "", "128 MiB", "2 GiB", "4 TiB"]),
    wild)


@st.composite
def node_configs(draw):
    return NodeConfig(size=draw(size_values), tier=draw(mostly(st.sampled_from(["dram", "cxl"]))),
                      latency_ns=draw(mostly(st.integers(1, 10**6))), movable=draw(size_values),
                      offline=draw(size_values))


guest_configs = st.builds(
    GuestConfig,
    size=size_values,
    nodes=st.one_of(st.just(()), st.lists(node_configs(), max_size=3).map(tuple), wild),
    block_size=st.one_of(st.sampled_from(["4 MiB", "8 MiB", 4 * MIB, "128 MiB", "3 MiB", "4 GiB", 0]), wild),
    swap=size_values,
    swappiness=mostly(st.integers(0, 200)),
    watermark_scale_factor=mostly(st.integers(1, 3000)),
    thp=mostly(st.booleans()),
    psi_hz=mostly(st.integers(100, 1000)),
    seed=mostly(st.integers(0, U64_MAX)),
    costs=st.one_of(st.just(Costs()), wild),
)


def _guest_config(cfg):
    if bug("nodes_not_sequence"):
        assume(not cfg.nodes or hasattr(cfg.nodes, "__len__"))
    ok, r = call(cfg.resolve)
    if not ok:
        assert isinstance(r, ConfigError), repr(r)
        return
    assert r.nr_pages * 4096 == r.block_pages * 4096 * len(r.block_node)
    assert len(r.block_node) == len(r.block_zone) == len(r.block_online)
    if r.nr_pages > MAX_FUZZ_GUEST_PAGES:
        return
    ok, g = call(Guest, cfg)
    assert ok, repr(g)  # what resolves, boots
    g.check()
    g.run_until(1000)
    g.check()


test_guest_config, test_guest_config_long = twin(_guest_config, 300, 30_000, cfg=guest_configs)


def _costs(name, value):
    if bug("isfinite_overflow"):
        assume(not _float_overflows(value))
    ok, got = call(Costs, **{name: value})
    if ok:
        assert 0 <= getattr(got, name) <= 1e6
    else:
        assert isinstance(got, ConfigError) and got.field == f"costs.{name}", repr(got)


test_costs, test_costs_long = twin(
    _costs, 100, 10_000, name=st.sampled_from(sorted(Costs().as_dict())), value=mostly(st.floats(0, 1e6)))


# --------------------------------------------------------------------------- CoreMem, method by method

RUN_TOUCH_BUDGET = 20_000      # expected synthetic touches one fuzzed run() may simulate
MAX_FUZZ_VMA_PAGES = 1 << 16   # a VMA costs 16 host bytes a page and one hash per page to create
MAX_FUZZ_ALLOC_BYTES = 64 * MIB

# Every public CoreMem method and the kind of each argument (see CoreFuzzer.arg).
SIGNATURES = {
    "now": None,  # a property
    "run": ("time",),
    "set_trace": ("trace",),
    "trace_pos": (),
    "touch": ("gvpn", "any"),
    "drain_stalls": (),
    "vma_add": ("kind", "npages", "npages", "node", "any"),
    "vma_set_rate": ("vma", "rate", "frac"),
    "vma_resize": ("vma", "npages"),
    "vma_info": ("vma",),
    "vma_ptes": ("vma", "npages"),
    "vma_lambda": ("vma", "time"),
    "truth_accessed": ("vma", "npages", "time", "time"),
    "alloc_pages": ("order", "mt", "state", "node"),
    "free_pages": ("pfn", "order"),
    "block_online": ("block", "zonetype"),
    "block_offline": ("block",),
    "migrate_page": ("pfn",),
    "reclaim": ("node", "count"),
    "young_pfns": ("pfn_array", "any"),
    "young_gvpns": ("gvpn_array", "any"),
    "idle_bitmap": ("pfn", "count"),
    "zone_info": ("zone",),
    "set_watermarks": ("zone", "count", "count", "count"),
    "state_counts": (),
    "counters": (),
    "node_lru": ("node",),
    "swap_used": (),
    "stall_totals_ns": (),
    "buddyinfo": ("zone",),
    "pages": ("pfn", "count_or_none"),
    "pageblocks": (),
    "free_list": ("zone", "order", "mt"),
    "scan_pageblocks": (),
    "scan_pageblocks_into": ("words", "words"),
    "host_bytes": (),
    "save": (),
    "check": (),
}


def test_every_core_method_is_fuzzed():
    public = {n for n, _ in inspect.getmembers(_core.CoreMem) if not n.startswith("_")}
    assert public == set(SIGNATURES), "give new CoreMem methods a fuzz signature in SIGNATURES"


def small_guest(seed: int = 1, swap_mib: int = 16) -> Guest:
    """Two nodes, ZONE_MOVABLE and an offline block on node 0, a CXL node; 64 MiB in 4 MiB blocks."""
    nodes = (NodeConfig(size=32 * MIB, movable=8 * MIB, offline=4 * MIB),
             NodeConfig(size=32 * MIB, tier="cxl", latency_ns=250))
    return Guest(GuestConfig(size=64 * MIB, nodes=nodes, block_size="4 MiB", swap=swap_mib * MIB, seed=seed))


class CoreFuzzer:
    """Calls CoreMem methods of one small guest with drawn arguments; checks the guest after each."""

    def __init__(self, data, core: _core.CoreMem, block_pages: int):
        self.data, self.core, self.block_pages = data, core, block_pages
        self.nr_vmas = 0
        self.nr_gvpn = 0
        self.pfns: list[int] = []   # pfns seen (allocations, migrations): plausible arguments
        self.calls = 0

    # --- what the guest holds, for plausible arguments
    def refresh(self):
        n = 0
        while call(self.core.vma_info, n)[0]:
            n += 1
        self.nr_vmas = n
        self.nr_gvpn = sum(self.core.vma_info(i)["npages"] for i in range(n))

    def arg(self, kind: str):
        core, d = self.core, self.data
        nr_pages, nodes = core.nr_pages, core.nr_nodes
        ints = {
            "gvpn": st.integers(0, self.nr_gvpn + 1),
            "kind": st.integers(0, 2),
            "npages": st.sampled_from([0, 1, 2, 511, 512, 1024, 4096]) | st.integers(0, 3000),
            "node": st.integers(0, nodes),
            "vma": st.integers(0, self.nr_vmas),
            "order": st.integers(0, 11),
            "mt": st.integers(0, 3),
            "state": st.integers(0, 6),
            "pfn": st.integers(0, nr_pages + 1) | (st.sampled_from(self.pfns) if self.pfns else st.just(0)),
            "block": st.integers(0, nr_pages // self.block_pages),
            "zonetype": st.integers(0, 2),
            "zone": st.integers(0, 2 * nodes),
            "count": st.sampled_from([0, 1, 32, 100, 1000, nr_pages, nr_pages + 1]) | st.integers(0, 2 * nr_pages),
        }
        if kind in ints:
            return d.draw(mostly(ints[kind]), label=kind)
        if kind == "count_or_none":
            return d.draw(st.one_of(st.none(), mostly(ints["count"])), label=kind)
        if kind == "time":
            now = core.now
            near = st.sampled_from([0, 1, 10, 1000, 10**5, 10**6, 10**7]).map(lambda dt: min(now + dt, U64_MAX))
            return d.draw(weighted((5, near), (1, st.just(now - 1)), (1, st.just(U64_MAX)), (1, wild)), label=kind)
        if kind == "rate":
            floats = st.sampled_from([0.0, 0.1, 1.0, 100.0, 1e4, 1e6, 1e9, 1e9 + 1, -1.0, math.nan, math.inf])
            w = wild.filter(lambda x: not _float_overflows(x)) if bug("float_overflow") else wild
            return d.draw(weighted((4, floats), (2, st.floats(0, 1e9)), (1, w)), label=kind)
        if kind == "frac":
            w = wild.filter(lambda x: not _float_overflows(x)) if bug("float_overflow") else wild
            return d.draw(weighted((4, st.floats(0, 1)), (1, st.sampled_from([-0.0, -1e-9, 1.0000001, math.nan])),
                                   (1, w)), label=kind)
        if kind == "any":
            return d.draw(weighted((2, st.booleans()), (1, st.integers(0, 2)), (1, wild)), label=kind)
        if kind == "pfn_array":
            return d.draw(wild_arrays(np.uint32, ints["pfn"] | st.sampled_from([U32_MAX, 2**31])), label=kind)
        if kind == "gvpn_array":
            return d.draw(wild_arrays(np.uint64, ints["gvpn"] | st.sampled_from([U64_MAX, 2**32])), label=kind)
        if kind == "words":
            words = ((nr_pages >> _core.PAGEBLOCK_ORDER) + 63) // 64
            return d.draw(wild_arrays(np.uint64, st.integers(0, U64_MAX), words + 2)
                          | st.integers(0, words + 1).map(lambda n: np.zeros(n, np.uint64)), label=kind)
        if kind == "trace":
            return d.draw(self.trace_arrays(), label=kind)
        raise AssertionError(kind)

    def trace_arrays(self):
        """(times, gvpn<<1|write) for set_trace: usually valid, sometimes wrong in one way."""
        now, hi = self.core.now, max(self.nr_gvpn, 1)

        @st.composite
        def build(draw):
            n = draw(st.integers(0, 12))
            times = sorted(draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n)))
            t = np.array([min(now + x, U64_MAX) for x in times], np.uint64)
            g = np.array([(x << 1) | w for x, w in draw(st.lists(st.tuples(st.integers(0, hi), st.integers(0, 1)),
                                                                 min_size=n, max_size=n))], np.uint64)
            spoil = draw(st.sampled_from(["none", "none", "none", "unsorted", "length", "dtype", "noncontig",
                                          "list", "wild", "huge_gvpn"]))
            if spoil == "unsorted" and n > 1:
                t = t[::-1].copy()
            elif spoil == "length":
                g = np.append(g, np.uint64(0))
            elif spoil == "dtype":
                t = t.astype(np.int64)
            elif spoil == "noncontig":
                t = np.repeat(t, 2)[::2]
            elif spoil == "list":
                t = t.tolist()
            elif spoil == "wild":
                g = draw(wild)
            elif spoil == "huge_gvpn" and n:
                g[-1] = np.uint64(U64_MAX)
            return t, g

        return build()

    # --- guards: limits of work and known bugs
    def rates(self) -> list[tuple[int, float, float, int]]:
        """(vma, lambda now, touches per µs per page, pages in use) of every VMA."""
        now, out = self.core.now, []
        probe = min(10**6, U64_MAX - now)
        for i in range(self.nr_vmas):
            lam = self.core.vma_lambda(i, now)
            rate = (self.core.vma_lambda(i, now + probe) - lam) / probe if probe else 0.0
            out.append((i, lam, rate, self.core.vma_info(i)["nalloc"]))
        return out

    def clamp_run(self, t):
        """Keep run(t) to RUN_TOUCH_BUDGET expected synthetic touches."""
        if not _int_like(t) or not self.core.now <= int(t) <= U64_MAX:
            return t
        now, t = self.core.now, int(t)
        speed = sum(rate * pages for _, _, rate, pages in self.rates())
        limit = U64_MAX - now
        if speed > 0 and RUN_TOUCH_BUDGET / speed < limit:
            limit = int(RUN_TOUCH_BUDGET / speed)
        return min(t, now + limit)

    def skip_reason(self, name: str, args: tuple) -> str | None:
        """Why this call is not made (a known bug or a work limit), or None."""
        core = self.core

        def vma_pages(v):
            if _int_like(v) and 0 <= int(v) < self.nr_vmas:
                return core.vma_info(int(v))["npages"]
            return None

        if name in ("vma_ptes", "truth_accessed") and _int_like(args[1]):
            n, real = int(args[1]), vma_pages(args[0])
            if real is not None and 0 <= n < real and bug(f"{name}_short_buffer"):
                return f"{name}_short_buffer"
            if n * 4 > MAX_FUZZ_ALLOC_BYTES and bug("prevalidation_alloc"):
                return "prevalidation_alloc"
        if name == "idle_bitmap" and _int_like(args[1]) and int(args[1]) // 8 > MAX_FUZZ_ALLOC_BYTES \
                and bug("prevalidation_alloc"):
            return "prevalidation_alloc"
        if name == "idle_bitmap" and isinstance(args[1], np.integer) and bug("idle_bitmap_wrap") and \
                int(args[1]) + 63 > np.iinfo(type(args[1])).max:
            return "idle_bitmap_wrap"
        if name == "pages" and bug("prevalidation_alloc"):
            start, n = args
            if _int_like(start) and n is None:
                n = core.nr_pages - int(start)
            if _int_like(n) and int(n) * 7 > MAX_FUZZ_ALLOC_BYTES:
                return "prevalidation_alloc"
        if name in ("free_list", "pages") and bug("prevalidation_arith") and \
                any(isinstance(a, np.integer) for a in args):
            return "prevalidation_arith"
        if name == "scan_pageblocks_into":
            words = ((core.nr_pages >> _core.PAGEBLOCK_ORDER) + 63) // 64
            for a in args:
                if isinstance(a, np.ndarray) and a.dtype == np.uint64 and a.ndim == 1 and a.flags.c_contiguous:
                    if 0 < a.size < words and bug("scan_into_short_buffer"):
                        return "scan_into_short_buffer"
                    if a.size and not a.flags.writeable and bug("scan_into_readonly"):
                        return "scan_into_readonly"
        if name == "vma_add" and _int_like(args[1]) and 0 < int(args[1]) < 2**32 and \
                self.nr_gvpn + int(args[1]) > MAX_FUZZ_VMA_PAGES:
            return "work limit: VMA pages"
        if name == "vma_resize" and _int_like(args[1]) and int(args[1]) > MAX_FUZZ_VMA_PAGES:
            return "work limit: VMA pages"
        return None

    # --- one call
    def step(self):
        name = self.data.draw(st.sampled_from(sorted(SIGNATURES)), label="method")
        if name == "now":
            assert self.core.now >= 0
            return
        args = tuple(self.arg(k) for k in SIGNATURES[name])
        if name == "set_trace":
            args = args[0]
        if name == "run":
            args = (self.clamp_run(args[0]),)
        reason = self.skip_reason(name, args)
        if reason:
            note(f"skipped {name}{args!r}: {reason}")
            return
        note(f"{name}{args!r}")
        ok, got = call(getattr(self.core, name), *args)
        note(f"  -> {got!r}"[:300])
        self.calls += 1
        if ok and name == "vma_add":
            self.nr_vmas += 1
            self.nr_gvpn = got[1] + int(args[1])
        if ok and name in ("alloc_pages", "migrate_page"):
            self.pfns.append(int(got))
        self.core.check()
        if ok:
            self.check_result(name, args, got)

    def check_result(self, name, args, got):
        core = self.core
        if name == "vma_ptes":
            assert got.shape == (int(args[1]),)
        elif name == "pages":
            assert set(got) == {"state", "flags", "order", "owner"}
            assert int(got["state"].max(initial=0)) < 6
        elif name == "state_counts":
            assert sum(got.values()) == core.nr_pages
        elif name == "free_list":
            assert all(int(p) < core.nr_pages for p in got)
        elif name == "drain_stalls":
            assert got.dtype.names == ("t_us", "dur_ns", "kind", "pad")


def _core_sequence(data, seed, steps):
    g = small_guest(seed)
    p = g.spawn("fuzz")
    p.mmap(2 * MIB).set_rate(5.0, 0.5)
    p.mmap(1 * MIB, kind="file").set_rate(0.5)
    p.mmap(1 * MIB, explicit=True)
    g.kernel_alloc(0)
    fz = CoreFuzzer(data, g.core, g.block_pages)
    fz.refresh()
    for _ in range(steps):
        fz.step()
    call(g.run_until, fz.clamp_run(min(g.now_us + 1000, U64_MAX)))   # a trace may fault into nothing
    g.check()


test_core_methods, test_core_methods_long = twin(
    _core_sequence, 120, 10_000, data=st.data(), seed=st.integers(0, U64_MAX), steps=st.integers(1, 40))


def _core_init(nr_pages, block_pages, nr_nodes, seed, swap_pages, swappiness, costs, layout):
    """CoreMem() itself with wild arguments: it refuses them, or builds a guest that checks out."""
    kind, value = layout
    nb = 0
    if _int_like(nr_pages) and _int_like(block_pages) and int(block_pages) > 0:
        nb = int(nr_pages) // int(block_pages)
        nb = nb if 0 <= nb <= 1 << 21 else 0
    arrays = {
        "fit": lambda: [np.zeros(nb, np.uint8), np.zeros(nb, np.uint8), np.ones(nb, np.uint8)],
        "short": lambda: [np.zeros(max(nb - 1, 0), np.uint8)] * 3,
        "values": lambda: [np.full(nb, int(value) % 2**63, np.int64), np.zeros(nb, np.uint8), np.ones(nb, np.uint8)],
        "list": lambda: [[value] * nb, [0] * nb, [1] * nb],
        "wild": lambda: [value, value, value],
    }[kind]()
    if bug("core_init_unchecked"):
        assume(not (_int_like(block_pages) and int(block_pages) == 0))
        assume(not isinstance(nr_pages, np.integer) and not isinstance(block_pages, np.integer))
        assume(isinstance(costs, dict) and all(0 <= v <= 1e6 for v in costs.values()))
        if kind in ("list", "wild"):
            assume(0 <= value <= 255)
    if _int_like(nr_pages) and 0 < int(nr_pages) <= 1 << 28 and nb and nb * int(block_pages) == int(nr_pages):
        assume(int(nr_pages) <= MAX_FUZZ_GUEST_PAGES)   # C would build it: keep it small
    ok, core = call(_core.CoreMem, nr_pages, block_pages, nr_nodes, seed, swap_pages, swappiness, costs,
                    *arrays)
    if not ok:
        return
    core.check()
    assert sum(core.state_counts().values()) == core.nr_pages
    core.run(core.now + 10)
    core.check()


def _core_costs():
    valid = st.dictionaries(st.sampled_from(sorted(Costs().as_dict())), st.floats(0, 1e6), max_size=3)
    if bug("core_init_unchecked"):
        return valid
    return st.one_of(valid, st.dictionaries(st.sampled_from(sorted(Costs().as_dict())), wild, max_size=2),
                     st.dictionaries(st.text(max_size=5), wild, max_size=2), wild)


test_core_init, test_core_init_long = twin(
    _core_init, 200, 20_000,
    nr_pages=mostly(st.sampled_from([1024, 2048, 4096, 16384, 65536, 1 << 28, (1 << 28) + 1024, 1 << 30])),
    block_pages=mostly(st.sampled_from([1024, 2048, 512, 1000, 4096, 1 << 31])),
    nr_nodes=mostly(st.integers(0, 65)),
    seed=mostly(st.integers(0, U64_MAX)),
    swap_pages=mostly(st.integers(0, 1 << 20)),
    swappiness=mostly(st.integers(0, 201)),
    costs=_core_costs(),
    layout=st.tuples(st.sampled_from(["fit", "fit", "short", "values", "list", "wild"]), wild_ints))


def _first_arrival(seed, gvpn, x):
    if bug("float_overflow"):
        assume(not _float_overflows(x))
    ok, got = call(_core.first_arrival_after, seed, gvpn, x)
    if ok:
        fx = float(x)
        assert got > max(fx, 0.0) or (math.isnan(fx) and got >= 1e300) or got >= 1e300


test_first_arrival, test_first_arrival_long = twin(
    _first_arrival, 300, 30_000, seed=mostly(st.integers(0, U64_MAX)), gvpn=mostly(st.integers(0, U64_MAX)),
    x=st.one_of(st.floats(0, 1e6), st.floats(), wild))


def test_huge_run_without_pressure_returns():
    """run(2**64 - 1) is fine while nothing waits to fault at a rate: it jumps to the end."""
    g = small_guest()
    v = g.spawn().mmap(1 * MIB)
    v.set_rate(1000.0)
    g.run_until(10**6)           # every page faulted in; nothing evicted
    v.set_rate(0.0)
    g.run_until(U64_MAX)
    assert g.now_us == U64_MAX
    with pytest.raises(ConfigError, match="t_end"):
        g.run_until(U64_MAX + 1)
    g.check()


def test_regression_saturated_lambda_ends():
    """Found hanging (and, under UBSan, an undefined double-to-uint64 cast in first_arrival_after)
    with a page touched 1e9 times a second run to 2**64 - 1 µs, then grown; fixed in 5ba0b70 by
    saturating lambda at 2**52. Run in a child process so a regression fails instead of hanging."""
    import subprocess
    import sys

    code = ("from acma.mm.guest import Guest, GuestConfig\n"
            "g = Guest(GuestConfig(size='64 MiB', block_size='4 MiB', swap=0))\n"
            "v = g.spawn().mmap('8 KiB', in_use=4096); v.set_rate(1e9)\n"
            "g.run_until(2**64 - 1); v.resize(2); g.check()\n"
            "from acma._core import first_arrival_after\n"
            "assert first_arrival_after(0, 0, 1e20) >= 1e300\n")
    import acma
    # run where the acma under test lives (python -c puts the working directory first)
    root = Path(acma.__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=root)


def test_regression_intervals_goal_types():
    """IntervalsGoal(aggrs=None) passed Attrs.validate, then Context() raised TypeError."""
    g = small_guest()
    p = g.spawn()
    for _ in range(3):
        p.mmap(1 * MIB)
    with pytest.raises(ConfigError, match="intervals_goal"):
        Context(g, "vaddr", [Target(process=p)], Attrs(intervals_goal=IntervalsGoal(aggrs=None)))


# --------------------------------------------------------------------------- the Guest facade

FACADE = ("run_until", "spawn", "mmap", "set_rate", "resize", "touch", "truth_accessed", "lambda_at", "info",
          "ptes", "kernel_alloc", "kernel_free", "online_block", "offline_block", "zone_index", "young_pfns",
          "idle_bitmap", "scan_pageblocks", "meminfo", "vmstat", "states", "zoneinfo", "buddyinfo",
          "stall_totals_us", "update_watermarks")


def _facade(data, steps):
    g = small_guest(seed=data.draw(st.integers(0, 2**32), label="seed"))
    procs = [g.spawn("p")]
    vmas = [procs[0].mmap(1 * MIB)]
    kernel: list[int] = []   # pfns of kernel allocations
    fz = CoreFuzzer(data, g.core, g.block_pages)
    for _ in range(steps):
        name = data.draw(st.sampled_from(FACADE), label="op")
        fz.refresh()
        v = data.draw(st.sampled_from(vmas), label="vma") if vmas else None
        if name == "run_until":
            t = fz.clamp_run(fz.arg("time"))
            ok, got = call(g.run_until, t)
        elif name == "spawn":
            ok, got = call(g.spawn, data.draw(st.one_of(st.text(max_size=5), wild)))
            if ok:
                procs.append(got)
        elif name == "mmap":
            size = data.draw(st.one_of(st.sampled_from([4096, "1 MiB", "4 KiB", "3 B", 1, "8 MiB"]), size_values))
            in_use = data.draw(st.one_of(st.none(), st.sampled_from([0, 4096, "512 KiB"]), size_values))
            too_big = False
            for s in (size, in_use):
                okp, nbytes = call(_core_parse_size, s)
                too_big |= okp and nbytes is not None and nbytes > MAX_FUZZ_VMA_PAGES * 4096 // 4
            if too_big:
                continue
            ok, got = call(data.draw(st.sampled_from(procs)).mmap, size,
                           data.draw(mostly(st.sampled_from(["anon", "file"]))), in_use,
                           data.draw(mostly(st.integers(0, 2))), data.draw(st.one_of(st.booleans(), wild)),
                           data.draw(st.one_of(st.text(max_size=4), wild)))
            if ok:
                vmas.append(got)
        elif name == "set_rate":
            ok, got = call(v.set_rate, fz.arg("rate"), fz.arg("frac"))
        elif name == "resize":
            ok, got = call(v.resize, data.draw(mostly(st.integers(0, v.npages + 1))))
        elif name == "touch":
            ok, got = call(v.touch, data.draw(mostly(st.integers(0, v.npages))),
                           data.draw(st.one_of(st.booleans(), wild)))
        elif name == "truth_accessed":
            ok, got = call(v.truth_accessed, fz.arg("time"), fz.arg("time"))
        elif name == "lambda_at":
            ok, got = call(v.lambda_at, fz.arg("time"))
        elif name in ("info", "ptes"):
            ok, got = call(getattr(v, name))
        elif name == "kernel_alloc":
            ok, got = call(g.kernel_alloc, data.draw(mostly(st.integers(0, 11))), data.draw(mostly(st.integers(0, 2))),
                           data.draw(st.one_of(st.booleans(), wild)))
            if ok:
                kernel.append(got)
        elif name == "kernel_free":
            pfn = data.draw(st.sampled_from(kernel) if kernel else mostly(st.integers(0, g.nr_pages)))
            ok, got = call(g.kernel_free, pfn, data.draw(mostly(st.integers(0, 11))))
        elif name == "online_block":
            ok, got = call(g.online_block, fz.arg("block"), data.draw(mostly(st.sampled_from(["normal", "movable"]))))
        elif name == "offline_block":
            ok, got = call(g.offline_block, fz.arg("block"))
        elif name == "zone_index":
            ok, got = call(g.zone_index, fz.arg("node"), data.draw(mostly(st.sampled_from(["normal", "movable"]))))
        elif name == "young_pfns":
            pfns = fz.arg("pfn_array") if data.draw(st.booleans()) else \
                data.draw(st.lists(mostly(st.integers(0, g.nr_pages)), max_size=5))
            if bug("young_pfns_coerce") and not isinstance(pfns, np.ndarray):
                flat = pfns if isinstance(pfns, (list, tuple)) else [pfns]
                if any(isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_))
                       and not 0 <= x <= U32_MAX for x in flat):
                    continue
            ok, got = call(g.young_pfns, pfns, data.draw(st.booleans()))
        elif name == "idle_bitmap":
            args = (fz.arg("pfn"), fz.arg("count"))
            if fz.skip_reason("idle_bitmap", args):
                continue
            ok, got = call(g.idle_bitmap, *args)
        else:
            ok, got = call(getattr(g, name))
        note(f"{name} -> {got!r}"[:300])
        g.check()
    call(g.run_until, fz.clamp_run(min(g.now_us + 1000, U64_MAX)))   # a trace may fault into nothing
    g.check()
    mi = g.meminfo()
    assert 0 <= mi["MemFree"] <= mi["MemTotal"]


def _core_parse_size(s):
    return parse_size(s) if s is not None else None


test_guest_facade, test_guest_facade_long = twin(_facade, 80, 8_000, data=st.data(), steps=st.integers(1, 30))


# --------------------------------------------------------------------------- checkpoints (acma_mem_load)

SNAPSHOT_VALUES = {1: [0, 1, 2, 0x7F, 0x80, 0xFF], 2: [0, 1, 0x1FF, 0x200, 0xFFFF],
                   4: [0, 1, 2, 9, 10, 11, 1023, 1024, 0x7FFFFFFF, 0x80000000, U32_MAX - 1, U32_MAX],
                   8: [0, 1, 1024, 2**32, 2**63, U64_MAX - 1, U64_MAX]}
_F64 = [0.0, -0.0, -1.0, 0.5, 1.0, 1e3, 1e3 + 1, 1e300, 1e301, math.inf, -math.inf, math.nan, 2.0**64]


def snapshot_source(kind: str) -> tuple[_core.CoreMem, int]:
    """A small CoreMem in a rich state: every page state, swapped and dropped pages, a trace VMA,
    stalls not drained, kernel allocations, custom watermarks. Deterministic."""
    if kind == "one_node":
        nb, bp, nodes, online = 1, 1024, [0], [1]
    else:
        nb, bp, nodes, online = 3, 1024, [0, 1, 1], [1, 1, 0]
    core = _core.CoreMem(nb * bp, bp, len(set(nodes)), 7, 192, 100, Costs().as_dict(), np.array(nodes, np.uint8),
                         np.zeros(nb, np.uint8), np.array(online, np.uint8))
    for z in range(2 * core.nr_nodes):
        core.set_watermarks(z, 8, 12, 16)
    pages = int(sum(online)) * bp
    a, _ = core.vma_add(0, pages, pages * 7 // 8, 0, False)
    f, _ = core.vma_add(1, 300, 250, core.nr_nodes - 1, False)
    e, gbase = core.vma_add(0, 64, 64, 0, True)
    core.vma_set_rate(a, 0.5, 0.5)
    core.vma_set_rate(f, 0.2, 0.2)
    core.alloc_pages(2, _core.MT_UNMOVABLE, _core.PS_KERNEL, 0)
    core.alloc_pages(0, _core.MT_MOVABLE, _core.PS_DRIVER, 0)
    for g in range(gbase, gbase + 64, 3):
        core.touch(g, g % 2)
    core.run(5_000_000)
    core.vma_set_rate(a, 20.0, 0.5)
    core.run(5_500_000)
    core.reclaim(0, 64)
    core.check()
    return core, bp


_SNAPSHOT_CACHE: dict[str, tuple[bytes, int, list[int]]] = {}


def snapshot_blob(kind: str) -> tuple[bytes, int]:
    if kind not in _SNAPSHOT_CACHE:
        core, bp = snapshot_source(kind)
        _SNAPSHOT_CACHE[kind] = (core.save(), bp, [core.vma_info(i)["next_fault_us"] for i in range(3)])
    return _SNAPSHOT_CACHE[kind][:2]


def load_blob(blob: bytes, nr_pages: int, nr_nodes: int) -> _core.CoreMem:
    core = _core.CoreMem.__new__(_core.CoreMem)
    core.__setstate__({"blob": blob, "nr_pages": nr_pages, "nr_nodes": nr_nodes, "trace": None, "trace_pos": 0})
    return core


def test_snapshot_round_trip_is_exact():
    for kind in ("one_node", "two_nodes"):
        blob, _ = snapshot_blob(kind)
        core, _ = snapshot_source(kind)
        again = load_blob(blob, core.nr_pages, core.nr_nodes)
        again.check()
        assert again.save() == blob
        assert links_consistent(blob), "PAGE_RECORD no longer matches csrc/internal.h struct page"
        for c in (core, again):
            c.run(c.now + 300_000)
        assert again.save() == core.save()   # the loaded copy runs exactly as the original


snapshot_edits = st.lists(st.tuples(
    st.sampled_from(["u8", "u16", "u32", "u64", "f64", "flip", "delete", "insert", "truncate"]),
    st.sampled_from(["head", "tail", "tail", "any"]), st.integers(0, 1 << 30), st.data()), min_size=1, max_size=3)


def mutate_snapshot(blob: bytes, edits) -> bytes:
    b = bytearray(blob)
    for op, where, pos, data in edits:
        span = {"head": (0, min(len(b), 256)), "tail": (max(0, len(b) - 768), len(b)), "any": (0, len(b))}[where]
        i = span[0] + pos % max(1, span[1] - span[0])
        if op in ("u8", "u16", "u32", "u64"):
            width = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}[op]
            v = data.draw(st.sampled_from(SNAPSHOT_VALUES[width]) | st.integers(0, 2**(8 * width) - 1), label=op)
            b[i:i + width] = v.to_bytes(width, "little")
        elif op == "f64":
            b[i:i + 8] = struct.pack("<d", data.draw(st.sampled_from(_F64), label="f64"))
        elif op == "flip" and b:
            b[min(i, len(b) - 1)] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        elif op == "delete":
            del b[i:i + data.draw(st.integers(1, 16), label="n")]
        elif op == "insert":
            b[i:i] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
        elif op == "truncate":
            del b[i:]
    return bytes(b)


def _snapshot(kind, edits, data):
    blob, bp = snapshot_blob(kind)
    nr_pages = len(snapshot_source_shape(kind)[0]) * bp
    bad = mutate_snapshot(blob, edits)
    ok, core = call(load_blob, bad, nr_pages, snapshot_source_shape(kind)[1])
    event("snapshot loaded" if ok else "snapshot refused")
    if not ok:
        assert isinstance(core, ConfigError) and core.field == "checkpoint", repr(core)
        return
    core.check()   # the load ends with the full check; a loaded context is consistent
    assert core.save() == bad, "a loaded snapshot saves back to the same bytes"
    if bug("check_prev_links") and not links_consistent(bad):
        event("skipped: check_prev_links")
        return
    fz = CoreFuzzer(data, core, bp)
    fz.refresh()
    if bug("snapshot_next_us"):
        source_next = _SNAPSHOT_CACHE[kind][2]
        if fz.nr_vmas != len(source_next) or any(
                core.vma_info(i)["next_fault_us"] != source_next[i] for i in range(fz.nr_vmas)):
            event("skipped: snapshot_next_us")
            return   # a next fault time the heap does not back may pop an empty heap: the reported SIGSEGV
    call(core.run, fz.clamp_run(min(core.now + 10_000, U64_MAX)))
    core.check()
    for _ in range(data.draw(st.integers(0, 8), label="steps")):
        fz.step()


PAGE_RECORD = struct.Struct("<QIIIBBBB")   # csrc/internal.h struct page: last_clear, owner, prev, next, ...


def links_consistent(blob: bytes) -> bool:
    """Every page's next and prev links agree, read from a snapshot (csrc/snapshot.c: magic, the
    config, now, three bytes per memory block, then the page records)."""
    nr_pages, block_pages = struct.unpack_from("<QI", blob, 8)
    at = 8 + _core.ffi.sizeof("acma_mem_config") + 8 + 3 * (nr_pages // block_pages)
    recs = list(PAGE_RECORD.iter_unpack(blob[at:at + nr_pages * PAGE_RECORD.size]))
    nil = U32_MAX
    for i, (_, _, prev, nxt, *_rest) in enumerate(recs):
        if (nxt != nil and (nxt >= nr_pages or recs[nxt][2] != i)) or \
                (prev != nil and (prev >= nr_pages or recs[prev][3] != i)):
            return False
    return True


def snapshot_source_shape(kind: str):
    return ([0], 1) if kind == "one_node" else ([0, 1, 1], 2)


test_snapshot_load, test_snapshot_load_long = twin(
    _snapshot, 300, 20_000, kind=st.sampled_from(["one_node", "two_nodes"]), edits=snapshot_edits, data=st.data())


def _checkpoint_file(fuzz_dir, edits):
    """The checkpoint file layer: header, length and SHA-256 refuse any damage with FormatError."""
    p = fuzz_dir / "c.ckpt"
    if not (fuzz_dir / "good.ckpt").exists():
        from acma.checkpoint import save_checkpoint
        from acma.sim import Simulation

        sim = Simulation(GuestConfig(size=64 * MIB, block_size="4 MiB", swap=16 * MIB), sample_interval_us=100_000)
        sim.run(200_000)
        save_checkpoint(sim, fuzz_dir / "good.ckpt")
    from acma.checkpoint import load_checkpoint

    good = (fuzz_dir / "good.ckpt").read_bytes()
    bad = mutate_bytes(good, edits)
    assume(bad != good)
    p.write_bytes(bad)
    ok, got = call(load_checkpoint, p)
    assert not ok and isinstance(got, FormatError), repr(got)


test_checkpoint_file, test_checkpoint_file_long = twin(_checkpoint_file, 60, 3_000, edits=byte_edits)


# --------------------------------------------------------------------------- damo records

from acma.io import damo_record as damo  # noqa: E402
from acma.report import wss  # noqa: E402


@st.composite
def damo_records(draw):
    """Small valid records: 1-2 targets of 1-4 contiguous snapshots with sorted regions."""
    iv = draw(st.sampled_from([damo.Intervals(5000, 100000, 1000000), damo.Intervals(1, 1, 0), None]))
    targets = []
    for tid in draw(st.lists(st.integers(0, 2**40), min_size=1, max_size=2, unique=True)):
        t, snaps = draw(st.integers(0, 10**9)), []
        for _ in range(draw(st.integers(1, 4))):
            edges = sorted(draw(st.sets(st.sampled_from([0, 4096, 8192, 1 << 20, 1 << 30, 2**63, U64_MAX])
                                        | st.integers(0, U64_MAX), min_size=2, max_size=7)))
            n = len(edges) - 1
            dur = draw(st.integers(0, 10**6))
            snaps.append(damo.Snapshot(t, t + dur, edges[:-1], edges[1:],
                                       draw(st.lists(st.integers(0, U32_MAX), min_size=n, max_size=n)),
                                       draw(st.lists(st.integers(0, U32_MAX), min_size=n, max_size=n))))
            t += dur
        targets.append(damo.TargetRecord(tid, draw(st.none() | st.integers(0, 2**31)), snaps))
    return damo.DamonRecord(iv, targets)


def _json_paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _json_paths(v, path + (i,))


def _replace(obj, path, value):
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return obj


def _damo_bytes(rec, form, data) -> bytes:
    """``rec`` in one of damo's formats, usually damaged at the JSON, text or byte level."""
    how = data.draw(st.sampled_from(["intact", "json_value", "json_value", "text", "bytes"]), label="damage")
    if form == "perf":
        ok, text = call(damo.perf_script_text, rec, 0)
        if not ok:
            text = damo.perf_script_text(damo.parse_record_bytes(damo.record_to_bytes(rec, 3)), 0)
        if how in ("json_value", "text"):
            edits = data.draw(text_edits, label="edits")
            text = mutate_text(text, [(op, a, b, data.draw(st.sampled_from(PERF_TOKENS), label="tok"))
                                      for op, a, b, _ in edits])
        raw = text.encode("utf-8", "surrogatepass")
    else:
        obj = json.loads(zlib.decompress(damo.record_to_bytes(rec, 0)))
        if how == "json_value":
            path = data.draw(st.sampled_from(list(_json_paths(obj))), label="path")
            obj = _replace(obj, path, data.draw(json_like | st.sampled_from([[], {}, "5 ms", "10 KiB", "-1"]),
                                                label="value"))
        raw = json.dumps(obj).encode()
        if how == "text":
            raw = mutate_text(raw.decode(), data.draw(text_edits, label="edits")).encode("utf-8", "surrogatepass")
        if form == "zlib":
            raw = zlib.compress(raw)
    if how == "bytes":
        raw = mutate_bytes(raw, data.draw(byte_edits, label="edits"))
    return raw


PERF_TOKENS = ["damon:damon_aggregated:", "damon_aggregated:", "damon:damos_before_apply:", "target_id=0",
               "target_id=1", "nr_regions=1", "nr_regions=0", "nr_regions=99999999999999999999", "0-4096:",
               "4096-0:", "1.5:", "0.000000001:", "9" * 31 + ":", " ", "\n", "-1", "x", ":", "\t"]


def _damo_record(rec, form, intervals, data):
    raw = _damo_bytes(rec, form, data)
    ok, got = call(damo.parse_record_bytes, raw, "fuzz.rec", intervals)
    if not ok:
        if isinstance(got, ConfigError):
            assert got.field == "intervals", repr(got)
        else:
            assert isinstance(got, FormatError) and got.source == "fuzz.rec", repr(got)
        return
    assert isinstance(got, damo.DamonRecord)
    got.validate()
    again = damo.parse_record_bytes(damo.record_to_bytes(got, 0), "again.rec")
    assert again == got, "a parsed record writes back to the same record"
    for report in (lambda r: wss.format_wss_report(r), lambda r: wss.format_nr_regions_report(r),
                   lambda r: wss.format_heatmap_guide(r), lambda r: damo.perf_script_text(r)):
        ok, out = call(report, got)
        assert ok or isinstance(out, ConfigError), repr(out)


test_damo_record, test_damo_record_long = twin(
    _damo_record, 300, 30_000, rec=damo_records(), form=st.sampled_from(["json", "zlib", "perf"]),
    intervals=st.one_of(st.none(), st.just(damo.Intervals(5000, 100000, 1000000)), wild), data=st.data())


# --------------------------------------------------------------------------- DAMON regions (csrc/damon.c)

from acma.damon.regions import Regions, three_regions  # noqa: E402
from acma.damon.context import Attrs, Context, IntervalsGoal, Target  # noqa: E402

REGION_OPS = ("split_at", "merge_two", "merge", "split", "split_some", "evenly_split", "set_ranges",
              "apply_min", "copy", "sizes")
addresses = opaque(st.sampled_from([0, 1, 4096, 8192, 1 << 20, 1 << 30, 2**63, U64_MAX - 4096, U64_MAX])
                   | st.integers(0, U64_MAX))


def _regions_invariant(r: Regions) -> None:
    n = len(r)
    assert 0 <= n <= r.cap
    s, e = r.start.astype(object), r.end.astype(object)
    assert all(e[i] > s[i] for i in range(n)), "a region with end <= start"
    assert all(s[i] >= e[i - 1] for i in range(1, n)), "regions overlap or are out of order"


def _outside_u64(obj) -> bool:
    """Some number in ``obj`` (nested lists, tuples, arrays) is not in [0, 2**64)."""
    if isinstance(obj, np.ndarray):
        return obj.dtype.kind in "iuf" and bool(np.any(~((obj >= 0) & (obj <= U64_MAX))))
    if isinstance(obj, (list, tuple)):
        return any(_outside_u64(x) for x in obj)
    if isinstance(obj, (str, bytes)):
        try:
            obj = float(obj)
        except ValueError:
            return False
    return isinstance(obj, (int, float, np.number)) and not isinstance(obj, (bool, np.bool_)) \
        and not 0 <= obj <= U64_MAX


def _regions(ranges, cap, data):
    if bug("regions_coerce"):
        assume(not _outside_u64(ranges))
    ok, r = call(Regions.from_ranges, ranges, cap)
    if not ok:
        return
    rng = np.array([data.draw(st.integers(0, U64_MAX), label="rng")], np.uint64)
    small = mostly(st.integers(0, 20))
    for _ in range(data.draw(st.integers(1, 12), label="ops")):
        op = data.draw(st.sampled_from(REGION_OPS), label="op")
        before = len(r)
        if op == "split_at":
            ok, got = call(r.split_at, data.draw(small), data.draw(mostly(addresses)))
        elif op == "merge_two":
            i = data.draw(small)
            if bug("regions_merge_two_wrap") and _int_like(i) and int(i) == U64_MAX:
                continue
            ok, got = call(r.merge_two, i)
        elif op == "merge":
            ok, got = call(r.merge, data.draw(mostly(st.integers(0, 100))), data.draw(mostly(addresses)),
                           data.draw(st.booleans()))
        elif op in ("split", "split_some"):
            use = rng if data.draw(st.integers(0, 5)) else data.draw(wild_arrays(np.uint64, addresses, 2))
            if op == "split":
                ok, got = call(r.split, data.draw(mostly(st.integers(0, 17))),
                               data.draw(mostly(st.sampled_from([1, 4096, 1 << 20]))), use)
            else:
                ok, got = call(r.split_some, data.draw(small), data.draw(small), data.draw(small),
                               data.draw(mostly(st.sampled_from([1, 4096]))), use)
        elif op == "evenly_split":
            ok, got = call(r.evenly_split, data.draw(small), data.draw(mostly(st.integers(0, 40))),
                           data.draw(mostly(st.sampled_from([1, 4096, 1 << 20]))))
        elif op == "set_ranges":
            new_ranges = data.draw(st.one_of(st.lists(st.tuples(addresses, addresses), max_size=4),
                                             wild_arrays(np.uint64, addresses, 8), wild), label="ranges")
            if bug("regions_coerce") and _outside_u64(new_ranges):
                continue
            ok, got = call(r.set_ranges, new_ranges, data.draw(mostly(st.sampled_from([1, 4096]))))
            if ok:
                r = got
        elif op == "apply_min":
            ok, got = call(r.apply_min, data.draw(mostly(addresses)), data.draw(mostly(st.sampled_from([1, 4096]))))
        elif op == "copy":
            ok, got = call(r.copy, data.draw(st.one_of(st.none(), mostly(st.integers(0, 64)))))
            if ok:
                r = got
        else:
            ok, got = call(r.sizes)
        note(f"{op} -> {got!r} ({before} -> {len(r)} regions)"[:300])
        _regions_invariant(r)


test_regions, test_regions_long = twin(
    _regions, 300, 30_000,
    ranges=st.one_of(st.lists(st.tuples(addresses, addresses), max_size=5).map(sorted),
                     st.lists(st.tuples(mostly(addresses), mostly(addresses)), max_size=3), wild,
                     st.just([(0, 4096 * 64)]), st.just([(4096, 1 << 30), (1 << 31, 1 << 32)])),
    cap=st.one_of(st.none(), mostly(st.integers(1, 64))), data=st.data())


def _three_regions(vmas, min_sz):
    if bug("three_regions_unchecked") and vmas:
        assume(vmas[0][1] > vmas[0][0] and all(e <= U64_MAX - (1 << 21) for _, e in vmas))
    ok, got = call(three_regions, vmas, min_sz)
    if ok:
        assert len(got) == 3 and all(s <= e for s, e in got)
    else:
        assert isinstance(got, ConfigError), repr(got)


test_three_regions, test_three_regions_long = twin(
    _three_regions, 200, 20_000, vmas=st.one_of(st.lists(st.tuples(addresses, addresses), max_size=6),
                                                st.lists(st.tuples(addresses, addresses), max_size=6).map(sorted)),
    min_sz=mostly(st.sampled_from([1, 4096, 1 << 21])))


def _damon_context(ops, attrs, ranges, data):
    """A DAMON context over a small guest with wild attributes and ranges: refused with
    ConfigError, or it monitors and the guest stays consistent."""
    g = small_guest()
    p = g.spawn("app")
    for size in (1 * MIB, 2 * MIB, 512 * 1024):
        p.mmap(size).set_rate(50.0)
    ok, target = call(Target, process=p) if ops == "vaddr" else call(Target, ranges=ranges)
    if not ok:
        return
    ok, ctx = call(Context, g, ops, [target], attrs, data.draw(mostly(st.integers(0, U64_MAX))))
    event("context refused" if not ok else "context ran")
    if not ok:
        assert isinstance(ctx, ConfigError), repr(ctx)
        return
    # a few aggregation intervals, kept short: the sampling loop is bounded by the attributes
    aggr = ctx.attrs.aggr_samples * ctx.attrs.sample_us
    assume(ctx.attrs.aggr_samples * max(1, ctx.nr_regions()) <= 200_000)
    ctx.run_until(min(g.now_us + 3 * aggr, U64_MAX))
    g.check()
    for t in ctx.targets:
        _regions_invariant(t.regions)
    rec = ctx.damon_record()
    rec.validate()


def one_wild(target, **fields):
    """``target(**fields)`` with plausible values, and usually one field (rarely two) wild."""
    @st.composite
    def build(draw):
        kwargs = {k: draw(v) for k, v in fields.items()}
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
            kwargs[draw(st.sampled_from(sorted(fields)))] = draw(wild)
        return target(**kwargs)
    return build()


_attrs = one_wild(
    Attrs, sample_us=st.sampled_from([1, 1000, 5000]), aggr_us=st.sampled_from([5000, 100_000]),
    ops_update_us=st.sampled_from([0, 1_000_000]), min_nr_regions=st.integers(3, 20),
    max_nr_regions=st.sampled_from([20, 100, 1000]), min_region_sz=st.sampled_from([1, 4096]),
    intervals_goal=st.one_of(st.just(IntervalsGoal()), one_wild(
        IntervalsGoal, access_bp=st.integers(0, 10000), aggrs=st.integers(0, 4),
        min_sample_us=st.sampled_from([1, 100, 1000]), max_sample_us=st.sampled_from([5000, 10**6]))))

test_damon_context, test_damon_context_long = twin(
    _damon_context, 40, 3_000, ops=mostly(st.sampled_from(["vaddr", "fvaddr", "paddr"]), 8),
    attrs=weighted((1, st.none()), (3, _attrs)), data=st.data(),
    ranges=weighted((4, st.sampled_from([[(0, 64 * MIB)], [(4 * MIB, 8 * MIB), (16 * MIB, 17 * MIB)],
                                         [(0x5555_0000_0000, 0x5555_0040_0000)]])),
                    (1, st.lists(st.tuples(addresses, addresses), max_size=3)), (1, wild)))


# --------------------------------------------------------------------------- atheris (optional)
#
# Coverage-guided fuzzing of the parsers with atheris (pip install atheris; a wheel exists for
# CPython 3.11 on x86-64 Linux), as an opt-in long run next to the hypothesis one:
#
#     python tests/test_fuzz.py masim|trace|damo|snapshot CORPUS_DIR [libFuzzer options]
#     e.g. python tests/test_fuzz.py trace /tmp/trace-corpus -max_total_time=600
#
# An empty corpus directory is seeded with valid inputs. Any exception outside the contract,
# a failed assertion or a crash is reported by libFuzzer with the input that caused it.

def _atheris_seeds(target: str) -> list[bytes]:
    if target == "masim":
        return [b"a, 4096\n\nphase\n1000\na, 0, 4096, 1\n",
                b"# c\nx, 10485760\ny, 4096, none\n\np1\n5\nx, 1, 64, 3, ro\ny, 0, 4096, 1\n\np2\n7\ny, 0, 1, 1\n"]
    if target == "trace":
        ev = TraceEvents(np.array([0, 5, 5, 2**33], np.uint64), np.array([1, 2, 1, 1], np.uint32),
                         np.array([7, 2**63, 0, 7], np.uint64), np.array([1, 0, 0, 1], bool))
        return [trace_bytes(ev, 2, {"program": "seed"}), trace_bytes(ev, 4)]
    if target == "damo":
        rec = damo.DamonRecord(damo.Intervals(5000, 100000, 1000000), [damo.TargetRecord(0, 42, [
            damo.Snapshot(0, 100000, [0, 4096], [4096, 1 << 20], [3, 0], [1, 7]),
            damo.Snapshot(100000, 200000, [0], [1 << 20], [5], [0])])])
        z = damo.record_to_bytes(rec, 0)
        return [z, zlib.decompress(z), damo.perf_script_text(rec, 0).encode()]
    if target == "snapshot":
        return [snapshot_blob("one_node")[0]]
    raise SystemExit(f"unknown target {target!r}: masim, trace, damo or snapshot")


def _atheris_one(target: str, data: bytes, scratch) -> None:
    if target == "masim":
        check_masim(data.decode("utf-8", "replace"))
    elif target == "trace":
        scratch.write_bytes(data)
        check_trace_file(scratch)
    elif target == "damo":
        ok, got = call(damo.parse_record_bytes, data, "fuzz.rec")
        assert ok or isinstance(got, FormatError), repr(got)
        if ok:
            assert damo.parse_record_bytes(damo.record_to_bytes(got, 0)) == got
    else:
        ok, core = call(load_blob, data, 1024, 1)
        assert ok or (isinstance(core, ConfigError) and core.field == "checkpoint"), repr(core)
        if ok:
            core.check()
            assert core.save() == data


def _atheris_main(argv: list[str]) -> None:
    import tempfile
    from pathlib import Path

    import atheris

    if len(argv) < 3:
        raise SystemExit(__doc__ + "\nusage: python tests/test_fuzz.py TARGET CORPUS_DIR [libFuzzer options]")
    target, corpus = argv[1], Path(argv[2])
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for i, seed in enumerate(_atheris_seeds(target)):
            (corpus / f"seed{i}").write_bytes(seed)
    scratch = Path(tempfile.mkdtemp()) / "input"
    atheris.instrument_all()
    atheris.Setup([argv[0], *argv[2:]], lambda data: _atheris_one(target, data, scratch))
    atheris.Fuzz()


if __name__ == "__main__":
    import sys

    _atheris_main(sys.argv)
