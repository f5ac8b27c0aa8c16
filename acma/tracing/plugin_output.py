"""What the acma_pages plugin writes: its exit summary (``key=value`` lines) and window records.

The window records are the format of ``TraceEvents.from_window_records``; here they are read
in chunks of whole windows so that a long recording never has to fit in memory at once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import BinaryIO

from ..errors import FormatError
from ..workloads.trace import TraceEvents

STATS_FORMAT = "acma_pages 1"
_WINDOW_HEAD = struct.Struct("<QI")


@dataclass(frozen=True)
class PluginStats:
    """The plugin's counters at the program's exit."""

    instructions: int   # guest instructions executed (whole translation blocks)
    accesses: int       # data loads and stores seen
    window: int         # instructions per window
    windows: int        # windows written (windows with no touch are skipped)
    page_events: int    # (window, page) entries written
    bytes: int          # bytes of window records written
    vcpus: int          # vCPUs started: more than 1 means the program created a thread
    thread_at: int      # instruction count when the second vCPU started (0: never)
    threads: int        # clone() calls with CLONE_THREAD
    forks: int          # fork(), vfork() and clone() without CLONE_THREAD: children not traced
    clone3: int         # clone3() calls (flags unseen; qemu 7.2 answers ENOSYS, glibc falls back)
    write_error: int    # 1 when writing the records failed (disk full...)

    @property
    def multithreaded(self) -> bool:
        return self.vcpus > 1 or self.threads > 0


def parse_stats(text: str, source: str = "<plugin stats>") -> PluginStats:
    """Parse the summary file; FormatError for a missing key, a bad number or a wrong format line."""
    values: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise FormatError(source, f"line {n}", f"expected key=value, got {line!r}")
        values[key.strip()] = value.strip()
    if values.get("format") != STATS_FORMAT:
        raise FormatError(source, "line 1", f"format {values.get('format')!r}, expected {STATS_FORMAT!r}")
    out = {}
    for f in fields(PluginStats):
        if f.name not in values:
            raise FormatError(source, f.name, "missing")
        try:
            out[f.name] = int(values[f.name])
        except ValueError:
            raise FormatError(source, f.name, f"{values[f.name]!r} is not an integer") from None
        if out[f.name] < 0:
            raise FormatError(source, f.name, f"{out[f.name]} is negative")
    return PluginStats(**out)


def iter_window_chunks(f: BinaryIO, pid: int, chunk_bytes: int = 32 << 20,
                       source: str = "<window records>") -> Iterator[TraceEvents]:
    """Events of the window records in ``f``, in chunks of whole windows of about ``chunk_bytes``."""
    pending = b""
    while True:
        data = f.read(chunk_bytes)
        buf = pending + data
        end = _whole_windows(buf)
        if end:
            yield TraceEvents.from_window_records(memoryview(buf)[:end], pid, source=source)
        pending = buf[end:]
        if not data:
            break
    if pending:
        TraceEvents.from_window_records(pending, pid, source=source)  # raises: a truncated window
        raise FormatError(source, "end", f"{len(pending)} bytes of an incomplete window")


def _whole_windows(buf: bytes) -> int:
    """Length of the longest prefix of ``buf`` made of complete windows."""
    off = 0
    while len(buf) - off >= _WINDOW_HEAD.size:
        _, n = _WINDOW_HEAD.unpack_from(buf, off)
        stop = off + _WINDOW_HEAD.size + 8 * n
        if stop > len(buf):
            break
        off = stop
    return off

