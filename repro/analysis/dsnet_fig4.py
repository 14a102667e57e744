"""DSNet Fig. 4 measured: the trained models of a sampler table, scored per object and per place.

DSNet (AAAI 2020), Fig. 4 and Section "Visualization of Segmentation Results": "Compared with
baseline model, for large-scale objects, our DSNet can obtain a intact and unbroken segmentation
map; for small object, subtle boundaries can be recovered by our DSNet." The figure shows
segmentation maps of a few VOC images. Here the trained models of a
:func:`repro.experiments.dsnet.sampler_table` (DSNet = row ``conv``, DeepLabv3+, DeepLabv3+ with
DCNv2 on ASPP) are evaluated again on the whole validation set, every seed:

* :func:`score_runs`: each run's predictions (with the table's flip and scales), its mIoU
  recomputed from them (a check that these are the models the table scored), and the per-object
  IoU and boundary F per object size bin (:class:`repro.engine.object_metrics.SizeBinTally`);
* :func:`offset_lines`: the learned offsets of the rows that sample
  (:func:`repro.analysis.sampling_points.offset_table`), every position of every image;
* :func:`record_object_scores` and :func:`record_offsets` record them per row and seed under
  ``<prefix>/<row>/<size>_objects/{iou,boundary_f}`` and ``<prefix>/<row>/offset_px/<where>``,
  and the paired differences of a reference row under ``<prefix>/<ref>_minus_<row>/...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from repro.analysis.sampling_points import WHERE, offset_table, sampling_field
from repro.engine import ConfusionMatrix, predict_probabilities, resolve_device
from repro.engine.evaluate import stack_same_size
from repro.engine.object_metrics import SIZE_BINS, SizeBinTally, object_components
from repro.experiments.table import TableResult
from repro.results import Recorder

SAMPLING_ROWS: tuple[str, ...] = ("conv", "dcnv2_aspp")
"""Rows of the sampler table whose models sample with learned offsets (CGDS, DCNv2)."""


def _batches(dataset: Any, indices: Sequence[int], batch_size: int) -> DataLoader:
    subset = torch.utils.data.Subset(dataset, list(indices))
    return DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=stack_same_size)


def panel_indices(dataset: Any, count: int, minimum_objects: int = 2) -> list[int]:
    """The first ``count`` validation images with at least ``minimum_objects`` objects (so that
    each has a large and a small one), topped up with the first others when too few do."""
    rich, other = [], []
    for index in range(len(dataset)):
        objects = object_components(dataset.load_label(index), 0, dataset.ignore_index).count
        (rich if objects >= minimum_objects else other).append(index)
        if len(rich) >= count:
            break
    return (rich + other)[:count]


@dataclass
class RunScores:
    """One trained run evaluated again: its mIoU as the table recorded it and as recomputed
    here (percent), its per-size tally and its predictions of the panel images."""

    row: str
    seed: int
    table_miou: float
    miou: float
    tally: SizeBinTally
    panels: list[np.ndarray] = field(default_factory=list)


def score_runs(
    table: TableResult,
    rows: Sequence[str],
    bins: Sequence[float],
    panels: Sequence[int] = (),
    batch_size: int = 8,
) -> list[RunScores]:
    """Every (row, seed) of ``rows``: predictions on the table's validation set with its
    evaluation settings, scored per object size (``bins``, area shares) and as mIoU."""
    config = table.spec.train
    device = resolve_device(config.device)
    val_set = table.val_set
    results = []
    for row in rows:
        for seed in table.spec.seeds:
            model = table.trained_model(row, seed).to(device)
            evaluation = table.spec.evaluation(table.spec.row(row), seed)
            confusion = ConfusionMatrix(val_set.num_classes, val_set.ignore_index)
            tally = SizeBinTally(
                bins, evaluation["boundary_tolerance_px"], ignore_index=val_set.ignore_index
            )
            kept: dict[int, np.ndarray] = {}
            position = 0
            for images, labels in _batches(val_set, range(len(val_set)), batch_size):
                probabilities = predict_probabilities(
                    model,
                    images.to(device),
                    flip=evaluation["eval_flip"],
                    scales=evaluation["eval_scales"],
                )
                predictions = probabilities.argmax(dim=1).cpu()
                confusion.update(predictions, labels)
                for prediction, label in zip(predictions, labels, strict=True):
                    tally.update(prediction, label)
                    if position in panels:
                        kept[position] = prediction.numpy()
                    position += 1
            results.append(
                RunScores(
                    row=row,
                    seed=seed,
                    table_miou=float(table.runs(row).set_index("seed").loc[seed, "mIoU (%)"]),
                    miou=100 * confusion.miou(),
                    tally=tally,
                    panels=[kept[index] for index in panels],
                )
            )
    return results


def object_lines(scores: Sequence[RunScores]) -> pd.DataFrame:
    """One line per run and size bin: objects seen, mean object IoU and boundary F (%)."""
    return pd.DataFrame(
        [
            {
                "row": run.row,
                "seed": run.seed,
                "size": size,
                "objects": run.tally.count(size),
                "object IoU (%)": 100 * run.tally.iou(size),
                "boundary F (%)": 100 * run.tally.boundary_f(size),
            }
            for run in scores
            for size in SIZE_BINS
        ]
    )


@torch.no_grad()
def offset_lines(
    table: TableResult,
    rows: Sequence[str],
    bins: Sequence[float],
    batch_size: int = 8,
) -> pd.DataFrame:
    """:func:`offset_table` lines of every sampling row of ``rows`` (:data:`SAMPLING_ROWS`), every
    seed, every validation image, with ``row``, ``layer`` and ``seed`` columns."""
    val_set = table.val_set
    device = resolve_device(table.spec.train.device)
    frames = []
    for row in [r for r in rows if r in SAMPLING_ROWS]:
        for seed in table.spec.seeds:
            model = table.trained_model(row, seed).to(device)
            start = 0
            for images, labels in _batches(val_set, range(len(val_set)), batch_size):
                points = sampling_field(model, images.to(device))
                lines = offset_table(points, list(labels.numpy()), bins, 0, val_set.ignore_index)
                lines["image"] += start
                start += len(images)
                frames.append(lines.assign(row=row, layer=points.layer, seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _add(
    recorder: Recorder, key: str, frame: pd.DataFrame, column: str, unit: str, words: str
) -> bool:
    frame = frame.sort_values("seed")
    values = frame[column].to_numpy(dtype=float)
    if len(values) == 0 or not np.isfinite(values).all():
        return False  # nothing of this kind in the validation set: no metric, said by the caller
    recorder.add(key, values.tolist(), frame["seed"].tolist(), unit, words)
    return True


def record_object_scores(
    recorder: Recorder, lines: pd.DataFrame, prefix: str, reference: str
) -> list[str]:
    """Record :func:`object_lines` per row and seed and ``reference`` minus every other row
    (same seed, points); returns the size bins that had no object (nothing recorded)."""
    empty = []
    metrics = {"iou": "object IoU (%)", "boundary_f": "boundary F (%)"}
    words = {
        "iou": "mean IoU of the {size} ground-truth objects (each in its territory)",
        "boundary_f": "boundary F-score around the {size} ground-truth objects",
    }
    rows = list(dict.fromkeys(lines["row"]))
    for size in SIZE_BINS:
        own = lines[lines["size"] == size]
        if own["objects"].max() == 0:
            empty.append(size)
            continue
        for metric, column in metrics.items():
            for row in rows:
                _add(
                    recorder,
                    f"{prefix}/{row}/{size}_objects/{metric}",
                    own[own["row"] == row],
                    column,
                    "%",
                    words[metric].format(size=size),
                )
            if reference not in rows:
                continue
            base = own[own["row"] == reference].set_index("seed")[column]
            for row in rows:
                if row == reference:
                    continue
                other = own[own["row"] == row].set_index("seed")[column]
                difference = (base - other).dropna().reset_index(name="difference")
                _add(
                    recorder,
                    f"{prefix}/{reference}_minus_{row}/{size}_objects/{metric}",
                    difference,
                    "difference",
                    "points",
                    f"{reference} minus {row}, same seed: " + words[metric].format(size=size),
                )
    return empty


def offset_summary(lines: pd.DataFrame) -> pd.DataFrame:
    """Mean offset length (image px) per row, seed and place: :data:`WHERE` and near / far
    from a label boundary (``near_boundary``, ``far_from_boundary``), with position counts."""
    places = [(where, lines["where"] == where) for where in WHERE] + [
        ("near_boundary", lines["near"]),
        ("far_from_boundary", ~lines["near"]),
    ]
    summary = []
    for name, selected in places:
        grouped = lines[selected].groupby(["row", "layer", "seed"])["offset_px"]
        for (row, layer, seed), values in grouped:
            summary.append(
                {
                    "row": row,
                    "layer": layer,
                    "seed": seed,
                    "place": name,
                    "positions": len(values),
                    "mean offset (px)": values.mean(),
                    "median offset (px)": values.median(),
                }
            )
    return pd.DataFrame(summary)


def record_offsets(recorder: Recorder, summary: pd.DataFrame, prefix: str) -> None:
    """Record :func:`offset_summary`'s means under ``<prefix>/<row>/offset_px/<place>``."""
    for (row, layer, place), frame in summary.groupby(["row", "layer", "place"], sort=False):
        _add(
            recorder,
            f"{prefix}/{row}/offset_px/{place}",
            frame,
            "mean offset (px)",
            "px",
            f"{layer}: mean learned offset length over the taps of the positions "
            f"({place.replace('_', ' ')}), image pixels",
        )
