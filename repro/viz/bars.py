"""Bar charts of mean ± std over seeds, the figure most tables of this book have."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes


def plot_mean_std_bars(
    ax: Axes,
    labels: Sequence[str],
    per_seed: Sequence[Sequence[float]],
    ylabel: str,
    title: str = "",
) -> None:
    """One bar per configuration (mean), its std over seeds as an error bar, seeds as dots."""
    means = [float(np.mean(v)) for v in per_seed]
    stds = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in per_seed]
    positions = np.arange(len(labels))
    ax.bar(positions, means, yerr=stds, capsize=4, color="tab:blue", alpha=0.6)
    for position, values in zip(positions, per_seed, strict=True):
        ax.scatter([position] * len(values), values, color="black", s=12, zorder=3)
    ax.set_xticks(positions, labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
