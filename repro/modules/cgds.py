"""Context Guided Dynamic Sampling (DSNet, Fu et al., AAAI 2020, Fig. 2-3, Eq. 2-3).

``ContextGuidedSampling``: the high-level context feature (X(ASPP) in DSNet), upsampled
to the low-level map's size when needed, predicts ``2*k*k`` sampling offsets per position
(the sampling operation ``samp`` of Eq. 3); a dynamic sampling convolution (Eq. 2) reads
the low-level feature at those points, bilinearly. The offset predictor starts at zero,
so the module starts as a plain k x k convolution of the low-level feature.

Sampler (``sampler``): ``"conv"`` (the paper's choice: one convolution) or
``"non_local"`` (the ablation, 76.6 % mIoU: a non-local sub-network, Wang et al. 2018,
before the offset convolution). Choices the text leaves open, as parameters:
``offset_kernel_size`` of the offset convolution (default 3), the non-local block runs
on the high-level map at its own resolution and its output is upsampled (cheaper than
running it at the low-level resolution), and X(S) is followed by BN + ReLU.

``FeatureModification`` (DSNet Fig. 3, Sec. "Dynamic Sampling Network"): "a
convolutional layer" that adapts X(i) into X(M); kernel size is a parameter (default
1x1 + BN + ReLU, the DeepLabv3+ low-level reduction).
"""

from __future__ import annotations

import torch
from torch import nn

from repro.modules.conv_blocks import ConvBNReLU, check_choice, check_positive_int
from repro.modules.non_local import NonLocalBlock
from repro.modules.resize import resize_to
from repro.ops import dynamic_sampling_conv2d

SAMPLERS = ("conv", "non_local")


class FeatureModification(ConvBNReLU):
    """DSNet's feature modification module: X(i) -> X(M) by one Conv-BN-ReLU (Fig. 3)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size=kernel_size)


class ContextGuidedSampling(nn.Module):
    """CGDS (DSNet Fig. 2): high-level-guided dynamic sampling convolution of a low-level map.

    Args:
        low_channels: channels of the low-level map (X(M)).
        high_channels: channels of the high-level guidance (X(ASPP)).
        out_channels: channels of the sampled feature X(S).
        kernel_size: k of the dynamic sampling convolution.
        sampler: ``"conv"`` or ``"non_local"`` (see module docstring).
        offset_kernel_size: kernel of the offset-predicting convolution.
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        sampler: str = "conv",
        offset_kernel_size: int = 3,
    ) -> None:
        super().__init__()
        for name, value in (
            ("low_channels", low_channels),
            ("high_channels", high_channels),
            ("out_channels", out_channels),
        ):
            check_positive_int(name, value)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        if offset_kernel_size < 1 or offset_kernel_size % 2 == 0:
            raise ValueError(
                f"offset_kernel_size must be a positive odd integer, got {offset_kernel_size}"
            )
        self.sampler = check_choice("sampler", sampler, SAMPLERS)
        self.low_channels = low_channels
        self.high_channels = high_channels
        self.kernel_size = kernel_size
        self.context = NonLocalBlock(high_channels) if sampler == "non_local" else nn.Identity()
        self.offset_predictor = nn.Conv2d(
            high_channels,
            2 * kernel_size * kernel_size,
            offset_kernel_size,
            padding=offset_kernel_size // 2,
        )
        # Zero offsets: CGDS starts as a plain k x k convolution (DSNet Sec. CGDS).
        nn.init.zeros_(self.offset_predictor.weight)
        nn.init.zeros_(self.offset_predictor.bias)
        self.weight = nn.Parameter(
            torch.empty(out_channels, low_channels, kernel_size, kernel_size)
        )
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.post = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def sampling_offsets(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Offsets ``[B, 2*k*k, H_low, W_low]`` predicted from the high-level map (Eq. 3)."""
        return self.offset_predictor(resize_to(self.context(high), low))

    def sampled_features(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Eq. 2: the dynamic sampling convolution, before BN + ReLU."""
        self._check_inputs(low, high)
        offsets = self.sampling_offsets(low, high)
        return dynamic_sampling_conv2d(low, offsets, self.weight, padding=self.kernel_size // 2)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return self.post(self.sampled_features(low, high))

    def _check_inputs(self, low: torch.Tensor, high: torch.Tensor) -> None:
        if low.ndim != 4 or low.shape[1] != self.low_channels:
            raise ValueError(f"low must be [B, {self.low_channels}, H, W], got {tuple(low.shape)}")
        if high.ndim != 4 or high.shape[1] != self.high_channels:
            raise ValueError(
                f"high must be [B, {self.high_channels}, h, w], got {tuple(high.shape)}"
            )
        if high.shape[0] != low.shape[0]:
            raise ValueError(
                f"low and high must have the same batch size, got {low.shape[0]} and {high.shape[0]}"
            )
