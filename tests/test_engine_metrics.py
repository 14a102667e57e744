"""Confusion-matrix metrics and the boundary F-score (repro.engine.metrics)."""

import math

import pytest
import torch

from repro.engine.metrics import (
    BoundaryCounts,
    ConfusionMatrix,
    boundary_counts,
    boundary_f_score,
    boundary_map,
    fill_ignored_with_nearest_label,
)


def test_confusion_matrix_matches_hand_computed_values():
    label = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 1]])
    cm = ConfusionMatrix(num_classes=4)
    cm.update(pred, label)
    # Labelled pixels: 7; correct: (0,0),(1,1),(1,1),(2,2),(1,1) = 5.
    assert cm.pixel_accuracy() == pytest.approx(5 / 7)
    iou = cm.per_class_iou()
    # class 0: tp 1, gt 2, pred 2 -> 1/3; class 1: tp 3, gt 3, pred 4 -> 3/4; class 2: tp 1, gt 2,
    # pred 1 -> 1/2; class 3: absent from both -> NaN and left out of the mean.
    assert iou[:3] == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert math.isnan(iou[3])
    assert cm.miou() == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)


def test_confusion_matrix_accumulates_and_merges():
    label = torch.randint(0, 3, (2, 5, 5), generator=torch.Generator().manual_seed(0))
    pred = torch.randint(0, 3, (2, 5, 5), generator=torch.Generator().manual_seed(1))
    whole = ConfusionMatrix(3)
    whole.update(pred, label)
    first, second = ConfusionMatrix(3), ConfusionMatrix(3)
    first.update(pred[0], label[0])
    second.update(pred[1], label[1])
    first.merge(second)
    assert torch.equal(first.matrix, whole.matrix)
    assert int(whole.matrix.sum()) == 50


def test_confusion_matrix_rejects_bad_input():
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match="label holds values outside"):
        cm.update(torch.zeros(2, 2, dtype=torch.long), torch.full((2, 2), 5))
    with pytest.raises(ValueError, match="same shape"):
        cm.update(torch.zeros(2, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(0)


def test_boundary_map_marks_both_sides_of_an_edge():
    label = torch.zeros(1, 4, 6, dtype=torch.long)
    label[:, :, 3:] = 1
    edges = boundary_map(label)[0]
    assert edges[:, 2:4].all() and not edges[:, :2].any() and not edges[:, 4:].any()


def _square(size: int, top: int, left: int, side: int) -> torch.Tensor:
    label = torch.zeros(size, size, dtype=torch.long)
    label[top : top + side, left : left + side] = 1
    return label


def test_boundary_f_is_one_for_a_perfect_prediction_and_drops_with_a_shift():
    label = _square(24, 6, 6, 10)
    assert boundary_f_score(label, label, tolerance_px=0) == 1.0
    shifted = _square(24, 6, 8, 10)  # two pixels to the right
    strict = boundary_f_score(shifted, label, tolerance_px=0)
    tolerant = boundary_f_score(shifted, label, tolerance_px=2)
    assert strict < 0.7
    assert tolerant == 1.0


def test_boundary_counts_skip_predicted_edges_in_ignored_pixels():
    label = torch.zeros(10, 10, dtype=torch.long)
    label[:, 5:] = 255
    pred = torch.zeros(10, 10, dtype=torch.long)
    pred[:, 8:] = 1  # an edge deep inside the ignored half only
    counts = boundary_counts(pred, label, tolerance_px=1)
    assert counts.total_pred == 0
    # The ignored half takes class 0 from its labelled neighbours: no ground-truth edge.
    assert counts.total_gt == 0
    assert counts.f_score() == 1.0


def test_boundary_in_a_void_band_matches_a_perfect_prediction():
    truth = _square(24, 6, 6, 10)
    label = truth.clone()
    label[boundary_map(truth.unsqueeze(0))[0]] = 255
    label[_dilate_once(label == 255)] = 255  # a 4-pixel void band, as VOC draws them
    counts = boundary_counts(truth, label, tolerance_px=3)
    assert counts.total_gt > 0 and counts.total_pred > 0
    assert counts.f_score() == 1.0
    empty = torch.zeros_like(truth)  # missing the object loses every ground-truth edge
    assert boundary_counts(empty, label, tolerance_px=3).recall() == 0.0


def _dilate_once(mask: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.max_pool2d(mask[None, None].float(), 3, 1, 1)[0, 0] > 0


def test_fill_ignored_with_nearest_label():
    label = torch.tensor([[[1, 255, 255, 2]]])
    assert fill_ignored_with_nearest_label(label).tolist() == [[[1, 1, 2, 2]]]


def test_boundary_counts_sum_over_images():
    a = BoundaryCounts(1, 2, 3, 4)
    a += BoundaryCounts(1, 2, 1, 4)
    assert (a.precision(), a.recall()) == (0.5, 0.5)
    assert a.f_score() == pytest.approx(0.5)


def test_boundary_f_rejects_a_negative_tolerance():
    with pytest.raises(ValueError, match="tolerance_px"):
        boundary_f_score(torch.zeros(3, 3), torch.zeros(3, 3), tolerance_px=-1)
