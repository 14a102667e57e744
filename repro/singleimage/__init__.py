"""GDC single-image segmentation from scribbles (GDC Sections IV-A and V-A).

:func:`segment_image` is the per-image procedure (used by the notebooks and ``repro segment``),
:func:`evaluate_on_images` scores it over a set of images, :func:`evaluate_grid` every
configuration and seed side by side, :mod:`.diversity` measures the
feature diversity of GDC Fig. 11, :mod:`.tool` holds the ``repro segment`` file handling.
"""

from repro.singleimage.evaluation import SetEvaluation, evaluate_on_images, image_seed
from repro.singleimage.grid import ImageSet, evaluate_grid
from repro.singleimage.procedure import (
    CONVOLUTIONS,
    SegmentationResult,
    SingleImageConfig,
    build_network,
    check_inputs,
    segment_image,
)

__all__ = [
    "CONVOLUTIONS",
    "ImageSet",
    "SegmentationResult",
    "SetEvaluation",
    "SingleImageConfig",
    "build_network",
    "check_inputs",
    "evaluate_grid",
    "evaluate_on_images",
    "image_seed",
    "segment_image",
]
