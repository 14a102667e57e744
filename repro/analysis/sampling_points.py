"""Where trained DSNet and DCNv2 layers sample, in image pixels (DSNet Fig. 4 and beyond).

DSNet (AAAI 2020) draws no sampling point of a trained network: Fig. 4 shows segmentation maps
only. This module reads the learned sampling positions out of trained models and relates them
to the ground truth:

* :func:`sampling_field`: the positions of a model's dynamic sampling layer on a batch of
  images. DSNet's CGDS (DSNet Fig. 2-3, Eq. 2-3) reads X(M), the modified X(3) (stride 8),
  with offsets predicted from X(ASPP); the DCNv2 row of DSNet's "Comparing with Related Works"
  (``DeepLabV3Plus(refinement="dcnv2")``) reads ASPP's output (stride 16) with offsets and a
  modulation mask predicted from that output. The offsets are captured with forward hooks on
  the layer and its offset predictor while the model runs its own forward (nothing of the
  forward is re-implemented); the positions are those the op reads, computed with the op's own
  base grid and offset layout (:func:`repro.viz.teaching.conv_tap_positions`: channel ``2n``
  the y offset of tap ``n = i*k + j``, ``2n + 1`` its x offset).
* Feature coordinates become image pixels the way the network's own upsampling maps them
  (bilinear, ``align_corners=False``, :func:`repro.modules.resize.resize_to`): feature pixel
  ``u`` of a map ``s`` times smaller than the image sits at image pixel ``(u + 0.5)·s - 0.5``,
  and a feature offset ``Δ`` spans ``s·Δ`` image pixels (:func:`to_image`).
* :func:`choose_pixels`: per validation image, the centre of its largest object, the centre of
  its smallest, a boundary pixel of the largest and the background pixel farthest from every
  object (an object's centre is its pixel farthest from its outline, which lies inside the
  object even for a ring or a crescent).
* :func:`offset_table`: per feature position, the mean offset length over its taps (image
  pixels), the size bin of the ground-truth object the position lies in
  (:mod:`repro.engine.object_metrics`) and its distance to the nearest label boundary, *near*
  when at most one feature stride.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from torch import nn

from repro.data.palette import IGNORE_INDEX
from repro.engine.metrics import boundary_map, fill_ignored_with_nearest_label
from repro.engine.object_metrics import object_components, size_bin
from repro.models.segmentation import DeepLabV3Plus, DSNet
from repro.modules.dynamic_baselines import DeformableConv
from repro.viz.teaching import conv_tap_positions

PIXEL_KINDS: tuple[str, ...] = ("large object", "small object", "boundary", "background")
"""The pixels :func:`choose_pixels` picks, in the order the figures show them."""

WHERE: tuple[str, ...] = ("background", "small", "medium", "large")
"""Where a feature position lies: outside every object, or in an object of a size bin."""


@dataclass(frozen=True)
class SamplingField:
    """The sampling positions of one dynamic sampling layer on a batch of images.

    ``positions`` and ``grid`` are ``[B, K, h, w, 2]`` ``(y, x)`` image pixels: where tap ``n``
    of feature position ``(i, j)`` reads, and where it would read with zero offsets (the
    regular grid). ``mask`` ``[B, K, h, w]`` is DCNv2's modulation (``None`` for CGDS);
    ``scale`` the image pixels per feature pixel ``(s_y, s_x)``.
    """

    layer: str
    positions: torch.Tensor
    grid: torch.Tensor
    mask: torch.Tensor | None
    scale: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        """The feature map's ``(h, w)``."""
        return int(self.positions.shape[2]), int(self.positions.shape[3])

    @property
    def stride(self) -> float:
        """The larger of the two scales: one feature step in image pixels."""
        return max(self.scale)

    def offsets(self) -> torch.Tensor:
        """The learned offsets in image pixels ``[B, K, h, w, 2]`` (positions minus the grid)."""
        return self.positions - self.grid

    def magnitudes(self) -> torch.Tensor:
        """``[B, h, w]``: the mean offset length over the taps of each position (image pixels)."""
        return self.offsets().norm(dim=-1).mean(dim=1)

    def centres(self) -> torch.Tensor:
        """``[h, w, 2]``: the image pixel each feature position stands for."""
        height, width = self.shape
        rows = torch.arange(height, dtype=torch.float64)
        cols = torch.arange(width, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1)
        return to_image(grid, self.scale, offset=False)

    def cell_of(self, pixel: tuple[int, int]) -> tuple[int, int]:
        """The feature position whose image pixel is nearest to ``pixel`` ``(y, x)``."""
        height, width = self.shape
        row = int(np.clip(np.floor((pixel[0] + 0.5) / self.scale[0]), 0, height - 1))
        col = int(np.clip(np.floor((pixel[1] + 0.5) / self.scale[1]), 0, width - 1))
        return row, col

    def taps_at(
        self, pixel: tuple[int, int], batch: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """At the feature position of ``pixel``: its taps ``[K, 2]``, its regular grid ``[K, 2]``
        and its mask ``[K]`` (or ``None``)."""
        row, col = self.cell_of(pixel)
        mask = None if self.mask is None else self.mask[batch, :, row, col]
        return self.positions[batch, :, row, col], self.grid[batch, :, row, col], mask


def to_image(
    feature: torch.Tensor, scale: tuple[float, float], offset: bool = False
) -> torch.Tensor:
    """Feature coordinates ``[..., 2]`` ``(y, x)`` in image pixels: ``(u + 0.5)·s - 0.5`` for a
    position, ``s·u`` for an ``offset`` (``align_corners=False``, as :func:`resize_to` maps)."""
    factors = torch.tensor(scale, dtype=feature.dtype, device=feature.device)
    if offset:
        return feature * factors
    return (feature + 0.5) * factors - 0.5


@dataclass(frozen=True)
class _Layer:
    name: str
    module: nn.Module
    predictor: nn.Conv2d
    kernel_size: int
    dilation: int
    modulated: bool


def _sampling_layer(model: nn.Module) -> _Layer:
    if isinstance(model, DSNet):
        cgds = model.cgds
        return _Layer("CGDS on X(3)", cgds, cgds.offset_predictor, cgds.kernel_size, 1, False)
    if isinstance(model, DeepLabV3Plus) and model.refinement_kind == "dcnv2":
        dcn = model.refinement[0]
        assert isinstance(dcn, DeformableConv)
        return _Layer(
            "DCNv2 on ASPP", dcn, dcn.offset_predictor, dcn.kernel_size, dcn.dilation, dcn.modulated
        )
    raise ValueError(
        "model must be a DSNet or a DeepLabV3Plus with refinement='dcnv2' (a layer that "
        f"samples with learned offsets), got {type(model).__name__}"
    )


@torch.no_grad()
def sampling_field(model: nn.Module, images: torch.Tensor) -> SamplingField:
    """The sampling positions of ``model``'s dynamic sampling layer on ``images`` ``[B, 3, H, W]``.

    ``model`` runs its own forward (in evaluation mode, as it is); hooks record the map the layer
    samples and the offsets (and mask logits) its predictor outputs.
    """
    layer = _sampling_layer(model)
    captured: dict[str, torch.Tensor] = {}

    def keep_input(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured["sampled"] = args[0]

    def keep_output(_module: nn.Module, _args: object, output: torch.Tensor) -> None:
        captured["predicted"] = output

    handles = [
        layer.module.register_forward_pre_hook(keep_input),
        layer.predictor.register_forward_hook(keep_output),
    ]
    try:
        model(images)
    finally:
        for handle in handles:
            handle.remove()
    sampled, predicted = captured["sampled"].double(), captured["predicted"].double()
    taps = layer.kernel_size * layer.kernel_size
    offsets = predicted[:, : 2 * taps]
    # DeformableConv.forward turns the last K channels into its mask with a sigmoid.
    mask = torch.sigmoid(predicted[:, 2 * taps :]) if layer.modulated else None
    geometry = {
        "kernel_size": layer.kernel_size,
        "padding": layer.dilation * (layer.kernel_size // 2),
        "dilation": layer.dilation,
    }
    positions = conv_tap_positions(sampled, offsets, **geometry)[:, 0]
    grid = conv_tap_positions(sampled, torch.zeros_like(offsets), **geometry)[:, 0]
    scale = (
        images.shape[-2] / sampled.shape[-2],
        images.shape[-1] / sampled.shape[-1],
    )
    return SamplingField(
        layer=layer.name,
        positions=to_image(positions, scale).cpu(),
        grid=to_image(grid, scale).cpu(),
        mask=None if mask is None else mask.cpu(),
        scale=scale,
    )


def _deepest_pixel(region: np.ndarray) -> tuple[int, int]:
    """The pixel of ``region`` farthest from its outside (first in raster order on ties)."""
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(row), int(col)


def choose_pixels(
    label: np.ndarray, background: int = 0, ignore_index: int = IGNORE_INDEX
) -> dict[str, tuple[int, int]]:
    """Pixels ``(y, x)`` of :data:`PIXEL_KINDS` in ``label`` ``[H, W]``, those it has.

    ``large object``: the centre of the largest object (connected component); ``small object``:
    the centre of the smallest other object (absent with fewer than two objects); ``boundary``:
    the pixel of the largest object on a label boundary (:func:`boundary_distance` 0; the image
    border is none) nearest to its centre; ``background``: the
    labelled background pixel farthest from every object (absent without background). A centre
    is the pixel farthest from the object's outside (inside even a ring), the image border
    counting as outside.
    """
    label = np.asarray(label)
    components = object_components(label, background, ignore_index)
    chosen: dict[str, tuple[int, int]] = {}
    if components.count:
        order = np.argsort(-components.areas, kind="stable")
        largest = components.ids == order[0] + 1
        centre = _deepest_pixel(largest)
        chosen["large object"] = centre
        if components.count > 1:
            chosen["small object"] = _deepest_pixel(components.ids == order[-1] + 1)
        rows, cols = np.nonzero(largest & (boundary_distance(label, ignore_index) == 0))
        if len(rows):
            nearest = int(np.argmin((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2))
            chosen["boundary"] = (int(rows[nearest]), int(cols[nearest]))
    free = label == background
    if free.any():
        if components.count:
            distance = ndimage.distance_transform_edt(components.ids == 0)
            distance[~free] = -1.0
            row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
            chosen["background"] = (int(row), int(col))
        else:
            chosen["background"] = _deepest_pixel(free)
    return {kind: chosen[kind] for kind in PIXEL_KINDS if kind in chosen}


def boundary_distance(label: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """``[H, W]``: each pixel's distance (pixels) to the nearest label boundary pixel (a pixel
    with an 8-neighbour of another class, ignored pixels filled with their nearest class as the
    boundary F-score does); ``inf`` everywhere for a map without a boundary."""
    labels = torch.from_numpy(np.asarray(label)).long()[None]
    filled = fill_ignored_with_nearest_label(labels, ignore_index)
    edges = boundary_map(filled)[0].numpy()
    if not edges.any():
        return np.full(edges.shape, np.inf)
    return ndimage.distance_transform_edt(~edges)


def offset_table(
    field: SamplingField,
    labels: Sequence[np.ndarray],
    bins: Sequence[float],
    background: int = 0,
    ignore_index: int = IGNORE_INDEX,
) -> pd.DataFrame:
    """One line per feature position of every image of ``field`` (``labels`` in batch order).

    Columns: ``image`` (batch index), ``y``, ``x`` (the image pixel of the position, its centre
    rounded half up), ``where``
    (:data:`WHERE`: ``background`` or the size bin of the object the pixel lies in),
    ``boundary_px`` (distance to the nearest label boundary), ``near`` (``boundary_px`` at most
    one stride), ``offset_px`` (mean offset length over the taps) and, for DCNv2, ``mask`` (mean
    modulation over the taps). Positions on ignored pixels are left out.
    """
    if len(labels) != field.positions.shape[0]:
        raise ValueError(
            f"labels: one per image of the field ({field.positions.shape[0]}), got {len(labels)}"
        )
    # The pixel of a position is its centre rounded half up (cell_of maps it back).
    centres = torch.floor(field.centres() + 0.5).long()
    magnitudes = field.magnitudes()
    masks = None if field.mask is None else field.mask.mean(dim=1)
    frames = []
    for index, label in enumerate(labels):
        label = np.asarray(label)
        height, width = label.shape
        ys = centres[..., 0].clamp(0, height - 1).numpy().ravel()
        xs = centres[..., 1].clamp(0, width - 1).numpy().ravel()
        components = object_components(label, background, ignore_index)
        bins_of = ["background"] + [size_bin(s, bins) for s in components.shares()]
        distance = boundary_distance(label, ignore_index)
        frame = pd.DataFrame(
            {
                "image": index,
                "y": ys,
                "x": xs,
                "where": [bins_of[i] for i in components.ids[ys, xs]],
                "boundary_px": distance[ys, xs],
                "offset_px": magnitudes[index].numpy().ravel(),
            }
        )
        frame["near"] = frame["boundary_px"] <= field.stride
        if masks is not None:
            frame["mask"] = masks[index].numpy().ravel()
        frames.append(frame[label[ys, xs] != ignore_index])
    return pd.concat(frames, ignore_index=True)
