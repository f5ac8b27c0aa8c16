"""``acma xval``: cross-check acma against Linux's own DAMON, DAMOS and free page reporting in a
QEMU guest (``setup``, ``damon``, ``fpr``); see docs/fidelity.md."""

from __future__ import annotations

import click

from ..damon.context import Attrs
from ..damos.scheme import MAX, AccessPattern, Scheme
from ..errors import ConfigError, FormatError
from .guest import GuestOptions
from .setup import find_kit, setup


def _kit(auto_setup: bool):
    kit = find_kit()
    if kit is None:
        if not auto_setup:
            raise click.ClickException("the QEMU guest kit is missing: run `acma xval setup` first")
        click.echo("the QEMU guest kit is missing; running the setup step first")
        kit = setup(say=click.echo)
    return kit


def _guest_options(f):
    for opt in reversed([
        click.option("--mem", "mem_mib", type=click.IntRange(128, 4096), default=512, show_default=True,
                     help="Guest memory, MiB (acma's guest gets the same)."),
        click.option("--swap", "swap_mib", type=click.IntRange(0, 8192), default=256, show_default=True,
                     help="Swap disk for the guest, MiB (0: none)."),
        click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=42, show_default=True,
                     help="QEMU -seed (KASLR, guest RNG) and acma's guest seed."),
        click.option("--flusher-us", type=click.IntRange(0, 10**6), default=1000, show_default=True,
                     help="Period of the guest's TLB-flushing sleeper process (0: none)."),
        click.option("--aslr/--no-aslr", default=True, show_default=True,
                     help="Guest address-space randomisation (kernel.randomize_va_space 2 or 0)."),
        click.option("--timeout", "timeout_s", type=click.IntRange(10, 7200), default=900, show_default=True,
                     help="Kill QEMU after this many seconds."),
        click.option("--setup/--no-setup", "auto_setup", default=True,
                     help="Run the setup step when the kit is missing."),
    ]):
        f = opt(f)
    return f


@click.group()
def xval() -> None:
    """Cross-check acma against the real kernel in a QEMU guest (see docs/fidelity.md)."""


@xval.command("setup")
@click.option("--apt/--no-apt", default=True, help="Install missing Debian packages with apt-get.")
def setup_cmd(apt: bool) -> None:
    """Install qemu-system-x86, busybox-static, cpio, xz-utils when missing and fetch Debian's
    6.12 cloud kernel into ~/.cache/acma/xval (about 50 MB of downloads; 10-90 s)."""
    try:
        setup(say=click.echo, apt=apt)
    except (ConfigError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None


@xval.command("damon")
@click.argument("workload")
@click.option("--ops", type=click.Choice(["vaddr", "paddr"]), default="vaddr", show_default=True)
@click.option("--out", "-o", "outdir", type=click.Path(file_okay=False), default="xval-out", show_default=True,
              help="Directory for kernel.data, acma.data, compare.txt/json, heatmaps.png, console.txt.")
@click.option("--sample-us", type=click.IntRange(1, 10**7), default=5000, show_default=True)
@click.option("--aggr-us", type=click.IntRange(1, 10**8), default=100_000, show_default=True)
@click.option("--update-us", type=click.IntRange(1, 10**9), default=1_000_000, show_default=True)
@click.option("--min-nr-regions", type=click.IntRange(3, 1 << 20), default=10, show_default=True)
@click.option("--max-nr-regions", type=click.IntRange(3, 1 << 20), default=1000, show_default=True)
@click.option("--action", type=click.Choice(["stat", "pageout"]), default="pageout", show_default=True)
@click.option("--min-nr-accesses", type=int, default=0, show_default=True, help="Samples per aggregation.")
@click.option("--max-nr-accesses", type=int, default=0, show_default=True, help="Samples per aggregation.")
@click.option("--min-age", type=int, default=5, show_default=True, help="Aggregation intervals.")
@click.option("--max-age", type=int, default=None, help="Aggregation intervals [default: no limit].")
@click.option("--repeat", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Passes of a workload that repeats forever (masim configs).")
@click.option("--rate-scale", type=click.FloatRange(1e-9, 1e3), default=1.0, show_default=True,
              help="Multiply every touch rate, on both sides (a TCG guest pays about 2 M touches/s).")
@_guest_options
def damon_cmd(workload, ops, outdir, sample_us, aggr_us, update_us, min_nr_regions, max_nr_regions, action,
              min_nr_accesses, max_nr_accesses, min_age, max_age, repeat, rate_scale, mem_mib, swap_mib, seed, flusher_us,
              aslr, timeout_s, auto_setup) -> None:
    """Run WORKLOAD (moving-hot, staircase, small-random, a masim .cfg or a workload .json) under the
    guest kernel's DAMON and under acma's, with the same attributes and one scheme, and compare."""
    from .run import load_xval_workload, run_damon_xval
    try:
        wl = load_xval_workload(workload, repeat, rate_scale)
        attrs = Attrs(sample_us=sample_us, aggr_us=aggr_us, ops_update_us=update_us,
                      min_nr_regions=min_nr_regions, max_nr_regions=max_nr_regions)
        attrs.validate()
        scheme = Scheme(action=action, pattern=AccessPattern(
            min_nr_accesses=min_nr_accesses, max_nr_accesses=max_nr_accesses, min_age_region=min_age,
            max_age_region=MAX if max_age is None else max_age))
        opts = GuestOptions(mem_mib=mem_mib, swap_mib=swap_mib, seed=seed, flusher_us=flusher_us, timeout_s=timeout_s,
                            aslr=aslr)
        opts.validate()
        kit = _kit(auto_setup)
        res = run_damon_xval(kit, wl, ops, attrs, scheme, opts, outdir, say=click.echo)
    except (ConfigError, FormatError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(res.text)
    click.echo(f"files in {res.outdir}/: kernel.data acma.data compare.txt compare.json heatmaps.png console.txt")


@xval.command("fpr")
@click.option("--out", "-o", "outdir", type=click.Path(file_okay=False), default="xval-fpr", show_default=True)
@click.option("--alloc", "alloc_mib", type=click.IntRange(1, 3072), default=200, show_default=True,
              help="MiB the guest program touches and then frees.")
@click.option("--hold-ms", type=click.IntRange(0, 60_000), default=1000, show_default=True)
@click.option("--after-ms", type=click.IntRange(100, 120_000), default=6000, show_default=True,
              help="How long to watch after the free.")
@click.option("--step-ms", type=click.IntRange(10, 10_000), default=250, show_default=True)
@click.option("--reporting/--no-reporting", default=True, help="virtio-balloon free-page-reporting=on|off.")
@_guest_options
def fpr_cmd(outdir, alloc_mib, hold_ms, after_ms, step_ms, reporting, mem_mib, swap_mib, seed, flusher_us,
            aslr, timeout_s, auto_setup) -> None:
    """Free page reporting: the guest frees memory; QEMU's RSS, the guest's vmstat/zoneinfo, and
    acma's reporting model (when merged) side by side."""
    from .fpr import run_fpr_xval
    try:
        opts = GuestOptions(mem_mib=mem_mib, swap_mib=swap_mib, seed=seed, flusher_us=flusher_us,
                            timeout_s=timeout_s, free_page_reporting=reporting, aslr=aslr)
        opts.validate()
        if alloc_mib * 2 > mem_mib:
            raise ConfigError("alloc_mib", alloc_mib, f"at most half the guest's memory ({mem_mib // 2} MiB)")
        kit = _kit(auto_setup)
        res = run_fpr_xval(kit, alloc_mib, hold_ms, after_ms, step_ms, opts, outdir, say=click.echo)
    except (ConfigError, FormatError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(res.text)
