"""The one registry of segmentation models: ``build(name, num_classes, **config)``.

Each entry is a model class with preset defaults (the row of a paper's table it stands
for) and a one-line description. ``config`` overrides any constructor argument of the class;
an unknown name or argument is a ``ValueError`` listing what is allowed. Every model with a
context module (ASPP, S-ASPP or GDPP) takes that module's options as one mapping,
``context_options`` (e.g. ``build("dsnet", 21, context_options={"rates": (12, 24, 36)})``;
the keys and their defaults are in :mod:`repro.models.segmentation`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from repro.models.lightweight import LightweightGDCNet
from repro.models.segmentation import FCN, DDSMNet, DeepLabV3, DeepLabV3Plus, DSNet


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its class, preset arguments and description."""

    factory: type[nn.Module]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {
    "fcn": ModelEntry(FCN, "Dilated ResNet + FCN head, no context module (feasibility study)."),
    "deeplabv3plus": ModelEntry(DeepLabV3Plus, "DeepLabv3+ on a dilated ResNet (DSNet baseline)."),
    "deeplabv3plus_dcnv2": ModelEntry(
        DeepLabV3Plus,
        "DeepLabv3+ with DCNv2 on the ASPP output (DSNet comparison, 75.4).",
        {"refinement": "dcnv2"},
    ),
    "deeplabv3plus_dynamic_filter": ModelEntry(
        DeepLabV3Plus,
        "DeepLabv3+ with a dynamic filter on the ASPP output (DSNet comparison, 74.6).",
        {"refinement": "dynamic_filter"},
    ),
    "dsnet": ModelEntry(
        DSNet, "DSNet: ASPP + feature modification + CGDS (conv sampler) + DS head (DSNet Fig. 3)."
    ),
    "dsnet_non_local": ModelEntry(
        DSNet,
        "DSNet with the non-local sub-network sampler (DSNet ablation, 76.6).",
        {"sampler": "non_local"},
    ),
    "mobilenetv2": ModelEntry(
        DeepLabV3,
        "MobileNetV2 + DeepLabv3 tail, no multi-scale module (GDC Table V baseline).",
        {"backbone": "mobilenet_v2", "context": "none"},
    ),
    "mobilenetv2_aspp": ModelEntry(
        DeepLabV3,
        "MobileNetV2 + ASPP + DeepLabv3 tail (GDC Table V).",
        {"backbone": "mobilenet_v2", "context": "aspp"},
    ),
    "mobilenetv2_saspp": ModelEntry(
        DeepLabV3,
        "MobileNetV2 + separable ASPP (S-ASPP) + DeepLabv3 tail (GDC Table V).",
        {"backbone": "mobilenet_v2", "context": "separable_aspp"},
    ),
    "mobilenetv2_gdpp": ModelEntry(
        DeepLabV3,
        "MobileNetV2 + GDPP + DeepLabv3 tail (GDC Table V, Fig. 5).",
        {"backbone": "mobilenet_v2", "context": "gdpp"},
    ),
    "deeplabv3": ModelEntry(
        DeepLabV3,
        "DeepLabv3 (ResNet + ASPP), the GDC Cityscapes baseline.",
        {"backbone": "resnet101", "context": "aspp"},
    ),
    "deeplabv3_gdpp": ModelEntry(
        DeepLabV3,
        "DeepLabv3 with GDPP in place of ASPP (GDC Cityscapes, Sec. V-B2).",
        {"backbone": "resnet101", "context": "gdpp"},
    ),
    "lightweight_normal": ModelEntry(
        LightweightGDCNet,
        "GDC single-image network, normal 3x3 sampling branch (GDC Table I).",
        {"branch": "normal"},
    ),
    "lightweight_dilated": ModelEntry(
        LightweightGDCNet,
        "GDC single-image network, dilated sampling branch (GDC Table I).",
        {"branch": "dilated"},
    ),
    "lightweight_deformable": ModelEntry(
        LightweightGDCNet,
        "GDC single-image network, deformable sampling branch (GDC Table I).",
        {"branch": "deformable"},
    ),
    "lightweight_gdc": ModelEntry(
        LightweightGDCNet,
        "GDC single-image network, Gaussian dynamic convolution branch (GDC Table I/IV).",
        {"branch": "gdc"},
    ),
    "lightweight_uniform": ModelEntry(
        LightweightGDCNet,
        "GDC single-image network, uniform random dynamic convolution (GDC Table VII).",
        {"branch": "uniform"},
    ),
    "ddsm": ModelEntry(DDSMNet, "ResNet + ASPP + DDSM refining a low-level stage (DDSM)."),
    "ddsm_non_local": ModelEntry(
        DDSMNet,
        "DDSM network with the full non-local affinity module (efficiency baseline).",
        {"affinity": "non_local"},
    ),
    "ddsm_plain_fusion": ModelEntry(
        DDSMNet,
        "DDSM network without the module: the low-level path with plain fusion (DDSM baseline).",
        {"branches": "none"},
    ),
    "ddsm_spatial": ModelEntry(
        DDSMNet,
        "DDSM network with the spatial branch only (DDSM branch ablation).",
        {"branches": "spatial"},
    ),
    "ddsm_channel": ModelEntry(
        DDSMNet,
        "DDSM network with the channel branch only (DDSM branch ablation).",
        {"branches": "channel"},
    ),
}


def available() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def describe(name: str) -> str:
    """One-line description of a registered model."""
    return _entry(name).description


def config_keys(name: str) -> list[str]:
    """Constructor arguments ``build(name, ...)`` accepts besides ``num_classes``."""
    signature = inspect.signature(_entry(name).factory.__init__)
    return [p for p in signature.parameters if p not in ("self", "num_classes")]


def default_config(name: str) -> dict[str, Any]:
    """The full argument set of a registered model (class defaults + preset)."""
    entry = _entry(name)
    signature = inspect.signature(entry.factory.__init__)
    config = {
        key: p.default
        for key, p in signature.parameters.items()
        if key not in ("self", "num_classes") and p.default is not inspect.Parameter.empty
    }
    config.update(entry.defaults)
    return config


def build(name: str, num_classes: int, **config: Any) -> nn.Module:
    """Build registered model ``name`` with ``num_classes`` outputs; ``config`` overrides."""
    entry = _entry(name)
    allowed = config_keys(name)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} for model {name!r}; allowed: {', '.join(allowed)}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return entry.factory(num_classes=num_classes, **{**entry.defaults, **config})
