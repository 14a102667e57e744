"""SGD with separate learning rates for the backbone and the rest (DSNet, Section
"Implementation Details": poly schedule with initial rate ``lr`` for the ResNet
backbone, "the learning rate for the remaining parts of our DSNet have been setted as
0.1 x lr"). The ratio is the parameter ``head_lr_mult``: 1.0 by default (one rate for
the whole network), 0.1 where a notebook follows DSNet.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from repro.engine.config import TrainConfig

logger = logging.getLogger(__name__)


def parameter_groups(model: nn.Module, lr: float, head_lr_mult: float) -> list[dict]:
    """Optimizer groups: ``model.backbone``'s parameters at ``lr``, all other trainable
    parameters at ``lr * head_lr_mult``. A model without ``.backbone`` gets one group at
    ``lr``. Frozen parameters (``requires_grad=False``) are left out.
    """
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        logger.info("model has no .backbone: all parameters use lr=%g", lr)
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": params, "lr": lr, "name": "all"}]
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"model.backbone must be an nn.Module, got {type(backbone).__name__}")
    backbone_ids = {id(p) for p in backbone.parameters()}
    backbone_params = [p for p in backbone.parameters() if p.requires_grad]
    head_params = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone_ids]
    groups = []
    if backbone_params:
        groups.append({"params": backbone_params, "lr": lr, "name": "backbone"})
    if head_params:
        groups.append({"params": head_params, "lr": lr * head_lr_mult, "name": "head"})
    return groups


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimizer`` over :func:`parameter_groups` of ``model``: SGD with momentum and
    weight decay (the papers'), or AdamW with decoupled weight decay (the ``cpu`` profiles')."""
    groups = parameter_groups(model, config.lr, config.head_lr_mult)
    if not any(group["params"] for group in groups):
        raise ValueError("model has no trainable parameters (all have requires_grad=False)")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
