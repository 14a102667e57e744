"""Train a segmentation model on a dataset and evaluate it: the unit of every supervised table.

A notebook describes a table as a list of configurations and seeds; this module turns one
(configuration, seed) into a training run with :func:`repro.engine.train` and returns the
numbers the notebook records. Runs are checkpointed under ``run_dir`` so an interrupted
notebook resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from repro import models
from repro.data import build_dataset, build_eval_transform, build_train_transform
from repro.engine import TrainConfig, evaluate, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    """Which dataset, at which size, with which augmentation.

    ``dataset="offline"`` generates the offline dataset from ``offline`` parameters
    (:func:`repro.data.offline.build_offline_dataset`); any other name reads a real dataset
    from its standard layout (and fails clearly when it is absent).
    """

    dataset: str = "offline"
    crop_size: int = 128
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    train_split: str = "train"
    val_split: str = "val"
    root: str | None = None
    offline: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int) -> tuple[Any, Any]:
        extra = dict(self.offline) if self.dataset == "offline" else {}
        train_set = build_dataset(
            self.dataset, self.train_split, self.root,
            build_train_transform(self.crop_size, self.scale_range, self.flip), seed=seed, **extra,
        )
        val_set = build_dataset(self.dataset, self.val_split, self.root, build_eval_transform(), **extra)
        return train_set, val_set


@dataclass
class RunOutcome:
    """What one training run measured."""

    model: str
    seed: int
    metrics: dict[str, Any]
    train_images_per_s: float
    eval_images_per_s: float
    train_seconds: float
    parameters: int
    history: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_and_evaluate(
    model_name: str,
    model_config: dict[str, Any],
    data: DataSpec,
    train_config: TrainConfig,
    run_dir: str | Path | None = None,
    progress: bool = True,
) -> RunOutcome:
    """Build ``model_name``, train it with ``train_config`` on ``data``, evaluate on val.

    The seed of ``train_config`` seeds the weights, the sample order and the augmentation.
    """
    torch.manual_seed(train_config.seed)
    train_set, val_set = data.build(train_config.seed)
    model = models.build(model_name, num_classes=train_set.num_classes, **model_config)
    started = time.perf_counter()
    result = train(model, train_set, None, train_config, run_dir=run_dir, progress=progress)
    train_seconds = time.perf_counter() - started
    metrics = evaluate(
        model, val_set, train_set.num_classes, flip=train_config.eval_flip,
        scales=train_config.eval_scales, progress=progress,
        boundary_tolerance_px=train_config.boundary_tolerance_px,
    )
    history = [asdict(record) for record in result.history]
    images = sum(record["images_per_s"] * record["time_s"] for record in history)
    busy = sum(record["time_s"] for record in history)
    return RunOutcome(
        model=model_name,
        seed=train_config.seed,
        metrics=metrics,
        train_images_per_s=images / busy if busy else float("nan"),
        eval_images_per_s=float(metrics.get("images_per_s", float("nan"))),
        train_seconds=train_seconds,
        parameters=sum(p.numel() for p in model.parameters()),
        history=history,
    )
