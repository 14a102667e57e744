"""The offline dataset: shape-defined object classes textured with real photos, in VOC layout.

What it is
----------
Every image is a random crop of a real photograph or texture that ships inside scikit-image or
scikit-learn (astronaut, coffee, chelsea, rocket, motorcycle, camera, coins, moon, Hubble deep
field, retina, IHC, page; the brick, grass and gravel textures; China and flower), cluttered with
a few irregular textured blobs that belong to the background, and one to four objects pasted on
top of it. An object's class is its *shape* — disc, ring, square, triangle, cross, bar, star,
crescent (the first ``num_classes - 1`` of them) — while its texture is a random crop of the same
image pool, so texture and colour carry no information about the class: the same textures cover
every class. Objects are rotated at random, their size (the diameter of the circle they fit in)
is drawn log-uniformly from ``scale_range`` (12 to 108 px by default, a 9× range within every
class), and later objects occlude earlier ones. Ring, cross, bar, star and crescent have parts
two to a few pixels thin.

Figure and ground (``grey_background``, the default since generator version 2): the background
photo and its clutter blobs are desaturated, the objects keep their colour (grey textures get a
random tint). Colour then tells *that* a pixel belongs to an object, never *which* class it is.
Version 1 textured objects and background from the same colour pool, so an object was only a
texture discontinuity, often invisible (a crop of the same photo on the same photo), and
networks trained from random initialisation within a CPU budget did not get past predicting
background. The claims tested here are about gathering context to name a region, not about figure-ground
segregation by texture, so the cue removes a difficulty the papers do not study.

Every image also has scribbles in the spirit of ScribbleSup: each region of each class,
background included, is eroded and skeletonised and a random part of its skeleton is kept as a
stroke (:func:`repro.data.scribbles.scribbles_from_label`).

The dataset is written in the PASCAL VOC layout (``VOCdevkit/VOC2012/JPEGImages/*.jpg``,
``SegmentationClass/*.png`` palette labels, ``SegmentationScribbles/*.png`` with 255 =
unlabelled, ``ImageSets/Segmentation/{train,val,trainval}.txt``) and read by the same loader as
VOC 2012, so every experiment goes through the real data path. It is generated deterministically
from its parameters and seed (item ``i`` of a split depends only on ``(seed, split, i)``, so a
smaller dataset is a prefix of a larger one) and cached on disk under a key that hashes them.

Why it is a fair stand-in
-------------------------
The three papers' claims are about *how a network gathers context*: CGDS (DSNet) and DDSM
predict where to sample from high-level context, GDC/GDPP scatter sampling taps over a wide,
random range. Here a pixel inside a large disc looks exactly like a pixel inside a large square
or ring (same textures); only the shape of the whole object — information tens of pixels away —
decides its class, and objects of one class span a 9× range of scales, which is what multi-scale
context modules are for. Thin parts and occlusion boundaries test whether fine detail survives
the fusion of low- and high-level features. A plain FCN with a small receptive field cannot solve
it; a network that gathers context can. The scribbles let GDC's single-image experiment (Section
V-A: scribbles → SLIC-expanded labels → a small network trained on one image) run end to end.

What it cannot show
-------------------
Absolute numbers: no paper number is comparable to a number measured here. Figure-ground
segregation is easier than in photographs (colour against grey, see above). There is no semantic
co-occurrence between classes (a disc says nothing about what surrounds it), no ImageNet
pre-training benefit (textures are arbitrary photos, backbones start from scratch), 128×128
images instead of 512×512 crops, eight classes instead of 21 to 150, and synthetic scribbles
that follow the skeleton of the true label more faithfully than human strokes do. Only the
*direction* of each claim (does the module help, which variant is better, beyond the
seed-to-seed spread) is tested on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from repro.data.palette import IGNORE_INDEX, write_label_png
from repro.data.scribbles import scribbles_from_label
from repro.data.shapes import SHAPES, draw_shape
from repro.data.texture_pool import random_texture
from repro.paths import cache_dir

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2
"""Bumped whenever generation changes, so that old caches are not reused."""

COMPLETE_MARKER = "COMPLETE.json"
"""Written last; holds the manifest (relative path → size) that validates the cache."""

META_FILE = "offline_meta.json"
SPLIT_CODES = {"train": 1, "val": 2}
JPEG_QUALITY = 95


@dataclass(frozen=True)
class OfflineParameters:
    """The parameters that define one offline dataset (and its cache key)."""

    num_classes: int = 9
    image_size: int = 128
    num_train: int = 1000
    num_val: int = 200
    scale_range: tuple[float, float] = (12.0, 108.0)
    max_objects: int = 4
    max_clutter_blobs: int = 3
    grey_background: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(SHAPES) + 1:
            raise ValueError(
                f"num_classes: expected 2..{len(SHAPES) + 1} (background + up to {len(SHAPES)} "
                f"shapes), got {self.num_classes}"
            )
        if self.image_size < 16:
            raise ValueError(f"image_size: expected >= 16 pixels, got {self.image_size}")
        if self.num_train < 1 or self.num_val < 1:
            raise ValueError(
                f"num_train/num_val: expected >= 1 each, got {self.num_train}/{self.num_val}"
            )
        low, high = self.scale_range
        if not 2 <= low <= high:
            raise ValueError(
                f"scale_range: expected 2 <= low <= high pixels, got {self.scale_range}"
            )
        if self.max_objects < 1 or self.max_clutter_blobs < 0:
            raise ValueError(
                f"max_objects >= 1 and max_clutter_blobs >= 0 expected, got "
                f"{self.max_objects}, {self.max_clutter_blobs}"
            )

    @property
    def class_names(self) -> list[str]:
        """``background`` followed by the shape names in use."""
        return ["background", *list(SHAPES)[: self.num_classes - 1]]

    def cache_key(self) -> str:
        """A readable prefix and a hash of every parameter and the generator version."""
        payload = json.dumps(
            {"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True, default=list
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return (
            f"c{self.num_classes}_s{self.image_size}_n{self.num_train}-{self.num_val}"
            f"_seed{self.seed}_{digest}"
        )


def default_cache_dir() -> Path:
    """``$REPRO_CACHE/offline`` if the variable is set, else ``~/.cache/repro/offline``."""
    return cache_dir("offline")


def _image_rng(params: OfflineParameters, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([params.seed, SPLIT_CODES[split], index]))


def _clutter_blob(
    rng: np.random.Generator, rows: np.ndarray, cols: np.ndarray, size: int
) -> np.ndarray:
    # Elongated outlines with a wobbly edge, so that clutter is not mistaken for a shape class
    # (no class is elongated and wobbly at once).
    center = rng.uniform(0, size, 2)
    radius = rng.uniform(0.1, 0.35) * size
    angle = np.arctan2(rows - center[0], cols - center[1])
    outline = radius * (
        1
        + rng.uniform(0.25, 0.4) * np.sin(2 * angle + rng.uniform(0, 2 * np.pi))
        + rng.uniform(0.05, 0.1) * np.sin(int(rng.integers(6, 10)) * angle + rng.uniform(0, 7))
    )
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= outline**2


def _desaturated(texture: np.ndarray) -> np.ndarray:
    return np.repeat(texture.mean(axis=2, keepdims=True), 3, axis=2)


def generate_sample(
    params: OfflineParameters, split: str, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image ``[S, S, 3]`` uint8, label ``[S, S]`` uint8 and scribbles of one item.

    Depends only on ``(params, split, index)``.
    """
    if split not in SPLIT_CODES:
        raise ValueError(f"split: expected one of {list(SPLIT_CODES)}, got {split!r}")
    rng = _image_rng(params, split, index)
    size = params.image_size
    rows, cols = np.indices((size, size)).astype(np.float32)
    background = _desaturated if params.grey_background else (lambda texture: texture)
    image = background(random_texture(rng, size))
    label = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(0, params.max_clutter_blobs + 1))):
        blob = _clutter_blob(rng, rows, cols, size)
        image[blob] = background(random_texture(rng, size))[blob]
    shape_names = params.class_names[1:]
    low, high = params.scale_range
    for _ in range(int(rng.integers(1, params.max_objects + 1))):
        class_index = int(rng.integers(len(shape_names))) + 1
        extent = float(math.exp(rng.uniform(math.log(low), math.log(high))))
        # Centres may sit near the border; up to about a third of a large object can be cut off.
        margin = min(extent / 6.0, size / 2.0)
        center = (
            float(rng.uniform(margin, size - margin)),
            float(rng.uniform(margin, size - margin)),
        )
        mask = draw_shape(
            shape_names[class_index - 1],
            rows,
            cols,
            center,
            extent,
            float(rng.uniform(0, 2 * np.pi)),
        )
        image[mask] = random_texture(rng, size)[mask]
        label[mask] = class_index
    scribbles = scribbles_from_label(label, rng)
    return np.clip(image, 0, 255).round().astype(np.uint8), label, scribbles


def _year_dir(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2012"


def _write_dataset(root: Path, params: OfflineParameters) -> dict[str, int]:
    year_dir = _year_dir(root)
    for folder in ("JPEGImages", "SegmentationClass", "SegmentationScribbles"):
        (year_dir / folder).mkdir(parents=True, exist_ok=True)
    split_ids: dict[str, list[str]] = {}
    total = params.num_train + params.num_val
    with tqdm(total=total, desc="offline dataset", unit="img", leave=False) as progress:
        for split, count in (("train", params.num_train), ("val", params.num_val)):
            split_ids[split] = []
            for index in range(count):
                image_id = f"{split}_{index:06d}"
                image, label, scribbles = generate_sample(params, split, index)
                Image.fromarray(image).save(
                    year_dir / "JPEGImages" / f"{image_id}.jpg", quality=JPEG_QUALITY
                )
                write_label_png(year_dir / "SegmentationClass" / f"{image_id}.png", label)
                write_label_png(year_dir / "SegmentationScribbles" / f"{image_id}.png", scribbles)
                split_ids[split].append(image_id)
                progress.update(1)
    lists = year_dir / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    split_ids["trainval"] = split_ids["train"] + split_ids["val"]
    for split, ids in split_ids.items():
        (lists / f"{split}.txt").write_text("".join(f"{image_id}\n" for image_id in ids))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "parameters": asdict(params),
        "class_names": params.class_names,
        "ignore_index": IGNORE_INDEX,
    }
    (root / META_FILE).write_text(json.dumps(meta, indent=2))
    return {
        str(path.relative_to(root)): path.stat().st_size
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def is_complete(root: str | Path) -> bool:
    """Whether ``root`` holds a complete offline dataset: marker present, every file intact."""
    root = Path(root)
    marker = root / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        manifest = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return False
    for relative, size in manifest.items():
        path = root / relative
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def read_offline_meta(root: str | Path) -> dict:
    """The metadata (parameters, class names) of a built offline dataset."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"offline dataset: {path} not found; build it with "
            "repro.data.offline.build_offline_dataset()"
        )
    return json.loads(path.read_text())


def build_offline_dataset(
    root: str | Path | None = None,
    *,
    num_classes: int = 9,
    image_size: int = 128,
    num_train: int = 1000,
    num_val: int = 200,
    scale_range: tuple[float, float] = (12.0, 108.0),
    max_objects: int = 4,
    max_clutter_blobs: int = 3,
    grey_background: bool = True,
    seed: int = 0,
) -> Path:
    """Generate the offline dataset (or reuse its cache) and return its root.

    Args:
        root: the cache folder under which ``<key>/`` is made; default :func:`default_cache_dir`.
        num_classes: classes including background (2..9): background + the first
            ``num_classes - 1`` of disc, ring, square, triangle, cross, bar, star, crescent.
        image_size: side of the square images in pixels.
        num_train, num_val: number of images per split.
        scale_range: object extent range in pixels (log-uniform).
        max_objects: each image has 1..max_objects objects.
        max_clutter_blobs: each image has 0..this many textured background blobs.
        grey_background: desaturate background and clutter, objects keep their colour
            (see the module docstring); ``False`` is generator version 1's appearance.
        seed: generation seed.

    Returns:
        The dataset root, holding ``VOCdevkit/VOC2012`` (read it with
        ``build_dataset("offline", ...)`` or :class:`~repro.data.voc.VOCSegmentationDataset`).

    A cache missing its completion marker, or with a file missing or of the wrong size, is
    rebuilt. Building happens in a temporary sibling folder that is renamed into place at the end,
    so an interrupted build never leaves a cache that looks complete.
    """
    params = OfflineParameters(
        num_classes=num_classes,
        image_size=image_size,
        num_train=num_train,
        num_val=num_val,
        scale_range=(float(scale_range[0]), float(scale_range[1])),
        max_objects=max_objects,
        max_clutter_blobs=max_clutter_blobs,
        grey_background=grey_background,
        seed=seed,
    )
    cache_dir = Path(root).expanduser() if root is not None else default_cache_dir()
    target = cache_dir / params.cache_key()
    if is_complete(target):
        logger.debug("offline dataset: reusing %s", target)
        return target
    if target.exists():
        logger.warning(
            "offline dataset: cache at %s is incomplete or corrupted; rebuilding", target
        )
        shutil.rmtree(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    logger.info("offline dataset: generating %s", target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
    try:
        manifest = _write_dataset(staging, params)
        (staging / COMPLETE_MARKER).write_text(json.dumps({"files": manifest}, indent=1))
        try:
            staging.rename(target)
        except OSError:
            # Another process finished the same dataset first; use it if it is complete.
            if not is_complete(target):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
