"""PNG plots of a host run: host memory over time, and each guest's memory against demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .host import Host

GIB = float(1 << 30)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_host(host: Host, path: str) -> None:
    """Host memory used, its capacity and the static allocation, over time."""
    plt = _pyplot()
    h = host.series.host()
    minutes = h["t_us"] / 60e6
    static = host.static_bytes() / GIB
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(minutes, h["used"] / GIB, label=f"used ({host.policy.name})")
    ax.plot(minutes, h["host_swap_used"] / GIB, label="in host swap", linestyle=":")
    ax.axhline(host.capacity / GIB, color="k", linestyle="--", label="capacity")
    ax.axhline(static, color="grey", linestyle="-.", label="static allocation")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("host memory (GiB)")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_guests(host: Host, path: str) -> None:
    """One panel per guest: host footprint, online memory, used memory and demand."""
    plt = _pyplot()
    n = len(host.vms)
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.6 * n), sharex=True, squeeze=False)
    for ax, vm in zip(axes[:, 0], host.vms):
        s = host.series.guest(vm.name)
        m = s["t_us"] / 60e6
        for col, style in (("footprint", "-"), ("online", "--"), ("memused", ":"), ("demand", "-.")):
            ax.plot(m, s[col] / GIB, linestyle=style, label=col)
        ax.set_title(f"{vm.name} (max {vm.max_mem / GIB:g} GiB)", fontsize=9)
        ax.set_ylabel("GiB")
    axes[0, 0].legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("time (min)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
