"""``acma host run``: the built-in two-guest host under one policy, with summary, CSV and PNGs."""

from __future__ import annotations

import json

import click

from ..errors import ConfigError
from ..io.atomic import write_text_atomic
from .examples import two_guest_host
from .host import Host
from .plots import plot_guests, plot_host
from .policy import make_policy, policy_names
from .summary import format_summary, summarize


@click.group("host")
def host_cli() -> None:
    """A host with several guests: virtio-balloon, reporting, hotplug and memory policies."""


@host_cli.command("run")
@click.option("--policy", "policy_name", default="today", show_default=True,
              help="A registered policy (static, today, and any other registered).")
@click.option("--minutes", type=click.IntRange(1, 24 * 60), default=60, show_default=True)
@click.option("--capacity", default="3 GiB", show_default=True, help="Host memory for the guests.")
@click.option("--host-page", type=click.Choice(["2MiB", "4KiB"]), default="2MiB", show_default=True)
@click.option("--on-exhaustion", type=click.Choice(["swap", "kill"]), default="swap", show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Tidy time series (t_us, vm, metric, value).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="The summary as JSON.")
@click.option("--png", "png_prefix", help="Write PREFIX-host.png and PREFIX-guests.png.")
@click.option("--progress/--no-progress", default=True)
def run(policy_name, minutes, capacity, host_page, on_exhaustion, seed, csv_path, json_path, png_prefix, progress):
    """Run the built-in 2-guest host (a service and a batch job, 2 GiB each) under a policy."""
    try:
        if policy_name not in policy_names():
            raise ConfigError("policy", policy_name, f"one of {policy_names()}")
        cfg = two_guest_host(capacity=capacity, seed=seed, host_page_size=host_page,
                             on_exhaustion=on_exhaustion)
        host = Host(cfg, make_policy(policy_name))
    except ConfigError as e:
        raise click.BadParameter(str(e)) from None
    host.run(minutes * 60_000_000, progress=progress)
    summary = summarize(host)
    click.echo(format_summary(summary))
    if csv_path:
        host.series.write_csv(csv_path)
    if json_path:
        write_text_atomic(json_path, json.dumps(summary, indent=1))
    if png_prefix:
        plot_host(host, f"{png_prefix}-host.png")
        plot_guests(host, f"{png_prefix}-guests.png")
