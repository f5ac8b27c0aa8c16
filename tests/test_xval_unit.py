"""acma xval without QEMU: the generated program (run natively), the initramfs, the parsers and
the metrics. The guest runs themselves are in test_xval_guest.py (marker ``xval``)."""

import gzip
import shutil
import signal
import subprocess
import time

import pytest

from acma.damon.context import Attrs
from acma.damos.scheme import AccessPattern, Scheme
from acma.errors import ConfigError, FormatError
from acma.workloads.model import Pattern, Phase, Region, Workload
from acma.xval.compare import detect_times, rebase_record, wss_series
from acma.xval.cprog import compile_static, workload_to_c
from acma.xval.guest import GuestOptions, damon_init_script
from acma.xval.initramfs import build_initramfs
from acma.xval.parse import parse_damon_output
from acma.xval.run import load_xval_workload, paid_workload, run_damon_xval
from acma.xval.shapes import SHAPES

MiB = 1 << 20


def _tiny(repeat=1):
    return Workload("tiny", (Region("a", MiB), Region("b", MiB), Region("c", 2 * MiB, initial_size=MiB)),
                    (Phase("p0", 150_000, (Pattern("a", 2000.0, 1.0),)),
                     Phase("p1", 150_000, (Pattern("b", 2000.0, 0.0), Pattern("c", 100.0)), sizes={"c": 2 * MiB})),
                    repeat=repeat)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the guest program")
def test_generated_program_runs_the_phases_natively(tmp_path):
    try:
        exe = compile_static(workload_to_c(_tiny()), tmp_path / "wl")
    except RuntimeError as e:  # no static libc on this machine
        pytest.skip(str(e))
    p = subprocess.Popen([str(exe), "0"], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for expected_stop in range(2):
            while True:     # the program stops itself after mapping and after its phases
                line = p.stdout.readline()
                lines.append(line)
                if line.startswith("@@ wl ready") or line.startswith("@@ wl end"):
                    break
            for _ in range(200):
                with open(f"/proc/{p.pid}/status") as f:
                    if "stopped" in f.read():
                        break
                time.sleep(0.01)
            p.send_signal(signal.SIGCONT)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = "".join(lines)
    assert text.count("@@ wl region ") == 3 and "in_use=1048576" in text
    touches = [l.split() for l in lines if "touches done=" in l]
    assert len(touches) == 2
    for t in touches:
        done, owed = int(t[5].split("=")[1]), int(t[6].split("=")[1])
        assert done == owed and owed > 0        # a host CPU pays these few touches easily


def test_program_source_is_deterministic_and_checks_its_input():
    assert workload_to_c(_tiny(), seed=3) == workload_to_c(_tiny(), seed=3)
    assert workload_to_c(_tiny(), seed=3) != workload_to_c(_tiny(), seed=4)
    with pytest.raises(ConfigError, match="repeat"):
        workload_to_c(_tiny(repeat=0))
    with pytest.raises(ConfigError, match="seed"):
        workload_to_c(_tiny(), seed=0)
    with pytest.raises(ConfigError, match="workload"):
        workload_to_c("tiny")


def test_initramfs_is_byte_reproducible(tmp_path):
    files = {"init": b"#!/bin/sh\n", "bin/tool": b"\x7fELF" + bytes(100)}
    a = build_initramfs(files, tmp_path / "a.gz").read_bytes()
    b = build_initramfs(dict(reversed(list(files.items()))), tmp_path / "b.gz").read_bytes()
    assert a == b
    raw = gzip.decompress(a)
    assert raw.startswith(b"070701") and b"TRAILER!!!" in raw and raw.count(b"070701") == 8
    if shutil.which("cpio"):
        names = subprocess.run(["cpio", "-it"], input=raw, capture_output=True).stdout.decode().split()
        assert {"init", "bin", "bin/tool", "proc", "sys", "dev", "tmp"} <= set(names)


def test_init_script_writes_the_scheme_and_attributes():
    s = damon_init_script("paddr", Attrs(sample_us=2000, aggr_us=40_000, min_nr_regions=12),
                          Scheme(action="pageout", pattern=AccessPattern(max_nr_accesses=0, min_age_region=7)),
                          GuestOptions())
    for needle in ("echo 2000 > $A/intervals/sample_us", "echo 40000 > $A/intervals/aggr_us",
                   "echo 12 > $A/nr_regions/min", "echo pageout > $S/action", "echo 0 > $P/nr_accesses/max",
                   "echo 7 > $P/age/min", "System RAM"):
        assert needle in s
    with pytest.raises(ConfigError, match="ops"):
        damon_init_script("fvaddr", Attrs(), Scheme(), GuestOptions())
    with pytest.raises(ConfigError, match="mem_mib"):
        GuestOptions(mem_mib=64).validate()


def _console(a0=0x7F0000000000):
    lines = ["@@ boot t=1.0 kernel=6.12.x", f"@@ wl region a {a0}-{a0 + MiB} in_use={MiB}",
             f"@@ wl region b {a0 + 3 * MiB}-{a0 + 4 * MiB} in_use={MiB}",
             "@@ wl phase 0 p0 t=10.000000", "@@ wl phase 0 touches done=5 owed=5",
             "@@ wl phase 1 p1 t=10.200000", "@@ wl end t=10.400000",
             "@@ scheme stats nr_tried=3 sz_tried=4096 nr_applied=1 sz_applied=4096 qt_exceeds=0",
             "@@ vmstat pswpout=7 pswpin=0", "@@ trace begin",
             "  wl-1 [000] ..... 10.000010: tracing_mark_write: xval phase 0"]
    t = 10.1
    for k in range(4):
        hot_a = 20 if k < 2 else 0
        regs = [(a0, a0 + MiB, hot_a), (a0 + MiB, a0 + 3 * MiB, 0), (a0 + 3 * MiB, a0 + 4 * MiB, 20 - hot_a)]
        for s, e, n in regs:
            lines.append(f"  kdamond.0-9 [000] ..... {t:.6f}: damon_aggregated: target_id=0 nr_regions=3 {s}-{e}: {n} 1")
        t += 0.1
    return lines + ["@@ trace end", "@@ done t=11"]


def test_console_parsing_and_the_common_frame():
    k = parse_damon_output(_console(), Attrs())
    assert k.regions["b"][1] - k.regions["b"][0] == MiB
    assert k.scheme_stats["sz_applied"] == 4096 and k.vmstat["pswpout"] == 7
    assert k.start_s == pytest.approx(10.00001)       # the trace marker wins over the program's clock
    assert len(k.record.targets[0].snapshots) == 4
    dst = {"a": (0x5555_0000_0000, 0x5555_0000_0000 + MiB), "b": (0x7F00_0000_0000, 0x7F00_0000_0000 + MiB)}
    moves = [(ka, kb, dst[n][0]) for n, (ka, kb) in k.regions.items()]
    rec = rebase_record(k.record, round(k.start_s * 1e9), moves)
    snaps = rec.targets[0].snapshots
    assert all(s.start[0] >= 0x5555_0000_0000 for s in snaps)
    assert [b for _, b in wss_series(rec, sorted(dst.values()))] == [MiB] * 4
    wl = Workload("w", (Region("a", MiB), Region("b", MiB), Region("c", MiB)),
                  (Phase("p0", 200_000, (Pattern("a", 1000.0),)), Phase("p1", 200_000, (Pattern("b", 1000.0),))),
                  repeat=1)
    det = detect_times(rec, wl, dst)
    assert det[0] == pytest.approx(0.1, abs=1e-3) and det[1] == pytest.approx(0.1, abs=1e-3)


def test_console_without_results_is_a_format_error():
    with pytest.raises(FormatError, match="scheme stats"):
        parse_damon_output([l for l in _console() if "scheme stats" not in l], Attrs())


def test_workload_loading(tmp_path):
    for name in SHAPES:
        wl = load_xval_workload(name)
        assert wl.repeat == 1 and len(wl.regions) >= 3
    p = tmp_path / "w.json"
    p.write_text(__import__("json").dumps(dict(_tiny(repeat=0).to_dict())))
    assert load_xval_workload(str(p), repeat=3).repeat == 3
    half = load_xval_workload(str(p), rate_scale=0.5)
    assert half.phases[1].patterns[0].rate_hz == 1000.0 and half.phases[1].sizes == {"c": 2 * MiB}
    with pytest.raises(ConfigError, match="workload"):
        load_xval_workload(str(tmp_path / "missing.cfg"))
    two = Workload("two", (Region("a", MiB), Region("b", MiB)), (Phase("p", 1000, ()),), repeat=1)
    with pytest.raises(ConfigError, match="paddr"):   # refused before any guest boots
        run_damon_xval(None, two, "vaddr", Attrs(), Scheme(), GuestOptions(), tmp_path)


def test_fpr_samples_join_the_rss_read_at_each_line():
    from acma.xval.fpr import _summary, parse_fpr
    lines = ["boot noise", "@@ fpr t=1.000000 stage=touched nr_free_pages=100 nr_anon_pages=5",
             "@@ fpr t=2.000000 stage=freed nr_free_pages=200 nr_anon_pages=1",
             "@@ fpr t=4.000000 stage=after nr_free_pages=200 nr_anon_pages=1",
             "@@ fpr t=5.000000 stage=after nr_free_pages=210 nr_anon_pages=1"]
    s = parse_fpr(lines, [(1, 600_000), (2, 600_000), (3, 500_000), (4, 480_000)])
    assert [x["t_s"] for x in s] == [-1.0, 0.0, 2.0, 3.0]
    assert s[0]["free_kb"] == 400 and s[3]["rss_kb"] == 480_000
    summary = _summary(s, 100)
    assert summary["rss_returned_kb"] == 120_000 and summary["half_returned_after_s"] == 2.0


def test_acma_fpr_returns_the_freed_memory_after_the_reporting_delay():
    from acma.xval.fpr import acma_fpr
    on = acma_fpr(64, 500, 3000, 250, GuestOptions(mem_mib=256, swap_mib=0), reporting=True)
    off = acma_fpr(64, 500, 3000, 250, GuestOptions(mem_mib=256, swap_mib=0), reporting=False)
    peak = max(x["rss_kb"] for x in on)
    assert peak == 64 << 10
    after_on = {x["t_s"]: x["rss_kb"] for x in on if x["stage"] == "after"}
    assert after_on[1.75] == peak and after_on[2.0] == 0      # page_reporting's 2 s delay
    assert all(x["rss_kb"] == peak for x in off if x["stage"] == "after")


def test_cli_refuses_bad_input_before_booting(tmp_path):
    from click.testing import CliRunner
    from acma.cli import main
    r = CliRunner().invoke(main, ["xval", "damon", str(tmp_path / "nope.cfg"), "--no-setup"])
    assert r.exit_code != 0 and "moving-hot" in r.output
    r = CliRunner().invoke(main, ["xval", "fpr", "--alloc", "400", "--mem", "512", "--no-setup"])
    assert r.exit_code != 0 and "half the guest" in r.output


def test_acma_runs_the_rates_the_guest_paid():
    wl = _tiny(repeat=2)
    same, share = paid_workload(wl, [(0, 99, 100), (1, 100, 100), (0, 100, 100), (1, 97, 100)])
    assert same is wl and share[0] == pytest.approx(0.995)
    slow, share = paid_workload(wl, [(0, 50, 100), (1, 100, 100), (0, 30, 100), (1, 100, 100)])
    assert share[0] == pytest.approx(0.4)
    assert slow.phases[0].patterns[0].rate_hz == pytest.approx(800.0)
    assert slow.phases[1].patterns == wl.phases[1].patterns
