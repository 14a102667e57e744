"""A gallery figure of a segmentation dataset in VOC layout: images, labels, scribbles."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from repro.data.base import load_rgb, read_split_list
from repro.data.palette import IGNORE_INDEX, colorize_label, read_label_png


def plot_gallery(root: str | Path, n: int = 6, seed: int = 0, split: str = "train") -> Figure:
    """Three rows — image, label, scribbles (over a dimmed image) — for ``n`` random items.

    Args:
        root: a dataset root in VOC layout (e.g. from
            :func:`~repro.data.offline.build_offline_dataset`).
        n: number of columns (items).
        seed: which items are shown.
        split: the ImageSets list to draw from.
    """
    year_dir = Path(root) / "VOCdevkit" / "VOC2012"
    list_file = year_dir / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.is_file():
        raise FileNotFoundError(f"root: no VOC-layout list {list_file}")
    if n < 1:
        raise ValueError(f"n: expected >= 1, got {n}")
    ids = read_split_list(list_file)
    chosen = np.random.default_rng(seed).choice(len(ids), size=min(n, len(ids)), replace=False)
    figure, axes = plt.subplots(3, len(chosen), figsize=(2.0 * len(chosen), 6.2), squeeze=False)
    for column, item in enumerate(sorted(chosen)):
        image_id = ids[item]
        image = load_rgb(year_dir / "JPEGImages" / f"{image_id}.jpg")
        label = read_label_png(year_dir / "SegmentationClass" / f"{image_id}.png")
        scribble_file = year_dir / "SegmentationScribbles" / f"{image_id}.png"
        panels = [image, colorize_label(label)]
        if scribble_file.is_file():
            scribbles = read_label_png(scribble_file)
            overlay = (image * 0.35).astype(np.uint8)
            stroke = scribbles != IGNORE_INDEX
            overlay[stroke] = colorize_label(scribbles)[stroke]
            # Background strokes are black in the VOC palette; show them white to be visible.
            overlay[stroke & (scribbles == 0)] = 255
            panels.append(overlay)
        for row, panel in enumerate(panels):
            axes[row, column].imshow(panel, interpolation="nearest")
        axes[0, column].set_title(image_id, fontsize=8)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    for row, title in enumerate(("image", "label", "scribbles")):
        axes[row, 0].set_ylabel(title)
    figure.tight_layout()
    return figure
