"""The training loop: SGD + poly schedule + (deep-supervised) segmentation loss, an
evaluation per epoch, a checkpoint per epoch, exact resumption, and DistributedDataParallel
with synchronised batch normalisation when run under ``torchrun``.

Exactness: at the start of epoch ``e`` every RNG (Python, NumPy, torch) is seeded from
``(config.seed, e, rank)`` and the sample order comes from an
:class:`~repro.engine.sampling.EpochSeededSampler`, so what an epoch does depends only on
the state saved at the end of the previous epoch. An interrupted run resumed from its
last checkpoint therefore ends with exactly the weights and metrics of an uninterrupted
run on the CPU (tested in ``tests/test_engine_train.py``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from repro.engine.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from repro.engine.config import TrainConfig
from repro.engine.device import resolve_device
from repro.engine.evaluate import final_evaluation, stack_same_size
from repro.engine.losses import build_loss
from repro.engine.optim import build_optimizer
from repro.engine.sampling import EpochSeededSampler
from repro.engine.schedule import PolyLRScheduler
from repro.engine.seeding import (
    capture_rng_states,
    derive_seed,
    restore_rng_states,
    seed_everything,
)
from repro.engine.sync_batchnorm import convert_to_sync_batchnorm

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.json"
FINAL_METRICS_FILE = "final_metrics.json"
CONFIG_FILE = "train_config.json"


@dataclass
class EpochRecord:
    """What one epoch did. ``lr`` is the backbone's (first group's) rate at its start."""

    epoch: int
    loss: float
    loss_main: float
    loss_aux: float | None
    lr: float
    lrs: dict[str, float]
    time_s: float
    images_per_s: float
    val: dict[str, Any] | None = None


@dataclass
class TrainResult:
    """History per epoch, the final evaluation and where the run lives."""

    history: list[EpochRecord]
    final_metrics: dict[str, Any] | None
    config: TrainConfig
    run_dir: Path | None = None
    resumed_from_epoch: int = 0
    world_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "history": [dataclasses.asdict(r) for r in self.history],
            "final_metrics": self.final_metrics,
            "config": self.config.to_dict(),
            "run_dir": None if self.run_dir is None else str(self.run_dir),
            "resumed_from_epoch": self.resumed_from_epoch,
            "world_size": self.world_size,
            **self.extra,
        }


def _distributed_context() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _resolve_device(requested: str, world_size: int) -> torch.device:
    """:func:`~repro.engine.device.resolve_device`, then an unindexed GPU becomes an indexed
    one, made current: under DDP this process's ``LOCAL_RANK`` GPU (torchrun's convention),
    otherwise the current GPU (``torch.cuda.set_device`` refuses ``cuda`` without an index,
    found on the first run on a GPU)."""
    device = resolve_device(requested)
    if device.type == "cuda":
        if device.index is None:
            index = int(os.environ.get("LOCAL_RANK", "0")) if world_size > 1 else None
            device = torch.device("cuda", torch.cuda.current_device() if index is None else index)
        torch.cuda.set_device(device)
    return device


def _num_classes_of(train_set: Dataset, val_set: Dataset | None, given: int | None) -> int:
    if given is not None:
        return given
    for dataset in (val_set, train_set):
        value = getattr(dataset, "num_classes", None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(
        "num_classes was not given and neither dataset has an int attribute 'num_classes'"
    )


def _write_json(path: Path, payload: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, allow_nan=False, default=str))
    os.replace(temporary, path)


def _mean_over_processes(values: list[float], world_size: int) -> list[float]:
    if world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return [float(v) / world_size for v in tensor.cpu()]


def _finite_or_none(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """NaN/inf become ``None`` so the history is strict JSON."""
    if metrics is None:
        return None

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {key: clean(value) for key, value in metrics.items()}


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    config: TrainConfig,
    run_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    num_classes: int | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Trains ``model`` on ``train_set`` as ``config`` says; evaluates on ``val_set``.

    Args:
        model: ``forward(images) -> {"out": [B,K,H,W], "aux": optional}``; a ``.backbone``
            submodule gets ``config.lr``, everything else ``config.lr * head_lr_mult``.
        train_set, val_set: items ``(image [3,H,W], label [H,W])``; ``val_set`` may be None.
        config: the run's hyper-parameters.
        run_dir: where checkpoints (``checkpoints/last.pt``, every epoch), ``history.json``
            and ``final_metrics.json`` go; ``None`` keeps nothing on disk.
        resume: continue from ``run_dir``'s checkpoint when there is one (its
            configuration must match, except ``num_workers``/``device``); ``False``
            starts over and overwrites it.
        progress: show a tqdm bar (loss, images/s, ETA of the whole run).
        num_classes: defaults to the datasets' ``num_classes`` attribute.
        on_epoch_end: called with each epoch's record after its checkpoint is written.

    Under ``torch.distributed`` (e.g. ``torchrun``), batch norms become synchronised
    (:func:`~repro.engine.sync_batchnorm.convert_to_sync_batchnorm`), the model is wrapped
    in DistributedDataParallel, ``config.batch_size`` is the global batch, and rank 0 writes
    the files.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    rank, world_size = _distributed_context()
    classes = _num_classes_of(train_set, val_set, num_classes)
    if config.batch_size % world_size:
        raise ValueError(
            f"TrainConfig.batch_size={config.batch_size} must be divisible by the number of "
            f"processes ({world_size})"
        )
    per_process_batch = config.batch_size // world_size
    sampler = EpochSeededSampler(len(train_set), config.seed, True, rank, world_size)  # type: ignore[arg-type]
    batches_per_epoch = len(sampler) // per_process_batch
    if batches_per_epoch == 0:
        raise ValueError(
            f"train_set has {len(train_set)} items, fewer than one batch of "  # type: ignore[arg-type]
            f"batch_size={config.batch_size}; expected at least batch_size items"
        )
    total_iterations = config.epochs * batches_per_epoch
    device = _resolve_device(config.device, world_size)

    model.to(device)
    if world_size > 1:
        model = convert_to_sync_batchnorm(model, device)
    loss_fn = build_loss(config)
    optimizer = build_optimizer(model, config)
    scheduler = PolyLRScheduler(optimizer, total_iterations, config.poly_power)
    history: list[EpochRecord] = []
    start_epoch = 0
    ckpt = checkpoint_path(run_dir) if run_dir is not None else None
    if ckpt is not None and ckpt.is_file():
        if resume:
            state = load_checkpoint(ckpt)
            saved = TrainConfig.from_dict(state["config"])
            differences = config.differences_for_resume(saved)
            if differences:
                raise ValueError(
                    f"cannot resume from {ckpt}: its configuration differs in {differences}; "
                    "use resume=False to start over or another run_dir"
                )
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            restore_rng_states(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0])
            history = [EpochRecord(**r) for r in state["history"]]
            start_epoch = int(state["epoch"])
            logger.info("resuming from %s after epoch %d of %d", ckpt, start_epoch, config.epochs)
        else:
            logger.warning("resume=False: the checkpoint in %s will be overwritten", ckpt)
    if rank == 0 and run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        _write_json(Path(run_dir) / CONFIG_FILE, config.to_dict())

    train_model: nn.Module = model
    if world_size > 1:
        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    # The check every eval_every epochs: the final evaluation at one scale, without flip and
    # without the extra boundary tolerances and trimap bands (cheap enough to run often).
    epoch_check = dataclasses.replace(
        config,
        eval_flip=False,
        eval_scales=(1.0,),
        eval_boundary_tolerances_px=(),
        eval_trimap_widths_px=(),
    )
    bar = tqdm(
        total=total_iterations,
        initial=start_epoch * batches_per_epoch,
        desc="train",
        unit="it",
        disable=not progress or rank != 0,
        dynamic_ncols=True,
    )
    try:
        for epoch in range(start_epoch, config.epochs):
            record = _train_one_epoch(
                train_model,
                train_set,
                sampler,
                per_process_batch,
                epoch,
                config,
                loss_fn,
                optimizer,
                scheduler,
                device,
                bar,
                rank,
                world_size,
            )
            if val_set is not None and config.eval_every and (epoch + 1) % config.eval_every == 0:
                record.val = _finite_or_none(
                    final_evaluation(model, val_set, classes, epoch_check, device, False)
                )
            history.append(record)
            logger.info(
                "epoch %d/%d: loss %.4f, lr %.3g, %.1f images/s, %.1f s%s",
                epoch + 1,
                config.epochs,
                record.loss,
                record.lr,
                record.images_per_s,
                record.time_s,
                f", val mIoU {record.val['miou']:.4f}" if record.val else "",
            )
            if ckpt is not None:
                _save_epoch(
                    ckpt, model, optimizer, scheduler, config, history, epoch + 1, rank, world_size
                )
            if on_epoch_end is not None:
                on_epoch_end(record)
    finally:
        bar.close()

    final_metrics = None
    if val_set is not None:
        final_metrics = _finite_or_none(
            final_evaluation(model, val_set, classes, config, device, progress)
        )
    result = TrainResult(
        history=history,
        final_metrics=final_metrics,
        config=config,
        run_dir=None if run_dir is None else Path(run_dir),
        resumed_from_epoch=start_epoch,
        world_size=world_size,
    )
    if rank == 0 and run_dir is not None:
        _write_json(Path(run_dir) / FINAL_METRICS_FILE, final_metrics)
    return result


def _train_one_epoch(
    model: nn.Module,
    train_set: Dataset,
    sampler: EpochSeededSampler,
    per_process_batch: int,
    epoch: int,
    config: TrainConfig,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: PolyLRScheduler,
    device: torch.device,
    bar: tqdm,
    rank: int,
    world_size: int,
) -> EpochRecord:
    epoch_seed = derive_seed(config.seed, epoch, rank)
    seed_everything(epoch_seed)
    sampler.set_epoch(epoch)
    loader = DataLoader(
        train_set,
        batch_size=per_process_batch,
        sampler=sampler,
        drop_last=True,
        num_workers=config.num_workers,
        collate_fn=stack_same_size,
        # Worker seeds come from this generator: seeded per epoch, they are reproducible.
        generator=torch.Generator().manual_seed(epoch_seed),
    )
    lrs = {group.get("name", str(i)): group["lr"] for i, group in enumerate(optimizer.param_groups)}
    first_lr = optimizer.param_groups[0]["lr"]
    model.train()
    loss_sum, main_sum, aux_sum, has_aux, steps = 0.0, 0.0, 0.0, False, 0
    started = time.perf_counter()
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        outputs = model(images)
        loss, parts = loss_fn(outputs, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {float(loss)} at epoch {epoch + 1}, step {steps + 1}; "
                f"lower TrainConfig.lr (now {config.lr}) or check the labels"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        steps += 1
        loss_sum += float(loss.detach())
        main_sum += parts["main"]
        if "aux" in parts:
            has_aux, aux_sum = True, aux_sum + parts["aux"]
        elapsed = time.perf_counter() - started
        bar.update(1)
        bar.set_postfix(
            epoch=f"{epoch + 1}/{config.epochs}",
            loss=f"{loss_sum / steps:.4f}",
            img_s=f"{steps * config.batch_size / max(elapsed, 1e-9):.1f}",
        )
    elapsed = time.perf_counter() - started
    mean_loss, mean_main, mean_aux = _mean_over_processes(
        [loss_sum / steps, main_sum / steps, aux_sum / steps], world_size
    )
    return EpochRecord(
        epoch=epoch + 1,
        loss=mean_loss,
        loss_main=mean_main,
        loss_aux=mean_aux if has_aux else None,
        lr=first_lr,
        lrs=lrs,
        time_s=elapsed,
        images_per_s=steps * config.batch_size / elapsed if elapsed > 0 else float("inf"),
    )


def _save_epoch(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: PolyLRScheduler,
    config: TrainConfig,
    history: list[EpochRecord],
    epochs_done: int,
    rank: int,
    world_size: int,
) -> None:
    """Rank 0 writes the checkpoint and the history; every rank's RNG state is kept."""
    rng = capture_rng_states()
    if world_size > 1:
        gathered: list[Any] = [None] * world_size
        dist.all_gather_object(gathered, rng)
        rng_states = gathered
    else:
        rng_states = [rng]
    if rank == 0:
        save_checkpoint(
            path,
            {
                "epoch": epochs_done,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_states,
                "config": config.to_dict(),
                "history": [dataclasses.asdict(r) for r in history],
            },
        )
        _write_json(path.parent.parent / HISTORY_FILE, [dataclasses.asdict(r) for r in history])
    if world_size > 1:
        dist.barrier()
