"""Segmentation metrics: confusion-matrix mIoU, pixel accuracy, per-class IoU, and a
boundary F-score with a pixel tolerance (for the papers' fine-grained-boundary claims:
DSNet Fig. 4, DDSM's abstract).

Boundary F-score (after Csurka et al., BMVC 2013, and Perazzi et al., CVPR 2016):

* a boundary pixel of a label map is a pixel with an 8-neighbour of another value;
* ignored ground-truth pixels take the class of their nearest labelled pixel before the
  ground-truth boundaries are extracted, so a VOC-style void band around an object puts
  the boundary in the band's middle, and an ignored image border adds none;
* only pixels within ``tolerance_px`` of a labelled pixel are scored, for both maps
  (decisions deep inside an ignored region do not count); with VOC's 5-pixel void band a
  tolerance of at least 3 pixels reaches the band's middle;
* a boundary pixel matches when a boundary pixel of the other map (scored or not) lies
  within ``tolerance_px`` (Euclidean disk);
* ``P`` = matched / scored predicted boundary pixels, ``R`` = matched / scored
  ground-truth boundary pixels, ``F = 2PR / (P + R)``. Over a dataset, matched and total
  counts are summed first (micro-average), so small images do not dominate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

DEFAULT_BOUNDARY_TOLERANCE_PX = 3


def _check_pair(pred: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != label.shape:
        raise ValueError(
            f"pred and label must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(label.shape)}"
        )
    if pred.dim() == 2:
        pred, label = pred.unsqueeze(0), label.unsqueeze(0)
    if pred.dim() != 3:
        raise ValueError(f"pred must be [H, W] or [B, H, W], got shape {tuple(pred.shape)}")
    return pred.long(), label.long()


class ConfusionMatrix:
    """Accumulates a ``num_classes x num_classes`` confusion matrix (rows: ground truth,
    columns: prediction) over labelled pixels, and derives mIoU, pixel accuracy and
    per-class IoU. Counts are int64, so sums over a dataset are exact.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """Adds predictions ``pred`` (class indices) against ``label``, same shape."""
        pred, label = _check_pair(pred, label)
        valid = label != self.ignore_index
        gt, pr = label[valid].cpu(), pred[valid].cpu()
        k = self.num_classes
        if gt.numel() == 0:
            return
        if int(gt.min()) < 0 or int(gt.max()) >= k:
            raise ValueError(
                f"label holds values outside [0, {k}) other than ignore_index="
                f"{self.ignore_index}: min {int(gt.min())}, max {int(gt.max())}"
            )
        if int(pr.min()) < 0 or int(pr.max()) >= k:
            raise ValueError(
                f"pred holds values outside [0, {k}): min {int(pr.min())}, max {int(pr.max())}"
            )
        self.matrix += torch.bincount(gt * k + pr, minlength=k * k).reshape(k, k)

    def merge(self, other: ConfusionMatrix) -> None:
        """Adds another matrix's counts (e.g. from another process)."""
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge a {other.num_classes}-class matrix into a {self.num_classes}-class one"
            )
        self.matrix += other.matrix

    def per_class_iou(self) -> list[float]:
        """IoU of each class; NaN for a class absent from both ground truth and prediction."""
        m = self.matrix.to(torch.float64)
        intersection = m.diag()
        union = m.sum(0) + m.sum(1) - intersection
        iou = torch.where(union > 0, intersection / union.clamp(min=1), torch.nan)
        return [float(v) for v in iou]

    def miou(self) -> float:
        """Mean IoU over the classes that appear in ground truth or prediction."""
        values = [v for v in self.per_class_iou() if not math.isnan(v)]
        return float(sum(values) / len(values)) if values else float("nan")

    def pixel_accuracy(self) -> float:
        """Fraction of labelled pixels predicted correctly."""
        total = int(self.matrix.sum())
        return float(self.matrix.diag().sum()) / total if total else float("nan")


def boundary_map(label_map: torch.Tensor) -> torch.Tensor:
    """Boolean map of pixels with an 8-neighbour of a different value; ``[B, H, W]`` in/out."""
    padded = F.pad(label_map.unsqueeze(1).float(), (1, 1, 1, 1), mode="replicate").squeeze(1)
    h, w = label_map.shape[-2:]
    center = padded[:, 1 : h + 1, 1 : w + 1]
    edge = torch.zeros_like(label_map, dtype=torch.bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            edge |= padded[:, dy : dy + h, dx : dx + w] != center
    return edge


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Dilates a boolean ``[B, H, W]`` mask by a Euclidean disk of ``radius`` pixels."""
    if radius == 0:
        return mask
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2 + 1e-6).float()
    hits = F.conv2d(mask.unsqueeze(1).float(), disk[None, None].to(mask.device), padding=radius)
    return hits.squeeze(1) > 0.5


def fill_ignored_with_nearest_label(label: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """``[B, H, W]`` labels with each ignored pixel set to its nearest labelled pixel's
    class (Euclidean); an image without labelled pixels is returned unchanged."""
    filled = label.clone()
    for index in range(label.shape[0]):
        ignored = (label[index] == ignore_index).cpu().numpy()
        if not ignored.any() or ignored.all():
            continue
        _, nearest = ndimage.distance_transform_edt(ignored, return_indices=True)
        source = label[index].cpu().numpy()[nearest[0], nearest[1]]
        filled[index] = torch.from_numpy(np.ascontiguousarray(source)).to(label.device)
    return filled


@dataclass
class BoundaryCounts:
    """Matched and total boundary pixels; sums over images give the dataset's score."""

    matched_pred: int = 0
    total_pred: int = 0
    matched_gt: int = 0
    total_gt: int = 0

    def __iadd__(self, other: BoundaryCounts) -> BoundaryCounts:
        self.matched_pred += other.matched_pred
        self.total_pred += other.total_pred
        self.matched_gt += other.matched_gt
        self.total_gt += other.total_gt
        return self

    def precision(self) -> float:
        return self.matched_pred / self.total_pred if self.total_pred else 1.0

    def recall(self) -> float:
        return self.matched_gt / self.total_gt if self.total_gt else 1.0

    def f_score(self) -> float:
        """``2PR / (P + R)``; 1 when neither map has a boundary (nothing to miss)."""
        p, r = self.precision(), self.recall()
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def boundary_counts(
    pred: torch.Tensor,
    label: torch.Tensor,
    tolerance_px: int,
    ignore_index: int = 255,
    region: torch.Tensor | None = None,
) -> BoundaryCounts:
    """Boundary matching counts of ``pred`` against ``label`` (``[H, W]`` or ``[B, H, W]``).

    ``region`` (a boolean map of the same shape): only the boundary pixels inside it are
    counted, matches are still found anywhere (the boundary F around objects of one size,
    :mod:`repro.engine.object_metrics`); ``None`` counts the whole image.
    """
    if not isinstance(tolerance_px, int) or tolerance_px < 0:
        raise ValueError(f"tolerance_px must be an int >= 0, got {tolerance_px!r}")
    if region is not None and region.shape != label.shape:
        raise ValueError(
            f"region must have the shape of label {tuple(label.shape)}, got {tuple(region.shape)}"
        )
    pred, label = _check_pair(pred, label)
    labelled = label != ignore_index
    filled = fill_ignored_with_nearest_label(label, ignore_index)
    scored = _dilate(labelled, tolerance_px)
    gt_edges = boundary_map(filled) & scored
    pred_edges = boundary_map(pred)
    scored_pred_edges = pred_edges & scored
    near_gt = _dilate(gt_edges, tolerance_px)
    near_pred = _dilate(pred_edges, tolerance_px)
    counted_gt, counted_pred = gt_edges, scored_pred_edges
    if region is not None:
        inside = region.reshape(label.shape).bool()
        counted_gt, counted_pred = gt_edges & inside, scored_pred_edges & inside
    return BoundaryCounts(
        matched_pred=int((counted_pred & near_gt).sum()),
        total_pred=int(counted_pred.sum()),
        matched_gt=int((counted_gt & near_pred).sum()),
        total_gt=int(counted_gt.sum()),
    )


def boundary_f_score(
    pred: torch.Tensor,
    label: torch.Tensor,
    tolerance_px: int = DEFAULT_BOUNDARY_TOLERANCE_PX,
    ignore_index: int = 255,
) -> float:
    """Boundary F-score of ``pred`` against ``label`` with a pixel tolerance (see module)."""
    return boundary_counts(pred, label, tolerance_px, ignore_index).f_score()
