"""Checkpoints of a whole simulation, so a long run can stop and resume bit for bit.

A checkpoint file is a header (magic, format version, SHA-256 of the payload) and a pickle of
the Simulation; the C state inside it is the C core's own snapshot (csrc/snapshot.c), checked
whole when loaded. Files are written atomically. Like any pickle, load only checkpoints you
wrote: the hash detects corruption, not tampering.
"""

from __future__ import annotations

import hashlib
import pickle
import struct

from .errors import FormatError
from .io.atomic import write_bytes_atomic
from .sim import Simulation

MAGIC = b"ACMACKP1"
_HEADER = struct.Struct("<8sI32sQ")


def save_checkpoint(sim: Simulation, path) -> None:
    payload = pickle.dumps(sim, protocol=pickle.HIGHEST_PROTOCOL)
    header = _HEADER.pack(MAGIC, 1, hashlib.sha256(payload).digest(), len(payload))
    write_bytes_atomic(path, header + payload)


def load_checkpoint(path) -> Simulation:
    src = str(path)
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < _HEADER.size:
        raise FormatError(src, "byte 0", f"a checkpoint header of {_HEADER.size} bytes")
    magic, version, digest, n = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(src, "byte 0", "the magic ACMACKP1 (not an acma checkpoint)")
    if version != 1:
        raise FormatError(src, "byte 8", f"format version 1, not {version}")
    payload = data[_HEADER.size:]
    if len(payload) != n:
        raise FormatError(src, f"byte {_HEADER.size}", f"{n} payload bytes, found {len(payload)} (truncated?)")
    if hashlib.sha256(payload).digest() != digest:
        raise FormatError(src, f"byte {_HEADER.size}", "a payload matching its SHA-256 (the file is corrupt)")
    sim = pickle.loads(payload)
    if not isinstance(sim, Simulation):
        raise FormatError(src, f"byte {_HEADER.size}", "a pickled Simulation")
    return sim
