"""Recording real programs under qemu-user (marker ``qemu``; skipped when qemu-x86_64 is absent)."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from acma.cli import main
from acma.damon import Attrs, Context, Target
from acma.mm.guest import GuestConfig
from acma.sim import Simulation
from acma.tracing.accuracy import TraceAccuracyTracker
from acma.tracing.lackey import compare_pages, elf_image_pages, run_lackey
from acma.tracing.programs import WORKLOADS, record_workload
from acma.tracing.qemu import QEMU
from acma.tracing.record import FIXED_ENV, MultithreadedProgram, RecordOptions, record
from acma.tracing.replay import TraceTruth, load_replay_trace
from acma.workloads.trace import read_trace

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(shutil.which(QEMU) is None, reason="qemu-user (qemu-x86_64) is not installed")]

THREADS_C = r"""
#include <pthread.h>
static void *work(void *a) { volatile long s = 0; for (long i = 0; i < 100000; i++) s += i; return a; }
int main(void) { pthread_t t; pthread_create(&t, 0, work, 0); work(0); pthread_join(t, 0); return 0; }
"""
FORK_C = r"""
#include <unistd.h>
#include <sys/wait.h>
int main(void) { pid_t p = fork(); if (!p) _exit(0); waitpid(p, 0, 0); return 3; }
"""
# a static, non-PIE program: its image has the same addresses under qemu-user and valgrind
CROSS_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int cmp(const void *a, const void *b) { unsigned x = *(const unsigned *)a, y = *(const unsigned *)b; return (x > y) - (x < y); }
int main(void) {
    enum { N = 1 << 11 };
    unsigned *t = malloc(N * sizeof *t), *c = malloc(N * sizeof *c), h = 2166136261u;
    for (unsigned i = 0; i < N; i++) t[i] = (i * 2654435761u) ^ (i >> 3);
    for (unsigned r = 0; r < 4; r++) for (unsigned i = 0; i < N; i += 7) h = (h ^ t[(t[i] + r) % N]) * 16777619u;
    memcpy(c, t, N * sizeof *t);
    qsort(c, N, sizeof *c, cmp);
    printf("%u %u %u\n", h, c[0], c[N - 1]);
    return 0;
}
"""


def _compile(tmp_path, name, source, *flags):
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    exe = tmp_path / name
    subprocess.run(["gcc", "-O1", *flags, "-o", str(exe), str(src)], check=True)
    return exe


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Every real workload recorded twice, in two directories (small inputs)."""
    out = {}
    for run in ("a", "b-with-a-longer-path"):
        d = tmp_path_factory.mktemp(f"real-{run}")
        out[run] = {name: record_workload(name, str(d)) for name in WORKLOADS if WORKLOADS[name].available()}
    return out


def test_real_workloads_are_reproducible_byte_for_byte(recorded):
    a, b = recorded["a"], recorded["b-with-a-longer-path"]
    assert set(a) >= {"gzip", "sort"}          # the others run when installed (xz-utils, sqlite3, python3)
    for name in a:
        with open(a[name].path, "rb") as fa, open(b[name].path, "rb") as fb:
            assert fa.read() == fb.read(), name
        assert a[name].exit_status == 0, name
        assert a[name].stats.instructions > 1_000_000 and a[name].stats.forks == 0, name


def test_trace_metadata_says_what_produced_it(recorded):
    rec = recorded["a"]["gzip"]
    tr = read_trace(rec.path)
    m = tr.meta
    assert m["program"].endswith("gzip") and m["args"] == ["-6", "-c", "input.txt"]
    assert set(m["inputs_sha256"]) == {"input.txt"} and len(m["program_sha256"]) == 64
    assert m["window_ticks"] == 100_000 and m["instructions"] == rec.stats.instructions
    assert m["env"]["LC_ALL"] == "C" and tr.tick_ns == 0.25 and m["address_space"] == "virtual"
    assert len(tr.events) == rec.stats.page_events
    assert int(tr.events.time[-1]) < rec.stats.instructions
    assert len(np.unique(tr.events.vpn)) > 100


def test_a_thread_is_refused_and_no_file_is_left(tmp_path):
    exe = _compile(tmp_path, "threads", THREADS_C, "-pthread")
    with pytest.raises(MultithreadedProgram, match="single-threaded"):
        record(tmp_path / "t.trace", str(exe))
    assert not (tmp_path / "t.trace").exists()


def test_cli_record_warns_about_forks_and_exit_status_then_info(tmp_path):
    exe = _compile(tmp_path, "forks", FORK_C)
    out = CliRunner().invoke(main, ["trace", "record", "-o", str(tmp_path / "f.trace"), "--window", "1000",
                                    "--", str(exe)])
    assert out.exit_code == 0, out.output
    assert "forked 1 time" in out.output and "exited with status 3" in out.output
    info = CliRunner().invoke(main, ["trace", "info", str(tmp_path / "f.trace")])
    assert info.exit_code == 0 and "footprint" in info.output


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_plugin_agrees_with_valgrind_lackey(tmp_path):
    """The image pages agree within 10 % (Jaccard >= 0.9); the rest and the instruction counts
    within 10 % (docs/real-workloads.md §5 explains the differences)."""
    exe = _compile(tmp_path, "cross", CROSS_C, "-static", "-no-pie")
    rec = record(tmp_path / "c.trace", str(exe), [], RecordOptions(cwd=str(tmp_path)))
    lk = run_lackey(str(exe), [], FIXED_ENV, str(tmp_path))
    c = compare_pages(read_trace(rec.path).events.vpn, rec.stats.instructions, lk, elf_image_pages(str(exe)))
    assert c.image_jaccard >= 0.9, c
    assert abs(c.other_plugin - c.other_lackey) <= max(2, 0.1 * c.other_lackey), c
    assert abs(c.instructions_plugin / c.instructions_lackey - 1) < 0.1, c


def test_replayed_real_trace_under_damon_vaddr_and_paddr(recorded):
    tr = load_replay_trace(recorded["a"]["gzip"].path, tick_ns=10.0, repeat=2)
    for ops in ("vaddr", "paddr"):
        sim = Simulation(GuestConfig(size="512 MiB", swap="0", seed=0))
        run = sim.add_trace(tr, name="gzip", vma_gap_pages=16)
        proc = next(iter(run.processes.values()))
        target = Target(process=proc) if ops == "vaddr" else Target(ranges=[(0, 512 << 20)])
        ctx = Context(sim.guest, ops, [target], Attrs(sample_us=5000, aggr_us=100_000, ops_update_us=1_000_000))
        tk = TraceAccuracyTracker(TraceTruth([run])).attach(ctx)
        sim.run(1_000_000, advance=ctx.run_until)
        assert sim.guest.vmstat()["trace_events"] > 0
        assert len(tk.windows) == 10 and all(w.true_wss > 0 for w in tk.windows), ops
        assert os.path.basename(proc.name).startswith("gzip")
