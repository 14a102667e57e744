"""GDC experiment plumbing: Table V module configurations, pseudo labels and relabelled data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from repro import models
from repro.data import build_dataset
from repro.experiments import pseudo_labels as pl
from repro.experiments.gdc import pyramid_module_configs
from repro.experiments.supervised import DataSpec
from repro.singleimage import SingleImageConfig

TINY = {"image_size": 32, "num_train": 4, "num_val": 2}
FAST = SingleImageConfig(channels=8, steps=2, num_draws=1, slic_segments=20)


# ----------------------------------------------------------------- Table V configurations
def test_paper_geometry_at_scale_one() -> None:
    configs = pyramid_module_configs(1.0)
    assert configs["aspp"] == ("mobilenetv2_aspp", {"context_options": {"rates": (6, 12, 18)}})
    assert configs["saspp"] == ("mobilenetv2_saspp", {"context_options": {"rates": (1, 9, 18)}})
    assert configs["gdpp"][1] == {
        "context_options": {"rates": (1, 18), "bases": (9.0,), "sigma": 2.0, "num_eval_draws": 50}
    }
    assert configs["none"] == ("mobilenetv2", {})
    eight = pyramid_module_configs(1.0, output_stride=8)
    assert eight["aspp"][1]["context_options"]["rates"] == (12, 24, 36)


def test_scaled_geometry_rounds_half_up_and_keeps_rates_positive() -> None:
    configs = pyramid_module_configs(0.25)
    assert configs["aspp"][1]["context_options"]["rates"] == (2, 3, 5)  # 1.5, 3, 4.5
    assert configs["saspp"][1]["context_options"]["rates"] == (1, 2, 5)  # 1 stays 1; 2.25; 4.5
    assert configs["gdpp"][1]["context_options"] == {
        "rates": (1, 5),
        "bases": (2.25,),
        "sigma": 0.5,
        "num_eval_draws": 50,
    }
    assert min(pyramid_module_configs(0.01)["aspp"][1]["context_options"]["rates"]) == 1


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_bad_rate_scale(bad: float) -> None:
    with pytest.raises(ValueError, match="rate_scale"):
        pyramid_module_configs(bad)
    with pytest.raises(ValueError, match="output_stride"):
        pyramid_module_configs(1.0, output_stride=32)


def test_gdpp_rates_reach_the_model_and_rows_build() -> None:
    configs = pyramid_module_configs(0.25)
    torch.manual_seed(0)
    images = torch.randn(1, 3, 32, 32)
    for name, config in configs.values():
        model = models.build(name, num_classes=3, channels=8, width_mult=0.25, **config).eval()
        assert model(images)["out"].shape == (1, 3, 32, 32)
    gdpp = models.build(
        configs["gdpp"][0], num_classes=3, channels=8, width_mult=0.25, **configs["gdpp"][1]
    )
    dilations = [
        m.dilation
        for m in gdpp.context.modules()
        if isinstance(m, torch.nn.Conv2d) and m.groups > 1
    ]
    assert (5, 5) in dilations and (18, 18) not in dilations
    with pytest.raises(ValueError, match="rates"):
        models.build("mobilenetv2_gdpp", num_classes=3, context_options={"rates": (1, 2, 3)})


# ----------------------------------------------------------------- pseudo labels
@pytest.fixture
def label_set(tmp_path: Path):
    return build_dataset("offline", "train", root=tmp_path / "data", with_scribbles=True, **TINY)


def test_generate_caches_and_reuses(label_set, tmp_path: Path, monkeypatch) -> None:
    first = pl.generate_pseudo_labels(
        label_set, FAST, seed=0, cache_dir=tmp_path / "c", progress=False
    )
    assert first.ids == label_set.ids
    for index, image_id in enumerate(first.ids):
        label = first.load(image_id)
        assert label.shape == label_set.load_label(index).shape
        scribbled = set(np.unique(label_set.scribbles(index))) - {255}
        assert set(np.unique(label)) <= scribbled  # only classes the scribbles name

    calls = []
    monkeypatch.setattr(pl, "segment_image", lambda *a, **k: calls.append(1))
    again = pl.generate_pseudo_labels(
        label_set, FAST, seed=0, cache_dir=tmp_path / "c", progress=False
    )
    assert again.folder == first.folder and calls == []
    # Another seed or setting is another cache entry.
    assert pl.pseudo_label_key(label_set, FAST, 1) != pl.pseudo_label_key(label_set, FAST, 0)
    other = SingleImageConfig(channels=8, steps=3, num_draws=1, slic_segments=20)
    assert pl.pseudo_label_key(label_set, other, 0) != pl.pseudo_label_key(label_set, FAST, 0)


def test_single_class_scribbles_fall_back_and_failure_leaves_no_cache(
    label_set, tmp_path: Path, monkeypatch
) -> None:
    original = label_set.scribbles

    def one_class_for_first(index: int) -> np.ndarray:
        scribbles = original(index).copy()
        if index == 0:
            scribbles[scribbles != 255] = 1
        return scribbles

    monkeypatch.setattr(label_set, "scribbles", one_class_for_first)
    labels = pl.generate_pseudo_labels(label_set, FAST, cache_dir=tmp_path / "c", progress=False)
    assert labels.fallback == [label_set.ids[0]]
    np.testing.assert_array_equal(labels.load(label_set.ids[0]), one_class_for_first(0))

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(pl, "segment_image", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        pl.generate_pseudo_labels(label_set, FAST, seed=5, cache_dir=tmp_path / "d", progress=False)
    assert list((tmp_path / "d").iterdir()) == []


def test_relabelled_sources_and_scores(label_set, tmp_path: Path, monkeypatch) -> None:
    # Pseudo labels that are the full labels, written through the cache format.
    monkeypatch.setattr(
        pl,
        "segment_image",
        lambda image, scribbles, config, seed, ignore_index: type(
            "R", (), {"prediction": label_set.load_label(seed % 1_000_003)}
        )(),
    )
    pseudo = pl.generate_pseudo_labels(label_set, FAST, cache_dir=tmp_path / "c", progress=False)
    as_pseudo = pl.RelabelledDataset(label_set, "pseudo", pseudo)
    perfect = pl.score_label_source(as_pseudo, label_set)
    assert perfect.miou == pytest.approx(1.0) and perfect.labelled_fraction == pytest.approx(1.0)

    scribbled = pl.RelabelledDataset(label_set, "scribbles")
    np.testing.assert_array_equal(scribbled.load_label(1), label_set.scribbles(1))
    quality = pl.score_label_source(scribbled, label_set)
    assert quality.pixel_accuracy == pytest.approx(1.0)  # scribbles are drawn inside objects
    assert 0.0 < quality.labelled_fraction < 0.5

    image, label = scribbled[0]
    assert image.shape == (3, 32, 32) and set(label.unique().tolist()) <= {
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        255,
    }
    with pytest.raises(ValueError, match="source"):
        pl.RelabelledDataset(label_set, "boxes")
    with pytest.raises(ValueError, match="pseudo_labels"):
        pl.RelabelledDataset(label_set, "pseudo")


def test_dataspec_trains_on_the_chosen_labels(tmp_path: Path) -> None:
    spec = DataSpec(
        crop_size=32,
        scale_range=(1.0, 1.0),
        flip=False,
        root=str(tmp_path),
        offline=TINY,
        train_labels="scribbles",
    )
    train_set, val_set = spec.build(seed=0)
    assert isinstance(train_set, pl.RelabelledDataset) and train_set.source == "scribbles"
    _, label = train_set[2]
    expected = torch.from_numpy(train_set.base.scribbles(2).astype(np.int64))
    assert torch.equal(label, expected)
    full, _ = DataSpec(crop_size=32, root=str(tmp_path), offline=TINY).build(seed=0)
    assert not isinstance(full, pl.RelabelledDataset)


def test_constant_prediction_floor(label_set) -> None:
    from repro.experiments.supervised import constant_prediction_scores

    scores = constant_prediction_scores(label_set, class_index=0)
    labels = np.concatenate([label_set.load_label(i).ravel() for i in range(len(label_set))])
    labels = labels[labels != 255]
    background = float((labels == 0).mean())
    assert scores["pixel_acc"] == pytest.approx(background)
    present = len(np.unique(labels))
    assert scores["miou"] == pytest.approx(background / present)  # IoU 0 for every other class
    with pytest.raises(ValueError, match="class_index"):
        constant_prediction_scores(label_set, class_index=label_set.num_classes)


@pytest.mark.slow
def test_runs_side_by_side_match_runs_in_process(tmp_path: Path, monkeypatch) -> None:
    from repro.engine import TrainConfig
    from repro.experiments.supervised import RunJob, train_and_evaluate_many

    data = DataSpec(crop_size=32, scale_range=(1.0, 1.0), root=str(tmp_path), offline=TINY)
    jobs = [
        RunJob(
            "mobilenetv2",
            {"width_mult": 0.25, "channels": 8},
            data,
            TrainConfig(epochs=1, batch_size=2, lr=0.01, seed=seed, eval_every=0),
        )
        for seed in (1, 0, 2)
    ]
    # Separate run caches: the second call must train again, not reuse the first's outcomes.
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache_a"))
    side_by_side = train_and_evaluate_many(jobs, processes=2, threads_per_process=1)
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache_b"))
    in_process = train_and_evaluate_many(jobs[:2], processes=1, threads_per_process=1)
    assert not any(o.reused for o in side_by_side + in_process)
    assert [o.seed for o in side_by_side] == [1, 0, 2]
    for parallel, serial in zip(side_by_side, in_process, strict=False):
        assert parallel.metrics["miou"] == serial.metrics["miou"]
        assert parallel.history[0]["loss"] == serial.history[0]["loss"]
    with pytest.raises(ValueError, match="processes"):
        train_and_evaluate_many(jobs, processes=0)
