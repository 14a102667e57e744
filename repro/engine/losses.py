"""Segmentation losses: cross-entropy with an ignore label, OHEM cross-entropy, the GDC
weighted cross-entropy (GDC Eq. 5-6) and the deep-supervision combination.

All losses take logits ``[B, K, H, W]`` and labels ``[B, H, W]`` (``ignore_index``
pixels excluded) and return a scalar. A batch without a single labelled pixel gives a
zero loss that still carries the graph (so every process of a distributed run takes
part in the gradient all-reduce).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repro.engine.config import LOSSES, TrainConfig
from repro.modules.resize import resize_to

DEFAULT_IGNORE_INDEX = 255


def _check_shapes(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.dim() != 4:
        raise ValueError(f"logits must be [B, K, H, W], got shape {tuple(logits.shape)}")
    if target.dim() != 3 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"target must be [B, H, W] with B={logits.shape[0]}, got shape {tuple(target.shape)}"
        )
    if target.dtype != torch.long:
        raise TypeError(f"target must be a LongTensor, got dtype {target.dtype}")


def _zero_loss(logits: torch.Tensor) -> torch.Tensor:
    return logits.sum() * 0.0


def cross_entropy_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = DEFAULT_IGNORE_INDEX,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean pixel cross-entropy over labelled pixels (weighted mean when weights are given)."""
    _check_shapes(logits, target)
    if not bool((target != ignore_index).any()):
        return _zero_loss(logits)
    return F.cross_entropy(logits, target, weight=class_weights, ignore_index=ignore_index)


def ohem_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    thresh: float = 0.7,
    min_kept: int = 100_000,
    ignore_index: int = DEFAULT_IGNORE_INDEX,
) -> torch.Tensor:
    """Online hard example mining cross-entropy (as in the PSPNet/OCNet code bases and the
    GDC authors' training code, threshold 0.7).

    Keeps the labelled pixels whose predicted probability of the true class is at most
    ``max(thresh, p_k)``, where ``p_k`` is the ``min_kept``-th smallest such probability,
    so at least ``min_kept`` of the hardest pixels always count; averages their CE.
    """
    _check_shapes(logits, target)
    if not 0 < thresh <= 1:
        raise ValueError(f"thresh must be in (0, 1], got {thresh}")
    if min_kept < 0:
        raise ValueError(f"min_kept must be >= 0, got {min_kept}")
    pixel_loss = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    valid = target != ignore_index
    losses = pixel_loss[valid]
    if losses.numel() == 0:
        return _zero_loss(logits)
    # The true-class probability is exp(-CE); no need for a second softmax.
    true_prob = torch.exp(-losses.detach())
    threshold = torch.tensor(thresh, dtype=true_prob.dtype, device=true_prob.device)
    if min_kept > 0:
        kth = min(min_kept, true_prob.numel())
        kth_smallest = torch.kthvalue(true_prob, kth).values
        threshold = torch.maximum(threshold, kth_smallest)
    kept = losses[true_prob <= threshold]
    return kept.mean()


def pixel_share_class_weights(
    target: torch.Tensor, num_classes: int, ignore_index: int = DEFAULT_IGNORE_INDEX
) -> torch.Tensor:
    """Class weights from each class's share of the labelled pixels (GDC Eq. 6).

    The text lost the formula; it says only that the weight comes from the class's share
    of the labelled pixels and that rarer classes weigh more. This project uses
    inverse-frequency weights normalised over the classes present:

        w_c = N / (K_p * n_c)   for n_c > 0,    w_c = 0 otherwise,

    with ``N`` labelled pixels, ``n_c`` of them of class ``c`` and ``K_p`` classes
    present. Then ``sum_i w_{y_i} = N``, and the weighted mean of Eq. 5 equals the
    average, over the present classes, of each class's mean cross-entropy: every class
    present counts equally, however few pixels it has.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    labels = target[target != ignore_index]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"target holds labels outside [0, {num_classes}) other than "
            f"ignore_index={ignore_index}: min {int(labels.min())}, max {int(labels.max())}"
        )
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float64)
    weights = torch.zeros(num_classes, dtype=torch.float64, device=target.device)
    present = counts > 0
    num_present = int(present.sum())
    if num_present:
        weights[present] = counts.sum() / (num_present * counts[present])
    return weights.to(torch.float32)


def weighted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    ignore_index: int = DEFAULT_IGNORE_INDEX,
) -> torch.Tensor:
    """GDC weighted cross-entropy (GDC Eq. 5): ``sum_i w_{y_i} CE_i / sum_i w_{y_i}``.

    ``class_weights=None`` computes them from this batch's labels with
    :func:`pixel_share_class_weights` (GDC trains on one image, so per batch is per image).
    """
    _check_shapes(logits, target)
    num_classes = logits.shape[1]
    if class_weights is None:
        class_weights = pixel_share_class_weights(target, num_classes, ignore_index)
    elif class_weights.shape != (num_classes,):
        raise ValueError(
            f"class_weights must have shape ({num_classes},), got {tuple(class_weights.shape)}"
        )
    class_weights = class_weights.to(device=logits.device, dtype=logits.dtype)
    valid = target != ignore_index
    if not bool(valid.any()) or float(class_weights[target[valid]].sum()) == 0.0:
        return _zero_loss(logits)
    return F.cross_entropy(logits, target, weight=class_weights, ignore_index=ignore_index)


class SegmentationLoss(nn.Module):
    """Main loss on ``outputs["out"]`` plus ``aux_weight`` times the same loss on each
    deep-supervision output ``outputs["aux"]`` (a tensor or a list of tensors; resized to
    the label size). DSNet Table 2 "DS" (deep supervision, Zhao et al. 2017).
    """

    def __init__(
        self,
        kind: str = "ce",
        aux_weight: float = 0.4,
        ignore_index: int = DEFAULT_IGNORE_INDEX,
        ohem_thresh: float = 0.7,
        ohem_min_kept: int = 100_000,
        class_weights: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"kind must be one of {LOSSES}, got {kind!r}")
        self.kind = kind
        self.aux_weight = aux_weight
        self.ignore_index = ignore_index
        self.ohem_thresh = ohem_thresh
        self.ohem_min_kept = ohem_min_kept
        self.class_weights = (
            None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        )

    def single(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The configured loss of one logits map."""
        logits = resize_to(logits, target)
        if self.kind == "ohem":
            return ohem_cross_entropy(
                logits, target, self.ohem_thresh, self.ohem_min_kept, self.ignore_index
            )
        if self.kind == "weighted_ce":
            return weighted_cross_entropy(logits, target, self.class_weights, self.ignore_index)
        return cross_entropy_loss(logits, target, self.ignore_index)

    def forward(
        self, outputs: dict[str, torch.Tensor | list[torch.Tensor]], target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns the total loss and its parts (``main``, ``aux``) as floats for logging."""
        if not isinstance(outputs, dict) or "out" not in outputs:
            raise TypeError(
                "model outputs must be a dict with key 'out' (and optionally 'aux'), got "
                f"{type(outputs).__name__}"
                + (f" with keys {sorted(outputs)}" if isinstance(outputs, dict) else "")
            )
        main = self.single(outputs["out"], target)  # type: ignore[arg-type]
        parts = {"main": float(main.detach())}
        total = main
        aux = outputs.get("aux")
        if aux is not None and self.aux_weight > 0:
            aux_maps = list(aux) if isinstance(aux, list | tuple) else [aux]
            aux_loss = sum(self.single(a, target) for a in aux_maps)
            parts["aux"] = float(aux_loss.detach())  # type: ignore[union-attr]
            total = total + self.aux_weight * aux_loss
        return total, parts


def build_loss(config: TrainConfig) -> SegmentationLoss:
    """The loss a :class:`TrainConfig` asks for."""
    return SegmentationLoss(
        kind=config.loss,
        aux_weight=config.aux_weight,
        ignore_index=config.ignore_index,
        ohem_thresh=config.ohem_thresh,
        ohem_min_kept=config.ohem_min_kept,
        class_weights=config.class_weights,
    )
