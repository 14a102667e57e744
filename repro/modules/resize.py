"""The one bilinear resize of feature maps and logits used across the package.

Every model, loss and inference path that brings a map to another map's (or the input's)
spatial size goes through :func:`resize_to`, so they all interpolate the same way:
bilinear with ``align_corners=False`` (torchvision's and DeepLabv3+'s convention). Label
maps are resized with ``nearest`` and images with antialiasing elsewhere (``repro.data``,
``repro.singleimage``); those are not feature resizes and do not come here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _target_size(size_or_reference: torch.Tensor | Sequence[int]) -> tuple[int, int]:
    if isinstance(size_or_reference, torch.Tensor):
        if size_or_reference.ndim < 2:
            raise ValueError(
                "reference must have at least 2 dimensions (..., H, W), got shape "
                f"{tuple(size_or_reference.shape)}"
            )
        height, width = size_or_reference.shape[-2:]
        return int(height), int(width)
    size = tuple(int(s) for s in size_or_reference)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) of positive ints, got {size_or_reference}")
    return size[0], size[1]


def resize_to(x: torch.Tensor, size_or_reference: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Bilinearly resize ``x`` ``[B, C, h, w]`` to a ``(height, width)`` or to a reference
    tensor's last two dimensions (``align_corners=False``).

    Returns ``x`` itself when it already has that size: the interpolation would be the
    identity, and skipping it saves a copy.
    """
    size = _target_size(size_or_reference)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
