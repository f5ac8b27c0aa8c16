"""``acma damos``: check and convert DAMOS parameter files, write the kernel modules' specs."""

from __future__ import annotations

import os
from dataclasses import fields

import click

from ..errors import ConfigError, FormatError
from . import spec
from .modules import LruSortParams, ReclaimParams, StatParams, lru_sort, reclaim, stat
from .textunits import parse_count, parse_size

MODULES = {"reclaim": (reclaim, ReclaimParams), "lru_sort": (lru_sort, LruSortParams), "stat": (stat, StatParams)}


def _fail(e: Exception) -> None:
    raise click.ClickException(str(e))


def _is_scheme_file(path: str, schemes: bool) -> bool:
    return schemes or path.lower().endswith(".damos")


@click.group("damos")
def damos() -> None:
    """DAMOS parameter files: damo kdamonds specs, scheme lists, legacy .damos lines."""


@damos.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--schemes", is_flag=True, help="PATH is a bare scheme list (.json/.yaml), not a kdamonds spec.")
def validate(path: str, schemes: bool) -> None:
    """Check a parameter file whole; print what it holds or the field at fault."""
    try:
        if _is_scheme_file(path, schemes):
            n = len(spec.load_schemes(path))
            click.echo(f"{path}: ok, {n} scheme(s)")
            return
        s = spec.load(path)
    except (ConfigError, FormatError) as e:
        _fail(e)
    n = sum(len(c.schemes) for c in s.contexts)
    click.echo(f"{path}: ok, {len(s.kdamonds)} kdamond(s), {len(s.contexts)} context(s), {n} scheme(s)")


@damos.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--schemes", is_flag=True, help="SRC is a bare scheme list (.json/.yaml), not a kdamonds spec.")
def convert(src: str, dst: str, schemes: bool) -> None:
    """Rewrite a parameter file in another format, chosen by DST's extension (.json, .yaml,
    .damos); scheme files stay scheme files."""
    try:
        if _is_scheme_file(src, schemes):
            spec.save_schemes(spec.load_schemes(src), dst)
        else:
            spec.save(spec.load(src), dst)
    except (ConfigError, FormatError) as e:
        _fail(e)
    click.echo(f"wrote {dst}")


def _param_value(text: str, name: str, kind: str):
    if kind == "bool":
        low = text.strip().lower()
        if low in ("y", "yes", "true", "1"):
            return True
        if low in ("n", "no", "false", "0"):
            return False
        raise ConfigError(name, text, "Y or N")
    return parse_count(text, name)


@damos.command()
@click.argument("name", type=click.Choice(sorted(MODULES)))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A module parameter, named as in /sys/module/damon_<name>/parameters (repeatable).")
@click.option("--ram", default="4 GiB", show_default=True,
              help="System RAM size (one range from 0) used when monitor_region_start/end are 0.")
def module(name: str, dst: str, params: tuple[str, ...], ram: str) -> None:
    """Write the damo spec of a kernel module's context (DAMON_RECLAIM, DAMON_LRU_SORT,
    DAMON_STAT) with its defaults and the given parameters."""
    mod, cls = MODULES[name]
    kinds = {f.name: f.type for f in fields(cls)}
    values = {}
    try:
        for item in params:
            key, sep, text = item.partition("=")
            if not sep or key not in kinds:
                raise ConfigError("--param", item, f"KEY=VALUE with KEY among {sorted(kinds)}")
            values[key] = _param_value(text, f"damon_{name}.{key}", kinds[key])
        setup = mod.build(cls(**values), [(0, parse_size(ram, "--ram"))])
        spec.save(setup.to_spec(), dst)
    except (ConfigError, FormatError) as e:
        _fail(e)
    click.echo(f"wrote {os.fspath(dst)}: {setup.name}, {len(setup.schemes)} scheme(s)")
