"""Test-time inference with horizontal flip and multi-scale averaging (DSNet Table 2:
"Flip" and "MS": "average the score map from multi-scale images {0.75, 1.0, 1.25, 1.5,
1.75, 2.0} in evaluation stage").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# DSNet (AAAI 2020), ablation "Training and Evaluation Strategies" (Table 2, MS) and the
# VOC test-set paragraph: the input scales whose score maps are averaged.
MULTI_SCALE_EVAL_SCALES: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def model_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``model(images)["out"]`` resized to the input size, with a clear error otherwise."""
    outputs = model(images)
    if not isinstance(outputs, dict) or "out" not in outputs:
        raise TypeError(
            f"model(images) must return a dict with key 'out', got {type(outputs).__name__}"
        )
    logits = outputs["out"]
    if tuple(logits.shape[-2:]) != tuple(images.shape[-2:]):
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
) -> torch.Tensor:
    """Class probabilities ``[B, K, H, W]`` averaged over scales (and flips).

    Each scale resizes the input bilinearly, the softmax scores are resized back to the
    input size and averaged ("average fusion on prediction map", DSNet Section 4).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [B, 3, H, W], got shape {tuple(images.shape)}")
    scales = tuple(float(s) for s in scales)
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of numbers > 0, got {scales}")
    height, width = images.shape[-2:]
    total: torch.Tensor | None = None
    count = 0
    for scale in scales:
        if scale == 1.0:
            scaled = images
        else:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            scaled = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        variants = [False, True] if flip else [False]
        for flipped in variants:
            inputs = scaled.flip(-1) if flipped else scaled
            logits = model_logits(model, inputs)
            if flipped:
                logits = logits.flip(-1)
            if logits.shape[-2:] != (height, width):
                logits = F.interpolate(
                    logits, size=(height, width), mode="bilinear", align_corners=False
                )
            probs = logits.float().softmax(dim=1)
            total = probs if total is None else total + probs
            count += 1
    assert total is not None
    return total / count
