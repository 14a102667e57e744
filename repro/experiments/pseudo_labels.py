"""Pseudo labels from GDC single-image segmentation, and training sets labelled three ways.

GDC Tables II-III (Sun et al., TCSVT 2021, Sec. V-A3): every scribble-annotated training image
is segmented on its own by the single-image procedure (:func:`repro.singleimage.segment_image`:
fresh lightweight GDC network, 50 SGD steps, SLIC-expanded scribbles, weighted CE, average of
T draws); the results are the training labels of an ordinary segmentation network (DeepLab-v1
in the paper). This module:

* :func:`generate_pseudo_labels` runs the procedure over a dataset's images and caches the
  results as palette PNGs (255 = unlabelled) under a folder keyed by everything that decides
  them (dataset, images, procedure settings, seed), so training runs and re-runs reuse them;
* :class:`RelabelledDataset` gives a dataset's images with labels from one ``LABEL_SOURCES``
  entry: the full labels, the raw scribbles (unlabelled = ignore, i.e. partial cross-entropy)
  or the cached pseudo labels;
* :func:`score_label_source` scores a label source against the full labels.

An image whose scribbles hold fewer than two classes cannot be segmented by the procedure
(nothing to separate); its pseudo label is its scribble map (unlabelled = ignore) and it is
listed in the cache's ``fallback`` entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from repro.data.base import SegmentationDataset
from repro.data.palette import IGNORE_INDEX, read_label_png, write_label_png
from repro.engine.metrics import ConfusionMatrix
from repro.models.pretrained import is_offline_pretrained, weights_identity
from repro.paths import cache_dir
from repro.singleimage import SingleImageConfig, image_seed, segment_image

logger = logging.getLogger(__name__)

LABEL_SOURCES = ("full", "scribbles", "pseudo", "coarse")

COARSE_LABEL_GRID = 4
"""Pixels per side of the grid ``"coarse"`` labels are resampled on (:func:`coarse_label`)."""


def coarse_label(label: np.ndarray, grid: int = COARSE_LABEL_GRID) -> np.ndarray:
    """``label`` resampled on a ``grid``-pixel grid: each block takes its centre pixel's class.

    The stand-in of the coarser annotations of VOC's augmented training set (SBD, DSNet
    Table 2 "FT": "the different distributions between the original dataset and augmented
    training set"): regions keep their classes, boundaries become blocky and thin parts
    appear or vanish, as in hand-drawn polygons.
    """
    if grid < 1:
        raise ValueError(f"grid: expected >= 1, got {grid}")
    height, width = label.shape
    centres = label[min(grid // 2, height - 1) :: grid, min(grid // 2, width - 1) :: grid]
    blocks = np.repeat(np.repeat(centres, grid, axis=0), grid, axis=1)
    return np.ascontiguousarray(blocks[:height, :width])


META_FILE = "pseudo_labels.json"


def default_pseudo_label_cache() -> Path:
    """``$REPRO_CACHE/pseudo_labels`` if the variable is set, else ``~/.cache/repro/pseudo_labels``."""
    return cache_dir("pseudo_labels")


def _image_ids(dataset: SegmentationDataset) -> list[str]:
    ids = getattr(dataset, "ids", None)
    return [str(i) for i in ids] if ids is not None else [Path(p).stem for p in dataset.images]


def pseudo_label_key(dataset: SegmentationDataset, config: SingleImageConfig, seed: int) -> str:
    """Cache key: a hash of the dataset's image files, the procedure's settings and the seed."""
    identity = {
        "dataset": dataset.name,
        "images": [str(Path(p).resolve()) for p in dataset.images],
        "config": config.to_dict(),
        "seed": int(seed),
    }
    if is_offline_pretrained(config.weights):
        # The name stays the same when the weights are pretrained again: key on their hash.
        identity["config"]["weights"] = weights_identity(config.weights)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return digest[:16]


@dataclass
class PseudoLabelSet:
    """A folder of cached pseudo labels: ``<folder>/<image id>.png`` for every image."""

    folder: Path
    ids: list[str]
    fallback: list[str] = field(default_factory=list)
    seconds_per_image: float = float("nan")

    def path(self, image_id: str) -> Path:
        return self.folder / f"{image_id}.png"

    def load(self, image_id: str) -> np.ndarray:
        path = self.path(image_id)
        if not path.is_file():
            raise FileNotFoundError(f"pseudo label of image {image_id!r} missing: {path}")
        return read_label_png(path)


def _read_complete(folder: Path) -> PseudoLabelSet | None:
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    labels = PseudoLabelSet(folder, meta["ids"], meta["fallback"], meta["seconds_per_image"])
    if not all(labels.path(i).is_file() for i in labels.ids):
        return None
    return labels


def generate_pseudo_labels(
    dataset: SegmentationDataset,
    config: SingleImageConfig,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> PseudoLabelSet:
    """Segment every image of ``dataset`` from its scribbles (GDC Sec. V-A3) or reuse the cache.

    Args:
        dataset: a dataset with scribbles (``dataset.has_scribbles()``); its raw images and
            scribble maps are used, not its transform.
        config: the single-image procedure's settings.
        seed: image ``i`` is segmented with seed ``image_seed(seed, i)``.
        cache_dir: parent folder of the cache (default :func:`default_pseudo_label_cache`).
        progress: show a tqdm bar.

    Returns:
        The :class:`PseudoLabelSet` in ``<cache_dir>/<key>/``. The folder is built in a
        temporary sibling and renamed into place when complete, so an interrupted run never
        leaves a cache that looks complete.
    """
    if not isinstance(dataset, SegmentationDataset):
        raise TypeError(f"dataset: expected a SegmentationDataset, got {type(dataset).__name__}")
    if not dataset.has_scribbles():
        raise ValueError(f"dataset: {dataset.name!r} has no scribble annotations")
    if len(dataset) == 0:
        raise ValueError("dataset: expected at least one image, got an empty dataset")
    root = Path(cache_dir) if cache_dir is not None else default_pseudo_label_cache()
    target = root / pseudo_label_key(dataset, config, seed)
    cached = _read_complete(target)
    if cached is not None:
        logger.info("pseudo labels: reusing %s", target)
        return cached
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    ids = _image_ids(dataset)
    fallback: list[str] = []
    started = time.perf_counter()
    try:
        for index in tqdm(range(len(dataset)), desc="pseudo labels", disable=not progress):
            scribbles = dataset.scribbles(index)
            present = np.unique(scribbles[scribbles != dataset.ignore_index])
            if present.size < 2:
                # One scribbled class leaves nothing to separate: keep the scribbles as they are.
                fallback.append(ids[index])
                label = scribbles.astype(np.uint8)
            else:
                result = segment_image(
                    dataset.load_image(index),
                    scribbles.astype(np.uint8),
                    config,
                    seed=image_seed(seed, index),
                    ignore_index=dataset.ignore_index,
                )
                label = result.prediction.astype(np.uint8)
            write_label_png(staging / f"{ids[index]}.png", label)
        seconds = (time.perf_counter() - started) / len(dataset)
        meta = {
            "ids": ids,
            "fallback": fallback,
            "seconds_per_image": seconds,
            "config": config.to_dict(),
            "seed": int(seed),
            "dataset": dataset.name,
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=1))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if fallback:
        logger.warning(
            "pseudo labels: %d image(s) with < 2 scribbled classes keep their scribbles: %s",
            len(fallback),
            fallback,
        )
    return PseudoLabelSet(target, ids, fallback, seconds)


class RelabelledDataset(SegmentationDataset):
    """``base``'s images with labels from ``source`` (one of :data:`LABEL_SOURCES`).

    ``"full"``: the dataset's labels; ``"scribbles"``: its scribble maps (unlabelled pixels are
    ignored by the loss, i.e. training on the scribbles alone); ``"pseudo"``: ``pseudo_labels``;
    ``"coarse"``: the labels through :func:`coarse_label`.
    The transform, augmentation seed and class names are ``base``'s.
    """

    def __init__(
        self,
        base: SegmentationDataset,
        source: str,
        pseudo_labels: PseudoLabelSet | None = None,
    ) -> None:
        if source not in LABEL_SOURCES:
            raise ValueError(f"source: expected one of {LABEL_SOURCES}, got {source!r}")
        if source == "scribbles" and not base.has_scribbles():
            raise ValueError(f"source='scribbles' but dataset {base.name!r} has no scribbles")
        if source == "pseudo":
            if pseudo_labels is None:
                raise ValueError("source='pseudo' needs pseudo_labels, got None")
            ids = _image_ids(base)
            if ids != list(pseudo_labels.ids):
                raise ValueError(
                    f"pseudo_labels: made for {len(pseudo_labels.ids)} images that differ from the "
                    f"dataset's {len(ids)} ({pseudo_labels.folder})"
                )
        super().__init__(base.class_names, base.transform, base.seed, with_scribbles=False)
        self.base = base
        self.source = source
        self.pseudo_labels = pseudo_labels
        self.images = list(base.images)
        self.ids = _image_ids(base)
        self.name = f"{base.name}[{source} labels]"
        self.ignore_index = base.ignore_index

    def load_image(self, index: int) -> np.ndarray:
        return self.base.load_image(index)

    def load_label(self, index: int) -> np.ndarray:
        if self.source == "full":
            return self.base.load_label(index)
        if self.source == "scribbles":
            return self.base.scribbles(index)
        if self.source == "coarse":
            return coarse_label(self.base.load_label(index))
        assert self.pseudo_labels is not None
        return self.pseudo_labels.load(self.ids[index])


@dataclass
class LabelQuality:
    """How a label source agrees with the full labels (fractions), and how much it labels."""

    miou: float
    pixel_accuracy: float
    labelled_fraction: float


def score_label_source(
    dataset: RelabelledDataset, full: SegmentationDataset, indices: Sequence[int] | None = None
) -> LabelQuality:
    """mIoU and pixel accuracy of ``dataset``'s labels against ``full``'s, over labelled pixels.

    Pixels the source leaves unlabelled (255) are not counted; ``labelled_fraction`` says how
    many of the full labels' valid pixels the source labels.
    """
    if len(dataset) != len(full):
        raise ValueError(f"dataset: {len(dataset)} items, full: {len(full)}; expected the same")
    confusion = ConfusionMatrix(full.num_classes, ignore_index=IGNORE_INDEX)
    labelled = valid = 0
    for index in indices if indices is not None else range(len(full)):
        truth = full.load_label(index).astype(np.int64)
        given = dataset.load_label(index).astype(np.int64)
        keep = (given != IGNORE_INDEX) & (truth != IGNORE_INDEX)
        valid += int((truth != IGNORE_INDEX).sum())
        labelled += int(keep.sum())
        prediction = np.where(keep, given, IGNORE_INDEX)
        target = np.where(keep, truth, IGNORE_INDEX)
        confusion.update(torch.from_numpy(prediction), torch.from_numpy(target))
    return LabelQuality(
        miou=confusion.miou(),
        pixel_accuracy=confusion.pixel_accuracy(),
        labelled_fraction=labelled / valid if valid else float("nan"),
    )


def relabel(
    dataset: SegmentationDataset, source: str, pseudo_labels: PseudoLabelSet | None = None
) -> SegmentationDataset:
    """``dataset`` itself for ``"full"``; otherwise a :class:`RelabelledDataset`."""
    if source == "full":
        return dataset
    return RelabelledDataset(dataset, source, pseudo_labels)


def describe(labels: PseudoLabelSet) -> dict[str, Any]:
    """A small summary of a pseudo-label set for a notebook's setting or notes."""
    return {
        "folder": str(labels.folder),
        "images": len(labels.ids),
        "fallback (< 2 scribbled classes)": len(labels.fallback),
        "seconds per image": round(labels.seconds_per_image, 2),
    }
