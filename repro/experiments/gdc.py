"""GDC (Sun et al., TCSVT 2021) recipes: the rows of Table V and of Tables II-III.

Editing one of these builders changes only the GDC chapter's notebooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from repro.experiments.supervised import DataSpec
from repro.experiments.table import Row

PYRAMID_MODULE_MODELS: dict[str, str] = {
    "none": "mobilenetv2",
    "aspp": "mobilenetv2_aspp",
    "saspp": "mobilenetv2_saspp",
    "gdpp": "mobilenetv2_gdpp",
}
"""Table V rows -> registry names (the metric keys use the short names)."""

TABLE5_BUDGETS: tuple[str, ...] = ("epochs50", "epochs100")
"""Table V's two budgets (50 and 100 epochs), the names its metric keys keep."""

CITYSCAPES_MODELS: dict[str, str] = {"deeplabv3": "deeplabv3", "deeplabv3_gdpp": "deeplabv3_gdpp"}
"""Sec. V-B3: DeepLabv3's ASPP against ASPP with its dilated convolutions replaced by GDC."""

LABEL_SOURCES: dict[str, str] = {"gdc_pseudo": "pseudo", "scribbles": "scribbles", "full": "full"}
"""Tables II-III label sources -> :attr:`DataSpec.train_labels`."""


def _scaled_rate(rate: float, scale: float) -> int:
    # Round half up (Python's round() would send 4.5 to 4) and keep every dilation >= 1.
    return max(1, int(rate * scale + 0.5))


def pyramid_module_configs(
    rate_scale: float = 1.0, output_stride: int = 16, num_eval_draws: int = 50
) -> dict[str, tuple[str, dict[str, Any]]]:
    """GDC Table V's four context modules as ``{row: (registry name, model config)}``.

    The paper's geometry (Sec. V-B2) is set for a 513-pixel crop at output stride 16, a
    33 x 33 feature map: ASPP dilations (6, 12, 18) (DeepLabv3; doubled at stride 8), S-ASPP
    (1, 9, 18), GDPP dilations 1 and 18 around one shared-offset GDC with base 9 and sigma 2
    (Eq. 4). At a smaller feature map those reaches fall off the map, so ``rate_scale``
    (feature-map side over 33) multiplies every dilation (rounded half up, at least 1), the GDC
    base and sigma; ``1.0`` gives the paper's values. The small dilation 1 stays 1. GDPP is
    evaluated with the mean of ``num_eval_draws`` offset draws.
    """
    if not rate_scale > 0:
        raise ValueError(f"rate_scale must be > 0, got {rate_scale!r}")
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
    aspp_rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
    small, base, sigma, large = 1, 9.0, 2.0, 18
    return {
        "none": (PYRAMID_MODULE_MODELS["none"], {}),
        "aspp": (
            PYRAMID_MODULE_MODELS["aspp"],
            {"context_options": {"rates": tuple(_scaled_rate(r, rate_scale) for r in aspp_rates)}},
        ),
        "saspp": (
            PYRAMID_MODULE_MODELS["saspp"],
            {
                "context_options": {
                    "rates": (
                        small,
                        _scaled_rate(base, rate_scale),
                        _scaled_rate(large, rate_scale),
                    )
                }
            },
        ),
        "gdpp": (
            PYRAMID_MODULE_MODELS["gdpp"],
            {
                "context_options": {
                    "rates": (small, _scaled_rate(large, rate_scale)),
                    "bases": (base * rate_scale,),
                    "sigma": sigma * rate_scale,
                    "num_eval_draws": num_eval_draws,
                }
            },
        ),
    }


def table5_rows(
    modules: Sequence[str],
    budgets: Mapping[str, int],
    common: Mapping[str, Any],
    rate_scale: float,
    output_stride: int = 16,
    num_eval_draws: int = 50,
) -> list[Row]:
    """Table V: each context module in ``modules`` at each budget (``{"epochs50": 4, ...}``).

    Row keys are ``<module>/<budget>`` (metric keys ``table5/<module>/<budget>/miou``); the
    paper prints the plain network once, on the 50-epoch line.
    """
    configs = pyramid_module_configs(rate_scale, output_stride, num_eval_draws)
    unknown = [m for m in modules if m not in configs]
    if unknown:
        raise ValueError(f"rows: {unknown} not in {list(configs)}")
    rows = []
    for module in modules:
        name, config = configs[module]
        for budget, epochs in budgets.items():
            if module == "none":
                reported = "gdc.t5.none.miou" if budget == TABLE5_BUDGETS[0] else None
            else:
                reported = f"gdc.t5.{module}.{budget}.miou"
            rows.append(
                Row(
                    key=f"{module}/{budget}",
                    model=name,
                    config={**common, **config},
                    train={"epochs": epochs},
                    columns={"module": module, "budget": budget, "epochs": epochs},
                    reported=reported,
                    label=f"{module} ({epochs} ep)",
                )
            )
    return rows


def cityscapes_rows(
    common: Mapping[str, Any], epochs: int, num_eval_draws: int = 50, rate_scale: float = 1.0
) -> list[Row]:
    """Sec. V-B3: DeepLabv3 against DeepLabv3 + GDPP (metric keys ``cityscapes/<row>/miou``)."""
    gdpp = pyramid_module_configs(rate_scale, 16, num_eval_draws)["gdpp"][1]
    reported = {
        "deeplabv3": "gdc.text.deeplabv3-cityscapes.miou",
        "deeplabv3_gdpp": "gdc.text.deeplabv3-gdpp-cityscapes.miou",
    }
    return [
        Row(
            key=key,
            model=name,
            config={**common, **(gdpp if key == "deeplabv3_gdpp" else {})},
            train={"epochs": epochs},
            reported=reported[key],
        )
        for key, name in CITYSCAPES_MODELS.items()
    ]


def label_source_rows(
    sources: Sequence[str],
    data: DataSpec,
    pseudo_labels: Any,
    network: str,
    config: Mapping[str, Any],
) -> list[Row]:
    """Tables II-III at reduced scale: one network trained on each label source.

    Row keys are the sources (metric keys ``table2/<source>/miou``); only the training labels
    differ between rows, validation always uses the full labels.
    """
    unknown = [s for s in sources if s not in LABEL_SOURCES]
    if unknown:
        raise ValueError(f"sources: {unknown} not in {list(LABEL_SOURCES)}")
    return [
        Row(
            key=source,
            model=network,
            config=dict(config),
            data=replace(data, train_labels=LABEL_SOURCES[source], pseudo_labels=pseudo_labels),
            columns={"labels": source},
        )
        for source in sources
    ]


def _count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def table5_parameter_counts(
    num_classes: int,
    common: Mapping[str, Any],
    rate_scale: float,
    output_stride: int = 16,
    num_eval_draws: int = 50,
) -> list[dict[str, Any]]:
    """Parameters of each Table V module and network, at this run's size and the paper's.

    The paper's counts of ASPP and GDPP are lost in the text (Table V); counting needs no
    training. The paper's size is MobileNetV2 x1.0 with a 256-channel tail and the paper's
    dilations, 21 classes; this run's size is ``common`` (e.g. ``width_mult``, ``channels``)
    with the dilations scaled by ``rate_scale``.
    """
    from repro import models  # a model per row, only when counting

    here = pyramid_module_configs(rate_scale, output_stride, num_eval_draws)
    counts = []
    for row, (name, config) in pyramid_module_configs(1.0, 16).items():
        small = models.build(here[row][0], num_classes=num_classes, **{**common, **here[row][1]})
        paper = models.build(name, num_classes=21, channels=256, **config)
        counts.append(
            {
                "row": row,
                "context module (this run)": _count(small.context),
                "network (this run)": _count(small),
                "context module (paper size)": _count(paper.context),
                "network (paper size, 21 classes)": _count(paper),
            }
        )
    return counts
