"""Boot Debian's kernel under QEMU (TCG) with a busybox initramfs and a generated init script.

The init script does everything inside the guest: mounts, THP off, swap on zram (in guest RAM, so no disk I/O timing enters the run), the
balloon driver, then one scenario:

* ``damon``: start the workload program (:mod:`acma.xval.cprog`), point one kdamond at it
  (vaddr) or at the largest System RAM range (paddr) through ``/sys/kernel/mm/damon/admin``
  with the given attributes and one scheme, trace ``damon:damon_aggregated`` (every aggregation
  interval's regions) with the boot clock, continue the workload, read the scheme's stats when
  it is done, and print the trace;
* ``fpr``: touch and free memory, printing ``/proc/vmstat`` and ``/proc/zoneinfo`` counters
  while free page reporting hands the freed memory back; the host samples QEMU's RSS.

Guest output lines of interest start with ``@@``. Determinism (shared/spec/real-inputs.md §3):
``-icount shift=2,sleep=off,align=off`` makes guest time a function of the instruction count,
``-seed`` fixes KASLR and the guest RNG, the RTC starts at a fixed date on the VM clock, and the
initramfs is byte-reproducible, so two runs print identical output.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..damon.context import Attrs
from ..damos.scheme import Scheme
from ..errors import ConfigError
from .setup import GuestKit

__all__ = ["GuestOptions", "GuestOutput", "damon_init_script", "fpr_init_script", "guest_files", "run_qemu"]

RTC_BASE = "2020-01-01T00:00:00"
MIN_MEM_MIB, MAX_MEM_MIB = 128, 4096


@dataclass(frozen=True)
class GuestOptions:
    """The virtual machine: memory, zram swap, seed, TLB flusher, THP mode, time limit, reporting,
    and whether the guest randomises address spaces (off: the program's binary, heap and
    mappings sit close together, which changes vaddr's initial regions; docs/fidelity.md)."""

    mem_mib: int = 512
    swap_mib: int = 256
    seed: int = 42
    flusher_us: int = 1000
    thp: str = "never"
    timeout_s: int = 900
    free_page_reporting: bool = True
    aslr: bool = True

    def validate(self) -> None:
        if isinstance(self.mem_mib, bool) or not isinstance(self.mem_mib, int) or not MIN_MEM_MIB <= self.mem_mib <= MAX_MEM_MIB:
            raise ConfigError("mem_mib", self.mem_mib, f"an integer in [{MIN_MEM_MIB}, {MAX_MEM_MIB}] MiB")
        if isinstance(self.swap_mib, bool) or not isinstance(self.swap_mib, int) or not 0 <= self.swap_mib <= 8192:
            raise ConfigError("swap_mib", self.swap_mib, "an integer in [0, 8192] MiB (0: no swap)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise ConfigError("seed", self.seed, "an integer in [0, 2**31)")
        if isinstance(self.flusher_us, bool) or not isinstance(self.flusher_us, int) or not 0 <= self.flusher_us <= 10**6:
            raise ConfigError("flusher_us", self.flusher_us, "an integer in [0, 1e6] µs (0: no TLB flusher)")
        if not isinstance(self.aslr, bool):
            raise ConfigError("aslr", self.aslr, "True or False (the guest's kernel.randomize_va_space 2 or 0)")
        if self.thp not in ("never", "madvise", "always"):
            raise ConfigError("thp", self.thp, "one of never, madvise, always")
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, int) or not 10 <= self.timeout_s <= 7200:
            raise ConfigError("timeout_s", self.timeout_s, "an integer in [10, 7200] s")


_COMMON = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
up() { read u rest < /proc/uptime; echo $u; }
echo "@@ boot t=$(up) kernel=$(uname -r) memtotal_kb=$(awk '/MemTotal/{print $2}' /proc/meminfo)"
echo %(thp)s > /sys/kernel/mm/transparent_hugepage/enabled
echo %(aslr)d > /proc/sys/kernel/randomize_va_space
insmod /virtio_balloon.ko
if [ %(swap_mib)d -gt 0 ]; then
  for m in zsmalloc lz4_compress lz4hc_compress zram; do insmod /$m.ko; done
  echo %(swap_mib)dM > /sys/block/zram0/disksize
  mkswap /dev/zram0 > /dev/null && swapon /dev/zram0
fi
echo "@@ setup swap_kb=$(awk '/SwapTotal/{print $2}' /proc/meminfo) thp=%(thp)s aslr=%(aslr)d reporting_order=$(cat /sys/module/page_reporting/parameters/page_reporting_order 2>/dev/null)"
stopped() { grep -q '^State:.*stopped' /proc/$1/status; }
"""

_DAMON = r"""
T=/sys/kernel/tracing
mount -t tracefs tracefs $T
echo boot > $T/trace_clock
echo 16384 > $T/buffer_size_kb
echo 1 > $T/events/damon/damon_aggregated/enable
/wl %(flusher_us)d & WL=$!
until stopped $WL; do sleep 0.02; done
K=/sys/kernel/mm/damon/admin/kdamonds
echo 1 > $K/nr_kdamonds
K=$K/0
echo 1 > $K/contexts/nr_contexts
C=$K/contexts/0
echo %(ops)s > $C/operations
A=$C/monitoring_attrs
echo %(sample_us)d > $A/intervals/sample_us
echo %(aggr_us)d > $A/intervals/aggr_us
echo %(update_us)d > $A/intervals/update_us
echo %(max_nr)d > $A/nr_regions/max
echo %(min_nr)d > $A/nr_regions/min
echo 1 > $C/targets/nr_targets
if [ %(ops)s = paddr ]; then
  best=0
  while IFS= read -r line; do
    case "$line" in " "*) continue ;; *"System RAM"*) ;; *) continue ;; esac
    r=${line%%%% *}; s=$((0x${r%%-*})); e=$((0x${r#*-} + 1))
    if [ $((e - s)) -gt $best ]; then best=$((e - s)); bs=$s; be=$e; fi
  done < /proc/iomem
  echo 1 > $C/targets/0/regions/nr_regions
  echo $be > $C/targets/0/regions/0/end
  echo $bs > $C/targets/0/regions/0/start
  echo "@@ paddr range $bs-$be"
else
  echo $WL > $C/targets/0/pid_target
fi
echo 1 > $C/schemes/nr_schemes
S=$C/schemes/0
echo %(action)s > $S/action
echo %(apply_interval_us)d > $S/apply_interval_us
P=$S/access_pattern
echo %(max_sz)d > $P/sz/max; echo %(min_sz)d > $P/sz/min
echo %(max_nr_accesses)d > $P/nr_accesses/max; echo %(min_nr_accesses)d > $P/nr_accesses/min
echo %(max_age)d > $P/age/max; echo %(min_age)d > $P/age/min
echo %(quota_ms)d > $S/quotas/ms
echo %(quota_sz)d > $S/quotas/bytes
echo %(quota_reset_ms)d > $S/quotas/reset_interval_ms
echo on > $K/state
echo "@@ damon on t=$(up) ops=%(ops)s kdamond=$(cat $K/pid) target=$WL"
kill -CONT $WL
sleep 0.1
until stopped $WL; do sleep 0.1; done
echo update_schemes_stats > $K/state
echo "@@ scheme stats nr_tried=$(cat $S/stats/nr_tried) sz_tried=$(cat $S/stats/sz_tried) nr_applied=$(cat $S/stats/nr_applied) sz_applied=$(cat $S/stats/sz_applied) qt_exceeds=$(cat $S/stats/qt_exceeds)"
echo off > $K/state
echo 0 > $T/tracing_on
echo "@@ vmstat $(grep -E '^(pswpout|pswpin|pgsteal_anon|pgscan_anon|nr_anon_pages|nr_free_pages) ' /proc/vmstat | tr ' \n' '= ')"
kill -CONT $WL; wait $WL
echo "@@ trace begin"
grep -E 'damon_aggregated:|tracing_mark_write: xval' $T/trace
echo "@@ trace end"
echo "@@ done t=$(up)"
poweroff -f
"""


def damon_init_script(ops: str, attrs: Attrs, scheme: Scheme, opts: GuestOptions) -> str:
    """The guest's /init for a DAMON run (see the module doc)."""
    if ops not in ("vaddr", "paddr"):
        raise ConfigError("ops", ops, "vaddr or paddr (the ops sets acma xval drives)")
    attrs.validate()
    opts.validate()
    raw = scheme.raw_pattern(attrs)
    q = scheme.quota
    return (_COMMON + _DAMON) % dict(
        thp=opts.thp, aslr=2 if opts.aslr else 0, swap_mib=opts.swap_mib, flusher_us=opts.flusher_us, ops=ops,
        sample_us=attrs.sample_us, aggr_us=attrs.aggr_us, update_us=attrs.ops_update_us,
        min_nr=attrs.min_nr_regions, max_nr=attrs.max_nr_regions, action=scheme.action,
        apply_interval_us=scheme.apply_interval_us, min_sz=raw.min_sz_region, max_sz=raw.max_sz_region,
        min_nr_accesses=raw.min_nr_accesses, max_nr_accesses=raw.max_nr_accesses, min_age=raw.min_age_region,
        max_age=raw.max_age_region, quota_ms=q.ms, quota_sz=q.sz, quota_reset_ms=q.reset_interval_ms)


_FPR = r"""
vm() { grep -E '^(nr_free_pages|nr_anon_pages) ' /proc/vmstat | tr ' \n' '= '; }
zi() { awk '/^Node/{z=$4} /^  +pages free/{f[z]=$3} END{for (k in f) printf "free_%%s=%%s ", k, f[k]}' /proc/zoneinfo; }
echo "@@ fpr start t=$(up) $(vm)$(zi)"
/fpr %(alloc_mib)d %(hold_ms)d %(after_ms)d %(step_ms)d
echo "@@ fpr end t=$(up) $(vm)$(zi)"
echo "@@ done t=$(up)"
poweroff -f
"""


def fpr_init_script(alloc_mib: int, hold_ms: int, after_ms: int, step_ms: int, opts: GuestOptions) -> str:
    """The guest's /init for a free page reporting run: /fpr allocates, holds, frees, watches."""
    opts.validate()
    return (_COMMON + _FPR) % dict(thp=opts.thp, aslr=2 if opts.aslr else 0, swap_mib=opts.swap_mib, alloc_mib=alloc_mib,
                                   hold_ms=hold_ms, after_ms=after_ms, step_ms=step_ms)


def guest_files(kit: GuestKit, init: str, programs: dict) -> dict:
    """The initramfs contents: /init, busybox, the kit's modules and the given programs."""
    return {"init": init.encode(), "bin/busybox": Path(kit.busybox),
            **{f"{name}.ko": path for name, path in kit.modules.items()}, **programs}


@dataclass
class GuestOutput:
    """What a guest run printed, and QEMU's RSS sampled when each ``@@`` line arrived."""

    lines: list[str]
    rss_kb: list[tuple[int, int]] = field(default_factory=list)  # (line index, VmRSS kB)
    returncode: int = 0
    wall_s: float = 0.0

    def marked(self) -> list[str]:
        """The ``@@`` lines and the trace lines between ``@@ trace begin`` and ``@@ trace end``."""
        out, inside = [], False
        for line in self.lines:
            if line.startswith("@@ trace begin"):
                inside = True
            elif line.startswith("@@ trace end"):
                inside = False
            if inside or line.startswith("@@"):
                out.append(line)
        return out


def _rss_kb(pid: int) -> int:
    """VmRSS of our own QEMU child, from /proc/<pid>/status (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def qemu_command(kit: GuestKit, initrd: Path, opts: GuestOptions) -> list[str]:
    """The QEMU command line: one TCG vCPU, deterministic clocks, balloon with reporting."""
    cmd = [kit.qemu, "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", str(opts.mem_mib),
           "-icount", "shift=2,sleep=off,align=off", "-seed", str(opts.seed),
           "-rtc", f"base={RTC_BASE},clock=vm", "-kernel", str(kit.kernel), "-initrd", str(initrd),
           "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
           "-append", "console=ttyS0 rdinit=/init panic=-1 loglevel=3 quiet",
           "-device", "virtio-balloon-pci,free-page-reporting=" + ("on" if opts.free_page_reporting else "off")]
    return cmd


def run_qemu(kit: GuestKit, initrd: Path, opts: GuestOptions, workdir: Path, say=print,
             sample_rss: bool = False) -> GuestOutput:
    """Boot the guest and collect its console; ``sample_rss`` reads QEMU's VmRSS at each ``@@`` line."""
    cmd = qemu_command(kit, initrd, opts)
    (workdir / "qemu.cmd").write_text(" ".join(cmd) + "\n")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", bufsize=1)
    timer = threading.Timer(opts.timeout_s, proc.kill)
    timer.start()
    out = GuestOutput(lines=[])
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\r\n")
            out.lines.append(line)
            if line.startswith("@@"):
                if sample_rss:
                    out.rss_kb.append((len(out.lines) - 1, _rss_kb(proc.pid)))
                if not line.startswith("@@ trace"):
                    say(f"  [{time.monotonic() - t0:5.1f} s] {line[:150]}")
        out.returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.wall_s = time.monotonic() - t0
    if not any(l.startswith("@@ done") for l in out.lines):
        tail = "\n".join(out.lines[-30:])
        raise RuntimeError(f"the guest did not finish (QEMU exit {out.returncode}, {out.wall_s:.0f} s; "
                           f"timeout {opts.timeout_s} s); last console lines:\n{tail}")
    return out
