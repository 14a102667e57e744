"""Choosing the per-image procedure's settings by measurement: a coordinate search.

``repro segment``'s defaults (:data:`repro.singleimage.tool.TOOL_CONFIG`) are chosen on a
tuning set and judged on a separate evaluation set (:mod:`repro.data.photo_composites`).
:func:`coordinate_search` starts from one configuration and improves it one stage at a time
(features, then optimiser, ...): every option of a stage is scored over the tuning images and
seeds, and the best mean score is kept for the stages after it. A stage's options are partial
settings (``{"optimizer": "adam", "lr": 0.01}``), so settings that only make sense together
move together. Ties keep the current setting, which is always one of the
options, so the score never gets worse from stage to stage on the tuning set.

A time budget (``max_seconds``) makes the search a constrained one: an option whose mean time per
image (measured in the same evaluations) exceeds it cannot be chosen, so the tool's speed
target is a constraint of the choice rather than a check after it. The start should lie within
the budget; a stage none of whose candidates does keeps the fastest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from repro.singleimage.grid import ImageSet, evaluate_grid
from repro.singleimage.procedure import SingleImageConfig

Stage = tuple[str, Sequence[Mapping[str, Any]]]
"""A stage's name and its options, each a partial :class:`SingleImageConfig`."""


@dataclass
class SearchResult:
    """The search's scores (one row per stage, option and seed) and the configuration chosen."""

    scores: pd.DataFrame
    chosen: SingleImageConfig
    choices: dict[str, str]


def option_label(option: Mapping[str, Any]) -> str:
    """``"optimizer=adam, lr=0.01"``: an option in one line (``None`` shown as ``none``)."""
    return ", ".join(f"{k}={'none' if v is None else v}" for k, v in option.items())


def coordinate_search(
    images: ImageSet,
    start: SingleImageConfig,
    stages: Sequence[Stage],
    seeds: Sequence[int],
    *,
    score: str = "image mIoU (%)",
    max_seconds: float | None = None,
    time: str = "s/image",
    processes: int = 1,
    threads: int = 1,
) -> SearchResult:
    """Improve ``start`` one stage at a time by the mean ``score`` over ``images`` and ``seeds``.

    Each stage scores ``start``'s current setting and every option (one
    :func:`~repro.singleimage.grid.evaluate_grid` call), keeps the best mean and moves on. A
    configuration already scored in an earlier stage is not run again. With ``max_seconds``,
    only candidates whose mean ``time`` is at most that are eligible (the table's column
    ``within budget`` says which were).
    """
    if not stages:
        raise ValueError("stages: expected at least one stage, got none")
    fields = set(SingleImageConfig.__dataclass_fields__)
    for name, options in stages:
        if not options:
            raise ValueError(f"stage {name!r}: expected at least one option, got none")
        for option in options:
            unknown = set(option) - fields
            if unknown:
                raise ValueError(f"stage {name!r}: unknown settings {sorted(unknown)}")
    current = start
    scored: dict[SingleImageConfig, pd.DataFrame] = {}
    frames, choices = [], {}
    for name, options in stages:
        keys = list(options[0])
        candidates = {"current": current}
        for option in options:
            candidate = replace(current, **option)
            if candidate != current:
                candidates[option_label(option)] = candidate
        todo = {label: c for label, c in candidates.items() if c not in scored}
        if todo:
            grid = evaluate_grid(images, todo, seeds, processes=processes, threads=threads)
            for label, config in todo.items():
                scored[config] = grid[grid["config"] == label].drop(columns="config")
        means = {label: scored[c][score].mean() for label, c in candidates.items()}
        seconds = {label: scored[c][time].mean() for label, c in candidates.items()}
        within = {
            label: max_seconds is None or seconds[label] <= max_seconds for label in candidates
        }
        eligible = [label for label in candidates if within[label]]
        if eligible:
            best = max(eligible, key=lambda label: (means[label], label == "current"))
        else:
            best = min(candidates, key=lambda label: seconds[label])
        for label, config in candidates.items():
            shown = option_label({k: getattr(config, k) for k in keys})
            frames.append(
                scored[config].assign(
                    stage=name,
                    option=shown,
                    chosen=label == best,
                    **{"within budget": within[label]},
                )
            )
        current = candidates[best]
        choices[name] = option_label({k: getattr(current, k) for k in keys})
    table = pd.concat(frames, ignore_index=True)
    leading = ["stage", "option", "chosen", "within budget"]
    table = table[leading + [c for c in table.columns if c not in leading]]
    return SearchResult(scores=table, chosen=current, choices=choices)
