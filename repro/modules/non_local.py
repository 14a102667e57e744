"""Non-local block (Wang et al., CVPR 2018, embedded-Gaussian form, Sec. 3.2-3.3).

Used by DSNet's ablation sampler (DSNet Sec. "Ablation Study", 76.6 % mIoU: "we employ
non-local structure as a sub-network to generate sampling points").
"""

from __future__ import annotations

import torch
from torch import nn

from repro.modules.conv_blocks import check_positive_int


class NonLocalBlock(nn.Module):
    """``z = x + BN(W_z softmax(theta(x)^T phi(x)) g(x))``; BN starts at zero (identity)."""

    def __init__(self, channels: int, inter_channels: int | None = None) -> None:
        super().__init__()
        check_positive_int("channels", channels)
        inter = inter_channels if inter_channels is not None else max(channels // 2, 1)
        check_positive_int("inter_channels", inter)
        self.channels = channels
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.g = nn.Conv2d(channels, inter, 1)
        self.out = nn.Sequential(
            nn.Conv2d(inter, channels, 1, bias=False), nn.BatchNorm2d(channels)
        )
        # Zero-initialised BN scale makes the block start as the identity (Wang et al. Sec. 4.1).
        nn.init.zeros_(self.out[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"input must be [B, {self.channels}, H, W], got {tuple(x.shape)}")
        b, _, h, w = x.shape
        query = self.theta(x).flatten(2).transpose(1, 2)  # [B, HW, C']
        key = self.phi(x).flatten(2)  # [B, C', HW]
        value = self.g(x).flatten(2).transpose(1, 2)  # [B, HW, C']
        attention = torch.softmax(query @ key, dim=-1)
        y = (attention @ value).transpose(1, 2).reshape(b, -1, h, w)
        return x + self.out(y)
