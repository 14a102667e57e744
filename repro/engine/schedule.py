"""Poly learning-rate schedule (DSNet, Section "Implementation Details").

``lr = initial_lr * (1 - iter / total_iter) ** power`` with ``power = 0.9``, stepped
once per iteration, applied to every parameter group (each keeps its own initial lr,
so the ``head_lr_mult`` ratio holds throughout).
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LRScheduler

DSNET_POLY_POWER = 0.9


def poly_lr_factor(iteration: int, total_iterations: int, power: float = DSNET_POLY_POWER) -> float:
    """The poly factor ``(1 - iteration / total_iterations) ** power``, 0 past the end."""
    if total_iterations < 1:
        raise ValueError(f"total_iterations must be >= 1, got {total_iterations}")
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    if power <= 0:
        raise ValueError(f"power must be > 0, got {power}")
    remaining = max(0.0, 1.0 - iteration / total_iterations)
    return remaining**power


class PolyLRScheduler(LRScheduler):
    """Per-iteration poly schedule for all parameter groups of ``optimizer``.

    Its state (``last_epoch`` = iterations done) goes into checkpoints via
    ``state_dict()``, so a resumed run continues the same curve.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_iterations: int,
        power: float = DSNET_POLY_POWER,
        last_epoch: int = -1,
    ) -> None:
        if total_iterations < 1:
            raise ValueError(f"total_iterations must be >= 1, got {total_iterations}")
        self.total_iterations = total_iterations
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = poly_lr_factor(self.last_epoch, self.total_iterations, self.power)
        return [base_lr * factor for base_lr in self.base_lrs]
