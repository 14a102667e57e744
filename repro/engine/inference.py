"""Test-time inference with horizontal flip and multi-scale averaging (DSNet Table 2:
"Flip" and "MS": "average the score map from multi-scale images {0.75, 1.0, 1.25, 1.5,
1.75, 2.0} in evaluation stage").

Given a ``device``, the model and the images are moved there first and the probabilities
stay there (the caller brings back what it accumulates); without one, everything runs where
the images already are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from repro.engine.device import resolve_device
from repro.modules.resize import resize_to

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
    return resize_to(outputs["out"], images)


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Class probabilities ``[B, K, H, W]`` averaged over scales (and flips).

    Each scale resizes the input bilinearly, the softmax scores are resized back to the
    input size and averaged ("average fusion on prediction map", DSNet Section 4).
    ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``; see
    :func:`~repro.engine.device.resolve_device`) moves the model and the images there and
    returns the probabilities on it; ``None`` runs on the images' device.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [B, 3, H, W], got shape {tuple(images.shape)}")
    scales = tuple(float(s) for s in scales)
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of numbers > 0, got {scales}")
    if device is not None:
        target = resolve_device(device)
        model.to(target)
        images = images.to(target)
    height, width = images.shape[-2:]
    total: torch.Tensor | None = None
    count = 0
    for scale in scales:
        if scale == 1.0:
            scaled = images
        else:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            scaled = resize_to(images, size)
        variants = [False, True] if flip else [False]
        for flipped in variants:
            inputs = scaled.flip(-1) if flipped else scaled
            logits = model_logits(model, inputs)
            if flipped:
                logits = logits.flip(-1)
            probs = resize_to(logits, (height, width)).float().softmax(dim=1)
            total = probs if total is None else total + probs
            count += 1
    assert total is not None
    return total / count
