"""Scores per ground-truth object and per object size, for DSNet Fig. 4's claim.

DSNet (AAAI 2020), Fig. 4 and Section "Visualization of Segmentation Results": "for large-scale
objects, our DSNet can obtain a intact and unbroken segmentation map; for small object, subtle
boundaries can be recovered". The paper shows this on pictures only; mIoU and a boundary score
over the whole image cannot say which objects a difference comes from. This module scores each
object on its own, in ways stated here and tested by hand in ``tests/test_object_metrics.py``:

* **Objects** are the connected components (8-connectivity) of each non-background class of the
  label map; ignored pixels belong to no object (:func:`object_components`).
* **Size bins** by area share of the image: ``small`` below ``bins[0]``, ``medium`` from
  ``bins[0]`` to below ``bins[1]``, ``large`` from ``bins[1]`` on (:func:`size_bin`).
* **Per-object IoU** (:func:`object_scores`): every pixel belongs to the *territory* of its
  nearest object (Euclidean; the objects' Voronoi cells, objects included). For object ``C`` of
  class ``k``: ``TP = |C ∩ {pred = k}|``, ``FN = |C| - TP``, ``FP`` = pixels of ``C``'s
  territory outside every object, labelled (not ignored), predicted ``k``;
  ``IoU = TP / (TP + FP + FN)``. A class-``k`` blob spilled next to the object counts against
  it, a hole or a break inside it counts as missed; what the network does on other objects
  counts against those. A bin's score is the mean over its objects (each object counts once,
  so a bin is not dominated by its largest members).
* **Boundary F in a region** (:func:`repro.engine.metrics.boundary_counts` with a
  ``region``): the whole-image boundary F-score with only the boundary pixels inside a region
  scored (both the ground truth's and the prediction's); matches are still looked for
  anywhere within the tolerance. The region of a size bin is its objects dilated by the
  tolerance, so a predicted edge that misses a small object's outline by a few pixels is
  scored there (:func:`bin_regions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from repro.data.palette import IGNORE_INDEX

# The same disk as the boundary F-score's tolerance, so a bin's region reaches as far as a match.
from repro.engine.metrics import BoundaryCounts, _dilate, boundary_counts

SIZE_BINS: tuple[str, ...] = ("small", "medium", "large")
"""Object size bins, smallest first (:func:`size_bin`)."""

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class ObjectComponents:
    """The objects of one label map.

    ``ids`` ``[H, W]``: 0 outside every object, ``n`` on the pixels of object ``n`` (from 1);
    ``classes[n - 1]`` and ``areas[n - 1]`` are object ``n``'s class and pixel count.
    """

    ids: np.ndarray
    classes: np.ndarray
    areas: np.ndarray

    @property
    def count(self) -> int:
        return len(self.classes)

    def shares(self) -> np.ndarray:
        """Each object's area as a share of the image."""
        return self.areas / float(self.ids.size)


def object_components(
    label: np.ndarray, background: int = 0, ignore_index: int = IGNORE_INDEX
) -> ObjectComponents:
    """The 8-connected components of every class of ``label`` ``[H, W]`` but ``background``
    and ``ignore_index``, numbered class by class in raster order from 1."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be [H, W], got shape {label.shape}")
    ids = np.zeros(label.shape, dtype=np.int32)
    classes: list[int] = []
    for value in np.unique(label):
        if value in (background, ignore_index):
            continue
        components, count = ndimage.label(label == value, structure=_EIGHT_CONNECTED)
        ids[components > 0] = components[components > 0] + len(classes)
        classes += [int(value)] * count
    areas = np.bincount(ids.ravel(), minlength=len(classes) + 1)[1:]
    return ObjectComponents(ids, np.asarray(classes, dtype=np.int64), areas.astype(np.int64))


def check_bins(bins: Sequence[float]) -> tuple[float, float]:
    """``bins`` as (small/medium, medium/large) area shares, checked: ``0 < b0 < b1 < 1``."""
    values = tuple(float(b) for b in bins)
    if len(values) != 2 or not 0.0 < values[0] < values[1] < 1.0:
        raise ValueError(
            f"size bins must be two increasing area shares in (0, 1), got {list(bins)}"
        )
    return values[0], values[1]


def size_bin(share: float, bins: Sequence[float]) -> str:
    """``small`` below ``bins[0]``, ``medium`` below ``bins[1]``, else ``large``."""
    low, high = check_bins(bins)
    if share < low:
        return "small"
    return "medium" if share < high else "large"


def describe_bins(bins: Sequence[float]) -> str:
    """The bins in words, for a result's setting."""
    low, high = check_bins(bins)
    return (
        f"small < {100 * low:g}% of the image, medium {100 * low:g}-{100 * high:g}%, "
        f"large >= {100 * high:g}%"
    )


def territories(components: ObjectComponents) -> np.ndarray:
    """``[H, W]``: the id of each pixel's nearest object (Euclidean), 0 when there is none."""
    if components.count == 0:
        return np.zeros_like(components.ids)
    outside = components.ids == 0
    _, nearest = ndimage.distance_transform_edt(outside, return_indices=True)
    return components.ids[nearest[0], nearest[1]]


@dataclass(frozen=True)
class ObjectScore:
    """One ground-truth object's counts (see the module docstring)."""

    object_id: int
    class_index: int
    area: int
    share: float
    size: str
    true_positive: int
    false_positive: int
    false_negative: int

    @property
    def iou(self) -> float:
        union = self.true_positive + self.false_positive + self.false_negative
        return self.true_positive / union if union else float("nan")


def object_scores(
    pred: np.ndarray,
    label: np.ndarray,
    bins: Sequence[float],
    background: int = 0,
    ignore_index: int = IGNORE_INDEX,
) -> list[ObjectScore]:
    """Per-object counts of ``pred`` against ``label`` (both ``[H, W]``), objects in id order."""
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"pred and label must have one shape, got {pred.shape} and {label.shape}")
    components = object_components(label, background, ignore_index)
    owner = territories(components)
    # Pixels outside every object that are labelled: where a spilled prediction is a false positive.
    free = (components.ids == 0) & (label != ignore_index)
    scores = []
    for index in range(components.count):
        object_id = index + 1
        class_index = int(components.classes[index])
        inside = components.ids == object_id
        predicted = pred == class_index
        true_positive = int((inside & predicted).sum())
        share = float(components.areas[index]) / label.size
        scores.append(
            ObjectScore(
                object_id=object_id,
                class_index=class_index,
                area=int(components.areas[index]),
                share=share,
                size=size_bin(share, bins),
                true_positive=true_positive,
                false_positive=int((free & (owner == object_id) & predicted).sum()),
                false_negative=int(components.areas[index]) - true_positive,
            )
        )
    return scores


def bin_regions(
    label: np.ndarray,
    bins: Sequence[float],
    tolerance_px: int,
    background: int = 0,
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, torch.Tensor]:
    """Per size bin, its objects dilated by ``tolerance_px`` (Euclidean disk): ``[H, W]`` bool."""
    components = object_components(label, background, ignore_index)
    sizes = [size_bin(share, bins) for share in components.shares()]
    regions = {}
    for name in SIZE_BINS:
        ids = [index + 1 for index, size in enumerate(sizes) if size == name]
        members = torch.from_numpy(np.isin(components.ids, ids))
        regions[name] = _dilate(members[None], tolerance_px)[0]
    return regions


class SizeBinTally:
    """Per-object IoU and in-region boundary counts per size bin, summed over images.

    ``update`` takes one image's prediction and label (``[H, W]``); ``iou(bin)`` is the mean
    IoU of the bin's objects over every image seen, ``boundary_f(bin)`` the F-score of the
    counts summed over images (micro-average, as the whole-image score).
    """

    def __init__(
        self,
        bins: Sequence[float],
        tolerance_px: int,
        background: int = 0,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.bins = check_bins(bins)
        self.tolerance_px = tolerance_px
        self.background = background
        self.ignore_index = ignore_index
        self.objects: list[ObjectScore] = []
        self.boundaries = {name: BoundaryCounts() for name in SIZE_BINS}

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        pred_np, label_np = pred.cpu().numpy(), label.cpu().numpy()
        self.objects += object_scores(
            pred_np, label_np, self.bins, self.background, self.ignore_index
        )
        regions = bin_regions(
            label_np, self.bins, self.tolerance_px, self.background, self.ignore_index
        )
        for name, region in regions.items():
            self.boundaries[name] += boundary_counts(
                pred.cpu(), label.cpu(), self.tolerance_px, self.ignore_index, region=region
            )

    def count(self, size: str) -> int:
        """How many objects of bin ``size`` were seen."""
        return sum(score.size == size for score in self.objects)

    def iou(self, size: str) -> float:
        """Mean IoU of the objects of bin ``size`` (NaN when there is none)."""
        values = [score.iou for score in self.objects if score.size == size]
        return float(np.mean(values)) if values else float("nan")

    def boundary_f(self, size: str) -> float:
        """Boundary F of bin ``size``'s region (NaN when it holds no boundary at all)."""
        counts = self.boundaries[size]
        if counts.total_gt == 0 and counts.total_pred == 0:
            return float("nan")
        return counts.f_score()
