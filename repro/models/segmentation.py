"""Segmentation networks compared in the papers' tables, on a dilated ResNet or MobileNetV2.

Every model: ``forward(images [B, 3, H, W]) -> {"out": logits [B, K, H, W]}`` plus ``"aux"``
(logits of an FCN head on X(4), at input resolution) when ``deep_supervision`` is on; the
backbone is the attribute ``.backbone``.

* ``FCN``: dilated ResNet + FCN head, no context module (feasibility study baseline).
* ``DeepLabV3``: backbone + context module (``"aspp"``, ``"separable_aspp"``, ``"gdpp"`` or
  ``"none"``) + the DeepLabv3 tail (GDC Table V rows on MobileNetV2; GDC's Cityscapes
  "DeepLabv3 with GDPP" on ResNet).
* ``DeepLabV3Plus``: DeepLabv3+ (Chen et al. 2018): ASPP on X(5), decoder with X(2) reduced to
  ``low_level_channels`` (48), two 3x3 convolutions. DSNet's baseline. ``refinement``
  selects DSNet's comparison rows, "DCv2 and DF on top of ASPP" (75.4 / 74.6 %): a DCNv2
  layer (self-sampling offsets and masks) or a dynamic filter applied to the ASPP output
  before the decoder. "On top of" is read as "after"; the text does not say more.
* ``DSNet`` (DSNet Fig. 3): ASPP on X(5) gives X(ASPP); the low-level stage is adapted by
  the feature modification module into X(M); CGDS samples X(M) guided by the high-level
  map into X(S); X(F) = concat[X(M), X(S), up(X(ASPP))] -> pixel classifier. ``low_level``
  (``"x3"``, ``"x4"``, ``"x5"``) and ``high_level`` (``"aspp"``, ``"x5"``) give the pairs
  of DSNet Table 1. With ``high_level="x5"`` only the sampling guidance changes; X(ASPP)
  still enters X(F) (the text does not say whether it does; this keeps the rows
  comparable). ``sampler`` is ``"conv"`` (paper) or ``"non_local"`` (ablation).
* ``DDSMNet``: ASPP on X(5) is the high-level map that refines a low-level stage through
  DDSM (or its full non-local baseline); concat[refined, up(X(ASPP))] -> pixel classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from repro.models.backbones import MobileNetV2Backbone, ResNetBackbone, build_resnet
from repro.models.heads import FCNHead, PixelClassifier, check_images, upsample_to
from repro.modules.aspp import ASPP, SeparableASPP
from repro.modules.cgds import ContextGuidedSampling, FeatureModification, resize_to
from repro.modules.conv_blocks import ConvBNReLU, check_choice
from repro.modules.ddsm import DynamicDualSampling
from repro.modules.dynamic_baselines import DeformableConv, DynamicFilter
from repro.modules.gdc import GaussianDynamicPyramidPooling

CONTEXTS = ("aspp", "separable_aspp", "gdpp", "none")
REFINEMENTS = ("none", "dcnv2", "dynamic_filter")
BACKBONES = ("resnet18", "resnet50", "resnet101", "mobilenet_v2")


def default_aspp_rates(output_stride: int) -> tuple[int, ...]:
    """DeepLabv3's rates: (6, 12, 18) at output stride 16, doubled at 8."""
    return (12, 24, 36) if output_stride == 8 else (6, 12, 18)


class SegmentationModel(nn.Module):
    """Base: a ``.backbone``, an optional auxiliary head on X(4), the output dict."""

    backbone: nn.Module

    def _outputs(
        self,
        logits: torch.Tensor,
        size: tuple[int, int],
        aux_input: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        outputs = {"out": upsample_to(logits, size)}
        aux_head = getattr(self, "aux_head", None)
        if aux_head is not None and aux_input is not None:
            outputs["aux"] = upsample_to(aux_head(aux_input), size)
        return outputs


def _resnet_aux_head(
    backbone: ResNetBackbone, num_classes: int, deep_supervision: bool
) -> FCNHead | None:
    return FCNHead(backbone.channels["x4"], num_classes) if deep_supervision else None


class FCN(SegmentationModel):
    """Dilated ResNet + FCN head (no context module)."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet18",
        output_stride: int = 16,
        weights: str | Path | None = None,
        head_channels: int | None = None,
        deep_supervision: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = build_resnet(backbone, output_stride, weights)
        self.head = FCNHead(self.backbone.channels["x5"], num_classes, head_channels)
        self.aux_head = _resnet_aux_head(self.backbone, num_classes, deep_supervision)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(images)
        features = self.backbone(images)
        return self._outputs(self.head(features["x5"]), images.shape[-2:], features["x4"])


def build_context(
    context: str,
    in_channels: int,
    channels: int,
    output_stride: int,
    rates: Sequence[int] | None = None,
    image_pooling: bool = True,
    gdpp_sigma: float = 2.0,
    gdpp_bases: Sequence[float] = (9.0,),
    gdpp_eval_draws: str = "mean",
    gdpp_num_eval_draws: int = 50,
    gdpp_rates: Sequence[int] = (1, 18),
) -> tuple[nn.Module, int]:
    """The context module of a DeepLabv3 tail and its output channels.

    ``gdpp_rates`` are GDPP's fixed (small, large) dilations (1 and 18 in GDC Sec. V-B2).
    """
    check_choice("context", context, CONTEXTS)
    if context == "aspp":
        rates = rates or default_aspp_rates(output_stride)
        return ASPP(in_channels, channels, rates, image_pooling), channels
    if context == "separable_aspp":
        return SeparableASPP(in_channels, channels, rates or (1, 9, 18), image_pooling), channels
    if context == "gdpp":
        if len(gdpp_rates) != 2:
            raise ValueError(f"gdpp_rates must be (small, large) dilations, got {gdpp_rates}")
        module = GaussianDynamicPyramidPooling(
            in_channels,
            channels,
            small_rate=int(gdpp_rates[0]),
            large_rate=int(gdpp_rates[1]),
            middle_bases=gdpp_bases,
            sigma=gdpp_sigma,
            image_pooling=image_pooling,
            eval_draws=gdpp_eval_draws,
            num_eval_draws=gdpp_num_eval_draws,
        )
        return module, channels
    return nn.Identity(), in_channels


class DeepLabV3(SegmentationModel):
    """Backbone + context module + DeepLabv3 tail (GDC Table V, GDC Sec. V-B2)."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "mobilenet_v2",
        context: str = "aspp",
        output_stride: int = 16,
        weights: str | Path | None = None,
        channels: int = 256,
        rates: Sequence[int] | None = None,
        image_pooling: bool = True,
        gdpp_sigma: float = 2.0,
        gdpp_bases: Sequence[float] = (9.0,),
        gdpp_eval_draws: str = "mean",
        gdpp_num_eval_draws: int = 50,
        gdpp_rates: Sequence[int] = (1, 18),
        width_mult: float = 1.0,
        deep_supervision: bool = False,
    ) -> None:
        super().__init__()
        check_choice("backbone", backbone, BACKBONES)
        if backbone == "mobilenet_v2":
            if deep_supervision:
                raise ValueError("deep_supervision needs a ResNet backbone, got mobilenet_v2")
            self.backbone = MobileNetV2Backbone(output_stride, weights, width_mult)
            in_channels = self.backbone.channels["out"]
            self.aux_head = None
        else:
            self.backbone = build_resnet(backbone, output_stride, weights)
            in_channels = self.backbone.channels["x5"]
            self.aux_head = _resnet_aux_head(self.backbone, num_classes, deep_supervision)
        self.context, context_channels = build_context(
            context,
            in_channels,
            channels,
            output_stride,
            rates,
            image_pooling,
            gdpp_sigma,
            gdpp_bases,
            gdpp_eval_draws,
            gdpp_num_eval_draws,
            gdpp_rates,
        )
        self.classifier = PixelClassifier(context_channels, channels, num_classes)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(images)
        features = self.backbone(images)
        high = features["out"] if "out" in features else features["x5"]
        logits = self.classifier(self.context(high))
        return self._outputs(logits, images.shape[-2:], features.get("x4"))


class DeepLabV3Plus(SegmentationModel):
    """DeepLabv3+ with an optional DCNv2 / dynamic-filter refinement of the ASPP output."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        output_stride: int = 16,
        weights: str | Path | None = None,
        aspp_channels: int = 256,
        low_level_channels: int = 48,
        decoder_channels: int = 256,
        refinement: str = "none",
        deep_supervision: bool = False,
    ) -> None:
        super().__init__()
        self.refinement_kind = check_choice("refinement", refinement, REFINEMENTS)
        self.backbone = build_resnet(backbone, output_stride, weights)
        channels = self.backbone.channels
        self.aspp = ASPP(channels["x5"], aspp_channels, default_aspp_rates(output_stride))
        if refinement == "dcnv2":
            self.refinement: nn.Module = nn.Sequential(
                DeformableConv(aspp_channels, aspp_channels, modulated=True),
                nn.BatchNorm2d(aspp_channels),
                nn.ReLU(inplace=True),
            )
        elif refinement == "dynamic_filter":
            self.refinement = nn.Sequential(
                DynamicFilter(aspp_channels), nn.BatchNorm2d(aspp_channels), nn.ReLU(inplace=True)
            )
        else:
            self.refinement = nn.Identity()
        self.reduce_low = ConvBNReLU(channels["x2"], low_level_channels, kernel_size=1)
        self.decoder = nn.Sequential(
            ConvBNReLU(aspp_channels + low_level_channels, decoder_channels, 3),
            ConvBNReLU(decoder_channels, decoder_channels, 3),
            nn.Conv2d(decoder_channels, num_classes, 1),
        )
        self.aux_head = _resnet_aux_head(self.backbone, num_classes, deep_supervision)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(images)
        features = self.backbone(images)
        high = self.refinement(self.aspp(features["x5"]))
        low = self.reduce_low(features["x2"])
        logits = self.decoder(torch.cat([low, resize_to(high, low)], dim=1))
        return self._outputs(logits, images.shape[-2:], features["x4"])


class DSNet(SegmentationModel):
    """Dynamic Sampling Network (DSNet Fig. 3); see module docstring for the options."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        output_stride: int = 16,
        weights: str | Path | None = None,
        low_level: str = "x3",
        high_level: str = "aspp",
        sampler: str = "conv",
        kernel_size: int = 3,
        aspp_channels: int = 256,
        modification_channels: int = 256,
        modification_kernel_size: int = 1,
        sampled_channels: int = 256,
        classifier_channels: int = 256,
        deep_supervision: bool = True,
    ) -> None:
        super().__init__()
        self.low_level = check_choice("low_level", low_level, ("x3", "x4", "x5"))
        self.high_level = check_choice("high_level", high_level, ("aspp", "x5"))
        self.backbone = build_resnet(backbone, output_stride, weights)
        channels = self.backbone.channels
        self.aspp = ASPP(channels["x5"], aspp_channels, default_aspp_rates(output_stride))
        self.modification = FeatureModification(
            channels[low_level], modification_channels, modification_kernel_size
        )
        guidance_channels = aspp_channels if high_level == "aspp" else channels["x5"]
        self.cgds = ContextGuidedSampling(
            modification_channels, guidance_channels, sampled_channels, kernel_size, sampler
        )
        self.classifier = PixelClassifier(
            modification_channels + sampled_channels + aspp_channels,
            classifier_channels,
            num_classes,
        )
        self.aux_head = _resnet_aux_head(self.backbone, num_classes, deep_supervision)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(images)
        features = self.backbone(images)
        context = self.aspp(features["x5"])
        modified = self.modification(features[self.low_level])
        guidance = context if self.high_level == "aspp" else features["x5"]
        sampled = self.cgds(modified, guidance)
        fused = torch.cat([modified, sampled, resize_to(context, modified)], dim=1)
        return self._outputs(self.classifier(fused), images.shape[-2:], features["x4"])


class DDSMNet(SegmentationModel):
    """ResNet + ASPP + DDSM refinement of a low-level stage (or the full non-local baseline)."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet18",
        output_stride: int = 16,
        weights: str | Path | None = None,
        low_level: str = "x3",
        affinity: str = "dynamic",
        aspp_channels: int = 256,
        inner_channels: int = 64,
        refined_channels: int = 128,
        spatial_samples: int = 9,
        channel_samples: int = 9,
        pooled_size: int = 4,
        anchors: str = "global",
        position_embedding: bool = True,
        classifier_channels: int = 256,
        deep_supervision: bool = False,
    ) -> None:
        super().__init__()
        self.low_level = check_choice("low_level", low_level, ("x2", "x3", "x4"))
        self.backbone = build_resnet(backbone, output_stride, weights)
        channels = self.backbone.channels
        self.aspp = ASPP(channels["x5"], aspp_channels, default_aspp_rates(output_stride))
        self.ddsm = DynamicDualSampling(
            channels[low_level],
            aspp_channels,
            refined_channels,
            inner_channels=inner_channels,
            affinity=affinity,
            spatial_samples=spatial_samples,
            channel_samples=channel_samples,
            pooled_size=pooled_size,
            anchors=anchors,
            position_embedding=position_embedding,
        )
        self.classifier = PixelClassifier(
            refined_channels + aspp_channels, classifier_channels, num_classes
        )
        self.aux_head = _resnet_aux_head(self.backbone, num_classes, deep_supervision)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(images)
        features = self.backbone(images)
        context = self.aspp(features["x5"])
        refined = self.ddsm(features[self.low_level], context)
        fused = torch.cat([refined, resize_to(context, refined)], dim=1)
        return self._outputs(self.classifier(fused), images.shape[-2:], features["x4"])
