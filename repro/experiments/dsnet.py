"""DSNet (Fu et al., AAAI 2020) recipes: the baseline and DSNet at one width.

Editing one of these builders changes only the notebooks that train DSNet's models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from repro.experiments.table import Row

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
