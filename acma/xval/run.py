"""``acma xval damon``: one workload under the real kernel's DAMON (in QEMU) and under acma's.

Steps (each printed with its duration): build the guest program and initramfs, boot the guest
and collect the kernel's snapshots and scheme stats, run the same workload, attributes and
scheme in acma, bring both records to one frame (:mod:`acma.xval.compare`) and write:

* ``kernel.data`` / ``acma.data``: the two records (damo's format; ``damo report`` reads them;
  the kernel's keeps the guest's own addresses and boot-clock times),
* ``compare.txt`` / ``compare.json``: the side-by-side numbers,
* ``heatmaps.png``: both heatmaps on one colour scale,
* ``console.txt``: everything the guest printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..damon.context import Attrs
from ..damos.engine import Engine
from ..damos.scheme import Scheme
from ..errors import ConfigError
from ..io.atomic import write_text_atomic
from ..io.damo_record import write_record
from ..mm.guest import GuestConfig
from ..monitor import LoadedWorkload, build_monitor
from ..report.heatmap import compute_heatmap
from ..workloads.masim import load_masim, masim_to_workload
from ..workloads.model import Workload
from .compare import Metrics, format_side_by_side, measure, rebase_record, to_json
from .cprog import compile_static, workload_to_c
from .guest import GuestOptions, damon_init_script, guest_files, run_qemu
from .initramfs import build_initramfs
from .parse import KernelRun, parse_damon_output
from .plot import side_by_side_png
from .setup import GuestKit
from .shapes import SHAPES, shape

__all__ = ["XvalResult", "acma_side", "kernel_side", "load_xval_workload", "run_damon_xval"]

SHORTFALL = 0.95  # a phase whose guest program paid fewer touches than this share is flagged


def scale_rates(wl: Workload, factor: float) -> Workload:
    """``wl`` with every pattern's touch rate multiplied by ``factor`` (for both sides alike: a
    masim config under acma's default timing asks for far more touches than a TCG guest pays)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1e-9 <= factor <= 1e3:
        raise ConfigError("rate_scale", factor, "a factor in [1e-9, 1e3]")
    phases = tuple(dataclasses.replace(ph, patterns=tuple(dataclasses.replace(p, rate_hz=p.rate_hz * factor)
                                                          for p in ph.patterns)) for ph in wl.phases)
    return dataclasses.replace(wl, phases=phases)


def paid_workload(wl: Workload, touches: list[tuple[int, int, int]]) -> tuple[Workload, dict[int, float]]:
    """``wl`` with each phase's rates scaled to the share of touches the guest program paid
    (summed over repeats), when some phase fell below ``SHORTFALL``; and the shares."""
    done: dict[int, list[int]] = {}
    for i, d, o in touches:
        done.setdefault(i, [0, 0])
        done[i][0] += d
        done[i][1] += o
    share = {i: d / o for i, (d, o) in done.items() if o}
    if all(v >= SHORTFALL for v in share.values()):
        return wl, share
    phases = tuple(dataclasses.replace(ph, patterns=tuple(
        dataclasses.replace(p, rate_hz=p.rate_hz * share.get(i, 1.0)) for p in ph.patterns))
        for i, ph in enumerate(wl.phases))
    return dataclasses.replace(wl, phases=phases), share


def load_xval_workload(spec: str, repeat: int = 1, rate_scale: float = 1.0) -> Workload:
    """A built-in shape name, a masim ``.cfg`` or a workload ``.json`` (``Workload.to_dict``);
    the guest program must end, so a workload that repeats forever runs ``repeat`` times.
    ``rate_scale`` multiplies every touch rate (:func:`scale_rates`)."""
    if spec in SHAPES:
        wl = shape(spec)
    elif not os.path.isfile(spec):
        raise ConfigError("workload", spec, f"one of {sorted(SHAPES)}, a masim .cfg or a workload .json file")
    elif spec.endswith(".json"):
        with open(spec) as f:
            wl = Workload.from_dict(json.load(f))
    else:
        wl = masim_to_workload(load_masim(spec), name=Path(spec).stem or "masim")
    if wl.repeat == 0:
        wl = dataclasses.replace(wl, repeat=repeat)
    return wl if rate_scale == 1.0 else scale_rates(wl, rate_scale)


def kernel_side(kit: GuestKit, wl: Workload, ops: str, attrs: Attrs, scheme: Scheme, opts: GuestOptions,
                workdir: Path, say=print, program_seed: int = 1) -> tuple[KernelRun, list[str]]:
    """Build, boot and parse one guest DAMON run; returns the parsed run and the console lines."""
    t = time.monotonic()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    compile_static(workload_to_c(wl, seed=program_seed), workdir / "wl")
    init = damon_init_script(ops, attrs, scheme, opts)
    build_initramfs(guest_files(kit, init, {"wl": workdir / "wl"}), workdir / "initrd.gz")
    say(f"guest program and initramfs built in {time.monotonic() - t:.1f} s; booting QEMU (TCG, 1 vCPU, "
        f"{opts.mem_mib} MiB; boot ~7 s, then about 1-1.5x the workload's {wl.cycle_us * wl.repeat / 1e6:g} s)")
    out = run_qemu(kit, workdir / "initrd.gz", opts, workdir, say=say)
    write_text_atomic(workdir / "console.txt", "\n".join(out.lines) + "\n")
    say(f"guest finished in {out.wall_s:.1f} s")
    return parse_damon_output(out.lines, attrs, source=str(workdir / "console.txt")), out.marked()


def acma_side(wl: Workload, ops: str, attrs: Attrs, scheme: Scheme, opts: GuestOptions, duration_us: int):
    """The same workload, attributes, scheme and guest size in acma; returns the monitor, its
    record, the scheme's stats and the guest's swap counters."""
    loaded = LoadedWorkload("model", wl.name, wl.cycle_us, workload=wl)
    guest = GuestConfig(size=f"{opts.mem_mib} MiB", swap=f"{opts.swap_mib} MiB" if opts.swap_mib else 0,
                        seed=opts.seed, thp=opts.thp != "never")
    mon = build_monitor(loaded, ops=ops, attrs=attrs, guest=guest)
    engine = Engine(mon.ctx, [scheme])
    mon.run(duration_us)
    st = engine.stats()[0]
    stats = {k: getattr(st, k) for k in ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds")}
    vm = mon.sim.guest.vmstat()
    stats_vm = {k: int(vm[k]) for k in ("pswpout", "pswpin") if k in vm}
    return mon, mon.record(), stats, stats_vm


@dataclass
class XvalResult:
    kernel: KernelRun
    kernel_metrics: Metrics
    acma_metrics: Metrics
    text: str
    outdir: Path


def run_damon_xval(kit: GuestKit, wl: Workload, ops: str, attrs: Attrs, scheme: Scheme, opts: GuestOptions,
                   outdir: str | os.PathLike, say=print) -> XvalResult:
    """Run both sides and write the files listed in the module doc into ``outdir``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if ops not in ("vaddr", "paddr"):
        raise ConfigError("ops", ops, "vaddr or paddr")
    if ops == "vaddr" and len(wl.regions) < 3:
        raise ConfigError("workload.regions", len(wl.regions), "at least 3 regions for vaddr (acma's vaddr "
                          "splits the address space at the gaps between them); use --ops paddr")
    attrs.validate()
    opts.validate()
    krun, _ = kernel_side(kit, wl, ops, attrs, scheme, opts, outdir, say)
    write_record(outdir / "kernel.data", krun.record)
    duration_us = wl.cycle_us * wl.repeat
    t = time.monotonic()
    acma_wl, share = paid_workload(wl, krun.touches)
    mon, arec, astats, avm = acma_side(acma_wl, ops, attrs, scheme, opts, duration_us)
    write_record(outdir / "acma.data", arec)
    say(f"acma ran the same {duration_us / 1e6:g} s in {time.monotonic() - t:.1f} s")

    t0_ns = round(krun.start_s * 1e9)
    acma_ranges = {v.name: (v.start, v.end) for v in mon.processes[0].vmas}
    k_nr = [s.nr_regions for s in krun.record.targets[0].snapshots if t0_ns < s.end_ns <= t0_ns + duration_us * 1000]
    a_nr = [s.nr_regions for s in arec.targets[0].snapshots]
    if ops == "vaddr":
        moves = [(ka, kb, acma_ranges[name][0]) for name, (ka, kb) in krun.regions.items()]
        krec = rebase_record(krun.record, t0_ns, moves)
        ranges_of = acma_ranges
    else:
        krec = rebase_record(krun.record, t0_ns)
        ranges_of = None
    krec.targets[0].snapshots = [s for s in krec.targets[0].snapshots if s.end_ns <= duration_us * 1000]
    km = measure(krec, k_nr, wl, ranges_of, krun.scheme_stats)
    am = measure(arec, a_nr, wl, ranges_of, astats)
    km.extra, am.extra = {k: krun.vmstat.get(k, 0) for k in ("pswpout", "pswpin")}, avm
    notes = []
    if acma_wl is not wl:
        paid = ", ".join(f"phase {i}: {v:.1%}" for i, v in sorted(share.items()))
        notes.append(f"note: the guest program could not pay every touch the model asks for ({paid}); acma ran "
                     "the rates it paid. Lower the rates with --rate-scale to compare the model as written.")
    notes.append(f"kernel {krun.kernel}, QEMU TCG 1 vCPU {opts.mem_mib} MiB, seed {opts.seed}, THP {opts.thp}, "
                 f"swap {opts.swap_mib} MiB; guest vmstat after the run: {krun.vmstat}")
    title = (f"acma xval damon: workload {wl.name}, ops {ops}, sample {attrs.sample_us} us, aggr {attrs.aggr_us} us, "
             f"regions {attrs.min_nr_regions}-{attrs.max_nr_regions}, scheme {scheme.action}")
    text = format_side_by_side(km, am, title, step_s=0.5, end_s=duration_us / 1e6, acma_scheme_note="\n".join(notes))
    write_text_atomic(outdir / "compare.txt", text)
    write_text_atomic(outdir / "compare.json", to_json(km, am, {"workload": wl.to_dict(), "ops": ops,
                                                                "kernel_release": krun.kernel,
                                                                "touches": krun.touches}))
    maps = []
    for label, rec in ((f"kernel {krun.kernel}", krec), ("acma", arec)):
        if rec.targets[0].snapshots:
            ranges = sorted(acma_ranges.values()) if ops == "vaddr" else None
            maps.append((label, compute_heatmap(rec, time_cells=200, address_cells=200, address_ranges=ranges)))
    if maps:
        side_by_side_png(maps, outdir / "heatmaps.png", title)
    return XvalResult(krun, km, am, text, outdir)
