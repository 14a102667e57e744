"""DSNet (Fu et al., AAAI 2020) recipes: the baseline and DSNet at one width.

Editing one of these builders changes only the notebooks that train DSNet's models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro.experiments.supervised import DataSpec
from repro.experiments.table import Row, TableResult, TableSpec
from repro.experiments.table_setting import TableSetting
from repro.models.pretrained import describe_weights

DSNET_FAMILY: tuple[str, ...] = ("fcn", "deeplabv3plus", "dsnet")
"""A plain FCN head (no context), DSNet's baseline DeepLabv3+ and DSNet."""


def dsnet_family_configs(width: int) -> dict[str, dict[str, Any]]:
    """Model configurations of :data:`DSNET_FAMILY` with every branch ``width`` channels wide.

    The paper's width is 256 (ASPP, decoder and the CGDS branches, Sec. "Network
    Architecture"); reduced-scale runs narrow all of them alike.
    """
    return {
        "fcn": {},
        "deeplabv3plus": {"aspp_channels": width, "decoder_channels": width},
        "dsnet": {
            "aspp_channels": width,
            "modification_channels": width,
            "sampled_channels": width,
            "classifier_channels": width,
        },
    }


def family_rows(names: Sequence[str], width: int, common: Mapping[str, Any]) -> list[Row]:
    """One table row per chosen family member (key = registry name), with ``common`` options."""
    configs = dsnet_family_configs(width)
    unknown = [n for n in names if n not in configs]
    if unknown:
        raise ValueError(f"models_to_run: {unknown} not in {list(configs)}")
    return [Row(key=name, model=name, config={**common, **configs[name]}) for name in names]


FEATURE_PAIRS: dict[str, tuple[str, str]] = {
    "x3-x5": ("x3", "x5"),
    "x3-aspp": ("x3", "aspp"),
    "x4-aspp": ("x4", "aspp"),
    "x5-aspp": ("x5", "aspp"),
}
"""DSNet Table 1's rows: row key -> (low-level feature, high-level guidance) of CGDS."""


def feature_name(level: str) -> str:
    """The paper's name of a feature map: ``"x3"`` -> ``"X(3)"``, ``"aspp"`` -> ``"X(ASPP)"``."""
    return "X(ASPP)" if level == "aspp" else f"X({level.removeprefix('x')})"


def table1_rows(pairs: Sequence[str], width: int, common: Mapping[str, Any]) -> list[Row]:
    """DSNet Table 1: one DSNet row per (low-level, high-level) pair of :data:`FEATURE_PAIRS`.

    Everything but the pair is shared, so the rows differ only in where CGDS samples and what
    guides it; each row's ``reported`` is the paper's Table 1 value (ResNet-50, VOC val).
    """
    unknown = [p for p in pairs if p not in FEATURE_PAIRS]
    if unknown:
        raise ValueError(f"pairs: {unknown} not in {list(FEATURE_PAIRS)}")
    config = dsnet_family_configs(width)["dsnet"]
    rows = []
    for pair in pairs:
        low, high = FEATURE_PAIRS[pair]
        rows.append(
            Row(
                key=pair,
                model="dsnet",
                config={**common, **config, "low_level": low, "high_level": high},
                columns={"low level": feature_name(low), "high level": feature_name(high)},
                reported=f"dsnet.t1.{pair}.miou",
                label=f"{feature_name(low)}/{feature_name(high)}",
            )
        )
    return rows


SAMPLER_ROWS: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "conv": ("dsnet", {"sampler": "conv"}, "dsnet.t1.x3-aspp.miou"),
    "non_local": ("dsnet", {"sampler": "non_local"}, "dsnet.text.nonlocal-sampler.miou"),
    "dcnv2_aspp": ("deeplabv3plus", {"refinement": "dcnv2"}, "dsnet.text.dcnv2-aspp.miou"),
    "dynamic_filter_aspp": (
        "deeplabv3plus",
        {"refinement": "dynamic_filter"},
        "dsnet.text.dynamic-filter-aspp.miou",
    ),
    "deeplabv3plus": ("deeplabv3plus", {}, None),
}
"""The sampler ablation and the related-work comparison of DSNet's text (Sections 'Ablation
Study for Context Guided Dynamic Sampling Module' and 'Comparing with Related Works'): row key
-> (registry name, options, the paper's number). ``conv`` is DSNet itself (X(3)/X(ASPP), the
paper's 79.0 of Table 1, which the text compares both ablations with)."""


def sampler_rows(names: Sequence[str], width: int, common: Mapping[str, Any]) -> list[Row]:
    """DSNet's samplers and the dynamic layers on ASPP, at one width and budget (same backbone)."""
    unknown = [n for n in names if n not in SAMPLER_ROWS]
    if unknown:
        raise ValueError(f"rows: {unknown} not in {list(SAMPLER_ROWS)}")
    configs = dsnet_family_configs(width)
    rows = []
    for name in names:
        model, options, reported = SAMPLER_ROWS[name]
        base = {"low_level": "x3", "high_level": "aspp"} if model == "dsnet" else {}
        rows.append(
            Row(
                key=name,
                model=model,
                config={**common, **configs[model], **base, **options},
                reported=reported,
            )
        )
    return rows


MULTI_SCALE: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
"""DSNet Table 2's "MS": the evaluation scales of the text (relative to the image size)."""

TABLE2_ROWS: tuple[str, ...] = (
    "baseline",
    "dsnet",
    "dsnet_flip",
    "dsnet_flip_ms",
    "dsnet_flip_ms_ft",
)
"""DSNet Table 2's rows in order: DeepLabv3+ (DS), DSNet (DS), + flip, + MS, + FT."""


def table2_rows(
    width: int,
    common: Mapping[str, Any],
    scales: Sequence[float],
    fine_tune_data: DataSpec,
    fine_tune: Mapping[str, Any],
) -> list[Row]:
    """DSNet Table 2 (training and evaluation strategies) as rows built on one another.

    Two trained rows, DeepLabv3+ and DSNet (X(3)/X(ASPP)), both with whatever deep
    supervision ``common`` sets; the DSNet models evaluated again with flip, then with flip
    and the ``scales`` (no training: :meth:`~repro.experiments.table.Row.evaluated`); and the
    DSNet models fine-tuned on ``fine_tune_data`` (the paper's "original" VOC train set) with
    the ``fine_tune`` training overrides, evaluated with flip and scales.
    """
    configs = dsnet_family_configs(width)
    baseline = Row(
        "baseline",
        "deeplabv3plus",
        {**common, **configs["deeplabv3plus"]},
        reported="dsnet.t2.baseline-ds.miou",
        label="DeepLabv3+",
    )
    dsnet = Row(
        "dsnet",
        "dsnet",
        {**common, **configs["dsnet"], "low_level": "x3", "high_level": "aspp"},
        reported="dsnet.t2.dsnet-ds.miou",
        label="DSNet",
    )
    flip_ms = {"eval_flip": True, "eval_scales": tuple(scales)}
    return [
        baseline,
        dsnet,
        dsnet.evaluated(
            "dsnet_flip", eval_flip=True, reported="dsnet.t2.dsnet-ds-flip.miou", label="+flip"
        ),
        dsnet.evaluated(
            "dsnet_flip_ms", **flip_ms, reported="dsnet.t2.dsnet-ds-flip-ms.miou", label="+MS"
        ),
        dataclasses.replace(
            dsnet,
            key="dsnet_flip_ms_ft",
            train={**fine_tune, **flip_ms},
            data=fine_tune_data,
            reported="dsnet.t2.dsnet-ds-flip-ms-ft.miou",
            label="+FT",
            init_from="dsnet",
        ),
    ]


def fine_tune_data(data: DataSpec, dataset: str, num_train: int) -> DataSpec:
    """The "original" training set DSNet Table 2's FT step fine-tunes on, with exact labels.

    On the offline dataset: its first ``num_train`` training images (item ``i`` depends only on
    the seed, split and ``i``, so they are images the network was trained on, as VOC train is
    part of VOC aug) with their exact labels. On real data: ``dataset``'s ``train`` split (VOC
    2012's 1,464 originally annotated images for ``voc``).
    """
    if data.dataset == "offline":
        return dataclasses.replace(
            data, offline={**data.offline, "num_train": num_train}, train_labels="full"
        )
    return dataclasses.replace(data, dataset=dataset, train_split="train", train_labels="full")


@dataclass(frozen=True, kw_only=True)
class DSNetTableSetting(TableSetting):
    """What every DSNet training table shares (:class:`~repro.experiments.table_setting.
    TableSetting`) and DSNet's branch width.

    The fields are the parameter names of the DSNet table notebooks (``dsnet_feature_pairs``,
    ``dsnet_samplers``, ``dsnet_strategies``, ``dsnet_sampling_points``), so
    :meth:`from_parameters` reads them from the notebook's namespace and a notebook's cells
    hold only what is specific to its table.
    """

    width: int

    def recorded(self) -> dict[str, str]:
        """The network part of a result's setting (the table adds data and recipe)."""
        low = self.image_size // 8
        high = self.image_size // self.output_stride
        return {
            "network": f"DSNet on {self.backbone} (OS {self.output_stride}, "
            f"{describe_weights(self.weights)}), {self.width}-channel branches",
            "feature maps": f"X(3) {low}x{low}, X(4)/X(5)/X(ASPP) {high}x{high}",
            "deep supervision": "aux X(4) loss" if self.deep_supervision else "none",
        }


def sampler_table(setting: DSNetTableSetting, names: Sequence[str], prefix: str) -> TableSpec:
    """The table of :data:`SAMPLER_ROWS` ``names`` on ``setting``, keeping every trained model.

    Shared by ``dsnet_samplers`` (the sampler ablation and related works of DSNet's text) and
    ``dsnet_sampling_points`` (DSNet Fig. 4, drawn from the trained models): the run cache keys a
    run by its model, data, recipe, seed, threads and code, never by the table's prefix or its
    other rows, so the same rows on the same setting are the same runs and the figure's
    notebook draws the very models the ablation trained and scored.
    """
    rows = sampler_rows(names, setting.width, setting.model_options())
    return setting.table_spec(prefix, rows, keep_weights=True)


def record_differences_from(
    table: TableResult, reference: str, others: Sequence[str], what: str
) -> None:
    """``<prefix>/<reference>_minus_<other>/miou`` for each other row, on the same seeds.

    ``what`` names the reference in the descriptions (``"X(3)/X(ASPP)"``). Rows not in the
    table are skipped, so a notebook run on fewer rows records what it can.
    """
    keys = {row.key for row in table.spec.rows}
    if reference not in keys:
        return
    prefix = f"{table.spec.prefix}/" if table.spec.prefix else ""
    for other in others:
        if other != reference and other in keys:
            table.record_difference(
                f"{prefix}{reference}_minus_{other}/miou",
                reference,
                other,
                description=f"{what} minus {other}, same seed",
            )
