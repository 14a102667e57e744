"""GDC single-image procedure (repro.singleimage): shapes, determinism, learning, evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from repro.data.palette import IGNORE_INDEX
from repro.modules.gdc import GaussianDynamicConv
from repro.singleimage import SingleImageConfig, evaluate_on_images, segment_image
from repro.singleimage.diversity import feature_jitter, feature_spread

FAST = dict(channels=8, steps=25, num_draws=3, optimizer="adam", lr=0.05)


def two_halves(size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dark left half (class 0), bright right half (class 3); one stroke in each half."""
    image = np.zeros((size, size, 3), dtype=np.uint8)
    image[:, : size // 2] = (30, 40, 50)
    image[:, size // 2 :] = (220, 200, 180)
    label = np.zeros((size, size), dtype=np.int64)
    label[:, size // 2 :] = 3
    scribbles = np.full((size, size), IGNORE_INDEX, dtype=np.uint8)
    scribbles[4:-4, 4:6] = 0
    scribbles[4:-4, -6:-4] = 3
    return image, label, scribbles


@pytest.mark.parametrize("conv", ["gdc", "normal", "uniform"])
def test_shapes_and_classes(conv: str) -> None:
    image, _, scribbles = two_halves(24)
    result = segment_image(image, scribbles, SingleImageConfig(conv=conv, **FAST), seed=0)
    assert result.prediction.shape == (24, 24) and result.prediction.dtype == np.uint8
    assert result.classes == [0, 3]
    assert result.probabilities.shape == (2, 24, 24)
    assert torch.allclose(result.probabilities.sum(0), torch.ones(24, 24), atol=1e-4)
    assert set(np.unique(result.prediction)) <= {0, 3}
    assert len(result.losses) == FAST["steps"]


def test_same_seed_same_result_and_rng_restored() -> None:
    image, _, scribbles = two_halves(24)
    config = SingleImageConfig(conv="gdc", **FAST)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = segment_image(image, scribbles, config, seed=5)
    after = torch.rand(1)
    second = segment_image(image, scribbles, config, seed=5)
    other = segment_image(image, scribbles, config, seed=6)
    assert torch.equal(first.probabilities, second.probabilities)
    assert not torch.equal(first.probabilities, other.probabilities)
    assert torch.equal(before, after)  # the global RNG is not consumed


@pytest.mark.parametrize("conv", ["gdc", "dilated"])
def test_learns_a_separable_two_class_image(conv: str) -> None:
    image, label, scribbles = two_halves(32)
    result = segment_image(
        image, scribbles, SingleImageConfig(conv=conv, dilation=2, **FAST), seed=0
    )
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert (result.prediction == label).mean() > 0.9


def test_working_size_and_probes() -> None:
    image, _, scribbles = two_halves(48)
    config = SingleImageConfig(conv="gdc", working_size=24, **FAST)
    result = segment_image(image, scribbles, config, seed=0, probe_pixels=[(10, 10), (40, 40)])
    assert result.prediction.shape == (48, 48)
    assert result.probe_features is not None
    assert result.probe_features.shape == (FAST["steps"], 2, FAST["channels"])


def test_bad_inputs_name_the_problem() -> None:
    image, _, scribbles = two_halves(16)
    with pytest.raises(ValueError, match="differs"):
        segment_image(image, scribbles[:8], SingleImageConfig(**FAST))
    with pytest.raises(ValueError, match="no scribbled pixel"):
        segment_image(image, np.full_like(scribbles, IGNORE_INDEX), SingleImageConfig(**FAST))
    with pytest.raises(ValueError, match="only class 0"):
        segment_image(image, np.where(scribbles == 3, 0, scribbles), SingleImageConfig(**FAST))
    with pytest.raises(ValueError, match="conv"):
        SingleImageConfig(conv="atrous")
    with pytest.raises(ValueError, match="steps"):
        SingleImageConfig(steps=0)


def test_evaluate_accumulates_one_confusion_matrix() -> None:
    from repro.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    image, label, scribbles = two_halves(24)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    normalised = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std
    item = (normalised, torch.from_numpy(label), torch.from_numpy(scribbles.astype(np.int64)))
    single_class = (normalised, torch.from_numpy(label), torch.zeros(24, 24, dtype=torch.int64))
    dataset = [item, item, single_class]
    scores = evaluate_on_images(
        dataset,
        [0, 1, 2],
        SingleImageConfig(conv="normal", **FAST),
        0,
        num_classes=4,
        progress=False,
    )
    assert scores.skipped == [2]
    assert len(scores.per_image_miou) == 2  # one per evaluated image, the skipped one excluded
    assert scores.image_miou == pytest.approx(np.mean(scores.per_image_miou))
    assert all(0 < value <= 1 for value in scores.per_image_miou)
    assert int(scores.confusion.matrix.sum()) == 2 * 24 * 24
    assert scores.pixel_accuracy > 0.9
    assert 0 < scores.miou <= 1


def test_independent_batch_draws_differ_per_element() -> None:
    layer = GaussianDynamicConv(2, 2, sigma=0.3, batch_draws="independent", eval_draws="random")
    x = torch.randn(1, 2, 8, 8).expand(3, -1, -1, -1)
    out = layer.eval()(x)
    assert not torch.allclose(out[0], out[1])
    shared = GaussianDynamicConv(2, 2, sigma=0.3, eval_draws="random").eval()(x)
    assert torch.allclose(shared[0], shared[1])
    truncated = GaussianDynamicConv(2, 2, sigma=0.3, sampling="truncate", batch_draws="independent")
    assert truncated(x).shape == (3, 2, 8, 8)


def test_feature_spread() -> None:
    rng = np.random.default_rng(0)
    tight = np.stack([rng.normal(0, 0.1, (20, 4)), rng.normal(5, 0.1, (20, 4))], axis=1)
    loose = np.stack([rng.normal(0, 1.0, (20, 4)), rng.normal(5, 1.0, (20, 4))], axis=1)
    assert feature_spread(loose) > 5 * feature_spread(tight)
    assert feature_spread(10 * loose) == pytest.approx(feature_spread(loose))
    with pytest.raises(ValueError, match="features"):
        feature_spread(np.zeros((5, 1, 3)))


def test_feature_jitter_ignores_smooth_drift() -> None:
    rng = np.random.default_rng(0)
    steps = np.linspace(0, 10, 30)[:, None, None]
    drift = np.stack([np.zeros((30, 4)), np.full((30, 4), 5.0)], axis=1) + steps
    noisy = drift + rng.normal(0, 0.5, drift.shape)
    assert feature_jitter(drift) == pytest.approx(0.0, abs=1e-9)
    assert feature_jitter(noisy) > 0.05
    with pytest.raises(ValueError, match="steps >= 3"):
        feature_jitter(np.zeros((2, 2, 3)))


def test_grid_scores_do_not_depend_on_how_many_run_at_once() -> None:
    from repro.singleimage import ImageSet, evaluate_grid

    images = ImageSet.first("offline", 2, {"num_classes": 3, "image_size": 32})
    assert images.indices == (0, 1)
    configs = {
        "normal": SingleImageConfig(conv="normal", **{**FAST, "steps": 3}),
        "gdc": SingleImageConfig(conv="gdc", **{**FAST, "steps": 3}),
    }
    inline = evaluate_grid(images, configs, [0, 1])
    side_by_side = evaluate_grid(images, configs, [0, 1], processes=2)
    assert list(inline["config"]) == ["normal", "normal", "gdc", "gdc"]
    assert list(inline["seed"]) == [0, 1, 0, 1]
    columns = ["config", "seed", "mIoU (%)", "pixel acc (%)", "skipped"]
    pd.testing.assert_frame_equal(inline[columns], side_by_side[columns])
    # different seeds draw different networks, so the GDC rows differ between seeds
    gdc = inline[inline["config"] == "gdc"]["mIoU (%)"].tolist()
    assert gdc[0] != gdc[1]


def test_grid_rejects_empty_input() -> None:
    from repro.singleimage import ImageSet, evaluate_grid

    with pytest.raises(ValueError, match="indices"):
        ImageSet("offline", ())
    images = ImageSet("offline", (0,), {"image_size": 32})
    with pytest.raises(ValueError, match="configs"):
        evaluate_grid(images, {}, [0])
    with pytest.raises(ValueError, match="seeds"):
        evaluate_grid(images, {"n": SingleImageConfig(conv="normal")}, [])


def test_device_is_resolved_and_checked() -> None:
    image, _, scribbles = two_halves()
    config = SingleImageConfig(conv="normal", device="auto", **{**FAST, "steps": 2})
    result = segment_image(image, scribbles, config, seed=0)
    assert result.probabilities.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            segment_image(image, scribbles, SingleImageConfig(device="cuda", **FAST), seed=0)


def test_image_miou_scores_each_image_on_its_own_classes() -> None:
    from repro.engine.metrics import ConfusionMatrix
    from repro.singleimage.evaluation import SetEvaluation

    scores = SetEvaluation(0.5, 0.5, ConfusionMatrix(2), 1.0, per_image_miou=[0.2, 0.6])
    assert scores.image_miou == pytest.approx(0.4)
    assert np.isnan(SetEvaluation(0.5, 0.5, ConfusionMatrix(2), 1.0).image_miou)


def test_coordinate_search_keeps_the_best_option_per_stage(monkeypatch) -> None:
    from repro.singleimage import ImageSet, grid, tuning

    calls: list[list[str]] = []
    real = grid.evaluate_grid

    def counting(images, configs, seeds, **kwargs):
        calls.append(list(configs))
        return real(images, configs, seeds, **kwargs)

    monkeypatch.setattr(tuning, "evaluate_grid", counting)
    images = ImageSet.first("photo_composites", 2, {"count": 2, "image_size": 48}, "tuning")
    start = SingleImageConfig(conv="normal", channels=8, steps=4, num_draws=2)
    stages = [
        ("optimiser", [{"optimizer": "sgd", "lr": 0.01}, {"optimizer": "adam", "lr": 0.05}]),
        ("steps", [{"steps": 4}, {"steps": 1}]),
    ]
    result = tuning.coordinate_search(images, start, stages, [0, 1])
    scores = result.scores
    assert set(scores["stage"]) == {"optimiser", "steps"}
    for stage, frame in scores.groupby("stage"):
        means = frame.groupby("option")["image mIoU (%)"].mean()
        chosen = frame[frame["chosen"]]["option"].unique()
        assert len(chosen) == 1 and means[chosen[0]] == means.max()
        assert result.choices[stage] == chosen[0]
    assert result.chosen.steps == int(result.choices["steps"].split("=")[1])
    # the first stage's winner is not scored again as the second stage's current setting
    assert calls[1] == ["steps=1"]
    with pytest.raises(ValueError, match="unknown settings"):
        tuning.coordinate_search(images, start, [("x", [{"colour": 1}])], [0])


def test_coordinate_search_respects_the_time_budget(monkeypatch) -> None:
    """An option over ``max_seconds`` is never chosen, however well it scores."""
    import pandas as pd

    from repro.singleimage import ImageSet, tuning

    def fake_grid(images, configs, seeds, **kwargs):
        # score and time both grow with the width: the widest is best and slowest
        return pd.DataFrame(
            [
                {
                    "config": label,
                    "seed": s,
                    "image mIoU (%)": c.channels,
                    "s/image": c.channels / 10,
                }
                for label, c in configs.items()
                for s in seeds
            ]
        )

    monkeypatch.setattr(tuning, "evaluate_grid", fake_grid)
    images = ImageSet.first("photo_composites", 1, {"count": 1, "image_size": 48}, "tuning")
    start = SingleImageConfig(channels=8)
    stages = [("width", [{"channels": 8}, {"channels": 16}, {"channels": 64}])]
    free = tuning.coordinate_search(images, start, stages, [0])
    assert free.chosen.channels == 64
    bounded = tuning.coordinate_search(images, start, stages, [0], max_seconds=2.0)
    assert bounded.chosen.channels == 16
    within = bounded.scores.set_index("option")["within budget"]
    assert within.to_dict() == {"channels=8": True, "channels=16": True, "channels=64": False}
    # nothing within the budget: the fastest is kept
    assert (
        tuning.coordinate_search(images, start, stages, [0], max_seconds=0.1).chosen.channels == 8
    )
