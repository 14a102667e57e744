"""Heads shared by the segmentation models.

* ``FCNHead``: 3x3 Conv-BN-ReLU, dropout, 1x1 classifier (FCN, Long et al. 2015, as in
  torchvision's FCN head); also the deep-supervision auxiliary head (PSPNet, Zhao et al.
  2017; DSNet Table 2 "DS") on X(4).
* ``PixelClassifier``: 3x3 Conv-BN-ReLU + 1x1 classifier, the "pixel-wise classification
  sub-network" of DSNet Fig. 3 and the DeepLabv3 tail (GDC Sec. V-B1: "the tail
  segmentation network is the same as Deeplabv3").
"""

from __future__ import annotations

import torch
from torch import nn

from repro.modules.conv_blocks import ConvBNReLU, check_positive_int


class FCNHead(nn.Sequential):
    """3x3 Conv-BN-ReLU (``in/4`` channels unless given) + dropout + 1x1 classifier."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        check_positive_int("num_classes", num_classes)
        hidden = hidden_channels if hidden_channels is not None else max(in_channels // 4, 1)
        super().__init__(
            ConvBNReLU(in_channels, hidden, 3),
            nn.Dropout(dropout),
            nn.Conv2d(hidden, num_classes, 1),
        )


class PixelClassifier(nn.Sequential):
    """3x3 Conv-BN-ReLU + 1x1 convolution to class logits."""

    def __init__(self, in_channels: int, hidden_channels: int, num_classes: int) -> None:
        check_positive_int("num_classes", num_classes)
        super().__init__(
            ConvBNReLU(in_channels, hidden_channels, 3), nn.Conv2d(hidden_channels, num_classes, 1)
        )


def check_images(images: torch.Tensor) -> None:
    """Raise a ``ValueError`` unless ``images`` is ``[B, 3, H, W]``."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
