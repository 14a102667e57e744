"""Per-object scores of DSNet Fig. 4's claim (``repro.engine.object_metrics``), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repro.engine.metrics import boundary_counts
from repro.engine.object_metrics import (
    SizeBinTally,
    bin_regions,
    object_components,
    object_scores,
    size_bin,
    territories,
)

BINS = (0.02, 0.1)


def test_components_are_eight_connected_per_class_and_skip_ignore():
    label = np.zeros((6, 6), dtype=np.uint8)
    label[0, 0] = label[1, 1] = 1  # diagonal neighbours: one object
    label[4, 4] = 1  # apart: another
    label[0, 5] = 2  # another class
    label[5, 0] = 255  # ignored: no object
    components = object_components(label)
    assert components.count == 3
    assert components.classes.tolist() == [1, 1, 2]
    assert components.areas.tolist() == [2, 1, 1]
    assert components.ids[0, 0] == components.ids[1, 1] == 1
    assert components.ids[4, 4] == 2 and components.ids[0, 5] == 3
    assert components.ids[5, 0] == 0
    assert components.shares().tolist() == [2 / 36, 1 / 36, 1 / 36]


def test_size_bins_are_half_open():
    assert size_bin(0.0199, BINS) == "small"
    assert size_bin(0.02, BINS) == "medium"
    assert size_bin(0.0999, BINS) == "medium"
    assert size_bin(0.1, BINS) == "large"
    with pytest.raises(ValueError, match="two increasing area shares"):
        size_bin(0.5, (0.1, 0.05))


def test_territory_is_the_nearest_object():
    label = np.zeros((1, 7), dtype=np.uint8)
    label[0, 0] = 1
    label[0, 6] = 2
    # Columns 1-2 are nearer object 1, 4-5 nearer object 2; column 3 is a tie (lower index).
    owner = territories(object_components(label))[0].tolist()
    assert owner[:3] == [1, 1, 1] and owner[4:] == [2, 2, 2]


def test_object_iou_counts_spill_in_its_territory_only():
    label = np.zeros((10, 10), dtype=np.uint8)
    label[1:3, 1:3] = 1  # object 1: 4 pixels, class 1
    label[6:9, 6:9] = 2  # object 2: 9 pixels, class 2
    label[0, 9] = 255
    pred = np.zeros_like(label)
    pred[1:3, 1:3] = 1
    pred[2, 2] = 0  # one pixel of object 1 missed
    pred[0, 1] = pred[0, 2] = 1  # two spilled next to object 1: its false positives
    pred[9, 9] = 1  # class 1 in object 2's territory: counts against neither object
    pred[0, 9] = 1  # on an ignored pixel: never counted
    pred[6:9, 6:9] = 1  # object 2 predicted as the wrong class
    first, second = object_scores(pred, label, BINS)
    assert (first.true_positive, first.false_positive, first.false_negative) == (3, 2, 1)
    assert first.iou == pytest.approx(3 / 6)
    assert (second.true_positive, second.false_positive, second.false_negative) == (0, 0, 9)
    assert second.iou == 0.0
    assert (first.size, second.size) == ("medium", "medium")  # 4 and 9 of 100 pixels


def _random_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 3, (5, 6), generator=generator).repeat_interleave(4, 0)
    label = label.repeat_interleave(4, 1)
    label[:3, :5] = 255
    pred = torch.randint(0, 3, (10, 12), generator=generator).repeat_interleave(2, 0)
    return pred.repeat_interleave(2, 1), label


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boundary_counts_in_a_region_on_the_whole_image_are_the_image_score(seed):
    pred, label = _random_pair(seed)
    everywhere = torch.ones_like(label, dtype=torch.bool)
    assert boundary_counts(pred, label, 2, region=everywhere) == boundary_counts(pred, label, 2)
    nowhere = boundary_counts(pred, label, 2, region=~everywhere)
    assert (nowhere.total_gt, nowhere.total_pred) == (0, 0)


def test_boundary_counts_in_a_region_by_hand():
    label = torch.zeros(8, 8, dtype=torch.long)
    label[:, 4:] = 1  # a vertical edge: columns 3 and 4 are boundary pixels
    pred = torch.zeros_like(label)
    pred[:, 6:] = 1  # its edge two columns off: columns 5 and 6
    right = torch.zeros_like(label, dtype=torch.bool)
    right[:, 4:] = True
    counts = boundary_counts(pred, label, tolerance_px=1, region=right)
    # Scored in the region: ground-truth column 4 (8 pixels), predicted columns 5 and 6 (16).
    # Within 1 px of a predicted edge: ground-truth column 4 (column 5 is an edge), so 8 of 8;
    # within 1 px of a ground-truth edge: predicted column 5 only (8 of 16).
    assert (counts.matched_gt, counts.total_gt) == (8, 8)
    assert (counts.matched_pred, counts.total_pred) == (8, 16)
    assert counts.f_score() == pytest.approx(2 * 0.5 * 1.0 / 1.5)


def test_bin_regions_are_the_objects_dilated():
    label = np.zeros((20, 20), dtype=np.uint8)
    label[2, 2] = 1  # 1 of 400 pixels: small
    label[8:16, 8:16] = 2  # 64 of 400 = 16 %: large
    regions = bin_regions(label, BINS, tolerance_px=1)
    assert int(regions["small"].sum()) == 5  # a pixel and its four neighbours (disk of 1)
    assert not regions["medium"].any()
    assert bool(regions["large"][7, 8]) and not bool(regions["large"][7, 7])
    assert int(regions["large"].sum()) == 64 + 4 * 8


def test_tally_of_a_perfect_prediction():
    label = np.zeros((20, 20), dtype=np.uint8)
    label[2, 2] = 1
    label[8:16, 8:16] = 2
    tally = SizeBinTally(BINS, tolerance_px=2)
    tally.update(torch.from_numpy(label).long(), torch.from_numpy(label).long())
    assert (tally.count("small"), tally.count("medium"), tally.count("large")) == (1, 0, 1)
    assert tally.iou("small") == tally.iou("large") == 1.0
    assert math.isnan(tally.iou("medium")) and math.isnan(tally.boundary_f("medium"))
    assert tally.boundary_f("small") == tally.boundary_f("large") == 1.0
    wrong = torch.zeros(20, 20, dtype=torch.long)
    tally.update(wrong, torch.from_numpy(label).long())
    assert tally.iou("large") == 0.5  # the mean of 1 and 0 over the two images' large objects
    assert tally.boundary_f("large") < 1.0
