"""acma's compact page-access trace: events (time, pid, page, write) in checked, compressed blocks.

A trace file is a header (magic, version, tick length, JSON metadata) followed by blocks of up
to 1 Mi events stored column by column with zlib, then an end marker. ``docs/trace-format.md``
gives the byte layout. Files are published atomically, and any damage is reported as a
:class:`~acma.errors.FormatError` naming the byte offset or block.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import struct
import zlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..errors import ConfigError, FormatError
from ..units import finite_in

MAGIC = b"ACMATRC1"
VERSION = 1
MAX_BLOCK_EVENTS = 1 << 20
BLOCK_TAG = b"BLCK"
END_TAG = b"TEND"

_HEADER = struct.Struct("<8sIdI")  # magic, version, tick_ns, metadata length
_U32 = struct.Struct("<I")  # CRC32s and compressed column lengths
_BLOCK_HEAD = struct.Struct("<IQ")  # event count, time of the first event
_END = struct.Struct("<Q")  # total event count
_WINDOW_HEAD = struct.Struct("<QI")  # first_icount, page count (real-inputs.md §1)
_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1
_ZLIB_LEVEL = 6
_COLUMNS = (("time", np.uint64), ("pid", np.uint32), ("vpn", np.uint64), ("write", np.bool_))


# --------------------------------------------------------------------------- events


def _as_column(name: str, values, dtype) -> np.ndarray:
    """``values`` as a 1-D array of ``dtype``; rejects floats, negatives and values that do not fit."""
    field = f"events.{name}"
    try:
        arr = np.asarray(values)
    except (ValueError, OverflowError, TypeError) as e:
        raise ConfigError(field, type(values).__name__, f"a 1-D array of integers ({e})") from None
    if arr.ndim != 1:
        raise ConfigError(field, f"array of shape {arr.shape}", "a 1-D array")
    if arr.size == 0:
        return np.empty(0, dtype)
    if arr.dtype == dtype:
        return arr
    is_bool = dtype is np.bool_
    hi = 1 if is_bool else np.iinfo(dtype).max
    if arr.dtype.kind not in ("biu" if is_bool else "iu"):
        raise ConfigError(field, f"array of dtype {arr.dtype}", f"integers in [0, {hi}]")
    bad = np.zeros(arr.shape, bool)
    if arr.dtype.kind == "i":
        bad |= arr < 0
    if arr.dtype.kind != "b" and np.iinfo(arr.dtype).max > hi:
        bad |= arr > hi
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{field}[{i}]", int(arr[i]), f"integers in [0, {hi}]")
    return arr.astype(dtype)


def _first_decrease(time: np.ndarray) -> int | None:
    """Index of the first time smaller than its predecessor, or None if times never decrease."""
    bad = np.flatnonzero(time[1:] < time[:-1])
    return int(bad[0]) + 1 if bad.size else None


@dataclass(frozen=True, eq=False)
class TraceEvents:
    """Page-access events as four aligned columns; times never decrease.

    ``time`` is uint64 ticks, ``pid`` a uint32 address-space id, ``vpn`` the uint64 number of a
    4 KiB page and ``write`` a bool. Inputs are converted to these dtypes; a bad input raises
    :class:`~acma.errors.ConfigError`.
    """

    time: np.ndarray
    pid: np.ndarray
    vpn: np.ndarray
    write: np.ndarray

    def __post_init__(self):
        cols = {name: _as_column(name, getattr(self, name), dtype) for name, dtype in _COLUMNS}
        lengths = {name: len(col) for name, col in cols.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError("events", lengths, "time, pid, vpn and write of one length")
        i = _first_decrease(cols["time"])
        if i is not None:
            raise ConfigError(f"events.time[{i}]", int(cols["time"][i]), "non-decreasing times")
        for name, col in cols.items():
            object.__setattr__(self, name, col)

    def __len__(self) -> int:
        return len(self.time)

    def __getitem__(self, key: slice) -> TraceEvents:
        """The events in a slice (a slice keeps times in order, so only slices are taken)."""
        if not isinstance(key, slice):
            raise TypeError(f"TraceEvents takes slices, not {type(key).__name__}")
        return TraceEvents(self.time[key], self.pid[key], self.vpn[key], self.write[key])

    @classmethod
    def concatenate(cls, parts: Sequence[TraceEvents]) -> TraceEvents:
        """The events of ``parts`` one after another (times must still never decrease)."""
        if len(parts) == 1:
            return parts[0]
        return cls(*(
            np.concatenate([np.empty(0, dtype), *(getattr(p, name) for p in parts)])
            for name, dtype in _COLUMNS
        ))

    @classmethod
    def from_window_records(cls, data, pid: int, *, source: str = "<window records>") -> TraceEvents:
        """Import the windowed page records of real-inputs.md §1 (QEMU ``pagetrace``, lackey).

        Each window is ``u64 first_icount, u32 n, n x u64 (page<<2 | exec<<1 | write)``; every
        page becomes one event at the window's first_icount, for process ``pid``. The exec bit
        is dropped: a code page becomes a read.
        """
        if isinstance(pid, bool) or not isinstance(pid, (int, np.integer)) or not 0 <= pid <= _U32_MAX:
            raise ConfigError("pid", pid, f"an integer in [0, {_U32_MAX}]")
        buf = memoryview(data).cast("B")
        times, counts, entries = _parse_windows(buf, source)
        values = np.concatenate([np.empty(0, "<u8"), *entries]).astype(np.uint64)
        return cls(
            np.repeat(np.array(times, np.uint64), counts),
            np.full(len(values), pid, np.uint32),
            values >> np.uint64(2),
            (values & np.uint64(1)).astype(bool),
        )


def _parse_windows(buf: memoryview, source: str) -> tuple[list[int], list[int], list[np.ndarray]]:
    """Window start times, page counts and entry arrays of a windowed record buffer."""
    times: list[int] = []
    counts: list[int] = []
    entries: list[np.ndarray] = []
    off = 0
    while off < len(buf):
        if len(buf) - off < _WINDOW_HEAD.size:
            raise FormatError(source, f"byte {off}", f"truncated window header: {len(buf) - off} bytes left")
        first, n = _WINDOW_HEAD.unpack_from(buf, off)
        start = off + _WINDOW_HEAD.size
        if len(buf) - start < 8 * n:
            raise FormatError(source, f"byte {off}", f"truncated window: {n} pages need {8 * n} bytes, "
                              f"{len(buf) - start} left")
        if times and first < times[-1]:
            raise FormatError(source, f"byte {off}", f"window time {first} is before the previous {times[-1]}")
        times.append(first)
        counts.append(n)
        entries.append(np.frombuffer(buf, "<u8", count=n, offset=start))
        off = start + 8 * n
    return times, counts, entries


@dataclass(frozen=True, eq=False)
class Trace:
    """A whole trace file in memory: tick length in ns, free-form metadata, and the events."""

    tick_ns: float
    meta: dict
    events: TraceEvents


# --------------------------------------------------------------------------- block codec


def _column_sizes(n: int) -> tuple[int, int, int, int]:
    """Uncompressed bytes of the time, pid, vpn and write columns of an ``n``-event block."""
    return 4 * (n - 1), 4 * n, 8 * n, (n + 7) // 8


def _raw_columns(ev: TraceEvents) -> list[bytes]:
    """Uncompressed columns: u32 time deltas, u32 pids, zigzag u64 vpn deltas, packed write bits."""
    time_deltas = np.diff(ev.time).astype("<u4")
    vpn_deltas = np.diff(ev.vpn, prepend=np.uint64(0)).view(np.int64)
    zigzag = ((vpn_deltas << 1) ^ (vpn_deltas >> 63)).view(np.uint64)
    return [time_deltas.tobytes(), ev.pid.astype("<u4").tobytes(),
            zigzag.astype("<u8").tobytes(), np.packbits(ev.write).tobytes()]


def _block_crc(head: bytes, raw: Sequence[bytes]) -> int:
    """CRC32 over a block's count and first time, then its uncompressed columns in order."""
    crc = zlib.crc32(head)
    for col in raw:
        crc = zlib.crc32(col, crc)
    return crc


def _encode_block(ev: TraceEvents) -> bytes:
    """One block record for events whose time deltas all fit in 32 bits."""
    head = _BLOCK_HEAD.pack(len(ev), int(ev.time[0]))
    raw = _raw_columns(ev)
    parts = [BLOCK_TAG, head, _U32.pack(_block_crc(head, raw))]
    for col in raw:
        packed = zlib.compress(col, _ZLIB_LEVEL)
        parts += [_U32.pack(len(packed)), packed]
    record = b"".join(parts)
    return record + _U32.pack(zlib.crc32(record))


def _decode_columns(n: int, first: int, raw: Sequence[bytes]) -> TraceEvents:
    """Events from a block's checked, uncompressed columns (vectorized; deltas wrap mod 2**64)."""
    time = np.empty(n, np.uint64)
    time[0] = first
    np.cumsum(np.frombuffer(raw[0], "<u4"), dtype=np.uint64, out=time[1:])
    time[1:] += np.uint64(first)
    zigzag = np.frombuffer(raw[2], "<u8").astype(np.uint64)
    vpn_deltas = (zigzag >> np.uint64(1)) ^ -(zigzag & np.uint64(1))
    return TraceEvents(
        time,
        np.frombuffer(raw[1], "<u4").astype(np.uint32),
        np.cumsum(vpn_deltas, dtype=np.uint64),
        np.unpackbits(np.frombuffer(raw[3], np.uint8), count=n).astype(bool),
    )


def _block_bounds(time: np.ndarray, block_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each block: at most ``block_size`` events, no time delta above 2**32 - 1."""
    cuts = (np.flatnonzero(np.diff(time) > _U32_MAX) + 1).tolist()
    bounds = []
    for seg_start, seg_stop in zip([0, *cuts], [*cuts, len(time)]):
        bounds += [(s, min(s + block_size, seg_stop)) for s in range(seg_start, seg_stop, block_size)]
    return bounds


# --------------------------------------------------------------------------- writing


def _check_tick_ns(tick_ns) -> float:
    """``tick_ns`` as a float, if it is a finite positive number."""
    if not finite_in(tick_ns, 0, 1e300) or tick_ns == 0:
        raise ConfigError("tick_ns", tick_ns, "a finite number of nanoseconds > 0")
    return float(tick_ns)


def _meta_bytes(meta) -> bytes:
    """The UTF-8 JSON text of ``meta``, which must be a JSON-serialisable dict (no NaN)."""
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ConfigError("meta", type(meta).__name__, "a dict (a JSON object) or None")
    try:
        text = json.dumps(meta, allow_nan=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise ConfigError("meta", meta, f"JSON-serialisable values with string keys ({e})") from None
    return text.encode("utf-8")


def _header_bytes(tick_ns: float, meta: bytes) -> bytes:
    """Fixed header, metadata and the header CRC32."""
    head = _HEADER.pack(MAGIC, VERSION, tick_ns, len(meta)) + meta
    return head + _U32.pack(zlib.crc32(head))


class TraceWriter:
    """Streams event chunks into a trace file that appears, complete, only on ``close()``.

    Events go to a temporary file in the target's directory; ``close()`` writes the end marker,
    fsyncs and renames it over ``path``. Leaving a ``with`` block on an exception, or calling
    ``abort()``, deletes the temporary file and leaves any old ``path`` untouched.
    """

    def __init__(self, path, tick_ns=1000.0, meta=None, *, block_size: int = MAX_BLOCK_EVENTS):
        header = _header_bytes(_check_tick_ns(tick_ns), _meta_bytes(meta))
        if isinstance(block_size, bool) or not isinstance(block_size, int) or not (
            1 <= block_size <= MAX_BLOCK_EVENTS
        ):
            raise ConfigError("block_size", block_size, f"an integer in [1, {MAX_BLOCK_EVENTS}]")
        self.path = os.path.abspath(os.fspath(path))
        self._block_size = block_size
        self._pending: list[TraceEvents] = []
        self._pending_count = 0
        self._count = 0
        self._last_time: int | None = None
        self._tmp, self._file = _open_temp(self.path)
        self._open = True
        try:
            self._file.write(header)
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def append(self, events: TraceEvents) -> None:
        """Add events that start no earlier than the last appended event."""
        if not self._open:
            raise ValueError("append to a closed TraceWriter")
        if not isinstance(events, TraceEvents):
            raise ConfigError("events", type(events).__name__, "a TraceEvents")
        if not len(events):
            return
        first = int(events.time[0])
        if self._last_time is not None and first < self._last_time:
            raise ConfigError("events.time[0]", first, f"a time >= {self._last_time}, the previous chunk's last")
        self._last_time = int(events.time[-1])
        self._pending.append(events)
        self._pending_count += len(events)
        if self._pending_count >= self._block_size:
            self._drain(final=False)

    def close(self) -> None:
        """Write the remaining blocks and the end marker, then publish the file atomically."""
        if not self._open:
            return
        try:
            self._drain(final=True)
            self._file.write(END_TAG + _END.pack(self._count))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.path)
            self._open = False
            _fsync_dir(os.path.dirname(self.path))
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is left as it was."""
        if not self._open:
            return
        self._open = False
        self._file.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass

    def _drain(self, final: bool) -> None:
        """Write pending events as blocks, keeping back a last partial block unless ``final``."""
        events = TraceEvents.concatenate(self._pending)
        bounds = _block_bounds(events.time, self._block_size)
        if not final and bounds and bounds[-1][1] - bounds[-1][0] < self._block_size:
            start, stop = bounds.pop()
            self._pending, self._pending_count = [events[start:stop]], stop - start
        else:
            self._pending, self._pending_count = [], 0
        for start, stop in bounds:
            self._file.write(_encode_block(events[start:stop]))
            self._count += stop - start


def _open_temp(path: str):
    """A new, exclusive temporary file next to ``path`` (created with umask-respecting mode)."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return tmp, os.fdopen(fd, "wb")


def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_trace(path, events: TraceEvents, tick_ns=1000.0, meta=None, *,
                block_size: int = MAX_BLOCK_EVENTS) -> None:
    """Write ``events`` as a trace file, atomically (see :class:`TraceWriter`)."""
    with TraceWriter(path, tick_ns, meta, block_size=block_size) as writer:
        writer.append(events)


# --------------------------------------------------------------------------- reading


class TraceReader:
    """An open trace file: header checked on opening, then ``blocks()`` decodes block by block.

    Every problem raises :class:`~acma.errors.FormatError`. ``blocks()`` checks the end marker
    and trailing bytes only when it gets there, after yielding the blocks before.
    """

    def __init__(self, path):
        self.source = os.fspath(path)
        self._file = open(path, "rb")
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            self.tick_ns, self.meta = self._read_header()
            self._data_start = self._file.tell()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> TraceReader:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _error(self, where: str, problem: str) -> FormatError:
        return FormatError(self.source, where, problem)

    def _take(self, n: int, what: str, where: str) -> bytes:
        """Exactly ``n`` bytes, or FormatError naming what was cut short."""
        data = self._file.read(n)
        if len(data) != n:
            raise self._error(where, f"truncated {what}: needs {n} bytes, {len(data)} left")
        return data

    def _read_header(self) -> tuple[float, dict]:
        """Check the fixed header, metadata and header CRC; return (tick_ns, metadata)."""
        fixed = self._file.read(_HEADER.size)
        if len(fixed) >= len(MAGIC) and not fixed.startswith(MAGIC):
            raise self._error("byte 0", f"bad magic {fixed[:len(MAGIC)]!r}, expected {MAGIC!r}")
        if len(fixed) < _HEADER.size:
            raise self._error("byte 0", f"truncated header: needs {_HEADER.size} bytes, {len(fixed)} left")
        _, version, tick_ns, meta_len = _HEADER.unpack(fixed)
        if version != VERSION:
            raise self._error("byte 8", f"unknown format version {version} (this reader knows {VERSION})")
        left = self._size - _HEADER.size
        if meta_len > left:
            raise self._error("byte 20", f"truncated metadata: length {meta_len}, {left} bytes left")
        meta = self._take(meta_len, "metadata", f"byte {_HEADER.size}")
        crc_at = _HEADER.size + meta_len
        (crc,) = _U32.unpack(self._take(4, "header CRC", f"byte {crc_at}"))
        if crc != zlib.crc32(fixed + meta):
            raise self._error(f"byte {crc_at}", "header CRC mismatch: header or metadata damaged")
        if not (math.isfinite(tick_ns) and tick_ns > 0):
            raise self._error("byte 12", f"tick_ns {tick_ns} is not a finite number > 0")
        return tick_ns, self._parse_meta(meta)

    def _parse_meta(self, meta: bytes) -> dict:
        """The metadata JSON object."""
        try:
            obj = json.loads(meta.decode("utf-8"))
        except (ValueError, RecursionError) as e:
            raise self._error(f"byte {_HEADER.size}", f"metadata is not UTF-8 JSON ({e})") from None
        if not isinstance(obj, dict):
            raise self._error(f"byte {_HEADER.size}", f"metadata is a JSON {type(obj).__name__}, not an object")
        return obj

    def blocks(self) -> Iterator[TraceEvents]:
        """Yield each block's events in file order, then check the end marker and file end."""
        self._file.seek(self._data_start)
        count, last_time, k = 0, 0, 0
        while True:
            pos = self._file.tell()
            tag = self._file.read(4)
            if tag == BLOCK_TAG:
                events = self._read_block(k, pos, last_time)
                count, last_time, k = count + len(events), int(events.time[-1]), k + 1
                yield events
            elif tag == END_TAG:
                self._read_end(count, pos)
                return
            elif len(tag) < 4:
                raise self._error(f"byte {pos}", f"missing end marker: file ends after {k} blocks")
            else:
                raise self._error(f"byte {pos}", f"unknown record tag {tag!r} after {k} blocks")

    def _read_block(self, k: int, pos: int, last_time: int) -> TraceEvents:
        """Read, check and decode block ``k``, which starts at byte ``pos``."""
        where = f"block {k} (byte {pos})"
        head = self._take(_BLOCK_HEAD.size, "block header", where)
        crc_field = self._take(4, "block CRC", where)
        n, first = _BLOCK_HEAD.unpack(head)
        if not 1 <= n <= MAX_BLOCK_EVENTS:
            raise self._error(where, f"event count {n} outside [1, {MAX_BLOCK_EVENTS}]")
        columns = [self._read_column(k, name) for name in ("time", "pid", "vpn", "write")]
        stored = [BLOCK_TAG, head, crc_field] + [part for _, length, data in columns for part in (length, data)]
        self._check_record_crc(where, stored)
        raw = [self._inflate(data, size, col_where)
               for (col_where, _, data), size in zip(columns, _column_sizes(n))]
        if _block_crc(head, raw) != _U32.unpack(crc_field)[0]:
            raise self._error(where, "block CRC mismatch: content damaged")
        if first < last_time:
            raise self._error(where, f"time goes backwards: block starts at {first}, "
                              f"the previous one ended at {last_time}")
        span = int(np.frombuffer(raw[0], "<u4").sum(dtype=np.uint64))
        if span > _U64_MAX - first:
            raise self._error(where, f"times overflow 64 bits: {first} + {span}")
        return _decode_columns(n, first, raw)

    def _read_column(self, k: int, name: str) -> tuple[str, bytes, bytes]:
        """One stored column: (where it starts, its u32 length field, its compressed bytes)."""
        where = f"block {k}, {name} column (byte {self._file.tell()})"
        length = self._take(4, f"{name} column length", where)
        (clen,) = _U32.unpack(length)
        left = self._size - self._file.tell()
        if clen > left:
            raise self._error(where, f"compressed length {clen} runs past end of file ({left} bytes left)")
        return where, length, self._take(clen, f"{name} column", where)

    def _check_record_crc(self, where: str, stored: Sequence[bytes]) -> None:
        """Compare the block's trailing CRC32 with the bytes stored from its tag onwards."""
        (crc,) = _U32.unpack(self._take(4, "block record CRC", where))
        expected = 0
        for part in stored:
            expected = zlib.crc32(part, expected)
        if crc != expected:
            raise self._error(where, "block record CRC mismatch: stored bytes damaged")

    def _inflate(self, data: bytes, size: int, where: str) -> bytes:
        """Decompress one zlib stream, never producing more than ``size + 1`` bytes."""
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, size + 1)
        except zlib.error as e:
            raise self._error(where, f"decompression failed: {e}") from None
        if len(out) > size or (inflater.eof and len(out) < size):
            raise self._error(where, f"column length does not match the count: "
                              f"{'more than ' if len(out) > size else ''}{len(out)} bytes, expected {size}")
        if not inflater.eof:
            raise self._error(where, "decompression failed: incomplete zlib stream")
        if inflater.unused_data:
            raise self._error(where, f"{len(inflater.unused_data)} stray bytes after the zlib stream")
        return out

    def _read_end(self, count: int, pos: int) -> None:
        """Check the end marker's total against the blocks read, and that nothing follows."""
        where = f"byte {pos}"
        (total,) = _END.unpack(self._take(_END.size, "end marker", where))
        if total != count:
            raise self._error(where, f"end marker counts {total} events, the blocks hold {count}")
        extra = self._size - self._file.tell()
        if extra:
            raise self._error(f"byte {self._file.tell()}", f"trailing garbage: {extra} bytes after the end marker")


def iter_trace_blocks(path) -> Iterator[TraceEvents]:
    """Stream a trace file's events one block at a time (at most 1 Mi events each)."""
    with TraceReader(path) as reader:
        yield from reader.blocks()


def read_trace(path) -> Trace:
    """Read and check a whole trace file."""
    with TraceReader(path) as reader:
        events = TraceEvents.concatenate(list(reader.blocks()))
        return Trace(reader.tick_ns, reader.meta, events)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True, eq=False)
class TraceSummary:
    """Size and shape of a trace.

    Pages are (pid, vpn) pairs. ``pages_per_window[i]`` counts the distinct pages touched in the
    i-th window of ``window_ticks``; windows are aligned to multiples of ``window_ticks`` and run
    from the one holding the first event to the one holding the last.
    """

    events: int
    footprint_pages: int
    duration_ticks: int
    duration_s: float
    window_ticks: int
    pages_per_window: np.ndarray


def _distinct_firsts(*keys: np.ndarray) -> np.ndarray:
    """The first key of each distinct key tuple (vectorized sort-based distinct count)."""
    order = np.lexsort(keys[::-1])
    ordered = [key[order] for key in keys]
    new = np.ones(len(order), bool)
    new[1:] = False
    for key in ordered:
        new[1:] |= key[1:] != key[:-1]
    return ordered[0][new]


def _default_window(trace: Trace) -> int:
    """``meta["window_ticks"]`` if it is a positive integer, else one second of ticks."""
    w = trace.meta.get("window_ticks")
    if isinstance(w, int) and not isinstance(w, bool) and w > 0:
        return w
    return max(1, round(1e9 / trace.tick_ns))


def trace_summary(trace: Trace, window_ticks: int | None = None) -> TraceSummary:
    """Event count, footprint, duration and distinct pages per window of a trace."""
    if window_ticks is None:
        window_ticks = _default_window(trace)
    if isinstance(window_ticks, bool) or not isinstance(window_ticks, int) or window_ticks <= 0:
        raise ConfigError("window_ticks", window_ticks, "a positive integer number of ticks")
    ev = trace.events
    if not len(ev):
        return TraceSummary(0, 0, 0, 0.0, window_ticks, np.zeros(0, np.int64))
    duration = int(ev.time[-1]) - int(ev.time[0])
    windows = ev.time // np.uint64(window_ticks)
    windows = (windows - windows[0]).astype(np.int64)
    per_window = np.bincount(_distinct_firsts(windows, ev.pid, ev.vpn), minlength=int(windows[-1]) + 1)
    return TraceSummary(
        events=len(ev),
        footprint_pages=len(_distinct_firsts(ev.pid, ev.vpn)),
        duration_ticks=duration,
        duration_s=duration * trace.tick_ns * 1e-9,
        window_ticks=window_ticks,
        pages_per_window=per_window,
    )
