"""Boundary-quality metrics beyond one boundary F-score: the F-score at several pixel
tolerances, and the trimap IoU (IoU restricted to a band around the ground-truth boundaries).

They measure DDSM's claim of "well-preserved boundaries" (abstract of Li and Tong, ICIP
2021) rather than assert it from mIoU: a model that gets boundaries right gains most at a
small tolerance and in a narrow band.

* **Boundary F at tolerances** ``t``: :func:`repro.engine.metrics.boundary_counts` at each
  ``t`` (matched and total boundary pixels summed over a dataset, then ``2PR / (P + R)``).
* **Trimap IoU** of width ``w`` (after Kohli, Ladicky and Torr, IJCV 2009, as used by
  DeepLab for "accuracy near object boundaries"): the *band* is the set of labelled pixels
  within Euclidean distance ``w`` of a ground-truth boundary pixel (boundaries of the
  labels with ignored pixels filled by their nearest labelled class, as in
  :mod:`repro.engine.metrics`); a confusion matrix is accumulated over band pixels only,
  and its mIoU (classes present in the band's ground truth or prediction) is the score.
  ``w = 0`` keeps the boundary pixels themselves (both sides of every edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from repro.engine.metrics import (
    BoundaryCounts,
    ConfusionMatrix,
    _check_pair,
    _dilate,
    boundary_counts,
    boundary_map,
    fill_ignored_with_nearest_label,
)


def _check_widths(name: str, values: Sequence[int]) -> tuple[int, ...]:
    checked = tuple(values)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in checked):
        raise ValueError(f"{name} must be ints >= 0, got {list(values)!r}")
    if len(set(checked)) != len(checked):
        raise ValueError(f"{name} must be unique, got {list(values)!r}")
    return checked


def trimap_band(label: torch.Tensor, width_px: int, ignore_index: int = 255) -> torch.Tensor:
    """Boolean ``[B, H, W]`` band: labelled pixels within ``width_px`` of a label boundary."""
    _check_widths("width_px", [width_px])
    _, label = _check_pair(label, label)
    filled = fill_ignored_with_nearest_label(label, ignore_index)
    return _dilate(boundary_map(filled), width_px) & (label != ignore_index)


def trimap_confusion(
    pred: torch.Tensor,
    label: torch.Tensor,
    num_classes: int,
    width_px: int,
    ignore_index: int = 255,
) -> ConfusionMatrix:
    """The confusion matrix of ``pred`` against ``label`` over the band of ``width_px``."""
    pred, label = _check_pair(pred, label)
    band = trimap_band(label, width_px, ignore_index)
    confusion = ConfusionMatrix(num_classes, ignore_index)
    confusion.update(pred, torch.where(band, label, torch.full_like(label, ignore_index)))
    return confusion


def trimap_iou(
    pred: torch.Tensor,
    label: torch.Tensor,
    num_classes: int,
    width_px: int,
    ignore_index: int = 255,
) -> float:
    """mIoU of ``pred`` against ``label`` within ``width_px`` of the label boundaries."""
    return trimap_confusion(pred, label, num_classes, width_px, ignore_index).miou()


@dataclass
class BoundaryQuality:
    """Accumulates boundary F at several tolerances and trimap IoU at several widths over a
    dataset (micro-averaged: counts and confusion matrices are summed over images)."""

    num_classes: int
    tolerances_px: Sequence[int] = ()
    trimap_widths_px: Sequence[int] = ()
    ignore_index: int = 255
    counts: dict[int, BoundaryCounts] = field(init=False)
    bands: dict[int, ConfusionMatrix] = field(init=False)

    def __post_init__(self) -> None:
        self.tolerances_px = _check_widths("tolerances_px", self.tolerances_px)
        self.trimap_widths_px = _check_widths("trimap_widths_px", self.trimap_widths_px)
        self.counts = {t: BoundaryCounts() for t in self.tolerances_px}
        self.bands = {
            w: ConfusionMatrix(self.num_classes, self.ignore_index) for w in self.trimap_widths_px
        }

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """Adds one batch of predictions ``pred`` against ``label`` (``[B, H, W]``)."""
        for tolerance, counts in self.counts.items():
            counts += boundary_counts(pred, label, tolerance, self.ignore_index)
        for width, confusion in self.bands.items():
            confusion.merge(
                trimap_confusion(pred, label, self.num_classes, width, self.ignore_index)
            )

    def count_tensor(self) -> torch.Tensor:
        """Every count as one int64 vector (to sum across processes); see :meth:`load_counts`."""
        parts = [
            torch.tensor(
                [c.matched_pred, c.total_pred, c.matched_gt, c.total_gt], dtype=torch.int64
            )
            for c in self.counts.values()
        ]
        parts += [m.matrix.flatten() for m in self.bands.values()]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)

    def load_counts(self, counts: torch.Tensor) -> None:
        """The inverse of :meth:`count_tensor` (after summing it across processes)."""
        values = counts.tolist()
        for index, tolerance in enumerate(self.counts):
            self.counts[tolerance] = BoundaryCounts(*values[4 * index : 4 * index + 4])
        start = 4 * len(self.counts)
        k = self.num_classes
        for index, width in enumerate(self.bands):
            chunk = counts[start + index * k * k : start + (index + 1) * k * k]
            self.bands[width].matrix = chunk.reshape(k, k).clone()

    def results(self) -> dict[str, float]:
        """``boundary_f_<t>px`` and ``trimap_iou_<w>px``, fractions in [0, 1]."""
        out = {f"boundary_f_{t}px": c.f_score() for t, c in self.counts.items()}
        out.update({f"trimap_iou_{w}px": m.miou() for w, m in self.bands.items()})
        return out
