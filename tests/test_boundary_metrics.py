"""Boundary F at several tolerances and the trimap IoU (repro.engine.boundary_metrics), on
fixtures small enough to count by hand."""

from __future__ import annotations

import pytest
import torch

from repro.engine.boundary_metrics import (
    BoundaryQuality,
    trimap_band,
    trimap_confusion,
    trimap_iou,
)
from repro.engine.metrics import boundary_f_score


def step(width: int, edge: int, height: int = 6) -> torch.Tensor:
    """``[H, W]`` labels: class 0 left of column ``edge``, class 1 from it on."""
    label = torch.zeros(height, width, dtype=torch.long)
    label[:, edge:] = 1
    return label


def test_band_of_width_zero_is_both_sides_of_the_edge_and_grows_with_the_width():
    label = step(8, 4)
    assert trimap_band(label, 0)[0].any(dim=0).nonzero().flatten().tolist() == [3, 4]
    assert trimap_band(label, 1)[0].any(dim=0).nonzero().flatten().tolist() == [2, 3, 4, 5]
    assert trimap_band(label, 1)[0].all(dim=0)[2:6].all()  # every row of those columns


def test_band_leaves_out_ignored_pixels():
    label = step(8, 4)
    label[0, :] = 255
    band = trimap_band(label, 0)[0]
    assert not band[0].any() and band[1:, 3:5].all()


def test_trimap_iou_by_hand_for_a_prediction_shifted_by_one_column():
    label = step(8, 4)
    pred = step(8, 5)  # column 4 predicted 0 instead of 1
    # Band of width 0: columns 3 (class 0) and 4 (class 1), 6 rows each. Column 3 right
    # (6 true 0), column 4 wrong (6 predicted 0 where 1): IoU(0) = 6 / 12, IoU(1) = 0 / 6.
    matrix = trimap_confusion(pred, label, 2, 0).matrix
    assert matrix.tolist() == [[6, 0], [6, 0]]
    assert trimap_iou(pred, label, 2, 0) == pytest.approx(0.25)
    # Width 1: columns 2-5; class 0 gets 12 right + 6 wrong, class 1 6 right out of 12.
    assert trimap_iou(pred, label, 2, 1) == pytest.approx((12 / 18 + 6 / 12) / 2)


def test_boundary_f_at_several_tolerances_by_hand():
    # Edges of the label at columns 3, 4; of the prediction (shifted by 2) at 5, 6. Within 1
    # pixel: label column 4 and prediction column 5 match, the others do not: P = R = 1/2.
    label, pred = step(8, 4), step(8, 6)
    quality = BoundaryQuality(2, tolerances_px=(0, 1, 2), trimap_widths_px=(0,))
    quality.update(pred[None], label[None])
    scores = quality.results()
    assert scores["boundary_f_0px"] == 0.0
    assert scores["boundary_f_1px"] == pytest.approx(0.5)
    assert scores["boundary_f_2px"] == 1.0
    for t in (0, 1, 2):
        assert scores[f"boundary_f_{t}px"] == pytest.approx(boundary_f_score(pred, label, t))
    assert scores["trimap_iou_0px"] == pytest.approx(trimap_iou(pred, label, 2, 0))


def test_counts_sum_over_images_and_survive_the_vector_round_trip():
    label, pred = step(8, 4), step(8, 5)
    one = BoundaryQuality(2, (1,), (0, 2))
    one.update(pred[None], label[None])
    one.update(label[None], label[None])
    both = BoundaryQuality(2, (1,), (0, 2))
    both.update(torch.stack([pred, label]), torch.stack([label, label]))
    assert one.results() == both.results()
    copy = BoundaryQuality(2, (1,), (0, 2))
    copy.load_counts(one.count_tensor())
    assert copy.results() == one.results()


@pytest.mark.parametrize("bad", [(-1,), (1, 1), (True,), (1.5,)])
def test_bad_tolerances_are_rejected(bad):
    with pytest.raises(ValueError, match="tolerances_px"):
        BoundaryQuality(2, tolerances_px=bad)


def test_evaluate_reports_the_requested_keys_only():
    from torch import nn

    from repro.engine.evaluate import evaluate

    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([0.0, 1.0]))

        def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
            b, _, h, w = images.shape
            return {"out": self.bias.view(1, 2, 1, 1).expand(b, 2, h, w)}

    data = [(torch.zeros(3, 6, 8), step(8, 4))]
    plain = evaluate(Constant(), data, 2, progress=False, device="cpu")
    assert not any(k.startswith(("boundary_f_", "trimap_iou_")) for k in plain)
    more = evaluate(
        Constant(),
        data,
        2,
        progress=False,
        device="cpu",
        boundary_tolerances_px=(1, 3),
        trimap_widths_px=(0,),
    )
    assert {"boundary_f_1px", "boundary_f_3px", "trimap_iou_0px"} <= set(more)
    # Predicting class 1 everywhere: in the width-0 band half the pixels are right.
    assert more["trimap_iou_0px"] == pytest.approx((0 + 6 / 12) / 2)
    assert more["boundary_f_1px"] == 0.0  # a constant prediction has no boundary
