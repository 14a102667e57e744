"""Where a low-level boundary pixel attends: DDSM's N sampled points beside the full non-local map.

For trained ``DDSMNet`` models (:mod:`repro.models.segmentation`) on validation images: the
pixel of the low-level map (the map the module refines, DDSM's figure) is chosen on a
ground-truth boundary; DDSM's spatial branch gives its N read positions (anchors + predicted
offsets) and their softmax affinities (:func:`repro.viz.teaching.ddsm_sampling`, the same
positions the layer reads); the non-local network's spatial branch gives the affinity of the
same pixel to every position (:meth:`repro.modules.ddsm.SpatialNonLocalAffinity.attention`).

Positions are drawn on the image: a low-level pixel ``(i, j)`` at stride ``s`` is the image
point ``(s * i + (s - 1) / 2, s * j + (s - 1) / 2)``. A sampled point outside the map reads
zeros (the op's bilinear kernel), so it is drawn on the image border as a cross and counted
in the panel's title instead of being left off the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from repro.engine.metrics import boundary_map
from repro.models.segmentation import DDSMNet
from repro.modules.ddsm import SpatialDynamicAffinity, SpatialNonLocalAffinity
from repro.viz.teaching import ddsm_sampling, show_photo


def module_inputs(model: DDSMNet, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The low-level map and the high-level map X(ASPP) that ``model``'s module receives."""
    with torch.no_grad():
        features = model.backbone(images)
        return features[model.low_level], model.aspp(features["x5"])


def boundary_pixel(label: torch.Tensor, size: tuple[int, int], ignore_index: int = 255):
    """A low-level pixel ``(i, j)`` on a ground-truth boundary of ``label`` ``[H, W]``.

    The label is reduced to the map's ``size`` by nearest sampling; of its boundary pixels
    the one closest to the map's centre is chosen (deterministic); ``None`` without one.
    """
    small = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0].long()
    edges = boundary_map(small)[0] & (small[0] != ignore_index)
    found = edges.nonzero()
    if len(found) == 0:
        return None
    centre = torch.tensor([(size[0] - 1) / 2, (size[1] - 1) / 2])
    index = int(((found.float() - centre) ** 2).sum(dim=1).argmin())
    return int(found[index, 0]), int(found[index, 1])


@dataclass
class PixelAttention:
    """What one low-level pixel attends to, in low-level map coordinates."""

    pixel: tuple[int, int]
    points: np.ndarray  # [N, 2] (y, x) read positions of DDSM
    affinities: np.ndarray  # [N] DDSM's softmax weights
    dense: np.ndarray  # [h, w] the non-local affinity of the pixel to every position
    map_size: tuple[int, int]

    def outside(self) -> np.ndarray:
        """Which of DDSM's points lie outside the map (they read zeros)."""
        h, w = self.map_size
        y, x = self.points[:, 0], self.points[:, 1]
        return (y < -0.5) | (y > h - 0.5) | (x < -0.5) | (x > w - 0.5)

    def dense_mass_at_points(self) -> float:
        """The non-local affinity mass within one pixel of DDSM's in-map points (a share)."""
        h, w = self.map_size
        near = np.zeros((h, w), dtype=bool)
        for y, x in self.points[~self.outside()]:
            y0, x0 = int(round(y)), int(round(x))
            near[max(0, y0 - 1) : y0 + 2, max(0, x0 - 1) : x0 + 2] = True
        return float(self.dense[near].sum())


def pixel_attention(
    ddsm_model: DDSMNet, non_local_model: DDSMNet, image: torch.Tensor, pixel: tuple[int, int]
) -> PixelAttention:
    """DDSM's points and the non-local map of ``pixel`` on ``image`` ``[3, H, W]``."""
    spatial = ddsm_model.ddsm.spatial
    dense_branch = non_local_model.ddsm.spatial
    if not isinstance(spatial, SpatialDynamicAffinity):
        raise ValueError("ddsm_model must have DDSM's spatial branch (affinity='dynamic')")
    if not isinstance(dense_branch, SpatialNonLocalAffinity):
        raise ValueError("non_local_model must have the non-local spatial branch")
    y, x = pixel
    with torch.no_grad():
        low, high = module_inputs(ddsm_model, image[None])
        positions, weights = ddsm_sampling(spatial, low, high)
        dense_low, dense_high = module_inputs(non_local_model, image[None])
        h, w = low.shape[-2:]
        attention, _ = dense_branch.attention(dense_low, dense_high, torch.tensor([y * w + x]))
    return PixelAttention(
        pixel=pixel,
        points=positions[0, :, y, x].numpy(),
        affinities=weights[0, :, y, x].numpy(),
        dense=attention[0, 0].reshape(h, w).numpy(),
        map_size=(h, w),
    )


def attention_figure(
    labels: Sequence[torch.Tensor],
    attentions: Sequence[PixelAttention],
    display: Sequence[np.ndarray],
) -> Figure:
    """One row per image: DDSM's N points (area ~ affinity) and the non-local map of the same
    pixel (red star), over the image (``display``: ``[H, W, 3]`` in [0, 1]) and its label
    boundaries (white)."""
    rows = len(attentions)
    fig, axes = plt.subplots(rows, 2, figsize=(7.5, 3.6 * rows), squeeze=False)
    for row, (label, found, shown) in enumerate(zip(labels, attentions, display, strict=True)):
        height, width = label.shape
        stride = height / found.map_size[0]
        edges = boundary_map(label[None])[0].numpy()
        star = [stride * c + (stride - 1) / 2 for c in found.pixel]
        for col, title in enumerate(("DDSM: N sampled points", "non-local: all positions")):
            ax = axes[row, col]
            show_photo(ax, torch.from_numpy(shown).permute(2, 0, 1)[None])
            ax.imshow(np.ma.masked_where(~edges, edges), cmap="gray", vmin=0, vmax=1, alpha=0.6)
            if col == 0:
                points = stride * found.points + (stride - 1) / 2
                outside = found.outside()
                clipped = np.clip(points, [0, 0], [height - 1, width - 1])
                size = 15 + 300 * found.affinities / max(found.affinities.max(), 1e-12)
                ax.scatter(
                    clipped[~outside, 1],
                    clipped[~outside, 0],
                    s=size[~outside],
                    c="tab:cyan",
                    edgecolors="black",
                    linewidths=0.6,
                    zorder=3,
                )
                ax.scatter(
                    clipped[outside, 1], clipped[outside, 0], marker="x", c="orange", zorder=3
                )
                title += f" ({int(outside.sum())} of {len(points)} off the map)"
            else:
                heat = F.interpolate(
                    torch.from_numpy(found.dense)[None, None], size=(height, width), mode="nearest"
                )[0, 0].numpy()
                ax.imshow(heat / heat.max(), cmap="magma", alpha=0.65, vmin=0, vmax=1)
                title += f" (DDSM's points hold {100 * found.dense_mass_at_points():.0f}%)"
            ax.scatter([star[1]], [star[0]], marker="*", s=160, c="red", edgecolors="white")
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
