"""Figures of DSNet Fig. 4 and of the learned sampling points of trained models.

* :func:`segmentation_figure`: DSNet Fig. 4's layout, image, ground truth and each model's
  prediction side by side.
* :func:`sampling_points_figure`: per validation image and chosen pixel
  (:func:`repro.analysis.sampling_points.choose_pixels`), where each trained layer reads, in
  image pixels (:class:`repro.analysis.sampling_points.SamplingField`): the regular grid of the
  pixel's feature position as crosses, the learned taps as dots (DCNv2's sized by its mask),
  the ground-truth outlines in white.
* :func:`offset_distribution_figure`: offset lengths by where the position lies (object size,
  boundary distance), from :func:`repro.analysis.sampling_points.offset_table` lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from repro.analysis.sampling_points import PIXEL_KINDS, WHERE, SamplingField
from repro.data.palette import colorize_label
from repro.engine.metrics import boundary_map
from repro.viz.teaching import show_photo

LAYER_COLOURS: tuple[str, ...] = ("tab:orange", "tab:cyan", "tab:pink", "tab:olive")
"""One colour per layer drawn, in the order of the ``fields`` mapping."""


def _outlines(label: np.ndarray) -> np.ndarray:
    return boundary_map(torch.from_numpy(np.asarray(label)).long()[None])[0].numpy()


def _show(ax: Axes, picture: np.ndarray, title: str | None = None) -> None:
    """An ``[H, W, 3]`` picture, uint8 or in ``[0, 1]``, drawn as the teaching figures draw."""
    values = picture / 255.0 if picture.dtype == np.uint8 else picture
    show_photo(ax, torch.from_numpy(np.ascontiguousarray(values)).permute(2, 0, 1)[None], title)


def segmentation_figure(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    predictions: Mapping[str, Sequence[np.ndarray]],
) -> Figure:
    """Rows: images; columns: the image, its ground truth and each model's prediction
    (``predictions``: title -> one ``[H, W]`` map per image), VOC colours (DSNet Fig. 4)."""
    columns = 2 + len(predictions)
    fig, axes = plt.subplots(
        len(images), columns, figsize=(2.2 * columns, 2.2 * len(images)), squeeze=False
    )
    for row, (image, label) in enumerate(zip(images, labels, strict=True)):
        first = row == 0
        _show(axes[row, 0], image, "image" if first else None)
        _show(axes[row, 1], colorize_label(label), "ground truth" if first else None)
        for col, (title, maps) in enumerate(predictions.items(), start=2):
            _show(axes[row, col], colorize_label(maps[row]), title if first else None)
    fig.tight_layout()
    return fig


def _draw_layer(
    ax: Axes, field: SamplingField, batch: int, pixel: tuple[int, int], colour: str, name: str
) -> None:
    taps, grid, mask = field.taps_at(pixel, batch)
    sizes = 28.0 if mask is None else 8.0 + 60.0 * mask.numpy()
    ax.scatter(grid[:, 1], grid[:, 0], marker="+", s=30, color=colour, lw=1.0, alpha=0.9)
    ax.scatter(
        taps[:, 1], taps[:, 0], s=sizes, color=colour, edgecolors="black", lw=0.5, zorder=3,
        label=name,
    )  # fmt: skip


def sampling_points_figure(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    pixels: Sequence[Mapping[str, tuple[int, int]]],
    fields: Sequence[Mapping[str, SamplingField]],
) -> Figure:
    """Rows: images; columns: :data:`PIXEL_KINDS`.

    Each panel shows the whole image, dimmed, with the ground-truth outlines, the chosen pixel
    (red star) and, per layer of the image's ``fields`` entry (title -> field on that image
    alone), the regular grid of the pixel's feature position (crosses) and the learned taps
    (dots; DCNv2's area grows with its mask). A kind an image lacks leaves its panel empty.
    """
    columns = len(PIXEL_KINDS)
    fig, axes = plt.subplots(
        len(images), columns, figsize=(2.8 * columns, 2.8 * len(images)), squeeze=False
    )
    rows = zip(images, labels, pixels, fields, strict=True)
    for row, (image, label, chosen, layers) in enumerate(rows):
        dimmed = 0.35 * image.astype(np.float64) / 255.0 + 0.3
        dimmed[_outlines(label)] = 1.0
        for col, kind in enumerate(PIXEL_KINDS):
            ax = axes[row, col]
            _show(ax, dimmed, kind if row == 0 else None)
            if kind not in chosen:
                ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
                continue
            pixel = chosen[kind]
            for (name, field), colour in zip(layers.items(), LAYER_COLOURS, strict=False):
                _draw_layer(ax, field, 0, pixel, colour, name)
            ax.scatter([pixel[1]], [pixel[0]], marker="*", s=90, color="red", zorder=4)
            height, width = label.shape
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
    handles, names = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def offset_distribution_figure(lines: pd.DataFrame, layer_column: str = "layer") -> Figure:
    """Box plots of ``offset_px`` per layer: by :data:`WHERE` (left), near or far from a label
    boundary (right). ``lines`` holds :func:`offset_table` lines with a ``layer_column``."""
    layers = list(dict.fromkeys(lines[layer_column]))
    fig, (by_size, by_boundary) = plt.subplots(1, 2, figsize=(11, 4))
    groups = [
        (by_size, "where", list(WHERE), "where the position lies"),
        (by_boundary, "near", [True, False], "distance to the nearest label boundary"),
    ]
    for ax, column, values, title in groups:
        width = 0.8 / max(len(layers), 1)
        for index, (layer, colour) in enumerate(zip(layers, LAYER_COLOURS, strict=False)):
            own = lines[lines[layer_column] == layer]
            data = [own.loc[own[column] == value, "offset_px"].to_numpy() for value in values]
            positions = np.arange(len(values)) + (index - (len(layers) - 1) / 2) * width
            kept = [(p, d) for p, d in zip(positions, data, strict=True) if len(d)]
            if not kept:
                continue
            parts = ax.boxplot(
                [d for _, d in kept],
                positions=[p for p, _ in kept],
                widths=width * 0.9,
                patch_artist=True,
                showfliers=False,
                medianprops={"color": "black"},
            )
            for box in parts["boxes"]:
                box.set_facecolor(colour)
            ax.plot([], [], color=colour, lw=6, label=layer)
        names = values if column == "where" else ["near (<= 1 stride)", "far"]
        ax.set_xticks(range(len(values)), [str(n) for n in names])
        ax.set_ylabel("mean offset length over the taps (image px)")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
