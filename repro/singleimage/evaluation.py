"""Evaluation of the per-image procedure over a set of images (GDC Sec. V-A2, Tables I, IV, VII).

Every image gets its own fresh network (:func:`~repro.singleimage.procedure.segment_image`); its
prediction is compared with the image's full label. Pixel accuracy and mIoU are computed from one
confusion matrix accumulated over the whole set (:class:`repro.engine.ConfusionMatrix`), as a
dataset's mIoU is, not as the mean of per-image scores. Where a class index means something else
in every image (the photo composites, whose classes are whatever each image's scribbles name),
only the per-image score is meaningful: ``image_miou`` is the mean over images of each image's
mIoU over the classes it contains.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from repro.data.transforms import denormalize
from repro.engine.metrics import ConfusionMatrix
from repro.singleimage.procedure import SingleImageConfig, segment_image

logger = logging.getLogger(__name__)


@dataclass
class SetEvaluation:
    """Scores of one configuration and seed over a set of images (fractions, not percent)."""

    miou: float
    pixel_accuracy: float
    confusion: ConfusionMatrix
    seconds_per_image: float
    skipped: list[int] = field(default_factory=list)
    per_image_miou: list[float] = field(default_factory=list)

    @property
    def image_miou(self) -> float:
        """Mean over the evaluated images of each image's own mIoU (fraction)."""
        return float(np.mean(self.per_image_miou)) if self.per_image_miou else float("nan")


def image_seed(seed: int, index: int) -> int:
    """The seed of image ``index`` in run ``seed``: distinct per image and per run."""
    return seed * 1_000_003 + index


def evaluate_on_images(
    dataset: Sequence,
    indices: Sequence[int],
    config: SingleImageConfig,
    seed: int,
    num_classes: int,
    *,
    ignore_index: int = 255,
    progress: bool = True,
    description: str = "",
) -> SetEvaluation:
    """Run the per-image procedure on ``dataset[i]`` for ``i`` in ``indices`` and score it.

    ``dataset`` items are ``(image [3, H, W] normalised, label [H, W], scribbles [H, W])``
    (``build_dataset(..., with_scribbles=True)``). An image whose scribbles hold fewer than two
    classes cannot be segmented by the procedure; it is skipped and listed in ``skipped``.
    Returns mIoU and pixel accuracy from the confusion matrix accumulated over the set.
    """
    if len(indices) == 0:
        raise ValueError("indices: expected at least one image index, got none")
    confusion = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    skipped: list[int] = []
    per_image: list[float] = []
    start = time.perf_counter()
    for index in tqdm(indices, desc=description or config.conv, disable=not progress, leave=False):
        item = dataset[index]
        if len(item) != 3:
            raise ValueError("dataset: items must be (image, label, scribbles); use with_scribbles")
        image, label, scribbles = item
        scribble_map = np.asarray(scribbles, dtype=np.int64)
        present = np.unique(scribble_map[scribble_map != ignore_index])
        if present.size < 2:
            logger.warning("image %d: fewer than two scribbled classes; skipped", index)
            skipped.append(int(index))
            continue
        result = segment_image(
            denormalize(image),
            scribble_map.astype(np.uint8),
            config,
            seed=image_seed(seed, int(index)),
            ignore_index=ignore_index,
        )
        prediction = torch.from_numpy(result.prediction.astype(np.int64))
        confusion.update(prediction, label)
        own = ConfusionMatrix(num_classes, ignore_index=ignore_index)
        own.update(prediction, label)
        per_image.append(own.miou())
    evaluated = len(indices) - len(skipped)
    elapsed = time.perf_counter() - start
    return SetEvaluation(
        miou=confusion.miou(),
        pixel_accuracy=confusion.pixel_accuracy(),
        confusion=confusion,
        seconds_per_image=elapsed / max(evaluated, 1),
        skipped=skipped,
        per_image_miou=per_image,
    )
