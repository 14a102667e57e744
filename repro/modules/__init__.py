"""Modules of DSNet (CGDS), GDC (GDC, GDPP, S-ASPP), DDSM and the baselines they compare to."""

from repro.modules.aspp import ASPP, PyramidPooling, SeparableASPP
from repro.modules.cgds import ContextGuidedSampling, FeatureModification
from repro.modules.ddsm import (
    ChannelDynamicAffinity,
    ChannelNonLocalAffinity,
    DynamicDualSampling,
    SpatialDynamicAffinity,
    SpatialNonLocalAffinity,
)
from repro.modules.dynamic_baselines import DeformableConv, DynamicFilter
from repro.modules.gdc import GaussianDynamicConv, GaussianDynamicPyramidPooling
from repro.modules.non_local import NonLocalBlock
from repro.modules.resize import resize_to

__all__ = [
    "ASPP",
    "ChannelDynamicAffinity",
    "ChannelNonLocalAffinity",
    "ContextGuidedSampling",
    "DeformableConv",
    "DynamicDualSampling",
    "DynamicFilter",
    "FeatureModification",
    "GaussianDynamicConv",
    "GaussianDynamicPyramidPooling",
    "NonLocalBlock",
    "PyramidPooling",
    "SeparableASPP",
    "SpatialDynamicAffinity",
    "SpatialNonLocalAffinity",
    "resize_to",
]
