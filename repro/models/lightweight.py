"""The lightweight single-image segmentation network of GDC (Sec. IV-A1, Fig. 3).

Frozen feature extractor: MobileNetV2's "first layer" and "first linear bottleneck" with 16
and 24 output channels. In torchvision's MobileNetV2 the 16-channel output is that of
``features[0:2]`` (the stem convolution and the first, expansion-1 bottleneck; stride 2) and
the 24-channel output that of ``features[2:4]`` (stride 4); this is this project's reading of
"first layer". Both maps are resized bilinearly to half the input size and concatenated;
a convolution (``fuse_kernel_size``, default 1x1, + ReLU) fuses them.

GDC module: a normal 3x3 convolution branch ("to fuse the local features") and a sampling
branch, each + ReLU, concatenated (the text does not say how the branches merge;
concatenation is this project's choice). Sampling branch (``branch``, GDC Table I/VII):
``"normal"`` 3x3, ``"dilated"`` (``dilation``), ``"deformable"`` (DCNv1, offsets from a conv of
the same feature), ``"gdc"`` (``sigma``, offsets in units of the feature map's shortest side,
Sec. V-A) and ``"uniform"`` (the random dynamic convolution of Table VII).

Pixel classifier: conv 3x3, ReLU, conv 1x1 (softmax lives in the loss); logits upsampled to
the input size.

The extractor is frozen and computed once per image: ``extract_features(images)`` returns the
concatenated half-resolution maps (no gradient), ``forward_features(features, output_size)``
runs only the trainable part, so the 50 optimisation steps do not recompute the extractor.
No BatchNorm in the trainable part: one image is optimised at a time.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from repro.models.backbones import load_torchvision_weights
from repro.models.heads import check_images
from repro.modules.conv_blocks import check_choice, check_positive_int
from repro.modules.dynamic_baselines import DeformableConv
from repro.modules.gdc import GaussianDynamicConv
from repro.modules.resize import resize_to

BRANCHES = ("normal", "dilated", "deformable", "gdc", "uniform")


class FrozenMobileNetV2Extractor(nn.Module):
    """MobileNetV2 ``features[0:2]`` (16 ch) and ``features[2:4]`` (24 ch), frozen, in eval mode."""

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        net = torchvision.models.mobilenet_v2(weights=None)
        load_torchvision_weights(net, "mobilenet_v2", weights)
        self.first_layer = net.features[:2]
        self.first_bottleneck = net.features[2:4]
        self.out_channels = 16 + 24
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenMobileNetV2Extractor:
        # Frozen: BatchNorm keeps its (pretrained) statistics whatever the parent's mode.
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        first = self.first_layer(images)
        second = self.first_bottleneck(first)
        size = (max(images.shape[-2] // 2, 1), max(images.shape[-1] // 2, 1))
        first = resize_to(first, size)
        second = resize_to(second, size)
        return torch.cat([first, second], dim=1)


class LightweightGDCNet(nn.Module):
    """GDC's single-image network (Sec. IV-A1); see module docstring.

    Args:
        num_classes: number of classes.
        branch: sampling branch, one of ``BRANCHES``.
        channels: width of the fused feature and of each branch.
        sigma: GDC / uniform standard deviation (relative to the shortest side; 0.2 in
            Table I).
        dilation: rate of the ``"dilated"`` branch.
        gdc_options: extra :class:`~repro.modules.gdc.GaussianDynamicConv` options for
            ``"gdc"``/``"uniform"`` (e.g. ``eval_draws``, ``num_eval_draws``, ``sampling``,
            ``mode``, ``uniform_high``).
        weights: MobileNetV2 weights: None (random, the offline default), a torchvision name,
            ``"offline-pretrained"`` (MobileNetV2 x1.0 pretrained by this project's
            ``pretrain_backbones`` notebook, :mod:`repro.models.pretrained`) or a file.
    """

    def __init__(
        self,
        num_classes: int,
        branch: str = "gdc",
        channels: int = 64,
        classifier_channels: int = 64,
        sigma: float = 0.2,
        dilation: int = 2,
        fuse_kernel_size: int = 1,
        weights: str | Path | None = None,
        gdc_options: dict | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("channels", channels)
        check_positive_int("dilation", dilation)
        self.branch = check_choice("branch", branch, BRANCHES)
        self.backbone = FrozenMobileNetV2Extractor(weights)
        self.fuse = nn.Sequential(
            nn.Conv2d(
                self.backbone.out_channels,
                channels,
                fuse_kernel_size,
                padding=fuse_kernel_size // 2,
            ),
            nn.ReLU(inplace=True),
        )
        self.normal_branch = nn.Conv2d(channels, channels, 3, padding=1)
        options = dict(gdc_options or {})
        if branch == "normal":
            self.sampling_branch: nn.Module = nn.Conv2d(channels, channels, 3, padding=1)
        elif branch == "dilated":
            self.sampling_branch = nn.Conv2d(
                channels, channels, 3, padding=dilation, dilation=dilation
            )
        elif branch == "deformable":
            self.sampling_branch = DeformableConv(channels, channels, modulated=False, bias=True)
        else:
            distribution = "half_gaussian" if branch == "gdc" else "uniform"
            self.sampling_branch = GaussianDynamicConv(
                channels, channels, sigma=sigma, distribution=distribution, **options
            )
        if options and branch not in ("gdc", "uniform"):
            raise ValueError(f"gdc_options only apply to branch 'gdc' or 'uniform', got {branch!r}")
        self.classifier = nn.Sequential(
            nn.Conv2d(2 * channels, classifier_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(classifier_channels, num_classes, 1),
        )

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen half-resolution features ``[B, 40, H/2, W/2]``; compute once per image."""
        return self.backbone(images)

    def forward_features(
        self, features: torch.Tensor, output_size: tuple[int, int] | None = None
    ) -> dict[str, torch.Tensor]:
        """The trainable part on cached features; logits at ``output_size`` (default 2x)."""
        if features.ndim != 4 or features.shape[1] != self.backbone.out_channels:
            raise ValueError(
                f"features must be [B, {self.backbone.out_channels}, h, w] from "
                f"extract_features, got {tuple(features.shape)}"
            )
        fused = self.fuse(features)
        merged = torch.cat(
            [F.relu(self.normal_branch(fused)), F.relu(self.sampling_branch(fused))], dim=1
        )
        logits = self.classifier(merged)
        size = output_size or (2 * features.shape[-2], 2 * features.shape[-1])
        logits = resize_to(logits, size)
        return {"out": logits}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_features(self.extract_features(images), tuple(images.shape[-2:]))
