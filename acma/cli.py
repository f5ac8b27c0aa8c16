"""The ``acma`` command line."""

from __future__ import annotations

import json

import click

import os

from .checkpoint import load_checkpoint, save_checkpoint
from .io.atomic import write_text_atomic
from .report.summary import format_summary
from .scenarios import demo_simulation

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
