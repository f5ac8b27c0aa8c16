"""Real programs as workloads: Debian binaries run on fixed, generated inputs.

Every workload here is a program found on any Debian machine (gzip, xz, sort, python3) or in
its registry (sqlite3), run single-threaded on inputs generated from a fixed seed, in a fixed
environment, from a working directory holding only its inputs (relative paths, so the
program sees the same argv). That directory is a fresh temporary one whose path always has
the same length: python's start-up reads its working directory, and a longer path costs a few
more instructions. Recording one twice gives the same trace bytes, whatever ``directory`` the
trace goes to (tests/test_tracing_qemu.py checks this).

``scale`` sets the input size: ``"small"`` for tests (each program runs 10-150 M instructions,
well under a second under qemu-user), ``"medium"`` for the evidence in docs/real-workloads.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .record import Recording, RecordOptions, record

SCALES = {"small": 1, "medium": 8}
_WORDS = ("memory", "page", "fold", "reclaim", "guest", "host", "balloon", "region", "access", "sample",
          "aggregate", "monitor", "scheme", "quota", "watermark", "compaction", "hotplug", "zone", "node",
          "swap", "cache", "anon", "file", "dirty", "clean", "idle", "young", "active", "inactive", "lru",
          "kswapd", "fault", "migrate", "tier", "report", "free", "buddy", "order", "pageblock", "movable",
          "kernel", "damon", "acma")


def _text(rng: np.random.Generator, nbytes: int) -> bytes:
    """Words drawn with a Zipf-like skew, ten to a line, about ``nbytes`` long."""
    weights = 1.0 / np.arange(1, len(_WORDS) + 1)
    idx = rng.choice(len(_WORDS), size=max(1, nbytes // 6), p=weights / weights.sum())
    nums = rng.integers(0, 100_000, size=len(idx))
    tokens = [f"{_WORDS[i]}{n}" if n % 7 == 0 else _WORDS[i] for i, n in zip(idx.tolist(), nums.tolist())]
    lines = [" ".join(tokens[k:k + 10]) for k in range(0, len(tokens), 10)]
    return ("\n".join(lines) + "\n").encode()[:nbytes]


def _sql(rng: np.random.Generator, rows: int) -> bytes:
    """An in-memory database session: a table of ``rows`` rows, an index, two queries."""
    return (
        "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);\n"
        f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows}) "
        f"INSERT INTO t(k, v) SELECT (i * 2654435761) % {rows // 2 + int(rng.integers(1, 100))}, printf('value-%08d', i) FROM c;\n"
        "CREATE INDEX tk ON t(k);\n"
        f"SELECT count(*), sum(k) FROM t WHERE k < {rows // 8};\n"
        "SELECT k, count(*) FROM t GROUP BY k ORDER BY 2 DESC LIMIT 5;\n"
    ).encode()


_PY_SCRIPT = '''"""A dict of {n} entries, sorted views of it, and a list comprehension: allocation-heavy Python."""
n = {n}
d = {{i: str(i * 7919 % n) for i in range(n)}}
s = sorted(d.items(), key=lambda kv: kv[1])
evens = [k for k, v in s if k % 2 == 0]
print(len(d), len(s), len(evens), s[0], s[-1])
'''


def _write(directory: str, name: str, data: bytes) -> None:
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


@dataclass(frozen=True)
class RealWorkload:
    """A program, its arguments (relative to its input directory), and how to make its inputs."""

    name: str
    program: str
    args: tuple[str, ...]
    apt_package: str
    make_inputs: Callable[[str, int], None]   # (directory, scale factor)
    stdin: str | None = None
    description: str = ""

    def available(self) -> bool:
        return shutil.which(self.program, path=RecordOptions().environment()["PATH"]) is not None


def _text_input(nbytes: int):
    def make(directory: str, k: int) -> None:
        _write(directory, "input.txt", _text(np.random.default_rng(1), nbytes * k))
    return make


def _sql_input(directory: str, k: int) -> None:
    _write(directory, "session.sql", _sql(np.random.default_rng(2), 20_000 * k))


def _py_input(directory: str, k: int) -> None:
    _write(directory, "work.py", _PY_SCRIPT.format(n=20_000 * k).encode())


WORKLOADS: dict[str, RealWorkload] = {w.name: w for w in (
    RealWorkload("gzip", "gzip", ("-6", "-c", "input.txt"), "gzip", _text_input(256 << 10),
                 description="gzip -6 of generated text (256 KiB per scale unit)"),
    RealWorkload("xz", "xz", ("-T1", "-6", "-c", "input.txt"), "xz-utils", _text_input(128 << 10),
                 description="xz -6, one thread, of generated text (128 KiB per scale unit)"),
    RealWorkload("sort", "sort", ("--parallel=1", "-S", "64M", "input.txt"), "coreutils", _text_input(1 << 20),
                 description="sort --parallel=1 of generated lines (1 MiB per scale unit)"),
    RealWorkload("sqlite3", "sqlite3", (":memory:",), "sqlite3", _sql_input, stdin="session.sql",
                 description="sqlite3 in memory: 20k rows per scale unit inserted, indexed, queried twice"),
    RealWorkload("python", "python3", ("-S", "-"), "python3-minimal", _py_input, stdin="work.py",
                 description="python3 -S reading its script from stdin (so sys.path holds no directory): "
                             "a 20k-entry dict per scale unit, sorted, filtered"),
)}


def _scale_factor(scale: str) -> int:
    if scale not in SCALES:
        raise ConfigError("scale", scale, f"one of {sorted(SCALES)}")
    return SCALES[scale]


def prepare_inputs(workload: RealWorkload, directory: str, scale: str = "small") -> str:
    """Generate the workload's inputs into ``directory/<name>/`` (created); return that directory."""
    k = _scale_factor(scale)
    d = os.path.join(directory, workload.name)
    os.makedirs(d, exist_ok=True)
    workload.make_inputs(d, k)
    return d


def record_workload(name: str, directory: str, scale: str = "small", out: str | None = None,
                    options: RecordOptions | None = None) -> Recording:
    """Generate the inputs of workload ``name`` in a temporary directory and record it to ``out``
    (default ``directory/<name>.trace``). ``options`` may set window, tick_ns, code, env, seed and
    timeout; the working directory and stdin are the workload's."""
    if name not in WORKLOADS:
        raise ConfigError("workload", name, f"one of {sorted(WORKLOADS)}")
    wl = WORKLOADS[name]
    out = out or os.path.join(directory, f"{name}.trace")
    opts = options or RecordOptions()
    with tempfile.TemporaryDirectory(prefix="acma-run-") as run_dir:   # a path of fixed length
        inputs = prepare_inputs(wl, run_dir, scale)
        opts = RecordOptions(window=opts.window, tick_ns=opts.tick_ns, code=opts.code, env=opts.env, cwd=inputs,
                             stdin=wl.stdin, stdout=None, seed=opts.seed, timeout_s=opts.timeout_s)
        return record(out, wl.program, list(wl.args), opts)
