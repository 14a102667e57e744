"""Train a segmentation model on a dataset and evaluate it: the unit of every supervised table.

A table (:mod:`repro.experiments.table`) is a list of configurations and seeds; this module
turns one (configuration, seed) into a training run with :func:`repro.engine.train` and
returns the numbers the table records. :func:`train_and_evaluate_many` keeps every run in the
run cache (:mod:`repro.experiments.run_cache`), so an interrupted notebook, re-run with the
same parameters, skips the runs it finished and resumes the unfinished one from its last epoch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from repro import models
from repro.data import build_dataset, build_eval_transform, build_train_transform
from repro.data.offline import OfflineParameters
from repro.engine import ConfusionMatrix, TrainConfig, resolve_device, train
from repro.engine.checkpoint import save_atomically
from repro.engine.evaluate import final_evaluation
from repro.experiments.parallel import map_side_by_side
from repro.experiments.run_cache import (
    read_json,
    read_outcome,
    run_key,
    runs_cache_dir,
    write_json,
    write_outcome,
)
from repro.models.pretrained import is_offline_pretrained, weights_identity

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

    def setting(self) -> dict[str, str]:
        """The dataset, resolution and augmentation in words, for a result's setting."""
        if self.dataset == "offline":
            size = self.offline.get("image_size", self.crop_size)
            words = (
                f"offline ({self.offline.get('num_train', '?')} train / "
                f"{self.offline.get('num_val', '?')} val, "
                f"{self.offline.get('num_classes', OfflineParameters.num_classes) - 1} shapes)"
            )
            resolution = f"{size}x{size}"
        else:
            words = f"{self.dataset} ({self.train_split} / {self.val_split})"
            resolution = f"{self.crop_size}x{self.crop_size} training crops"
        if self.train_labels != "full":
            words += f", trained on {self.train_labels} labels"
        low, high = self.scale_range
        return {
            "dataset": words,
            "resolution": resolution,
            "scale augmentation": "none" if low == high == 1.0 else f"{low:g}-{high:g}",
            "flip augmentation": "horizontal" if self.flip else "none",
        }

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
    """What one training run measured.

    ``resumed_from_epoch`` is the epoch its training continued from (0: from scratch);
    ``reused`` says the outcome was read from the run cache instead of trained again.
    """

    model: str
    seed: int
    metrics: dict[str, Any]
    train_images_per_s: float
    eval_images_per_s: float
    train_seconds: float
    parameters: int
    history: list[dict[str, Any]]
    resumed_from_epoch: int = 0
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOutcome:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


EVALUATION_FIELDS: tuple[str, ...] = (
    "eval_flip",
    "eval_scales",
    "eval_batch_size",
    "boundary_tolerance_px",
    "eval_boundary_tolerances_px",
    "eval_trimap_widths_px",
)
"""The :class:`~repro.engine.TrainConfig` fields of the final evaluation only: a trained model
can be evaluated again with other values without training again (DSNet Table 2's flip and
multi-scale rows)."""

WEIGHTS_FILE = "weights.pt"
"""A finished run's trained model (its state dict), kept in its run folder when asked for."""


def train_and_evaluate(
    model_name: str,
    model_config: dict[str, Any],
    data: DataSpec,
    train_config: TrainConfig,
    run_dir: str | Path | None = None,
    progress: bool = True,
    init_weights: str | Path | None = None,
    weights_out: str | Path | None = None,
) -> RunOutcome:
    """Build ``model_name``, train it with ``train_config`` on ``data``, evaluate on val.

    The seed of ``train_config`` seeds the weights, the sample order and the augmentation.
    Training and evaluation run on ``train_config.device``. With a ``run_dir``, training
    continues from the checkpoint there when there is one. ``init_weights``: a state dict the
    model starts from instead of its initialisation (fine-tuning a trained run, DSNet Table 2
    "FT"); ``weights_out``: where to keep the trained model's state dict.
    """
    torch.manual_seed(train_config.seed)
    train_set, val_set = data.build(train_config.seed)
    model = models.build(model_name, num_classes=train_set.num_classes, **model_config)
    if init_weights is not None:
        model.load_state_dict(torch.load(init_weights, map_location="cpu", weights_only=True))
    started = time.perf_counter()
    result = train(model, train_set, None, train_config, run_dir=run_dir, progress=progress)
    train_seconds = time.perf_counter() - started
    if weights_out is not None:
        save_atomically({k: v.cpu() for k, v in model.state_dict().items()}, weights_out)
    # Where training put the model (train_config.device, resolved): evaluate there too.
    device = next(model.parameters()).device
    metrics = final_evaluation(
        model, val_set, train_set.num_classes, train_config, device, progress
    )
    history = [asdict(record) for record in result.history]
    images = sum(record["images_per_s"] * record["time_s"] for record in history)
    busy = sum(record["time_s"] for record in history)
    if result.resumed_from_epoch:
        # The wall clock saw only the epochs after the interruption; the history has them all.
        train_seconds = busy
    return RunOutcome(
        model=model_name,
        seed=train_config.seed,
        metrics=metrics,
        train_images_per_s=images / busy if busy else float("nan"),
        eval_images_per_s=float(metrics.get("images_per_s", float("nan"))),
        train_seconds=train_seconds,
        parameters=sum(p.numel() for p in model.parameters()),
        history=history,
        resumed_from_epoch=result.resumed_from_epoch,
    )


@dataclass(frozen=True)
class RunJob:
    """The arguments of one :func:`train_and_evaluate` call, to run in another process.

    ``init_from``: a run whose trained model this one starts from (its identity is part of
    this run's); ``keep_weights``: keep the trained model in the run folder (not part of the
    identity: a finished run without them is trained again when they are asked for).
    """

    model_name: str
    model_config: dict[str, Any]
    data: DataSpec
    train_config: TrainConfig
    init_from: RunJob | None = None
    keep_weights: bool = False

    def description(self) -> dict[str, Any]:
        """Everything that decides this run's outcome, JSON-ready (the run cache's identity)."""
        data = {f.name: getattr(self.data, f.name) for f in fields(self.data)}
        # The pseudo labels are named by their folder, which their own cache key names.
        labels = data.pop("pseudo_labels")
        data["pseudo_labels"] = None if labels is None else str(getattr(labels, "folder", labels))
        model_config = dict(self.model_config)
        if is_offline_pretrained(model_config.get("weights")):
            # The name stays the same when the weights are pretrained again: key on their hash.
            model_config["weights"] = weights_identity(model_config["weights"])
        description = {
            "model_name": self.model_name,
            "model_config": model_config,
            "data": data,
            "train_config": self.train_config.to_dict(),
        }
        if self.init_from is not None:
            description["init_from"] = self.init_from.description()
        return description


def run_dir_of(job: RunJob, threads: int) -> Path:
    """The run-cache folder of ``job`` trained with ``threads`` torch threads."""
    return runs_cache_dir() / run_key(job.description(), threads)


def run_cached(job: RunJob, threads: int, progress: bool = True) -> RunOutcome:
    """Run ``job`` in its run-cache folder: reuse a finished outcome, resume an unfinished run.

    A job that starts from another run's model (``init_from``) has that run made first (or
    reused); a job that must keep its weights is trained again if its finished run did not.
    """
    run_dir = run_dir_of(job, threads)
    weights = run_dir / WEIGHTS_FILE
    finished = read_outcome(run_dir)
    if finished is not None and (not job.keep_weights or weights.is_file()):
        outcome = RunOutcome.from_dict(finished)
        outcome.reused = True
        log.info("reusing the finished run in %s", run_dir)
        return outcome
    if finished is not None:
        log.info("the finished run in %s kept no weights; training it again to keep them", run_dir)
    init_weights = None
    if job.init_from is not None:
        parent = dataclasses.replace(job.init_from, keep_weights=True)
        run_cached(parent, threads, progress)
        init_weights = run_dir_of(parent, threads) / WEIGHTS_FILE
    outcome = train_and_evaluate(
        job.model_name,
        job.model_config,
        job.data,
        job.train_config,
        run_dir=run_dir,
        progress=progress,
        init_weights=init_weights,
        weights_out=weights if job.keep_weights else None,
    )
    write_outcome(run_dir, outcome.to_dict())
    return outcome


def _run_job(job: RunJob, threads: int) -> RunOutcome:
    return run_cached(job, threads, progress=False)


def load_trained(job: RunJob, threads: int, progress: bool = True) -> tuple[torch.nn.Module, Any]:
    """``job``'s trained model (trained first if no finished run kept it) and its val set.

    The model is in evaluation mode on the CPU; the validation set is the one the run was
    evaluated on.
    """
    job = dataclasses.replace(job, keep_weights=True)
    run_cached(job, threads, progress)
    train_set, val_set = job.data.build(job.train_config.seed)
    config = dict(job.model_config)
    if "weights" in config:
        config["weights"] = None  # every weight comes from the trained state below
    model = models.build(job.model_name, num_classes=train_set.num_classes, **config)
    state = torch.load(
        run_dir_of(job, threads) / WEIGHTS_FILE, map_location="cpu", weights_only=True
    )
    model.load_state_dict(state)
    return model.eval(), val_set


def evaluate_trained(
    job: RunJob, evaluation: Mapping[str, Any], threads: int, progress: bool = True
) -> RunOutcome:
    """``job``'s outcome with its trained model evaluated under other final-evaluation settings.

    ``evaluation`` sets fields of :data:`EVALUATION_FIELDS` (e.g. ``{"eval_flip": True}``);
    the training part of the outcome (history, throughput) is the run's own. The metrics are
    cached in the run folder per evaluation setting, so a re-run evaluates nothing twice.
    """
    unknown = sorted(set(evaluation) - set(EVALUATION_FIELDS))
    if unknown:
        raise ValueError(f"evaluation: {unknown} are not evaluation fields {EVALUATION_FIELDS}")
    config = dataclasses.replace(job.train_config, **evaluation)
    settings = {name: getattr(config, name) for name in EVALUATION_FIELDS}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    job = dataclasses.replace(job, keep_weights=True)
    trained = run_cached(job, threads, progress)
    path = run_dir_of(job, threads) / f"evaluation-{digest}.json"
    cached = read_json(path)
    if cached is not None:
        metrics = cached["metrics"]
    else:
        model, val_set = load_trained(job, threads, progress)
        device = resolve_device(config.device)
        metrics = final_evaluation(model, val_set, val_set.num_classes, config, device, progress)
        write_json(path, {"evaluation": settings, "metrics": metrics})
    return dataclasses.replace(
        trained,
        metrics=metrics,
        eval_images_per_s=float(metrics.get("images_per_s", float("nan"))),
        reused=cached is not None and trained.reused,
    )


def _evaluate_item(item: tuple[RunJob, Mapping[str, Any]], threads: int) -> RunOutcome:
    return evaluate_trained(item[0], item[1], threads, progress=False)


def evaluate_trained_many(
    items: Sequence[tuple[RunJob, Mapping[str, Any]]],
    processes: int = 1,
    threads_per_process: int = 1,
) -> list[RunOutcome]:
    """:func:`evaluate_trained` for every (job, evaluation), ``processes`` side by side."""
    if processes == 1 or len(items) < 2:
        torch.set_num_threads(threads_per_process)
        return [evaluate_trained(job, ev, threads_per_process) for job, ev in items]
    return map_side_by_side(
        _evaluate_item, items, processes, threads_per_process, threads_per_process,
        unit="evaluation",
    )  # fmt: skip


def train_and_evaluate_many(
    jobs: Sequence[RunJob], processes: int = 1, threads_per_process: int = 1
) -> list[RunOutcome]:
    """Run every job, ``processes`` at a time, each process with ``threads_per_process``.

    On a 2-core CPU two single-threaded runs side by side train about 30% more images per
    second in total than one run on two threads (small convolutions scale poorly over threads).
    The outcomes come back in the order of ``jobs`` and do not depend on ``processes``; they do
    depend on the thread count (float sums are reordered), so a table keeps one setting.
    ``processes=1`` runs in this process, with a progress bar per run. Every run goes through
    the run cache (:func:`run_cached`): finished runs are reused, an interrupted one resumes.
    """
    if processes < 1 or threads_per_process < 1:
        raise ValueError(
            f"processes and threads_per_process must be >= 1, got {processes}, "
            f"{threads_per_process}"
        )
    if processes == 1:
        torch.set_num_threads(threads_per_process)
        return [run_cached(job, threads_per_process) for job in jobs]
    # The offline dataset is generated once here, not by several workers at the same time.
    first_offline = next((job for job in jobs if job.data.dataset == "offline"), None)
    if first_offline is not None:
        first_offline.data.build(first_offline.train_config.seed)
    return map_side_by_side(_run_job, jobs, processes, threads_per_process, threads_per_process)


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
