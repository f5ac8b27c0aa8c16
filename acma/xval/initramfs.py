"""A byte-reproducible initramfs (newc cpio, gzip without a timestamp) written in Python.

Every entry gets mtime 0, uid/gid 0 and inode numbers in name order, so the same inputs give
the same bytes, which the determinism check of the guest runs relies on (the kernel unpacks
newc archives as described in Documentation/driver-api/early-userspace/buffer-format.rst).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

__all__ = ["build_initramfs"]

_DIR, _FILE = 0o040755, 0o100755


def _entry(name: str, mode: int, ino: int, data: bytes) -> bytes:
    """One newc header, name and data, each padded to 4 bytes."""
    nameb = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1 if mode != _DIR else 2, 0, len(data), 0, 0, 0, 0, len(nameb), 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = head + nameb
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def build_initramfs(files: dict[str, bytes | os.PathLike], out: str | os.PathLike,
                    dirs: tuple[str, ...] = ("bin", "dev", "proc", "sys", "tmp")) -> Path:
    """Write a gzipped newc archive holding ``dirs`` and ``files`` (archive path -> bytes or a host path).

    Every file is executable; parents of file paths are created as directories.
    """
    entries: dict[str, tuple[int, bytes]] = {d: (_DIR, b"") for d in dirs}
    for name, content in files.items():
        data = content if isinstance(content, bytes) else Path(content).read_bytes()
        parts = name.split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), (_DIR, b""))
        entries[name] = (_FILE, data)
    blob = b"".join(_entry(n, m, i + 1, d) for i, (n, (m, d)) in enumerate(sorted(entries.items())))
    blob += _entry("TRAILER!!!", 0, 0, b"")
    out = Path(out)
    out.write_bytes(gzip.compress(blob, compresslevel=1, mtime=0))
    return out
