"""Scribble annotations: synthesis from labels, the ScribbleSup reader, and SLIC expansion.

* :func:`scribbles_from_label` makes ScribbleSup-like strokes (Lin et al., CVPR 2016) from a
  dense label, for the offline dataset: every connected region of every class, background
  included, is eroded, skeletonised, and a random part of the skeleton (around one to three
  random points of it) is kept and thickened *inside the eroded region*. A stroke therefore
  never labels a pixel outside the region of its class.
* :func:`read_scribblesup_xml` reads one ScribbleSup annotation file (``<annotation>`` with
  ``<size><width/><height/></size>`` and ``<polygon><tag>class</tag><point><X/><Y/></point>…``)
  into a scribble map. Expected layout of the real annotations: one XML file per image, named by
  the image id, e.g. ``<voc root>/pascal_2012_scribble/2007_000032.xml``.
* :func:`expand_scribbles_slic` is the label expansion of GDC Section V-A (Fig. 6): the image is
  over-segmented into SLIC superpixels (Achanta et al., TPAMI 2012) and a superpixel touched by a
  scribble of class ``c`` takes class ``c``.

Scribble maps are ``[H, W]`` uint8 with class indices and ``255`` = unlabelled, stored as palette
PNGs (:mod:`repro.data.palette`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.draw import line as draw_line
from skimage.measure import label as connected_components
from skimage.morphology import skeletonize
from skimage.segmentation import slic

from repro.data.palette import IGNORE_INDEX


def _disk(radius: int) -> np.ndarray:
    grid = np.arange(-radius, radius + 1)
    return (grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2


def scribbles_from_label(
    label: np.ndarray,
    rng: np.random.Generator,
    *,
    max_strokes_per_region: int = 3,
    stroke_radius_fraction: tuple[float, float] = (0.15, 0.45),
    stroke_width: int = 3,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Synthesise ScribbleSup-style strokes from a dense label map.

    Args:
        label: ``[H, W]`` integer class map (``ignore_index`` pixels get no scribble).
        rng: the source of all random choices (explicit for reproducibility).
        max_strokes_per_region: each region keeps 1..this many pieces of its skeleton.
        stroke_radius_fraction: a kept piece is the skeleton within a radius drawn from this
            range times the region's larger bounding-box side, around a random skeleton pixel.
        stroke_width: strokes are thickened to about this width, clipped to the eroded region.
        ignore_index: the unlabelled value of the output (and of ``label``).

    Returns:
        ``[H, W]`` uint8 scribble map: class index on stroke pixels, ``ignore_index`` elsewhere.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label: expected a 2-D [H, W] array, got shape {label.shape}")
    if max_strokes_per_region < 1:
        raise ValueError(f"max_strokes_per_region: expected >= 1, got {max_strokes_per_region}")
    scribbles = np.full(label.shape, ignore_index, dtype=np.uint8)
    rows, cols = np.indices(label.shape)
    for class_index in np.unique(label):
        if class_index == ignore_index:
            continue
        regions, count = connected_components(label == class_index, return_num=True)
        for region_index in range(1, count + 1):
            region = regions == region_index
            region_rows, region_cols = np.nonzero(region)
            extent = max(np.ptp(region_rows), np.ptp(region_cols)) + 1
            # Erode so strokes keep away from the boundary, as annotators do; thin regions
            # get less erosion so that they still receive a stroke.
            core = region
            for radius in (max(1, extent // 12), 1, 0):
                core = ndimage.binary_erosion(region, _disk(radius)) if radius else region
                if core.any():
                    break
            skeleton = skeletonize(core)
            skeleton_rows, skeleton_cols = np.nonzero(skeleton)
            if skeleton_rows.size == 0:
                continue
            kept = np.zeros_like(skeleton)
            for _ in range(int(rng.integers(1, max_strokes_per_region + 1))):
                pick = int(rng.integers(skeleton_rows.size))
                radius = rng.uniform(*stroke_radius_fraction) * extent
                near = (rows - skeleton_rows[pick]) ** 2 + (cols - skeleton_cols[pick]) ** 2
                kept |= skeleton & (near <= radius**2)
            if stroke_width > 1:
                kept = ndimage.binary_dilation(kept, _disk(stroke_width // 2)) & core
            scribbles[kept] = class_index
    return scribbles


def expand_scribbles_slic(
    image: np.ndarray,
    scribbles: np.ndarray,
    n_segments: int = 300,
    compactness: float = 10.0,
    *,
    ignore_index: int = IGNORE_INDEX,
    seed_pixels_win: bool = True,
) -> np.ndarray:
    """Expand scribbles to whole SLIC superpixels (GDC Section V-A, Fig. 6).

    "For a superpixel, if there is a scribble with class c overlap[ping it], we mark all the pixels
    in [it] with label c." The paper does not say what happens when scribbles of several classes
    touch one superpixel. Conflict rule used here: the class with the most scribble pixels inside
    the superpixel wins (ties go to the smaller class index), and, with ``seed_pixels_win``, the
    scribble pixels themselves always keep their own class. Superpixels touched by no scribble
    stay ``ignore_index``.

    Args:
        image: ``[H, W, 3]`` RGB or ``[H, W]`` grey image (any numeric dtype).
        scribbles: ``[H, W]`` class map, ``ignore_index`` = unlabelled.
        n_segments: approximate number of superpixels (``skimage.segmentation.slic``).
        compactness: SLIC colour/space trade-off (higher = more square superpixels).

    Returns:
        ``[H, W]`` uint8 expanded label map.
    """
    image = np.asarray(image)
    scribbles = np.asarray(scribbles)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image: expected [H, W, 3] or [H, W], got shape {image.shape}")
    if scribbles.shape != image.shape[:2]:
        raise ValueError(
            f"scribbles: expected shape {image.shape[:2]} (the image's H, W), got {scribbles.shape}"
        )
    if n_segments < 1:
        raise ValueError(f"n_segments: expected >= 1, got {n_segments}")
    segments = slic(
        image,
        n_segments=n_segments,
        compactness=compactness,
        start_label=0,
        channel_axis=-1 if image.ndim == 3 else None,
    )
    num_segments = int(segments.max()) + 1
    labelled = scribbles != ignore_index
    classes = scribbles[labelled].astype(np.int64)
    expanded = np.full(scribbles.shape, ignore_index, dtype=np.uint8)
    if classes.size == 0:
        return expanded
    num_classes = int(classes.max()) + 1
    votes = np.bincount(
        segments[labelled].astype(np.int64) * num_classes + classes,
        minlength=num_segments * num_classes,
    ).reshape(num_segments, num_classes)
    winner = votes.argmax(axis=1)  # argmax takes the first maximum: ties go to the smaller index
    touched = votes.sum(axis=1) > 0
    segment_label = np.where(touched, winner, ignore_index).astype(np.uint8)
    expanded = segment_label[segments]
    if seed_pixels_win:
        expanded[labelled] = scribbles[labelled]
    return expanded


def _canonical(name: str) -> str:
    return "".join(name.lower().split()).replace("_", "").replace("-", "")


def read_scribblesup_xml(
    path: str | Path,
    class_names: Sequence[str],
    *,
    stroke_width: int = 3,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Read one ScribbleSup XML annotation into a ``[H, W]`` uint8 scribble map.

    Consecutive points of a ``<polygon>`` are joined by straight segments, thickened to about
    ``stroke_width`` pixels; points outside the image are clipped to it. Class tags are matched to
    ``class_names`` ignoring case, spaces, ``_`` and ``-`` (``"tv monitor"`` = ``"tvmonitor"``).
    Where strokes of different classes cross, the one later in the file wins.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ScribbleSup annotation not found: {path}")
    root = ElementTree.parse(path).getroot()
    width_text, height_text = root.findtext("size/width"), root.findtext("size/height")
    if width_text is None or height_text is None:
        raise ValueError(f"ScribbleSup file {path}: missing <size><width/><height/></size>")
    height, width = int(height_text), int(width_text)
    lookup = {_canonical(name): index for index, name in enumerate(class_names)}
    scribbles = np.full((height, width), ignore_index, dtype=np.uint8)
    for polygon in root.iter("polygon"):
        tag = (polygon.findtext("tag") or "").strip()
        if _canonical(tag) not in lookup:
            raise ValueError(
                f"ScribbleSup file {path}: class tag {tag!r} is not one of {list(class_names)}"
            )
        stroke = np.zeros((height, width), dtype=bool)
        points = [
            (int(float(point.findtext("Y", "0"))), int(float(point.findtext("X", "0"))))
            for point in polygon.iter("point")
        ]
        points = [(min(max(r, 0), height - 1), min(max(c, 0), width - 1)) for r, c in points]
        if len(points) == 1:
            stroke[points[0]] = True
        for (r0, c0), (r1, c1) in zip(points[:-1], points[1:], strict=True):
            line_rows, line_cols = draw_line(r0, c0, r1, c1)
            stroke[line_rows, line_cols] = True
        if stroke_width > 1:
            stroke = ndimage.binary_dilation(stroke, _disk(stroke_width // 2))
        scribbles[stroke] = lookup[_canonical(tag)]
    return scribbles
