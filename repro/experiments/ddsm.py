"""DDSM (Li and Tong, ICIP 2021) recipes: the rows of the accuracy-and-boundaries table.

Only the abstract and the module figure are available (``results/reported/PAPERS.md``), so
the rows test the abstract's claims directly: DDSM against the same network with the full
non-local (all-pairs) module in its place and against the baseline without the module (the
refinement path with plain fusion), and the module's own ablation, its spatial and channel
branches alone (the abstract's "dual" sampling). Every row is ``DDSMNet`` with the same
backbone, ASPP, widths and classifier; only ``affinity`` and ``branches`` differ, and
a branch left out still draws its initial weights, so the shared parts start alike at a seed.

Editing these builders changes only the DDSM notebooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro.experiments.table import Row, TableResult
from repro.experiments.table_setting import TableSetting
from repro.models.pretrained import describe_weights

AFFINITY_ROWS: dict[str, tuple[str, str]] = {
    "ddsm": ("ddsm", "DDSM (spatial + channel, N sampled points)"),
    "non_local": ("ddsm_non_local", "full non-local in DDSM's place"),
    "baseline": ("ddsm_plain_fusion", "no module: plain fusion"),
    "spatial": ("ddsm_spatial", "DDSM spatial branch only"),
    "channel": ("ddsm_channel", "DDSM channel branch only"),
}
"""Row key -> (registry name, what it is): the abstract's comparison (``ddsm``, ``non_local``,
``baseline``) and the branch ablation (``spatial``, ``channel``; both = ``ddsm``, none =
``baseline``)."""

BOUNDARY_TOLERANCES_PX: tuple[int, ...] = (1, 2, 3)
"""Tolerances of the boundary F-score recorded per row (``boundary_f_<t>px``)."""


def boundary_metrics(tolerances: Sequence[int], trimap_widths: Sequence[int]) -> tuple[str, ...]:
    """The table's metrics: mIoU, pixel accuracy, boundary F at each tolerance, trimap IoU at
    each band width (keys of :func:`repro.experiments.table.metric_info`)."""
    return (
        "miou",
        "pixel_acc",
        *(f"boundary_f_{t}px" for t in tolerances),
        *(f"trimap_iou_{w}px" for w in trimap_widths),
    )


@dataclass(frozen=True)
class DDSMTableSetting(TableSetting):
    """:class:`TableSetting` plus the DDSM network's own fields (``ddsm_affinity``'s cell)."""

    low_level: str
    width: int
    inner_channels: int
    refined_channels: int
    spatial_samples: int
    channel_samples: int
    anchors: str

    def model_options(self) -> dict[str, Any]:
        """Backbone, deep supervision and the network's widths, shared by every row."""
        return {
            **super().model_options(),
            "low_level": self.low_level,
            "aspp_channels": self.width,
            "classifier_channels": self.width,
            "inner_channels": self.inner_channels,
            "refined_channels": self.refined_channels,
            "spatial_samples": self.spatial_samples,
            "channel_samples": self.channel_samples,
            "anchors": self.anchors,
        }

    def recorded(self) -> dict[str, str]:
        """The network part of a result's setting (the table adds data and recipe)."""
        stride = {"x2": 4, "x3": 8, "x4": self.output_stride}[self.low_level]
        low = self.image_size // stride
        high = self.image_size // self.output_stride
        return {
            "network": f"DDSMNet on {self.backbone} (OS {self.output_stride}, "
            f"{describe_weights(self.weights)}), ASPP and classifier {self.width} channels",
            "module": f"low level X({self.low_level.removeprefix('x')}) {low}x{low}, high level "
            f"X(ASPP) {high}x{high}; {self.inner_channels}-channel branches, "
            f"N = {self.spatial_samples} spatial / {self.channel_samples} channel samples, "
            f"{self.anchors} anchors, fused to {self.refined_channels} channels",
            "deep supervision": "aux X(4) loss" if self.deep_supervision else "none",
        }


def affinity_rows(names: Sequence[str], common: Mapping[str, Any]) -> list[Row]:
    """One row per name of :data:`AFFINITY_ROWS`, all with the options ``common``."""
    unknown = [n for n in names if n not in AFFINITY_ROWS]
    if unknown:
        raise ValueError(f"rows: {unknown} not in {list(AFFINITY_ROWS)}")
    return [
        Row(key=name, model=AFFINITY_ROWS[name][0], config=dict(common), label=name)
        for name in names
    ]


def record_paired_differences(
    table: TableResult, reference: str, metrics: Sequence[str]
) -> list[str]:
    """``<prefix>/<reference>_minus_<other>/<metric>`` for every other row and metric, on the
    same seeds; returns the keys recorded (none when ``reference`` is not in the table)."""
    keys = [row.key for row in table.spec.rows]
    if reference not in keys:
        return []
    prefix = f"{table.spec.prefix}/" if table.spec.prefix else ""
    recorded = []
    for other in keys:
        if other == reference:
            continue
        for metric in metrics:
            key = f"{prefix}{reference}_minus_{other}/{metric}"
            table.record_difference(key, reference, other, metric)
            recorded.append(key)
    return recorded
