"""Evaluation of a segmentation model on a dataset: mIoU, pixel accuracy, per-class IoU,
boundary F-score and throughput, with optional flip and multi-scale inference
(DSNet Table 2).

Inside a ``torch.distributed`` run every process evaluates its share of the images and
the counts are summed across processes; all processes must call :func:`evaluate`.

The model and the images run on ``device``; predictions come back to the CPU, where the
confusion matrix (int64 counts) and the boundary F-score (SciPy distance transforms)
accumulate, so the labels never leave the CPU.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from repro.engine.boundary_metrics import BoundaryQuality
from repro.engine.device import resolve_device
from repro.engine.inference import predict_probabilities
from repro.engine.metrics import (
    DEFAULT_BOUNDARY_TOLERANCE_PX,
    BoundaryCounts,
    ConfusionMatrix,
    boundary_counts,
)

if TYPE_CHECKING:
    from repro.engine.config import TrainConfig

logger = logging.getLogger(__name__)


def stack_same_size(
    batch: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Collates ``(image, label)`` items, with a clear error when their sizes differ."""
    sizes = {tuple(image.shape[-2:]) for image, _ in batch}
    if len(sizes) > 1:
        raise ValueError(
            f"images of one batch must share a size, got sizes {sorted(sizes)}; "
            "use batch_size=1 for datasets with images of different sizes"
        )
    images = torch.stack([image for image, _ in batch])
    labels = torch.stack([torch.as_tensor(label, dtype=torch.long) for _, label in batch])
    return images, labels


def _distributed_context() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce(tensor: torch.Tensor, device: str | torch.device, op: str = "sum") -> torch.Tensor:
    """All-reduce across processes; NCCL needs the tensor on the GPU, gloo on the CPU."""
    on = torch.device(device) if dist.get_backend() == "nccl" else torch.device("cpu")
    moved = tensor.to(on)
    dist.all_reduce(moved, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return moved.cpu()


def _nan_to_none(values: list[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    batch_size: int = 1,
    progress: bool = True,
    ignore_index: int = 255,
    boundary_tolerance_px: int = DEFAULT_BOUNDARY_TOLERANCE_PX,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    boundary_tolerances_px: Sequence[int] = (),
    trimap_widths_px: Sequence[int] = (),
) -> dict[str, Any]:
    """Evaluates ``model`` on ``dataset`` (items ``(image [3,H,W], label [H,W])``).

    ``device`` (``"auto"``, ``"cpu"``, ``"cuda[:N]"``; see
    :func:`~repro.engine.device.resolve_device`): the model is moved there (and left there,
    as :func:`~repro.engine.train.train` leaves it on its device) and every batch of images
    follows it.

    Returns a JSON-ready dict: ``miou``, ``pixel_acc``, ``per_class_iou`` (list, ``None``
    for a class absent from labels and predictions), ``boundary_f``,
    ``boundary_precision``, ``boundary_recall``, ``boundary_tolerance_px``,
    ``images_per_s``, ``num_images``, ``flip``, ``scales``; and, for each of
    ``boundary_tolerances_px`` and ``trimap_widths_px``, ``boundary_f_<t>px`` and
    ``trimap_iou_<w>px`` (:mod:`repro.engine.boundary_metrics`).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("dataset is empty; expected at least one (image, label) item")
    target = resolve_device(device)
    rank, world_size = _distributed_context()
    indices = list(range(rank, len(dataset), world_size))  # type: ignore[arg-type]
    loader = DataLoader(
        Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=stack_same_size,
    )
    confusion = ConfusionMatrix(num_classes, ignore_index)
    boundaries = BoundaryCounts()
    quality = BoundaryQuality(num_classes, boundary_tolerances_px, trimap_widths_px, ignore_index)
    was_training = model.training
    model.to(target)
    model.eval()
    started = time.perf_counter()
    try:
        bar = tqdm(
            loader, desc="eval", unit="batch", disable=not progress or rank != 0, leave=False
        )
        for images, labels in bar:
            probs = predict_probabilities(model, images.to(target), flip=flip, scales=scales)
            pred = probs.argmax(dim=1).cpu()
            confusion.update(pred, labels)
            boundaries += boundary_counts(pred, labels, boundary_tolerance_px, ignore_index)
            quality.update(pred, labels)
    finally:
        model.train(was_training)
    elapsed = time.perf_counter() - started
    num_images = len(indices)
    if world_size > 1:
        counts = torch.tensor(
            [
                boundaries.matched_pred,
                boundaries.total_pred,
                boundaries.matched_gt,
                boundaries.total_gt,
                num_images,
            ],
            dtype=torch.int64,
        )
        confusion.matrix = _all_reduce(confusion.matrix, target)
        counts = _all_reduce(counts, target)
        boundaries = BoundaryCounts(*(int(c) for c in counts[:4]))
        num_images = int(counts[4])
        quality.load_counts(_all_reduce(quality.count_tensor(), target))
        elapsed = float(_all_reduce(torch.tensor([elapsed], dtype=torch.float64), target, "max"))
    result = {
        "miou": confusion.miou(),
        "pixel_acc": confusion.pixel_accuracy(),
        "per_class_iou": _nan_to_none(confusion.per_class_iou()),
        "boundary_f": boundaries.f_score(),
        "boundary_precision": boundaries.precision(),
        "boundary_recall": boundaries.recall(),
        "boundary_tolerance_px": boundary_tolerance_px,
        "images_per_s": num_images / elapsed if elapsed > 0 else float("inf"),
        "num_images": num_images,
        "flip": bool(flip),
        "scales": [float(s) for s in scales],
        **quality.results(),
    }
    logger.info(
        "eval: mIoU %.4f, pixel acc %.4f, boundary F %.4f, %.1f images/s",
        result["miou"],
        result["pixel_acc"],
        result["boundary_f"],
        result["images_per_s"],
    )
    return result


def final_evaluation(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    config: TrainConfig,
    device: str | torch.device,
    progress: bool = True,
) -> dict[str, Any]:
    """A run's final evaluation on ``dataset`` as ``config`` says (flip, scales, batch size,
    ignore index, boundary tolerances, trimap widths): the one place that turns a
    :class:`~repro.engine.TrainConfig` into :func:`evaluate`'s arguments, so that a model
    evaluated again later (:func:`repro.experiments.supervised.evaluate_trained`) is scored
    exactly as at the end of its training."""
    return evaluate(
        model,
        dataset,
        num_classes,
        flip=config.eval_flip,
        scales=config.eval_scales,
        batch_size=config.eval_batch_size,
        progress=progress,
        ignore_index=config.ignore_index,
        boundary_tolerance_px=config.boundary_tolerance_px,
        boundary_tolerances_px=config.eval_boundary_tolerances_px,
        trimap_widths_px=config.eval_trimap_widths_px,
        device=device,
    )
