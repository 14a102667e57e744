"""Train a segmentation model on a dataset and evaluate it: the unit of every supervised table.

A notebook describes a table as a list of configurations and seeds; this module turns one
(configuration, seed) into a training run with :func:`repro.engine.train` and returns the
numbers the notebook records. Runs are checkpointed under ``run_dir`` so an interrupted
notebook resumes where it stopped.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from repro import models
from repro.data import build_dataset, build_eval_transform, build_train_transform
from repro.engine import ConfusionMatrix, TrainConfig, evaluate, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    """Which dataset, at which size, with which augmentation.

    ``dataset="offline"`` generates the offline dataset from ``offline`` parameters
    (:func:`repro.data.offline.build_offline_dataset`); any other name reads a real dataset
    from its standard layout (and fails clearly when it is absent). ``train_labels`` picks the
    training labels (GDC Tables II-III): ``"full"``, ``"scribbles"`` or ``"pseudo"`` (then
    ``pseudo_labels`` is a :class:`repro.experiments.pseudo_labels.PseudoLabelSet`).
    """

    dataset: str = "offline"
    crop_size: int = 128
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    train_split: str = "train"
    val_split: str = "val"
    root: str | None = None
    offline: dict[str, Any] = field(default_factory=dict)
    train_labels: str = "full"
    pseudo_labels: Any = None

    def build(self, seed: int) -> tuple[Any, Any]:
        extra = dict(self.offline) if self.dataset == "offline" else {}
        train_set = build_dataset(
            self.dataset,
            self.train_split,
            self.root,
            build_train_transform(self.crop_size, self.scale_range, self.flip),
            seed=seed,
            **extra,
        )
        val_set = build_dataset(
            self.dataset, self.val_split, self.root, build_eval_transform(), **extra
        )
        if self.train_labels != "full":
            # Imported here: it needs repro.singleimage, which plain supervised runs do not.
            from repro.experiments.pseudo_labels import relabel

            train_set = relabel(train_set, self.train_labels, self.pseudo_labels)
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
        model,
        val_set,
        train_set.num_classes,
        flip=train_config.eval_flip,
        scales=train_config.eval_scales,
        progress=progress,
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


@dataclass(frozen=True)
class RunJob:
    """The arguments of one :func:`train_and_evaluate` call, to run in another process."""

    model_name: str
    model_config: dict[str, Any]
    data: DataSpec
    train_config: TrainConfig


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_job(job: RunJob) -> RunOutcome:
    return train_and_evaluate(
        job.model_name, job.model_config, job.data, job.train_config, progress=False
    )


def train_and_evaluate_many(
    jobs: Sequence[RunJob], processes: int = 1, threads_per_process: int = 1
) -> list[RunOutcome]:
    """Run every job, ``processes`` at a time, each process with ``threads_per_process``.

    On a 2-core CPU two single-threaded runs side by side train about 30% more images per
    second in total than one run on two threads (small convolutions scale poorly over threads).
    The outcomes come back in the order of ``jobs`` and do not depend on ``processes``; they do
    depend on the thread count (float sums are reordered), so a table keeps one setting.
    ``processes=1`` runs in this process, with a progress bar per run.
    """
    if processes < 1 or threads_per_process < 1:
        raise ValueError(
            f"processes and threads_per_process must be >= 1, got {processes}, "
            f"{threads_per_process}"
        )
    if processes == 1:
        torch.set_num_threads(threads_per_process)
        return [
            train_and_evaluate(job.model_name, job.model_config, job.data, job.train_config)
            for job in jobs
        ]
    # The offline dataset is generated once here, not by several workers at the same time.
    first_offline = next((job for job in jobs if job.data.dataset == "offline"), None)
    if first_offline is not None:
        first_offline.data.build(first_offline.train_config.seed)
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_worker_init, initargs=(threads_per_process,)
    ) as pool:
        futures = [pool.submit(_run_job, job) for job in jobs]
        with tqdm(total=len(jobs), desc=f"runs ({processes} at a time)", unit="run") as bar:
            for future in as_completed(futures):
                future.result()  # raises the first failure at once
                bar.update(1)
        return [future.result() for future in futures]


# GDC Table V rows -> registry names (the notebook's metric keys use the short names).
PYRAMID_MODULE_MODELS: dict[str, str] = {
    "none": "mobilenetv2",
    "aspp": "mobilenetv2_aspp",
    "saspp": "mobilenetv2_saspp",
    "gdpp": "mobilenetv2_gdpp",
}


def _scaled_rate(rate: float, scale: float) -> int:
    # Round half up (Python's round() would send 4.5 to 4) and keep every dilation >= 1.
    return max(1, int(rate * scale + 0.5))


def pyramid_module_configs(
    rate_scale: float = 1.0, output_stride: int = 16
) -> dict[str, tuple[str, dict[str, Any]]]:
    """GDC Table V's four context modules as ``{row: (registry name, model config)}``.

    The paper's geometry (Sec. V-B2) is set for a 513-pixel crop at output stride 16, a
    33 x 33 feature map: ASPP dilations (6, 12, 18) (DeepLabv3; doubled at stride 8), S-ASPP
    (1, 9, 18), GDPP dilations 1 and 18 around one shared-offset GDC with base 9 and sigma 2.
    At a smaller feature map those reaches fall off the map, so ``rate_scale`` (feature-map side
    over 33) multiplies every dilation (rounded half up, at least 1), the GDC base and sigma;
    ``1.0`` gives the paper's values. The small dilation 1 stays 1.
    """
    if not rate_scale > 0:
        raise ValueError(f"rate_scale must be > 0, got {rate_scale!r}")
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
    aspp_rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
    small, base, sigma, large = 1, 9.0, 2.0, 18
    scaled_large = _scaled_rate(large, rate_scale)
    return {
        "none": (PYRAMID_MODULE_MODELS["none"], {}),
        "aspp": (
            PYRAMID_MODULE_MODELS["aspp"],
            {"rates": tuple(_scaled_rate(r, rate_scale) for r in aspp_rates)},
        ),
        "saspp": (
            PYRAMID_MODULE_MODELS["saspp"],
            {"rates": (small, _scaled_rate(base, rate_scale), scaled_large)},
        ),
        "gdpp": (
            PYRAMID_MODULE_MODELS["gdpp"],
            {
                "gdpp_rates": (small, scaled_large),
                "gdpp_bases": (base * rate_scale,),
                "gdpp_sigma": sigma * rate_scale,
            },
        ),
    }


def constant_prediction_scores(dataset: Any, class_index: int = 0) -> dict[str, float]:
    """mIoU and pixel accuracy of predicting ``class_index`` everywhere on ``dataset``.

    The floor a trained model must clear: a run that has not got past the class prior
    (e.g. predicts background everywhere) scores exactly this.
    """
    if not 0 <= class_index < dataset.num_classes:
        raise ValueError(f"class_index must be in [0, {dataset.num_classes}), got {class_index!r}")
    confusion = ConfusionMatrix(dataset.num_classes, ignore_index=dataset.ignore_index)
    for index in range(len(dataset)):
        label = torch.from_numpy(dataset.load_label(index).astype("int64"))
        confusion.update(torch.full_like(label, class_index), label)
    return {"miou": confusion.miou(), "pixel_acc": confusion.pixel_accuracy()}
