"""Cost curves over a sweep (FLOPs, memory, time against the map size), one line per variant."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def sweep_figure(
    frame: pd.DataFrame,
    x: str,
    panels: Sequence[tuple[str, str]],
    hue: str = "variant",
    x_label: str = "",
) -> Figure:
    """One log-log panel per ``(column, label)`` of ``panels``: ``column`` against ``x``, one
    line per value of ``hue``. Missing values (a case not run) leave a gap in the line."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, (column, label) in zip(axes[0], panels, strict=True):
        for name, rows in frame.groupby(hue, sort=False):
            rows = rows.sort_values(x)
            values = rows[column].astype(float)
            if values.notna().any():
                ax.plot(rows[x], values, marker="o", label=str(name))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(x_label or x)
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
