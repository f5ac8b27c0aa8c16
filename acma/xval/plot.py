"""Two DAMON heatmaps next to each other in one PNG (the kernel's and acma's), on one colour scale."""

from __future__ import annotations

import io
import os

import numpy as np

from ..io.atomic import write_bytes_atomic
from ..report.heatmap import Heatmap

__all__ = ["side_by_side_png"]


def side_by_side_png(maps: list[tuple[str, Heatmap]], path: str | os.PathLike, title: str) -> None:
    """Draw ``maps`` ((label, heatmap) pairs) left to right; time on x, address cells on y."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    import matplotlib

    vmax = max([hm.max_samples or 0.0 for _, hm in maps] + [hm.observed_max for _, hm in maps]) or 1.0
    fig = Figure(figsize=(6 * len(maps), 5.2), dpi=100)
    FigureCanvasAgg(fig)
    cmap = matplotlib.colormaps["inferno"].with_extremes(bad="#d9d9d9")
    img = None
    for k, (label, hm) in enumerate(maps):
        ax = fig.add_subplot(1, len(maps), k + 1)
        x0 = (hm.time_edges_ns[0] - hm.record_start_ns) / 1e9
        x1 = (hm.time_edges_ns[-1] - hm.record_start_ns) / 1e9
        n = hm.values.shape[1]
        img = ax.imshow(np.ma.masked_invalid(hm.values.T), origin="lower", aspect="auto", interpolation="nearest",
                        extent=(x0, x1, 0, n), cmap=cmap, norm=Normalize(0.0, vmax))
        for b in hm.bands[1:]:
            ax.axhline(b.first, color="white", linewidth=0.8, linestyle="--")
        ticks = [b.first for b in hm.bands]
        ax.set_yticks(ticks, [f"{b.start:#x}" for b in hm.bands], fontsize=7, family="monospace")
        ax.set_xlabel("seconds since the workload's first phase")
        ax.set_title(label, fontsize=10)
    cb = fig.colorbar(img, ax=fig.axes, pad=0.02)
    cb.set_label("samples that found an access, per aggregation interval")
    fig.suptitle(title, fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(path, buf.getvalue())
