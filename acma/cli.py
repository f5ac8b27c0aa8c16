"""The ``acma`` command line."""

from __future__ import annotations

import json

import click

import os

from .checkpoint import load_checkpoint, save_checkpoint
from .damon.context import OPS
from .errors import ConfigError, FormatError, SimulationError
from .io.atomic import write_text_atomic
from .io.damo_record import read_record, write_record
from .report.heatmap import PNG_RESOL, SCALES, TEXT_RESOL, compute_heatmap, format_heatmap_text, render_heatmap_png
from .report.summary import format_summary
from .report.wss import format_wss_report
from .scenarios import demo_simulation
from .units import format_duration_us, parse_duration_us, parse_size

MINUTE_US = 60_000_000


@click.group()
@click.version_option(package_name="acma")
def main() -> None:
    """acma: DAMON, DAMOS, free page reporting and ACMA for VMs, simulated in userspace."""


@main.command()
@click.option("--minutes", type=click.IntRange(1, 24 * 60), default=10, show_default=True,
              help="Simulated minutes to run.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the summary and time series to this JSON file.")
@click.option("--checkpoint", "ckpt", type=click.Path(dir_okay=False), default=None,
              help="Save the whole simulation here after every simulated minute (atomically).")
@click.option("--resume", is_flag=True, help="Continue from --checkpoint if it exists.")
def demo(minutes: int, seed: int, progress: bool, json_path: str | None, ckpt: str | None, resume: bool) -> None:
    """Run the built-in guest and workload, then print a summary."""
    if resume and not ckpt:
        raise click.UsageError("--resume needs --checkpoint FILE")
    sim = load_checkpoint(ckpt) if resume and os.path.exists(ckpt) else demo_simulation(seed)
    target = minutes * MINUTE_US
    if sim.guest.now_us >= target:
        raise click.UsageError(f"the checkpoint is already at {sim.guest.now_us // MINUTE_US} minutes")
    result = None
    while sim.guest.now_us < target:
        step = min(target - sim.guest.now_us, MINUTE_US if ckpt else target)
        result = sim.run(step, progress=progress)
        if ckpt:
            save_checkpoint(sim, ckpt)
    click.echo(format_summary(result))
    if json_path:
        doc = {"summary": result.summary(), "vmstat": result.vmstat, "meminfo": result.meminfo,
               "series": {k: v.tolist() for k, v in result.series.items()}}
        write_text_atomic(json_path, json.dumps(doc, indent=1))


# --------------------------------------------------------------------------- acma monitor

# ConfigError fields (or their prefixes) and the options that set them
_OPTION_OF_FIELD = {
    "attrs.sample_us": "--sample", "attrs.aggr_us": "--aggr", "attrs.ops_update_us": "--update",
    "attrs.min_nr_regions": "--min-nr-regions", "attrs.max_nr_regions": "--max-nr-regions",
    "guest.size": "--guest-size", "guest.block_size": "--guest-size", "guest.nodes": "--guest-size",
    "guest.swap": "--swap", "guest.seed": "--seed", "duration_us": "--duration", "ranges": "--range",
    "address_ranges": "--address-range", "time_range": "--time-range", "target_id": "--tid",
    "ops": "--ops", "workload": "WORKLOAD", "scale": "--scale", "address_cells": "--resol",
    "time_cells": "--resol", "resolution": "--resol",
}


def _bad(e: ConfigError, default: str | None = None) -> click.BadParameter:
    """A click error naming the option behind a ConfigError's field."""
    field = e.field
    hint = _OPTION_OF_FIELD.get(field) or next(
        (opt for f, opt in _OPTION_OF_FIELD.items() if field.startswith(f + "[") or field.startswith(f + ".")), default)
    return click.BadParameter(f"{e.value!r}; allowed: {e.allowed}", param_hint=hint and f"'{hint}'")


def _duration_option(ctx, param, value):
    """A duration string ('5ms', '1 s', '1 h 20 m'; a bare number is µs) as integer µs > 0."""
    if value is None:
        return None
    try:
        us = parse_duration_us(value, param.name)
    except ConfigError:
        raise click.BadParameter(f"{value!r} is not a duration; use a number and a unit among "
                                 "ns, us, ms, s, m, h, d, such as '5ms' or '1 s'") from None
    if us <= 0:
        raise click.BadParameter(f"{value!r}: a duration > 0 is needed")
    return us


def _size_option(ctx, param, value):
    """A size string ('4 GiB', '512MiB', '0'), checked here and kept as written for GuestConfig."""
    try:
        parse_size(value, param.name)
        return value
    except ConfigError:
        raise click.BadParameter(f"{value!r} is not a size; use a number and a unit among B, KiB, MiB, GiB, "
                                 "TiB, such as '4 GiB'") from None


def _address(text: str, what: str) -> int:
    """An address: decimal, 0x-hex, or a size with a unit ('1 GiB')."""
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return parse_size(text, what)
    except ConfigError:
        raise click.BadParameter(f"{text!r} is not an address; use decimal, 0x-prefixed hex or a size "
                                 "such as '1 GiB'") from None


def _ranges_option(ctx, param, value):
    out = []
    for start, end in value or ():
        s, e = _address(start, "start"), _address(end, "end")
        if s >= e:
            raise click.BadParameter(f"{start} {end}: the start must be below the end")
        out.append((s, e))
    return out or None


@main.command()
@click.argument("workload", metavar="WORKLOAD")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False), default="damon.data", show_default=True,
              help="Where to write the record (damo's zlib-compressed JSON format, written atomically).")
@click.option("--duration", callback=_duration_option, metavar="DURATION", default=None,
              help="Simulated time to monitor, e.g. '30s' [default: the workload's length: one pass of a "
                   "masim config's phases, a trace's span, the demo's 5 minutes].")
@click.option("--sample", callback=_duration_option, metavar="DURATION", default="5ms", show_default=True,
              help="Sampling interval (a bare number is in µs).")
@click.option("--aggr", callback=_duration_option, metavar="DURATION", default="100ms", show_default=True,
              help="Aggregation interval: one snapshot per interval.")
@click.option("--update", callback=_duration_option, metavar="DURATION", default="1s", show_default=True,
              help="Operations update interval: how often vaddr looks at the VMAs again.")
@click.option("--min-nr-regions", type=int, default=10, show_default=True,
              help="DAMON keeps at least this many regions (at least 3).")
@click.option("--max-nr-regions", type=int, default=1000, show_default=True,
              help="... and at most this many.")
@click.option("--ops", type=click.Choice(OPS), default="vaddr", show_default=True,
              help="vaddr: the process's virtual address space; fvaddr: fixed virtual ranges (default: its "
                   "VMAs at start); paddr: the guest's physical memory.")
@click.option("--range", "ranges", nargs=2, multiple=True, metavar="START END", callback=_ranges_option,
              help="An address range to monitor with fvaddr or paddr (repeatable); decimal, hex or '1 GiB'.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@click.option("--guest-size", callback=_size_option, metavar="SIZE", default="4 GiB", show_default=True,
              help="Guest memory, e.g. '1 GiB' (64 MiB to 1 TiB, whole 128 MiB memory blocks).")
@click.option("--swap", callback=_size_option, metavar="SIZE", default="2 GiB", show_default=True,
              help="Guest swap space, e.g. '0' for none.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def monitor(workload: str, out: str, duration: int | None, sample: int, aggr: int, update: int,
            min_nr_regions: int, max_nr_regions: int, ops: str, ranges, seed: int, guest_size: str, swap: str,
            progress: bool) -> None:
    """Run WORKLOAD in a guest under DAMON and write what DAMON saw as a damo record.

    WORKLOAD is 'demo' (the workload of `acma demo`), a masim .cfg file or an acma trace file.
    Read the record with `acma report heatmap|wss FILE` or with damo itself
    (`damo report heatmap --input FILE`).
    """
    from .damon import Attrs
    from .mm.guest import GuestConfig
    from .monitor import build_monitor, default_duration_us, load_workload

    if ranges and ops == "vaddr":
        raise click.BadParameter("vaddr follows the process's VMAs and takes no ranges; use --ops fvaddr or paddr",
                                 param_hint="'--range'")
    if aggr < sample:
        raise click.BadParameter(f"{format_duration_us(aggr)} is shorter than the sampling interval "
                                 f"(--sample {format_duration_us(sample)}); it must be at least as long",
                                 param_hint="'--aggr'")
    attrs = Attrs(sample_us=sample, aggr_us=aggr, ops_update_us=update, min_nr_regions=min_nr_regions,
                  max_nr_regions=max_nr_regions)
    guest = GuestConfig(size=guest_size, swap=swap, seed=seed)
    try:
        attrs.validate()
        guest.resolve()
    except ConfigError as e:
        raise _bad(e) from None
    try:
        loaded = load_workload(workload)
    except ConfigError as e:
        raise _bad(e, "WORKLOAD") from None
    except (FormatError, OSError) as e:
        raise click.BadParameter(str(e), param_hint="'WORKLOAD'") from None
    if duration is None:
        duration = default_duration_us(loaded, aggr)
    elif duration < aggr:
        raise click.BadParameter(f"{format_duration_us(duration)} is shorter than one aggregation interval "
                                 f"(--aggr {format_duration_us(aggr)}): no snapshot would be recorded",
                                 param_hint="'--duration'")
    try:
        mon = build_monitor(loaded, ops=ops, attrs=attrs, ranges=ranges, guest=guest)
    except ConfigError as e:
        raise _bad(e) from None
    try:
        mon.run(duration, progress=progress)
    except SimulationError as e:
        raise click.ClickException(f"the simulation stopped: {e}") from None
    record = mon.record()
    write_record(out, record)
    nr = [s.nr_regions for t in record.targets for s in t.snapshots]
    n_snaps = max((len(t.snapshots) for t in record.targets), default=0)
    click.echo(f"monitored {loaded.kind} workload '{loaded.name}' for {format_duration_us(duration)} "
               f"(ops {ops}, {len(record.targets)} target{'s' if len(record.targets) > 1 else ''}): "
               f"{n_snaps} snapshots of {min(nr, default=0)}-{max(nr, default=0)} regions")
    click.echo(f"wrote {out}; look at it with: acma report heatmap {out} --png heatmap.png")


# --------------------------------------------------------------------------- acma report


def _read_record_arg(path: str):
    try:
        return read_record(path)
    except (FormatError, OSError) as e:
        raise click.BadParameter(str(e), param_hint="'RECORD'") from None


@main.group()
def report() -> None:
    """Reports on a DAMON record (written by `acma monitor` or by damo)."""


@report.command("wss")
@click.argument("record_path", metavar="RECORD", type=click.Path(exists=True, dir_okay=False))
@click.option("--range", "prange", nargs=3, type=click.IntRange(0, 101), default=(1, 101, 1), show_default=True,
              metavar="START STOP STEP", help="Percentiles to print: range(START, STOP, STEP), as damo's -r.")
@click.option("--human", is_flag=True, help="Sizes with units (damo's default) instead of raw byte counts.")
@click.option("--exclude-snapshots", type=click.IntRange(0), default=20, show_default=True,
              help="Leave out the first snapshots, as damo does.")
@click.option("--acc-thres", type=int, default=1, show_default=True,
              help="A region is in the working set when it was found accessed in at least this many samples.")
@click.option("--sz-thres", type=int, default=1, show_default=True, help="... and is at least this many bytes.")
@click.option("--sort-by", type=click.Choice(["size", "time"]), default="size", show_default=True)
@click.option("--per-target", is_flag=True, help="One distribution per target instead of their sum.")
@click.option("--all-wss", is_flag=True, help="Print every snapshot's working set size, not percentiles.")
def report_wss(record_path: str, prange, human: bool, exclude_snapshots: int, acc_thres: int, sz_thres: int,
               sort_by: str, per_target: bool, all_wss: bool) -> None:
    """Working set size percentiles, as `damo report wss -r 1 101 1 --raw_number` prints them."""
    start, stop, step = prange
    if step < 1 or start >= stop:
        raise click.BadParameter(f"{start} {stop} {step}: START < STOP and STEP >= 1 are needed",
                                 param_hint="'--range'")
    record = _read_record_arg(record_path)
    click.echo(format_wss_report(record, range(start, stop, step), raw_number=not human, all_wss=all_wss,
                                 exclude_snapshots=exclude_snapshots, acc_thres=acc_thres, sz_thres=sz_thres,
                                 sort_by=sort_by, collapse_targets=not per_target), nl=False)


@report.command("heatmap")
@click.argument("record_path", metavar="RECORD", type=click.Path(exists=True, dir_okay=False))
@click.option("--png", "png", type=click.Path(dir_okay=False), default=None,
              help="Also draw the heatmap into this PNG file (time on x, address on y).")
@click.option("--resol", nargs=2, type=click.IntRange(1, 1000), default=TEXT_RESOL, show_default=True,
              metavar="ROWS COLUMNS", help="Size of the text heatmap: time rows, address columns.")
@click.option("--tid", type=int, default=None, help="Target id to show [default: the first with snapshots].")
@click.option("--address-range", "address_ranges", nargs=2, multiple=True, metavar="START END",
              callback=_ranges_option,
              help="Show this address range (repeatable) instead of every range that holds regions.")
@click.option("--time-range", nargs=2, metavar="START END", default=None, type=str,
              help="Show this time range, counted from the start of the record, e.g. '1s' '5s'.")
@click.option("--scale", type=click.Choice(SCALES), default="observed", show_default=True,
              help="Top of the digit and colour scale: the hottest cell, or the most an aggregation "
                   "interval can count.")
def report_heatmap(record_path: str, png: str | None, resol, tid: int | None, address_ranges, time_range,
                   scale: str) -> None:
    """Print when which addresses were how often accessed, as rows of digits with a guide."""
    record = _read_record_arg(record_path)
    time_range_ns = None
    if time_range is not None:
        a, b = (_duration_or_zero(v) for v in time_range)
        if a >= b:
            raise click.BadParameter(f"{time_range[0]} {time_range[1]}: START must be before END",
                                     param_hint="'--time-range'")
        time_range_ns = (a * 1000, b * 1000)
    common = dict(target_id=tid, address_ranges=address_ranges, time_range_ns=time_range_ns)
    try:
        text_map = compute_heatmap(record, time_cells=resol[0], address_cells=resol[1], **common)
        png_map = compute_heatmap(record, min_band_cells=PNG_RESOL[1] // 50, **common) if png else None
    except ConfigError as e:
        raise _bad(e, "RECORD") from None
    click.echo(format_heatmap_text(text_map, scale), nl=False)
    if png_map is not None:
        render_heatmap_png(png_map, png, scale)
        click.echo(f"wrote {png}", err=True)


def _duration_or_zero(text: str) -> int:
    try:
        return parse_duration_us(text, "time_range")
    except ConfigError:
        raise click.BadParameter(f"{text!r} is not a duration such as '1s' or '500 ms'",
                                 param_hint="'--time-range'") from None


from .cli_trace import trace as _trace_commands  # noqa: E402  (acma trace ...: its own module)
main.add_command(_trace_commands)
from .host.cli import host_cli  # noqa: E402  (acma host ...)
main.add_command(host_cli)
from .damos.cli import damos as _damos; main.add_command(_damos)  # noqa: E402  (acma damos ...)
from .xval.cli import xval as _xval; main.add_command(_xval)  # noqa: E402  (acma xval, issue 7)
