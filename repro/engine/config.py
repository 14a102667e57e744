"""Training configuration of the engine.

The optimiser defaults follow the DSNet implementation details (Fu et al., AAAI 2020,
Section "Implementation Details"): SGD with momentum 0.9 and weight decay 1e-4, poly
learning rate with power 0.9. The rest of the network (everything but the backbone) trains
at the backbone's learning rate by default (``head_lr_mult = 1.0``, the plain recipe);
DSNet's text uses ``0.1 x`` ("the learning rate for the remaining parts of our DSNet have
been setted as 0.1 x lr"), and the notebooks that follow DSNet set that explicitly. The
OHEM threshold 0.7 is the one of the GDC authors' public training code (see
``results/reported/PAPERS.md``). The device defaults to ``"auto"``: the GPU when there is one
(:func:`~repro.engine.device.resolve_device`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from repro.engine.device import is_device_name

LOSSES: tuple[str, ...] = ("ce", "ohem", "weighted_ce")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")

# Fields that may change between an interrupted run and its resumption without changing
# the result: where the computation runs and how data is loaded.
RESUME_FREE_FIELDS: frozenset[str] = frozenset({"num_workers", "device"})


def _require(condition: bool, name: str, value: Any, expected: str) -> None:
    if not condition:
        raise ValueError(f"TrainConfig.{name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's result (besides model and data).

    Attributes:
        epochs: number of passes over the training set.
        batch_size: global batch size (split evenly over processes when distributed).
        lr: initial learning rate of the backbone (DSNet: 0.01 on VOC and ADE20K).
        optimizer: ``"sgd"`` (the papers') or ``"adamw"``. AdamW is not in any of the papers;
            the ``cpu`` profiles train from random initialisation and use it; the
            ``recipe_probes`` notebook compares it with SGD at equal budget.
        momentum: SGD momentum (DSNet: 0.9); unused by AdamW (its betas are torch's defaults).
        weight_decay: SGD weight decay (DSNet: 1e-4); AdamW's decoupled weight decay.
        poly_power: exponent of the poly schedule ``(1 - iter/total)^power`` (DSNet: 0.9).
        head_lr_mult: learning rate of every parameter outside ``model.backbone`` relative
            to ``lr``; default 1.0 (one rate for the whole network). DSNet's text uses 0.1
            (Sec. "Implementation Details"; the usual practice elsewhere is 10); notebooks
            that follow DSNet set it explicitly.
        aux_weight: weight of the deep-supervision loss on ``"aux"`` logits (PSPNet's 0.4,
            the deep supervision DSNet Table 2 cites; DSNet gives no value).
        loss: ``"ce"`` (cross-entropy), ``"ohem"`` (online hard example mining CE) or
            ``"weighted_ce"`` (GDC Eq. 5-6, class weights from pixel shares).
        ohem_thresh: OHEM keeps pixels whose target probability is below this.
        ohem_min_kept: OHEM keeps at least this many pixels per batch (hardest first).
        class_weights: fixed class weights for ``"weighted_ce"``; ``None`` computes them
            from the labelled pixels of each batch (GDC's per-image weights).
        ignore_index: label value excluded from loss and metrics.
        seed: seed of initial RNG states, sample order and augmentations.
        num_workers: DataLoader worker processes.
        device: ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``; resolved by :func:`~repro.engine.device.resolve_device` when
            training starts (asking for CUDA without a GPU is an error then).
        eval_every: evaluate on the validation set every this many epochs (0: never
            during training; the final evaluation always runs when a val set is given).
        eval_flip: final evaluation averages with the horizontally flipped input.
        eval_scales: final evaluation scales (DSNet MS: ``MULTI_SCALE_EVAL_SCALES``).
        eval_batch_size: batch size of evaluation.
        boundary_tolerance_px: pixel tolerance of the boundary F-score.
        eval_boundary_tolerances_px: further tolerances at which the final evaluation scores
            the boundary F-score (``boundary_f_<t>px``; none by default).
        eval_trimap_widths_px: band widths at which the final evaluation scores the trimap
            IoU (``trimap_iou_<w>px``; none by default); see
            :mod:`repro.engine.boundary_metrics`.
    """

    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    head_lr_mult: float = 1.0
    aux_weight: float = 0.4
    loss: str = "ce"
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 100_000
    class_weights: tuple[float, ...] | None = None
    ignore_index: int = 255
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    eval_every: int = 1
    eval_flip: bool = False
    eval_scales: tuple[float, ...] = field(default=(1.0,))
    eval_batch_size: int = 1
    boundary_tolerance_px: int = 3
    eval_boundary_tolerances_px: tuple[int, ...] = ()
    eval_trimap_widths_px: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _require(
            isinstance(self.epochs, int) and self.epochs >= 1, "epochs", self.epochs, "an int >= 1"
        )
        _require(
            isinstance(self.batch_size, int) and self.batch_size >= 1,
            "batch_size",
            self.batch_size,
            "an int >= 1",
        )
        for name in ("lr", "head_lr_mult", "poly_power"):
            value = getattr(self, name)
            _require(
                isinstance(value, int | float) and math.isfinite(value) and value > 0,
                name,
                value,
                "a finite number > 0",
            )
        for name in ("momentum", "weight_decay", "aux_weight"):
            value = getattr(self, name)
            _require(
                isinstance(value, int | float) and math.isfinite(value) and value >= 0,
                name,
                value,
                "a finite number >= 0",
            )
        _require(self.loss in LOSSES, "loss", self.loss, f"one of {LOSSES}")
        _require(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"one of {OPTIMIZERS}")
        _require(0 < self.ohem_thresh <= 1, "ohem_thresh", self.ohem_thresh, "in (0, 1]")
        _require(
            isinstance(self.ohem_min_kept, int) and self.ohem_min_kept >= 0,
            "ohem_min_kept",
            self.ohem_min_kept,
            "an int >= 0",
        )
        if self.class_weights is not None:
            weights = tuple(float(w) for w in self.class_weights)
            _require(
                len(weights) > 0 and all(math.isfinite(w) and w >= 0 for w in weights),
                "class_weights",
                self.class_weights,
                "None or a non-empty sequence of finite numbers >= 0",
            )
            object.__setattr__(self, "class_weights", weights)
        _require(isinstance(self.seed, int), "seed", self.seed, "an int")
        _require(
            isinstance(self.num_workers, int) and self.num_workers >= 0,
            "num_workers",
            self.num_workers,
            "an int >= 0",
        )
        _require(
            is_device_name(self.device),
            "device",
            self.device,
            "a device name ('auto', 'cpu', 'cuda', 'cuda:N')",
        )
        _require(
            isinstance(self.eval_every, int) and self.eval_every >= 0,
            "eval_every",
            self.eval_every,
            "an int >= 0",
        )
        scales = tuple(float(s) for s in self.eval_scales)
        _require(
            len(scales) > 0 and all(math.isfinite(s) and s > 0 for s in scales),
            "eval_scales",
            self.eval_scales,
            "a non-empty sequence of numbers > 0",
        )
        object.__setattr__(self, "eval_scales", scales)
        _require(
            isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
            "eval_batch_size",
            self.eval_batch_size,
            "an int >= 1",
        )
        _require(
            isinstance(self.boundary_tolerance_px, int) and self.boundary_tolerance_px >= 0,
            "boundary_tolerance_px",
            self.boundary_tolerance_px,
            "an int >= 0",
        )
        for name in ("eval_boundary_tolerances_px", "eval_trimap_widths_px"):
            values = tuple(getattr(self, name))
            _require(
                all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
                and len(set(values)) == len(values),
                name,
                getattr(self, name),
                "a sequence of unique ints >= 0",
            )
            object.__setattr__(self, name, values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields (tuples become lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"TrainConfig got unknown fields {unknown}; expected a subset of {sorted(known)}"
            )
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    def differences_for_resume(self, other: TrainConfig) -> list[str]:
        """Names of fields that differ from ``other`` and would change a resumed run."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in RESUME_FREE_FIELDS and mine[k] != theirs[k])
