"""Figures of the pretraining notebook: generated images with their classes, and first-layer
filters shown as small colour images (the usual look at what pretraining learnt)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def filter_mosaic(weight: np.ndarray, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """Filters ``[out, 3, k, k]`` as one ``[H, W, 3]`` image in ``[0, 1]``, one tile each.

    Each filter is scaled on its own to its largest absolute value (grey is zero), so the
    structure of weak filters shows too; tiles are separated by white lines.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"weight must be [out, 3, k, k], got {weight.shape}")
    count, _, height, width = weight.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    mosaic = np.ones(((height + gap) * rows - gap, (width + gap) * columns - gap, 3))
    for index in range(count):
        tile = weight[index].transpose(1, 2, 0)
        scale = float(np.abs(tile).max()) or 1.0
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        mosaic[top : top + height, left : left + width] = 0.5 + 0.5 * tile / scale
    return mosaic


def plot_filters(ax: Axes, weight: np.ndarray, title: str = "") -> None:
    """Draw :func:`filter_mosaic` of ``weight`` on ``ax`` (pixels kept sharp)."""
    ax.imshow(filter_mosaic(weight), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="small")


def plot_samples(
    sample: Callable[[int], tuple[np.ndarray, int]],
    class_names: list[str],
    count: int = 12,
    columns: int = 6,
    title: str = "",
) -> Figure:
    """The first ``count`` items of a generated task (``sample(index) -> (image, class)``)."""
    import matplotlib.pyplot as plt

    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.1 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        image, label = sample(index)
        ax.imshow(image, interpolation="nearest")
        ax.set_title(class_names[label].replace("texture:", "").split(":")[-1], fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_grouped_bars(
    ax: Axes,
    groups: list[str],
    sides: dict[str, list[list[float]]],
    ylabel: str,
    title: str = "",
    reference: float | None = None,
) -> None:
    """Bars of mean ± std over seeds, one group per entry of ``groups`` and one colour per
    side (e.g. pretrained, random init), each seed a dot; ``reference`` a dashed line (chance)."""
    width = 0.8 / len(sides)
    positions = np.arange(len(groups))
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for number, (side, per_group) in enumerate(sides.items()):
        offset = positions - 0.4 + width * (number + 0.5)
        means = [float(np.mean(values)) for values in per_group]
        stds = [float(np.std(values, ddof=1)) if len(values) > 1 else 0.0 for values in per_group]
        ax.bar(
            offset,
            means,
            width,
            yerr=stds,
            capsize=3,
            alpha=0.7,
            label=side,
            color=colours[number % len(colours)],
        )
        for x, values in zip(offset, per_group, strict=True):
            ax.scatter([x] * len(values), values, color="black", s=10, zorder=3)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", label="chance")
    ax.set_xticks(positions, groups)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
