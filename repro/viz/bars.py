"""Bar charts of mean ± std over seeds, the figure most tables of this book have."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    plot_grouped_mean_std_bars(ax, labels, {"": per_seed}, ylabel, title)


def plot_grouped_mean_std_bars(
    ax: Axes,
    labels: Sequence[str],
    groups: Mapping[str, Sequence[Sequence[float]]],
    ylabel: str,
    title: str = "",
) -> None:
    """Side-by-side bars per configuration, one per group (e.g. two kinds of features): each
    group's ``per_seed`` values are in the order of ``labels``; a legend names the groups when
    there is more than one."""
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    width = 0.8 / len(groups)
    positions = np.arange(len(labels))
    for index, (group, per_seed) in enumerate(groups.items()):
        if len(per_seed) != len(labels):
            raise ValueError(
                f"group {group!r}: expected {len(labels)} configurations, got {len(per_seed)}"
            )
        means = [float(np.mean(v)) for v in per_seed]
        stds = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in per_seed]
        shifted = positions + (index - (len(groups) - 1) / 2) * width
        ax.bar(
            shifted,
            means,
            width=width,
            yerr=stds,
            capsize=4,
            color=colours[index % len(colours)],
            alpha=0.6,
            label=group or None,
        )
        for position, values in zip(shifted, per_seed, strict=True):
            ax.scatter([position] * len(values), values, color="black", s=12, zorder=3)
    ax.set_xticks(positions, labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
