"""Atrous spatial pyramid pooling and its separable form.

* ``ASPP``: DeepLabv3 (Chen et al. 2017, Sec. 3.3) / DeepLabv3+ (Chen et al. 2018): a 1x1
  branch, parallel 3x3 convolutions with dilation rates ``rates`` (6, 12, 18 at output
  stride 16), an optional image-pooling branch, concatenation and a 1x1 projection. DSNet
  uses it as the high-level feature X(ASPP) (DSNet Fig. 3).
* ``SeparableASPP`` (S-ASPP, GDC Table V): the GDPP module with its Gaussian dynamic
  branch replaced by a separable dilated convolution (GDC Sec. V-B1: "we also replace the
  GDC in the GDPP module by a separable dilated convolution"). Branches: separable 3x3 with
  dilations 1, 9 (the GDPP base offset) and 18. The text does not say which dilation
  replaces the GDC; 9 (the base of the shared offset, the mean-free part of Eq. 4) is this
  project's choice and a parameter (``rates``).

``PyramidPooling`` is the one implementation of "parallel branches + image pooling +
concat + 1x1 projection" that ASPP, S-ASPP and GDPP (``repro.modules.gdc``) share.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from repro.modules.conv_blocks import ConvBNReLU, SeparableConvBNReLU, check_positive_int


class ImagePooling(nn.Module):
    """Global average pooling + 1x1 Conv-BN-ReLU, broadcast back to the input size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project = ConvBNReLU(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.project(F.adaptive_avg_pool2d(x, 1))
        return pooled.expand(-1, -1, x.shape[-2], x.shape[-1])


class PyramidPooling(nn.Module):
    """Parallel ``branches`` (+ optional image pooling), concatenated and projected by 1x1.

    Every branch maps ``in_channels`` to ``out_channels`` at the input's resolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        branches: Sequence[nn.Module],
        image_pooling: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if len(branches) == 0:
            raise ValueError("branches must hold at least one module, got an empty sequence")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.branches = nn.ModuleList(branches)
        self.image_pooling = ImagePooling(in_channels, out_channels) if image_pooling else None
        count = len(branches) + (1 if image_pooling else 0)
        self.project = nn.Sequential(
            ConvBNReLU(count * out_channels, out_channels, kernel_size=1), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must be [B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        outs = [branch(x) for branch in self.branches]
        if self.image_pooling is not None:
            outs.append(self.image_pooling(x))
        return self.project(torch.cat(outs, dim=1))


def _check_rates(rates: Sequence[int]) -> tuple[int, ...]:
    if len(rates) == 0:
        raise ValueError("rates must hold at least one dilation rate, got an empty sequence")
    for rate in rates:
        check_positive_int("rates[i]", rate)
    return tuple(rates)


class ASPP(PyramidPooling):
    """DeepLabv3 ASPP: 1x1 branch + 3x3 branches with dilations ``rates`` + image pooling.

    Args:
        rates: dilations of the 3x3 branches; (6, 12, 18) at output stride 16,
            (12, 24, 36) at output stride 8 (DeepLabv3 Sec. 3.3).
        image_pooling: include the global-average-pooling branch.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        image_pooling: bool = True,
        dropout: float = 0.1,
    ) -> None:
        rates = _check_rates(rates)
        branches: list[nn.Module] = [ConvBNReLU(in_channels, out_channels, kernel_size=1)]
        branches += [ConvBNReLU(in_channels, out_channels, 3, dilation=r) for r in rates]
        super().__init__(in_channels, out_channels, branches, image_pooling, dropout)
        self.rates = rates


class SeparableASPP(PyramidPooling):
    """S-ASPP (GDC Table V): separable 3x3 branches with dilations ``rates``.

    Defaults follow GDPP's layout with its GDC branch replaced by a separable dilated
    convolution of the base rate 9 (see module docstring for this choice).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (1, 9, 18),
        image_pooling: bool = True,
        dropout: float = 0.1,
    ) -> None:
        rates = _check_rates(rates)
        branches = [SeparableConvBNReLU(in_channels, out_channels, 3, dilation=r) for r in rates]
        super().__init__(in_channels, out_channels, branches, image_pooling, dropout)
        self.rates = rates
