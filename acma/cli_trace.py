"""``acma trace setup|record|info``: record real programs' page accesses and look at the traces."""

from __future__ import annotations

import json
import os

import click
import numpy as np

from .errors import AcmaError, ConfigError, FormatError
from .tracing.analysis import DEFAULT_MIN_WINDOWS, DEFAULT_THRESHOLD, profile_trace
from .tracing.qemu import run_setup, setup_plan
from .tracing.record import DEFAULT_SEED, DEFAULT_TICK_NS, DEFAULT_WINDOW, MAX_WINDOW, RecordOptions, record
from .units import PAGE_SIZE
from .workloads.trace import read_trace

MAX_PHASE_ROWS = 30


@click.group()
def trace() -> None:
    """Record page-access traces of real programs (qemu-user) and summarise them."""


@trace.command("setup")
@click.option("--no-update", is_flag=True, help="Skip `apt-get update` before installing.")
def setup_cmd(no_update: bool) -> None:
    """Install qemu-user if it is missing (apt-get, as root) and build acma's QEMU plugin.

    Takes about 10 s with a warm apt cache, up to a minute with `apt-get update` (a ~10 MB
    download). Not run as root, it installs nothing and prints the command to run.
    """
    plan = setup_plan()
    click.echo(plan.message)
    if plan.needed and not plan.as_root:
        raise SystemExit(1)
    try:
        run_setup(plan, update=not no_update)
    except AcmaError as e:
        raise click.ClickException(str(e)) from None
    click.echo("qemu-user is ready and the plugin is built")


def _env_pairs(ctx, param, value):
    out = {}
    for item in value:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use NAME=VALUE")
        out[key] = val
    return out


@trace.command("record", context_settings={"ignore_unknown_options": True})
@click.option("--window", type=click.IntRange(1, MAX_WINDOW), default=DEFAULT_WINDOW, show_default=True,
              help="Instructions per window: each page touched in a window is one event.")
@click.option("--tick-ns", type=click.FloatRange(min=0, min_open=True, max=1e12), default=DEFAULT_TICK_NS,
              show_default=True, help="Nanoseconds assumed per guest instruction (the trace's time scale).")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Trace file to write [default: PROGRAM's name + '.trace'].")
@click.option("--stdin", type=click.Path(dir_okay=False), default=None, help="Feed this file to stdin.")
@click.option("--stdout", type=click.Path(dir_okay=False), default=None,
              help="Keep the program's stdout in this file [default: discard it].")
@click.option("--env", "env", multiple=True, callback=_env_pairs, metavar="NAME=VALUE",
              help="Add to the fixed environment (repeatable).")
@click.option("--cwd", type=click.Path(file_okay=False, exists=True), default=None,
              help="Run the program in this directory.")
@click.option("--no-code", is_flag=True, help="Record data accesses only, not the pages code runs from.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=DEFAULT_SEED, show_default=True,
              help="QEMU's -seed (the random bytes the kernel would hand the program).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def record_cmd(window, tick_ns, out, stdin, stdout, env, cwd, no_code, seed, timeout, command) -> None:
    """Run `PROGRAM ARGS...` under qemu-user and write its page-access trace.

    Put `--` before the program: acma trace record --window 100000 -- gzip -c input.txt
    """
    program, args = command[0], list(command[1:])
    out = out or os.path.basename(program) + ".trace"
    opts = RecordOptions(window=window, tick_ns=tick_ns, code=not no_code, env=env, cwd=cwd, stdin=stdin,
                         stdout=stdout, seed=seed, timeout_s=timeout)
    try:
        rec = record(out, program, args, opts)
    except ConfigError as e:
        raise click.BadParameter(f"{e.value!r}; allowed: {e.allowed}", param_hint=f"'{e.field}'") from None
    except AcmaError as e:
        raise click.ClickException(str(e)) from None
    s = rec.stats
    click.echo(f"recorded {rec.meta['program']} {' '.join(args)}: {s.instructions:,} instructions in "
               f"{rec.wall_s:.2f} s under qemu-user ({rec.instructions_per_s / 1e6:.0f} M instructions/s), "
               f"exit status {rec.exit_status}")
    click.echo(f"{s.windows:,} windows of {window:,} instructions, {s.page_events:,} page events; "
               f"wrote {out} ({rec.file_bytes:,} bytes, {rec.bytes_per_1e8_instructions:,.0f} per 1e8 instructions)")
    if s.forks:
        click.echo(f"warning: the program forked {s.forks} time(s); child processes are not traced", err=True)
    if rec.exit_status:
        click.echo(f"warning: the program exited with status {rec.exit_status}", err=True)


def _info_doc(path: str, window: int | None, threshold: float, min_windows: int) -> dict:
    tr = read_trace(path)
    prof = profile_trace(tr, window, threshold, min_windows)
    per = prof.pages_per_window
    to_s = tr.tick_ns * 1e-9
    stats = {k: (float(f(per)) if len(per) else 0.0) for k, f in
             (("min", np.min), ("median", np.median), ("mean", np.mean), ("p90", lambda a: np.percentile(a, 90)),
              ("max", np.max))}
    keys = ("program", "args", "instructions", "window_ticks", "exit_status", "qemu", "tool")
    return {
        "file": path, "tick_ns": tr.tick_ns, "meta": {k: tr.meta[k] for k in keys if k in tr.meta},
        "events": prof.events, "footprint_pages": prof.footprint_pages, "footprint_bytes": prof.footprint_bytes,
        "window_ticks": prof.window_ticks, "windows": len(per),
        "duration_s": len(per) * prof.window_ticks * to_s,
        "pages_per_window": stats,
        "phases": [{"first_window": p.first, "last_window": p.last, "start_s": p.start_tick * to_s,
                        "end_s": p.end_tick * to_s, "distinct_pages": p.distinct_pages, "mean_pages": p.mean_pages}
                   for p in prof.phases],
        "pages_per_window_series": per.tolist(),
    }


@trace.command("info")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--window", type=click.IntRange(1), default=None,
              help="Window in ticks [default: the recording's window].")
@click.option("--threshold", type=click.FloatRange(0, 1), default=DEFAULT_THRESHOLD, show_default=True,
              help="Jaccard distance between windows' page sets that starts a new phase.")
@click.option("--min-windows", type=click.IntRange(1), default=DEFAULT_MIN_WINDOWS, show_default=True,
              help="Shortest phase, in windows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the pages of every window).")
def info_cmd(path: str, window: int | None, threshold: float, min_windows: int, as_json: bool) -> None:
    """Footprint, distinct pages per window and phases of a trace."""
    try:
        doc = _info_doc(path, window, threshold, min_windows)
    except FormatError as e:
        raise click.BadParameter(str(e), param_hint="'FILE'") from None
    except ConfigError as e:
        raise click.BadParameter(f"{e.value!r}; allowed: {e.allowed}", param_hint=f"'--{e.field}'") from None
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    m = doc["meta"]
    if "program" in m:
        click.echo(f"program      {m['program']} {' '.join(m.get('args', []))}")
    if "instructions" in m:
        click.echo(f"instructions {m['instructions']:,} (tick {doc['tick_ns']} ns each)")
    click.echo(f"events       {doc['events']:,}")
    click.echo(f"footprint    {doc['footprint_pages']:,} pages ({doc['footprint_bytes'] / 2**20:.2f} MiB)")
    click.echo(f"windows      {doc['windows']:,} of {doc['window_ticks']:,} ticks ({doc['duration_s']:.4g} s)")
    p = doc["pages_per_window"]
    click.echo("pages/window " + "  ".join(f"{k} {v:,.1f}" for k, v in p.items())
               + f"  (max {p['max'] * PAGE_SIZE / 2**20:.2f} MiB)")
    phases = doc["phases"]
    click.echo(f"phases       {len(phases)} (Jaccard distance > {threshold}, at least {min_windows} windows)")
    click.echo(f"  {'#':>3} {'windows':>15} {'start s':>10} {'end s':>10} {'pages':>8} {'pages/window':>12}")
    for i, ph in enumerate(phases[:MAX_PHASE_ROWS]):
        click.echo(f"  {i:>3} {ph['first_window']:>7}-{ph['last_window']:<7} {ph['start_s']:>10.4g} "
                   f"{ph['end_s']:>10.4g} {ph['distinct_pages']:>8,} {ph['mean_pages']:>12.1f}")
    if len(phases) > MAX_PHASE_ROWS:
        click.echo(f"  ... {len(phases) - MAX_PHASE_ROWS} more (--json lists them all)")
