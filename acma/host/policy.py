"""The Policy protocol: what the host asks of a memory-management policy.

A policy decides how each guest's memory follows its demand: today's pipeline
(:class:`acma.host.pipeline.TodayPipeline`), ACMA, or static allocation
(:class:`acma.host.pipeline.StaticPolicy`). The host owns time and accounting; a policy only
acts through the guests' kernel mechanisms (DAMOS, free page reporting, compaction, hotplug)
and the host's devices (the balloon), so every policy is measured by the same books.

Order of calls (see :meth:`acma.host.host.Host.run`):

1. ``attach(host)`` once, before time starts, after every VM is built: set up per-guest
   state (DAMON contexts, reporting, balloon handlers, initial backing).
2. Every control interval, for each live VM in order, ``advance(vm, t_us)`` moves that
   guest from its current time to ``t_us`` (all of the guest's own events run inside it).
3. Then the host books every guest's footprint, handles host memory exhaustion, and calls
   ``control(host, t_us)`` once: the policy's user-space and host-side decisions for the
   interval (hot-(un)plug, balloon targets). Whatever it changes is booked at the next tick.
4. At the end, ``stats(vm)`` once per VM: policy-specific counters for the summary.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import ConfigError

if TYPE_CHECKING:
    from .host import Host
    from .vm import VM


@runtime_checkable
class Policy(Protocol):
    """How guest memory follows demand. Implementations keep every piece of their state in
    themselves (one policy object per Host), so a seed fixes every result."""

    #: a short name for tables and plots, e.g. "static", "today", "acma"
    name: str

    def attach(self, host: Host) -> None:
        """Set up before time starts. Raise acma.errors.ConfigError for a host it cannot run."""

    def advance(self, vm: VM, t_us: int) -> None:
        """Move ``vm``'s guest to ``t_us`` (``vm.advance_to(t_us)``, or under a DAMON context,
        ``vm.advance_to(t_us, ctx.run_until)``)."""

    def control(self, host: Host, t_us: int) -> None:
        """Once per control interval, after every live guest reached ``t_us``."""

    def stats(self, vm: VM) -> dict[str, float]:
        """Policy-specific counters of one VM for the summary (e.g. DAMOS stats); may be empty."""


_FACTORIES: dict[str, Callable[[], Policy]] = {}
# modules that register policies when imported (one line per policy module)
POLICY_MODULES = ["acma.host.pipeline"]


def _load_policy_modules() -> None:
    for name in POLICY_MODULES:
        importlib.import_module(name)


def register_policy(name: str, factory: Callable[[], Policy]) -> None:
    """Make a policy available by name (``acma host run --policy NAME``, ``acma compare``)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError("policy name", name, "an identifier")
    if not callable(factory):
        raise ConfigError(f"policy[{name}]", factory, "a callable returning a Policy")
    _FACTORIES[name] = factory


def make_policy(name: str) -> Policy:
    """A fresh policy object of a registered name."""
    _load_policy_modules()
    if name not in _FACTORIES:
        raise ConfigError("policy", name, f"one of {sorted(_FACTORIES)}")
    return _FACTORIES[name]()


def policy_names() -> list[str]:
    _load_policy_modules()
    return sorted(_FACTORIES)
