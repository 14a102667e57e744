"""Photo composites (repro.data.photo_composites): exact labels, disjoint sets, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from repro.data.palette import IGNORE_INDEX
from repro.data.photo_composites import (
    EVALUATION_PHOTOS,
    TUNING_PHOTOS,
    PhotoComposites,
    photo_composite,
)
from repro.data.transforms import denormalize
from repro.singleimage import ImageSet


def test_the_two_sets_share_no_photo() -> None:
    assert not set(TUNING_PHOTOS) & set(EVALUATION_PHOTOS)


@pytest.mark.parametrize("set_name", ["tuning", "evaluation"])
def test_items_are_deterministic_and_labels_exact(set_name: str) -> None:
    for index in range(4):
        image, label, scribbles = photo_composite(set_name, index, image_size=96)
        again = photo_composite(set_name, index, image_size=96)
        assert all(
            np.array_equal(a, b) for a, b in zip((image, label, scribbles), again, strict=True)
        )
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        classes = np.unique(label)
        assert classes[0] == 0 and list(classes) == list(range(len(classes)))  # consecutive
        assert len(classes) >= 2
        scribbled = scribbles[scribbles != IGNORE_INDEX]
        assert set(np.unique(scribbled)) <= set(classes)
        assert (label[scribbles != IGNORE_INDEX] == scribbled).all()  # strokes lie on their class
    other = photo_composite(set_name, 0, image_size=96, seed=1)[0]
    assert not np.array_equal(other, photo_composite(set_name, 0, image_size=96)[0])


def test_dataset_items_round_trip_and_load_through_image_sets() -> None:
    data = PhotoComposites("tuning", 3, image_size=64)
    image, label, scribbles = data.raw(1)
    tensor, label_t, scribbles_t = data[1]
    assert np.array_equal(denormalize(tensor), image)
    assert np.array_equal(label_t.numpy(), label) and np.array_equal(scribbles_t.numpy(), scribbles)
    with pytest.raises(IndexError):
        data.raw(3)
    with pytest.raises(ValueError, match="set_name"):
        PhotoComposites("train", 3)
    images = ImageSet.first("photo_composites", 10, {"count": 3, "image_size": 64}, "tuning")
    assert images.indices == (0, 1, 2)
    assert np.array_equal(images.load().raw(1)[0], image)
