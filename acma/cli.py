"""The ``acma`` command line."""

from __future__ import annotations

import json

import click

from .report.summary import format_summary
from .scenarios import demo_simulation
from .io.atomic import write_text_atomic


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
def demo(minutes: int, seed: int, progress: bool, json_path: str | None) -> None:
    """Run the built-in guest and workload, then print a summary."""
    sim = demo_simulation(seed)
    result = sim.run(minutes * 60_000_000, progress=progress)
    click.echo(format_summary(result))
    if json_path:
        doc = {"summary": result.summary(), "vmstat": result.vmstat, "meminfo": result.meminfo,
               "series": {k: v.tolist() for k, v in result.series.items()}}
        write_text_atomic(json_path, json.dumps(doc, indent=1))
