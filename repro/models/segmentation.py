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
  ``branches`` (``"both"``, ``"spatial"``, ``"channel"``, ``"none"``) keeps DDSM's two
  branches, one, or none (the refinement path with plain fusion: the baseline).

Every model with a context module takes its options the same way, as one mapping
``context_options`` of that module's keyword arguments (unknown keys are a ``ValueError``
naming the model, the key and the keys allowed); what is left out takes the default of
:func:`context_option_defaults`:

* ASPP (``DeepLabV3(context="aspp")``, and the ASPP of ``DeepLabV3Plus``, ``DSNet`` and
  ``DDSMNet``): ``rates`` (DeepLabv3 Sec. 3.3: (6, 12, 18) at output stride 16, doubled at
  8), ``image_pooling`` (True).
* S-ASPP (``"separable_aspp"``, GDC Table V): ``rates`` ((1, 9, 18), see
  :mod:`repro.modules.aspp`), ``image_pooling`` (True).
* GDPP (``"gdpp"``, GDC Fig. 5, Sec. IV-B and V-B1): ``rates``, the fixed (small, large)
  dilations ((1, 18)); ``bases``, the base offsets of the GDC branches ((9.0,)); ``sigma``
  (2.0 pixels); ``image_pooling`` (True); ``eval_draws`` ("mean") and ``num_eval_draws``
  (50, the paper's T at test time).
* ``"none"``: no options.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repro.models.backbones import MobileNetV2Backbone, ResNetBackbone, build_resnet
from repro.models.heads import FCNHead, PixelClassifier, check_images
from repro.modules.aspp import ASPP, SeparableASPP
from repro.modules.cgds import ContextGuidedSampling, FeatureModification
from repro.modules.conv_blocks import ConvBNReLU, check_choice
from repro.modules.ddsm import DynamicDualSampling
from repro.modules.dynamic_baselines import DeformableConv, DynamicFilter
from repro.modules.gdc import GaussianDynamicPyramidPooling
from repro.modules.resize import resize_to

CONTEXTS = ("aspp", "separable_aspp", "gdpp", "none")
REFINEMENTS = ("none", "dcnv2", "dynamic_filter")
BACKBONES = ("resnet18", "resnet50", "resnet101", "mobilenet_v2")


#: S-ASPP's dilations: GDPP's layout with the GDC branch a separable conv of its base 9.
SEPARABLE_ASPP_RATES: tuple[int, ...] = (1, 9, 18)
#: GDPP's fixed (small, large) dilations and its GDC base offsets (GDC Sec. V-B1).
GDPP_RATES: tuple[int, int] = (1, 18)
GDPP_BASES: tuple[float, ...] = (9.0,)


def default_aspp_rates(output_stride: int) -> tuple[int, ...]:
    """DeepLabv3's rates: (6, 12, 18) at output stride 16, doubled at 8."""
    return (12, 24, 36) if output_stride == 8 else (6, 12, 18)


def context_option_defaults(context: str, output_stride: int) -> dict[str, Any]:
    """Every option ``context_options`` may set for the ``context`` module, with its default.

    The defaults are the papers' (see the module docstring); they build exactly the module
    the models built before ``context_options`` existed.
    """
    check_choice("context", context, CONTEXTS)
    if context == "aspp":
        return {"rates": default_aspp_rates(output_stride), "image_pooling": True}
    if context == "separable_aspp":
        return {"rates": SEPARABLE_ASPP_RATES, "image_pooling": True}
    if context == "gdpp":
        return {
            "rates": GDPP_RATES,
            "bases": GDPP_BASES,
            "sigma": 2.0,
            "image_pooling": True,
            "eval_draws": "mean",
            "num_eval_draws": 50,
        }
    return {}


def resolve_context_options(
    model: str,
    context: str,
    output_stride: int,
    context_options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``context_options`` over :func:`context_option_defaults`; ``model`` names the caller
    in the ``ValueError`` an unknown key raises (with the key and the keys allowed)."""
    defaults = context_option_defaults(context, output_stride)
    if context_options is None:
        return defaults
    if not isinstance(context_options, Mapping):
        raise TypeError(
            f"{model}: context_options must be a mapping of {context!r} module options, got "
            f"{type(context_options).__name__}"
        )
    unknown = sorted(str(key) for key in set(context_options) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none (it takes no options)"
        raise ValueError(
            f"{model}: unknown context_options key(s) {unknown} for its {context!r} context "
            f"module; allowed keys: {allowed}"
        )
    options = {**defaults, **context_options}
    if context == "gdpp" and len(tuple(options["rates"])) != 2:
        raise ValueError(
            f"{model}: context_options['rates'] of the 'gdpp' context module must be the "
            f"(small, large) dilations, got {options['rates']}"
        )
    return options


class SegmentationModel(nn.Module):
    """Base: a ``.backbone``, an optional auxiliary head on X(4), the output dict."""

    backbone: nn.Module

    def _outputs(
        self,
        logits: torch.Tensor,
        size: tuple[int, int],
        aux_input: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        outputs = {"out": resize_to(logits, size)}
        aux_head = getattr(self, "aux_head", None)
        if aux_head is not None and aux_input is not None:
            outputs["aux"] = resize_to(aux_head(aux_input), size)
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
    context: str, in_channels: int, channels: int, options: Mapping[str, Any]
) -> tuple[nn.Module, int]:
    """The context module of a DeepLabv3 tail and its output channels.

    ``options`` is the full, checked option set of :func:`resolve_context_options`.
    """
    check_choice("context", context, CONTEXTS)
    if context == "aspp":
        return ASPP(in_channels, channels, options["rates"], options["image_pooling"]), channels
    if context == "separable_aspp":
        module = SeparableASPP(in_channels, channels, options["rates"], options["image_pooling"])
        return module, channels
    if context == "gdpp":
        small_rate, large_rate = options["rates"]
        module = GaussianDynamicPyramidPooling(
            in_channels,
            channels,
            small_rate=int(small_rate),
            large_rate=int(large_rate),
            middle_bases=options["bases"],
            sigma=options["sigma"],
            image_pooling=options["image_pooling"],
            eval_draws=options["eval_draws"],
            num_eval_draws=options["num_eval_draws"],
        )
        return module, channels
    return nn.Identity(), in_channels


class DeepLabV3(SegmentationModel):
    """Backbone + context module + DeepLabv3 tail (GDC Table V, GDC Sec. V-B2).

    ``context`` picks the module, ``context_options`` sets its options (see the module
    docstring and :func:`context_option_defaults`).
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "mobilenet_v2",
        context: str = "aspp",
        output_stride: int = 16,
        weights: str | Path | None = None,
        channels: int = 256,
        context_options: Mapping[str, Any] | None = None,
        width_mult: float = 1.0,
        deep_supervision: bool = False,
    ) -> None:
        super().__init__()
        check_choice("backbone", backbone, BACKBONES)
        # Checked before anything is built: a misspelt option fails fast, not after the
        # backbone (and its weights) are loaded.
        options = resolve_context_options(
            f"DeepLabV3(context={context!r})", context, output_stride, context_options
        )
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
        self.context, context_channels = build_context(context, in_channels, channels, options)
        self.classifier = PixelClassifier(context_channels, channels, num_classes)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(images)
        features = self.backbone(images)
        high = features["out"] if "out" in features else features["x5"]
        logits = self.classifier(self.context(high))
        return self._outputs(logits, images.shape[-2:], features.get("x4"))


class DeepLabV3Plus(SegmentationModel):
    """DeepLabv3+ with an optional DCNv2 / dynamic-filter refinement of the ASPP output;
    ``context_options`` are its ASPP's (``rates``, ``image_pooling``)."""

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
        context_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.refinement_kind = check_choice("refinement", refinement, REFINEMENTS)
        options = resolve_context_options(
            type(self).__name__, "aspp", output_stride, context_options
        )
        self.backbone = build_resnet(backbone, output_stride, weights)
        channels = self.backbone.channels
        self.aspp, _ = build_context("aspp", channels["x5"], aspp_channels, options)
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
    """Dynamic Sampling Network (DSNet Fig. 3); see module docstring for the options.

    ``context_options`` are the options of its ASPP, X(ASPP) (``rates``, ``image_pooling``).
    """

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
        context_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.low_level = check_choice("low_level", low_level, ("x3", "x4", "x5"))
        self.high_level = check_choice("high_level", high_level, ("aspp", "x5"))
        options = resolve_context_options(
            type(self).__name__, "aspp", output_stride, context_options
        )
        self.backbone = build_resnet(backbone, output_stride, weights)
        channels = self.backbone.channels
        self.aspp, _ = build_context("aspp", channels["x5"], aspp_channels, options)
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
    """ResNet + ASPP + DDSM refinement of a low-level stage (or the full non-local baseline);
    ``context_options`` are its ASPP's (``rates``, ``image_pooling``)."""

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
        context_options: Mapping[str, Any] | None = None,
        branches: str = "both",
    ) -> None:
        super().__init__()
        self.low_level = check_choice("low_level", low_level, ("x2", "x3", "x4"))
        options = resolve_context_options(
            type(self).__name__, "aspp", output_stride, context_options
        )
        self.backbone = build_resnet(backbone, output_stride, weights)
        channels = self.backbone.channels
        self.aspp, _ = build_context("aspp", channels["x5"], aspp_channels, options)
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
            branches=branches,
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
