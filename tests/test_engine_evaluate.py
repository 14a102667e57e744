"""Evaluation: flip and multi-scale inference (DSNet Table 2), metrics dict."""

import importlib

import pytest
import torch
from engine_fixtures import NUM_CLASSES, ColourOracle, TinySegNet, TinyShapesDataset, oracle_pair
from torch.utils.data import Dataset

from repro.engine.evaluate import evaluate
from repro.engine.inference import MULTI_SCALE_EVAL_SCALES, predict_probabilities
from repro.engine.metrics import boundary_map


class OracleDataset(Dataset):
    """Images that encode their labels exactly (see ``oracle_pair``); the labels carry an
    ignored border and a VOC-like void band around each shape."""

    def __init__(self) -> None:
        self.images, self.labels = [], []
        for _, label in TinyShapesDataset(length=3, seed=5, ignore_border=False):
            # Background margin: keeps each void band away from the ignored image border.
            label = torch.nn.functional.pad(label, (4, 4, 4, 4), value=0)
            self.images.append(oracle_pair(label))
            voided = label.clone()
            voided[boundary_map(label.unsqueeze(0))[0]] = 255
            voided[0, :] = voided[-1, :] = voided[:, 0] = voided[:, -1] = 255
            self.labels.append(voided)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


def test_multi_scale_constant_is_dsnets():
    assert MULTI_SCALE_EVAL_SCALES == (0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def test_perfect_predictions_score_one():
    metrics = evaluate(ColourOracle(), OracleDataset(), NUM_CLASSES, flip=True, progress=False)
    assert metrics["miou"] == 1.0 and metrics["pixel_acc"] == 1.0
    assert metrics["boundary_f"] == 1.0
    assert metrics["per_class_iou"] == [1.0, 1.0, 1.0]
    assert metrics["num_images"] == 3 and metrics["images_per_s"] > 0


def test_flip_averages_the_mirrored_prediction():
    torch.manual_seed(0)
    model = TinySegNet().eval()
    images = torch.randn(2, 3, 16, 16)
    plain = predict_probabilities(model, images)
    mirrored = predict_probabilities(model, images.flip(-1)).flip(-1)
    both = predict_probabilities(model, images, flip=True)
    torch.testing.assert_close(both, (plain + mirrored) / 2)
    assert not torch.allclose(plain, mirrored)  # the check above is not vacuous


def test_multi_scale_returns_probabilities_at_input_size():
    torch.manual_seed(0)
    model = TinySegNet().eval()
    images = torch.randn(1, 3, 16, 20)
    probs = predict_probabilities(model, images, flip=True, scales=MULTI_SCALE_EVAL_SCALES)
    assert probs.shape == (1, NUM_CLASSES, 16, 20)
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 16, 20))
    single = predict_probabilities(model, images, flip=True)
    assert not torch.allclose(probs, single)


def test_evaluate_restores_training_mode_and_checks_arguments():
    model = TinySegNet().train()
    data = TinyShapesDataset(length=2)
    metrics = evaluate(model, data, NUM_CLASSES, scales=(0.75, 1.0), batch_size=2, progress=False)
    assert model.training
    assert 0.0 <= metrics["miou"] <= 1.0 and metrics["scales"] == [0.75, 1.0]
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(model, data, NUM_CLASSES, batch_size=0)
    with pytest.raises(ValueError, match="scales"):
        predict_probabilities(model, torch.zeros(1, 3, 8, 8), scales=())


def test_final_evaluation_scores_with_every_evaluation_field_of_the_config():
    """The final evaluation of a run and a later re-evaluation (``evaluate_trained``) share
    ``final_evaluation``: the config's ignore index and batch size reach ``evaluate``."""
    from engine_fixtures import tiny_config

    from repro.engine.evaluate import final_evaluation

    data = OracleDataset()
    # Label the void band 7 instead of 255: only a config that says so ignores it.
    relabelled = [(image, torch.where(label == 255, 7, label)) for image, label in data]
    config = tiny_config(ignore_index=7, eval_batch_size=2)
    scored = final_evaluation(ColourOracle(), relabelled, NUM_CLASSES, config, "cpu", False)
    direct = evaluate(ColourOracle(), data, NUM_CLASSES, progress=False, device="cpu")
    assert scored["miou"] == pytest.approx(direct["miou"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="ignore_index=255"):  # the band is class 7 to it
        final_evaluation(ColourOracle(), relabelled, NUM_CLASSES, tiny_config(), "cpu", False)


def test_final_evaluation_passes_the_batch_size(monkeypatch):
    from engine_fixtures import tiny_config

    module = importlib.import_module("repro.engine.evaluate")

    seen = {}
    monkeypatch.setattr(module, "evaluate", lambda *args, **kwargs: seen.update(kwargs) or {})
    module.final_evaluation(ColourOracle(), [], NUM_CLASSES, tiny_config(eval_batch_size=3), "cpu")
    assert seen["batch_size"] == 3 and seen["ignore_index"] == 255
