"""``acma xval fpr``: free page reporting in the real guest, measured from both sides.

A fixed guest program touches ``alloc_mib`` MiB, holds it, frees it (munmap), then watches: every
``step_ms`` it prints the guest's free pages (/proc/vmstat ``nr_free_pages``). The host reads
QEMU's VmRSS from /proc/<qemu pid>/status whenever such a line arrives, so the RSS series is
indexed by guest time. The guest's init script prints /proc/zoneinfo's free pages per zone
before and after. With ``free-page-reporting=on`` the guest's page_reporting worker hands free
2 MiB blocks (``page_reporting_order`` 9) to the host, which discards them (MADV_DONTNEED), so
RSS falls after the free; with ``off`` it stays.

acma's side replays the same steps on its own guest of the same size: a process maps and
fills ``alloc_mib`` (backed on first write by :class:`acma.mm.backing.Backing`, 4 KiB host
pages), holds it, shrinks it to nothing (the pages go back to the buddy allocator), and
:class:`acma.mm.reporting.PageReporting` (page_reporting.c's 2 s delayed passes at order 9)
reports free blocks, which the host discards. acma backs only what the guest wrote; QEMU's RSS
also holds QEMU itself, firmware and the guest kernel, so the two are compared as the memory
returned after the free and how fast, not as absolute RSS.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..io.atomic import write_text_atomic
from .cprog import compile_static
from .guest import GuestOptions, fpr_init_script, guest_files, run_qemu
from .initramfs import build_initramfs
from .setup import GuestKit

__all__ = ["FPR_PROGRAM", "FprResult", "parse_fpr", "run_fpr_xval"]

FPR_PROGRAM = r"""/* acma xval fpr: touch, hold, free, and watch the guest's free pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_BOOTTIME, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static long vmstat(const char *key)
{
	char name[64];
	long v, out = -1;
	FILE *f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", name, &v) == 2)
		if (!strcmp(name, key))
			out = v;
	fclose(f);
	return out;
}

static void report(const char *stage)
{
	printf("@@ fpr t=%.6f stage=%s nr_free_pages=%ld nr_anon_pages=%ld\n", now(), stage, vmstat("nr_free_pages"),
	       vmstat("nr_anon_pages"));
	fflush(stdout);
}

static void watch(const char *stage, long ms, long step_ms)
{
	struct timespec s = {step_ms / 1000, (step_ms % 1000) * 1000000L};
	for (long t = 0; t < ms; t += step_ms) {
		nanosleep(&s, NULL);
		report(stage);
	}
}

int main(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	size_t bytes = (size_t)atol(argv[1]) << 20;
	long hold_ms = atol(argv[2]), after_ms = atol(argv[3]), step_ms = atol(argv[4]);
	report("before");
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 3;
	for (size_t i = 0; i < bytes; i += 4096)
		p[i] = (char)(i >> 12 | 1);
	report("touched");
	watch("hold", hold_ms, step_ms);
	munmap(p, bytes);
	report("freed");
	watch("after", after_ms, step_ms);
	return 0;
}
"""

BOOT_SETTLE_MS = 5000
_LINE = re.compile(r"@@ fpr t=(\d+\.\d+) stage=(\w+) nr_free_pages=(-?\d+) nr_anon_pages=(-?\d+)")


@dataclass
class FprResult:
    samples: list[dict]  # t_s (since the free), stage, free_kb, anon_kb, rss_kb
    summary: dict
    text: str
    outdir: Path
    acma_samples: list[dict]
    acma_summary: dict


def parse_fpr(lines: list[str], rss: list[tuple[int, int]]) -> list[dict]:
    """The guest's samples joined with the RSS read when each arrived; times from the free."""
    rss_at = dict(rss)
    out = []
    for i, line in enumerate(lines):
        m = _LINE.match(line)
        if m:
            out.append({"t_s": float(m.group(1)), "stage": m.group(2), "free_kb": int(m.group(3)) * 4,
                        "anon_kb": int(m.group(4)) * 4, "rss_kb": rss_at.get(i, 0)})
    t0 = next((s["t_s"] for s in out if s["stage"] == "freed"), out[0]["t_s"] if out else 0.0)
    for s in out:
        s["t_s"] = round(s["t_s"] - t0, 6)
    return out


def _summary(samples: list[dict], alloc_mib: int) -> dict:
    touched = max((s["rss_kb"] for s in samples if s["stage"] in ("touched", "hold")), default=0)
    after = [s for s in samples if s["stage"] == "after"]
    final = after[-1]["rss_kb"] if after else 0
    returned = max(0, touched - final)
    half = next((s["t_s"] for s in after if touched - s["rss_kb"] >= returned / 2), None) if returned else None
    return {"alloc_kb": alloc_mib << 10, "rss_peak_kb": touched, "rss_final_kb": final, "rss_returned_kb": returned,
            "returned_fraction_of_alloc": returned / (alloc_mib << 10), "half_returned_after_s": half,
            "guest_free_after_kb": after[-1]["free_kb"] if after else None}


def acma_fpr(alloc_mib: int, hold_ms: int, after_ms: int, step_ms: int, opts: GuestOptions,
             reporting: bool) -> list[dict]:
    """acma's replay of the guest scenario; samples like :func:`parse_fpr`'s (rss_kb: backed)."""
    from ..mm.backing import Backing
    from ..mm.guest import Guest, GuestConfig
    from ..mm.reporting import PageReporting

    g = Guest(GuestConfig(size=f"{opts.mem_mib} MiB", swap=0, seed=opts.seed))
    backing = Backing(g, host_page="4 KiB")
    rep = PageReporting(g, backing=backing) if reporting else None
    out = []

    def sample(stage: str) -> None:
        out.append({"t_s": g.now_us / 1e6, "stage": stage, "free_kb": int(g.meminfo()["MemFree"]),
                    "anon_kb": 0, "rss_kb": backing.backed_bytes >> 10})

    def advance(ms: int) -> None:
        t = g.now_us + ms * 1000
        if rep is not None:
            rep.advance(t)
        else:
            g.run_until(t)

    advance(BOOT_SETTLE_MS)    # the guest loaded virtio_balloon seconds before the program ran
    sample("before")
    vma = g.spawn("fpr").mmap(alloc_mib << 20)
    for page in range(vma.npages):        # the program writes every page once
        vma.touch(page, write=True)
    sample("touched")
    for _ in range(0, hold_ms, step_ms):
        advance(step_ms)
        sample("hold")
    vma.resize(0)
    sample("freed")
    for _ in range(0, after_ms, step_ms):
        advance(step_ms)
        sample("after")
    t0 = next(s["t_s"] for s in out if s["stage"] == "freed")
    for s in out:
        s["t_s"] = round(s["t_s"] - t0, 6)
    return out


def run_fpr_xval(kit: GuestKit, alloc_mib: int, hold_ms: int, after_ms: int, step_ms: int, opts: GuestOptions,
                 outdir, say=print) -> FprResult:
    """Run the guest scenario and write console.txt, fpr.json and fpr.txt into ``outdir``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    compile_static(FPR_PROGRAM, outdir / "fpr")
    init = fpr_init_script(alloc_mib, hold_ms, after_ms, step_ms, opts)
    build_initramfs(guest_files(kit, init, {"fpr": outdir / "fpr"}), outdir / "initrd.gz")
    say(f"guest program and initramfs built in {time.monotonic() - t:.1f} s; booting QEMU "
        f"(free-page-reporting={'on' if opts.free_page_reporting else 'off'}; about 20-40 s)")
    out = run_qemu(kit, outdir / "initrd.gz", opts, outdir, say=say, sample_rss=True)
    write_text_atomic(outdir / "console.txt", "\n".join(out.lines) + "\n")
    samples = parse_fpr(out.lines, out.rss_kb)
    summary = _summary(samples, alloc_mib)
    acma_samples = acma_fpr(alloc_mib, hold_ms, after_ms, step_ms, opts, opts.free_page_reporting)
    acma_summary = _summary(acma_samples, alloc_mib)
    zone = [l for l in out.lines if l.startswith("@@ fpr start") or l.startswith("@@ fpr end")]
    lines = [f"acma xval fpr: {alloc_mib} MiB touched then freed in a {opts.mem_mib} MiB guest, "
             f"free-page-reporting={'on' if opts.free_page_reporting else 'off'}",
             "  t(s from free)  stage    | kernel: guest free MiB  QEMU RSS MiB | acma: free MiB  backed MiB"]
    for s, a in zip(samples, acma_samples):
        lines.append(f"  {s['t_s']:12.3f}  {s['stage']:7}  | {s['free_kb'] / 1024:22.1f}  {s['rss_kb'] / 1024:12.1f} | "
                     f"{a['free_kb'] / 1024:14.1f}  {a['rss_kb'] / 1024:10.1f}")
    rows = [("memory returned to the host after the free", "rss_returned_kb", lambda v: f"{v / 1024:.1f} MiB"),
            ("  as a share of what was freed", "returned_fraction_of_alloc", lambda v: f"{v:.0%}"),
            ("half of it returned after", "half_returned_after_s", lambda v: "never" if v is None else f"{v:.2f} s")]
    lines += ["", f"{'':44}  {'kernel':>10}  acma"]
    lines += [f"{name:44}  {fmt(summary[k]):>10}  {fmt(acma_summary[k])}" for name, k, fmt in rows]
    lines += ["kernel side: " + json.dumps(summary), "acma side: " + json.dumps(acma_summary), *zone]
    text = "\n".join(lines) + "\n"
    write_text_atomic(outdir / "fpr.txt", text)
    write_text_atomic(outdir / "fpr.json", json.dumps({"kernel": {"samples": samples, "summary": summary},
                                                       "acma": {"samples": acma_samples, "summary": acma_summary}},
                                                      indent=1))
    return FprResult(samples, summary, text, outdir, acma_samples, acma_summary)
