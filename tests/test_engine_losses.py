"""Losses: CE with ignore, OHEM CE, GDC weighted CE (Eq. 5-6), deep supervision."""

import pytest
import torch
import torch.nn.functional as F

from repro.engine.config import TrainConfig
from repro.engine.losses import (
    SegmentationLoss,
    build_loss,
    cross_entropy_loss,
    ohem_cross_entropy,
    pixel_share_class_weights,
    weighted_cross_entropy,
)


def _batch(seed: int = 0, classes: int = 3):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, classes, 5, 6, generator=generator)
    target = torch.randint(0, classes, (2, 5, 6), generator=generator)
    target[0, 0, :] = 255
    return logits, target


def test_cross_entropy_ignores_the_ignore_label():
    logits, target = _batch()
    valid = target != 255
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[valid], target[valid])
    assert cross_entropy_loss(logits, target) == pytest.approx(float(expected))


def test_all_ignored_batch_gives_zero_loss_with_a_graph():
    logits, target = _batch()
    logits.requires_grad_(True)
    target[:] = 255
    for loss in (
        cross_entropy_loss(logits, target),
        ohem_cross_entropy(logits, target),
        weighted_cross_entropy(logits, target),
    ):
        assert float(loss.detach()) == 0.0
        loss.backward()  # must not raise: every process joins the all-reduce


def test_ohem_with_threshold_one_equals_plain_cross_entropy():
    logits, target = _batch()
    assert ohem_cross_entropy(logits, target, thresh=1.0, min_kept=0) == pytest.approx(
        float(cross_entropy_loss(logits, target))
    )


def test_ohem_keeps_only_hard_pixels_and_at_least_min_kept():
    target = torch.tensor([[[0, 0, 0, 1]]])
    # True-class probabilities: near 1 for the first three pixels, low for the last.
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 0, 0, :3] = torch.tensor([5.0, 6.0, 7.0])
    logits[0, 0, 0, 3] = 2.0
    per_pixel = F.cross_entropy(logits, target, reduction="none")[0, 0]
    only_hard = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=1)
    assert only_hard == pytest.approx(float(per_pixel[3]))
    two_hardest = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=2)
    # The second hardest is the easy pixel with the smallest margin (logit 5).
    assert two_hardest == pytest.approx(float((per_pixel[3] + per_pixel[0]) / 2))


def test_pixel_share_weights_follow_the_documented_formula():
    target = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1, 255]])
    weights = pixel_share_class_weights(target, num_classes=3)
    # N = 8 labelled pixels, n = (6, 2, 0), K_p = 2: w_c = N / (K_p n_c).
    assert weights.tolist() == pytest.approx([8 / 12, 8 / 4, 0.0])
    counts = torch.tensor([6.0, 2.0, 0.0])
    assert float((weights * counts).sum()) == pytest.approx(8.0)


def test_weighted_cross_entropy_is_the_mean_of_per_class_means():
    logits, target = _batch(seed=3)
    loss = weighted_cross_entropy(logits, target)
    per_pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    means = [per_pixel[target == c].mean() for c in range(3) if (target == c).any()]
    assert float(loss) == pytest.approx(float(torch.stack(means).mean()), rel=1e-5)
    fixed = weighted_cross_entropy(logits, target, torch.tensor([1.0, 1.0, 1.0]))
    assert float(fixed) == pytest.approx(float(cross_entropy_loss(logits, target)), rel=1e-6)


def test_weighted_cross_entropy_checks_weight_shape():
    logits, target = _batch()
    with pytest.raises(ValueError, match="class_weights must have shape"):
        weighted_cross_entropy(logits, target, torch.ones(5))


def test_segmentation_loss_adds_weighted_aux_losses_at_label_size():
    logits, target = _batch()
    aux = torch.randn(2, 3, 3, 3)  # lower resolution: resized to the label
    loss_fn = SegmentationLoss("ce", aux_weight=0.4)
    total, parts = loss_fn({"out": logits, "aux": aux}, target)
    aux_up = F.interpolate(aux, size=(5, 6), mode="bilinear", align_corners=False)
    expected = cross_entropy_loss(logits, target) + 0.4 * cross_entropy_loss(aux_up, target)
    assert float(total) == pytest.approx(float(expected))
    assert set(parts) == {"main", "aux"}
    two_aux, _ = loss_fn({"out": logits, "aux": [aux, aux]}, target)
    assert float(two_aux) == pytest.approx(
        float(cross_entropy_loss(logits, target) + 0.8 * cross_entropy_loss(aux_up, target))
    )


def test_build_loss_uses_the_config_and_reports_bad_outputs():
    loss_fn = build_loss(TrainConfig(epochs=1, batch_size=1, lr=0.1, loss="ohem"))
    assert loss_fn.kind == "ohem" and loss_fn.ohem_thresh == 0.7
    with pytest.raises(TypeError, match="'out'"):
        loss_fn(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="kind must be one of"):
        SegmentationLoss("focal")
    with pytest.raises(TypeError, match="LongTensor"):
        cross_entropy_loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2))
