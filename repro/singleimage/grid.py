"""Every configuration of the per-image procedure on every seed, side by side (GDC Tables I, IV, VII).

The single-image tables score one :class:`~repro.singleimage.procedure.SingleImageConfig` per
row over a set of validation images, once per seed. The (row, seed) evaluations are independent,
so :func:`evaluate_grid` runs them in worker processes (:func:`repro.experiments.parallel.map_side_by_side`);
each worker builds the images itself from an :class:`ImageSet` rather than receiving them, and
the scores do not depend on how many run at once (every image's seed is
:func:`~repro.singleimage.evaluation.image_seed`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from repro.experiments.parallel import map_side_by_side
from repro.singleimage.evaluation import evaluate_on_images
from repro.singleimage.procedure import SingleImageConfig

GRID_COLUMNS = (
    "config", "seed", "mIoU (%)", "image mIoU (%)", "pixel acc (%)", "s/image", "skipped",
)  # fmt: skip
"""The columns of :func:`evaluate_grid`'s frame, one row per configuration and seed: the set's
mIoU (one confusion matrix) and the mean of the images' own mIoU
(:attr:`~repro.singleimage.evaluation.SetEvaluation.image_miou`)."""


@dataclass(frozen=True)
class ImageSet:
    """Validation images with scribbles: a dataset name, its options and which images.

    Args:
        dataset: a :func:`repro.data.build_dataset` name (``offline``, ``voc``, ``context``),
            or ``photo_composites`` (:class:`repro.data.photo_composites.PhotoComposites`).
        indices: the images' positions in the split.
        options: keyword options of the dataset (the offline dataset's ``image_size``,
            ``num_classes``; the composites' ``count``, ``image_size``, ``seed``); JSON values,
            so the set can be sent to a worker process.
        split: ``val`` for the datasets; ``tuning`` or ``evaluation`` for the composites.
    """

    dataset: str
    indices: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    split: str = "val"

    def __post_init__(self) -> None:
        if not self.indices:
            raise ValueError("indices: expected at least one image index, got none")
        object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))
        object.__setattr__(self, "options", dict(self.options))

    @classmethod
    def first(
        cls,
        dataset: str,
        count: int,
        options: Mapping[str, Any] | None = None,
        split: str = "val",
    ) -> ImageSet:
        """The first ``count`` images of the split (all of them when it is smaller)."""
        options = dict(options or {})
        available = len(_load_split(dataset, split, json.dumps(options, sort_keys=True)))
        return cls(dataset, tuple(range(min(count, available))), options, split)

    def load(self) -> Any:
        """The split, with scribbles (built once per process)."""
        return _load_split(self.dataset, self.split, json.dumps(self.options, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _load_split(dataset: str, split: str, options_json: str) -> Any:
    options = json.loads(options_json)
    if dataset == "photo_composites":
        from repro.data.photo_composites import PhotoComposites

        return PhotoComposites(split, **options)
    from repro.data import build_dataset

    return build_dataset(dataset, split, with_scribbles=True, **options)


def _evaluate_cell(cell: tuple[str, SingleImageConfig, int], images: ImageSet) -> dict[str, Any]:
    name, config, seed = cell
    data = images.load()
    scores = evaluate_on_images(
        data, images.indices, config, seed, data.num_classes, progress=False, description=name
    )
    return {
        "config": name,
        "seed": seed,
        "mIoU (%)": 100 * scores.miou,
        "image mIoU (%)": 100 * scores.image_miou,
        "pixel acc (%)": 100 * scores.pixel_accuracy,
        "s/image": scores.seconds_per_image,
        "skipped": len(scores.skipped),
    }


def evaluate_grid(
    images: ImageSet,
    configs: Mapping[str, SingleImageConfig],
    seeds: Sequence[int],
    *,
    processes: int = 1,
    threads: int = 1,
) -> pd.DataFrame:
    """Score every configuration with every seed over ``images``; one row per (config, seed).

    Rows come in the order of ``configs`` then ``seeds`` whatever ``processes`` is; with
    ``processes=1`` everything runs in this process. ``s/image`` is the wall time per image of
    that evaluation, measured while ``processes`` evaluations share the machine.
    """
    if not configs:
        raise ValueError("configs: expected at least one configuration, got none")
    if not seeds:
        raise ValueError("seeds: expected at least one seed, got none")
    if processes < 1 or threads < 1:
        raise ValueError(f"processes and threads must be >= 1, got {processes}, {threads}")
    cells = [(name, config, int(seed)) for name, config in configs.items() for seed in seeds]
    if processes == 1:
        from tqdm.auto import tqdm

        rows = [_evaluate_cell(cell, images) for cell in tqdm(cells, desc="configs x seeds")]
    else:
        rows = map_side_by_side(
            _evaluate_cell, cells, processes, threads, images, unit="evaluation"
        )
    return pd.DataFrame(rows, columns=list(GRID_COLUMNS))
