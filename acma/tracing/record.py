"""``acma trace record``: run a program under qemu-user with acma's page plugin, keep an acma trace.

Time in the trace is the guest instruction count: the plugin closes a window every ``window``
instructions, and every page touched in a window becomes one event at the window's first
instruction. ``tick_ns`` (the header's tick length) is the time assumed per instruction.

Reproducibility: the program runs with a fixed environment (:data:`FIXED_ENV` plus what the
caller adds), its stdin and stdout on files (``/dev/null`` by default), host address-space
randomisation off for the emulator (``personality(ADDR_NO_RANDOMIZE)``) and QEMU's ``-seed``
fixed, so the same program, arguments, inputs and working directory give the same trace bytes.
The metadata records all of it, with SHA-256 hashes of the program and of every argument that
names a file, so a trace says what produced it.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from ..errors import AcmaError, ConfigError
from ..units import finite_in
from ..workloads.trace import TraceWriter
from .plugin_output import PluginStats, iter_window_chunks, parse_stats
from .qemu import build_plugin, plugin_digest, qemu_version, require_qemu

DEFAULT_WINDOW = 100_000
DEFAULT_TICK_NS = 0.25          # 4e9 instructions/s: about 1.3 instructions per cycle at 3 GHz
DEFAULT_SEED = 0
MAX_WINDOW = 10**12
FIXED_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/nonexistent",
    "LC_ALL": "C",
    "TZ": "UTC",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}
REPLAY_VMA_GAP_PAGES = 16      # replay: pages within 64 KiB share a VMA (10-40 VMAs, as real processes map)
TRACE_PID = 1                   # the pid of every event of a recorded program
_ADDR_NO_RANDOMIZE = 0x0040000  # personality(2) flag, as `setarch -R` sets it


class MultithreadedProgram(AcmaError, RuntimeError):
    """The traced program created a thread: the plugin records single-threaded programs only."""


class RecordingFailed(AcmaError, RuntimeError):
    """qemu-user or the plugin did not produce a complete recording."""


@dataclass(frozen=True)
class Recording:
    """What one ``record`` call produced."""

    path: str
    stats: PluginStats
    meta: dict
    exit_status: int
    wall_s: float            # wall time of the emulated run
    file_bytes: int

    @property
    def instructions_per_s(self) -> float:
        return self.stats.instructions / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def bytes_per_1e8_instructions(self) -> float:
        return self.file_bytes * 1e8 / self.stats.instructions if self.stats.instructions else float("nan")


@dataclass
class RecordOptions:
    """How to run and record a program (every field ends up in the trace's metadata)."""

    window: int = DEFAULT_WINDOW
    tick_ns: float = DEFAULT_TICK_NS
    code: bool = True                      # also record the pages instructions are fetched from
    env: dict = field(default_factory=dict)  # added to FIXED_ENV
    cwd: str | None = None
    stdin: str | None = None               # a file fed to the program's stdin
    stdout: str | None = None              # where its stdout goes (default /dev/null)
    seed: int = DEFAULT_SEED               # QEMU -seed (AT_RANDOM bytes)
    timeout_s: float | None = None

    def validate(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or not 1 <= self.window <= MAX_WINDOW:
            raise ConfigError("window", self.window, f"an integer number of instructions in [1, {MAX_WINDOW}]")
        if not finite_in(self.tick_ns, 0, 1e12) or self.tick_ns == 0:
            raise ConfigError("tick_ns", self.tick_ns, "a finite number of nanoseconds per instruction > 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError("seed", self.seed, "an integer in [0, 2**63)")
        for k, v in self.env.items():
            if not isinstance(k, str) or not k or "=" in k or not isinstance(v, str):
                raise ConfigError(f"env[{k!r}]", v, "string names without '=' and string values")
        if self.timeout_s is not None and not finite_in(self.timeout_s, 0, 1e9):
            raise ConfigError("timeout_s", self.timeout_s, "None or a number of seconds > 0")
        for name in ("cwd",):
            d = getattr(self, name)
            if d is not None and not os.path.isdir(d):
                raise ConfigError(name, d, "an existing directory")
        if self.stdin is not None and not os.path.isfile(self._in_cwd(self.stdin)):
            raise ConfigError("stdin", self.stdin, "an existing file")

    def environment(self) -> dict:
        return {**FIXED_ENV, **self.env}

    def _in_cwd(self, path: str) -> str:
        return os.path.join(self.cwd or os.getcwd(), path)


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_program(program: str, env: dict, cwd: str | None) -> str:
    """The absolute path of ``program`` (searched on the fixed PATH unless it names a file)."""
    if os.sep in program:
        path = os.path.join(cwd or os.getcwd(), program)
    else:
        path = shutil.which(program, path=env.get("PATH", "")) or ""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ConfigError("program", program, f"an executable file or a program on PATH={env.get('PATH', '')}")
    return os.path.realpath(path)


def input_hashes(args: list[str], opts: RecordOptions) -> dict:
    """SHA-256 of every argument that names an existing file (relative to the working directory),
    and of stdin's file; keys are the arguments as written (stdin as ``"<stdin>"``)."""
    out = {}
    for a in args:
        p = opts._in_cwd(a)
        if a and os.path.isfile(p):
            out[a] = sha256_file(p)
    if opts.stdin is not None:
        out["<stdin>"] = sha256_file(opts._in_cwd(opts.stdin))
    return out


def _no_aslr() -> None:
    """In the child before exec: turn address-space randomisation off, like `setarch -R`."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.personality(_ADDR_NO_RANDOMIZE)


def record(out: str | os.PathLike, program: str, args: list[str] | tuple[str, ...] = (),
           options: RecordOptions | None = None) -> Recording:
    """Run ``program args`` under qemu-user with the page plugin and write the trace to ``out``.

    Raises ConfigError for bad options (before anything runs), ToolMissing when qemu-user or gcc
    is absent, MultithreadedProgram when the program starts a thread (no file is written), and
    RecordingFailed when the run produced no complete recording (killed, timed out, disk full).
    """
    opts = options or RecordOptions()
    opts.validate()
    out_dir = os.path.dirname(os.path.abspath(os.fspath(out)))
    if not os.path.isdir(out_dir):
        raise ConfigError("out", os.fspath(out), "a file in an existing directory")
    args = [str(a) for a in args]
    env = opts.environment()
    exe = resolve_program(program, env, opts.cwd)
    qemu = require_qemu()
    plugin = build_plugin()
    meta = {
        "tool": "acma trace record (qemu-user, acma_pages plugin)",
        "program": exe,
        "program_sha256": sha256_file(exe),
        "args": args,
        "inputs_sha256": input_hashes(args, opts),
        "env": env,
        "stdin": opts.stdin,
        "window_ticks": opts.window,
        "time_unit": "guest instruction",
        "tick_ns_meaning": "assumed nanoseconds per guest instruction",
        "code_pages": opts.code,
        "address_space": "virtual",
        "vma_gap_pages": REPLAY_VMA_GAP_PAGES,
        "qemu": qemu_version(qemu),
        "qemu_seed": opts.seed,
        "plugin_sha256": plugin_digest(),
    }
    with tempfile.TemporaryDirectory(prefix="acma-trace-") as tmp:
        pages, stats_path = os.path.join(tmp, "pages.bin"), os.path.join(tmp, "stats.txt")
        cmd = [qemu, "-seed", str(opts.seed),
               "-plugin", f"{plugin},out={pages},stats={stats_path},win={opts.window},code={int(opts.code)}",
               exe, *args]
        with contextlib.ExitStack() as files:
            stdin = files.enter_context(open(opts._in_cwd(opts.stdin), "rb")) if opts.stdin else subprocess.DEVNULL
            stdout = files.enter_context(open(opts._in_cwd(opts.stdout), "wb")) if opts.stdout else subprocess.DEVNULL
            t0 = time.perf_counter()
            try:
                done = subprocess.run(cmd, env=env, cwd=opts.cwd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                                      timeout=opts.timeout_s, preexec_fn=_no_aslr, check=False)
            except subprocess.TimeoutExpired:
                raise RecordingFailed(f"{exe} did not finish within {opts.timeout_s} s under qemu-user") from None
        wall = time.perf_counter() - t0
        stats = _read_stats(stats_path, done, exe)
        if stats.multithreaded:
            raise MultithreadedProgram(
                f"{exe} started a thread at instruction {stats.thread_at} ({stats.vcpus} vCPUs): acma traces "
                "single-threaded programs only; run it single-threaded (e.g. xz -T1, sort --parallel=1, "
                "OMP_NUM_THREADS=1 via --env)")
        if stats.write_error:
            raise RecordingFailed(f"the plugin could not write its records for {exe} (disk full?)")
        meta.update(exit_status=done.returncode, instructions=stats.instructions, accesses=stats.accesses,
                    forks_not_traced=stats.forks)
        with open(pages, "rb") as f, TraceWriter(out, opts.tick_ns, meta) as writer:
            for chunk in iter_window_chunks(f, TRACE_PID, source=pages):
                writer.append(chunk)
    return Recording(os.path.abspath(os.fspath(out)), stats, meta, done.returncode, wall,
                     os.path.getsize(out))


def _read_stats(path: str, done: subprocess.CompletedProcess, exe: str) -> PluginStats:
    """The plugin's summary, or RecordingFailed quoting qemu's stderr when there is none."""
    if not os.path.isfile(path):
        err = done.stderr.decode(errors="replace")[-2000:]
        raise RecordingFailed(f"{exe} under qemu-user ended with status {done.returncode} and the plugin wrote "
                              f"no summary (killed by a signal, or qemu failed):\n{err}")
    with open(path) as f:
        return parse_stats(f.read(), path)
