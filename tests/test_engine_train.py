"""Training loop: learning, seeds, per-epoch checkpoints and exact resumption on CPU."""

import json

import pytest
import torch
from engine_fixtures import TinySegNet, TinyShapesDataset, tiny_config

from repro.engine import checkpoint_path, load_checkpoint, train


def _run(config, run_dir=None, on_epoch_end=None, model_seed=0, resume=True):
    torch.manual_seed(model_seed)
    model = TinySegNet()
    train_set = TinyShapesDataset(length=8, seed=1, augment=True)
    val_set = TinyShapesDataset(length=4, seed=2)
    result = train(
        model,
        train_set,
        val_set,
        config,
        run_dir=run_dir,
        resume=resume,
        progress=False,
        on_epoch_end=on_epoch_end,
    )
    return model, result


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_learns_and_records_history(tmp_path):
    config = tiny_config(epochs=8, lr=0.1, aux_weight=0.4)
    model, result = _run(config, tmp_path / "run")
    losses = [record.loss for record in result.history]
    assert len(losses) == 8 and losses[-1] < losses[0] / 2
    first = result.history[0]
    assert first.lr == 0.1 and first.loss_aux is not None and first.images_per_s > 0
    assert result.history[-1].lr < first.lr  # poly decay
    assert result.final_metrics is not None and result.final_metrics["miou"] > 0.5
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["epoch"] for r in saved] == list(range(1, 9))
    assert saved[-1]["val"]["miou"] == pytest.approx(result.history[-1].val["miou"])
    final = json.loads((tmp_path / "run" / "final_metrics.json").read_text())
    assert final["miou"] == pytest.approx(result.final_metrics["miou"])
    assert load_checkpoint(checkpoint_path(tmp_path / "run"))["epoch"] == 8


def test_same_seed_gives_identical_metrics_and_weights():
    config = tiny_config(epochs=2)
    model_a, result_a = _run(config)
    model_b, result_b = _run(config)
    assert result_a.final_metrics == {
        **result_b.final_metrics,
        "images_per_s": result_a.final_metrics["images_per_s"],
    }
    assert [r.loss for r in result_a.history] == [r.loss for r in result_b.history]
    assert _same_weights(model_a, model_b)
    model_c, result_c = _run(tiny_config(epochs=2, seed=8))
    assert not _same_weights(model_a, model_c)  # the seed matters: the check can fail


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    config = tiny_config(epochs=3, loss="ohem", ohem_min_kept=50)
    straight_model, straight = _run(config, tmp_path / "straight")

    def stop_after_two(record):
        if record.epoch == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _run(config, tmp_path / "resumed", on_epoch_end=stop_after_two)
    assert load_checkpoint(checkpoint_path(tmp_path / "resumed"))["epoch"] == 2
    # A fresh process would rebuild the model from scratch: use another init to prove the
    # checkpoint, not the initialisation, decides the result.
    resumed_model, resumed = _run(config, tmp_path / "resumed", model_seed=123)
    assert resumed.resumed_from_epoch == 2
    assert _same_weights(straight_model, resumed_model)
    assert [r.loss for r in resumed.history] == [r.loss for r in straight.history]
    for key in ("miou", "pixel_acc", "per_class_iou", "boundary_f"):
        assert resumed.final_metrics[key] == straight.final_metrics[key]


def test_resume_refuses_a_different_configuration(tmp_path):
    _run(tiny_config(epochs=1), tmp_path / "run")
    with pytest.raises(ValueError, match=r"differs in \['lr'\]"):
        _run(tiny_config(epochs=1, lr=0.5), tmp_path / "run")
    _, fresh = _run(tiny_config(epochs=1, lr=0.5), tmp_path / "run", resume=False)
    assert fresh.resumed_from_epoch == 0


def test_weighted_ce_and_bad_arguments():
    _, result = _run(tiny_config(epochs=1, loss="weighted_ce"))
    assert result.history[0].loss > 0
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(TinySegNet(), TinyShapesDataset(length=2), None, tiny_config(), progress=False)
    with pytest.raises(TypeError, match="TrainConfig"):
        train(TinySegNet(), TinyShapesDataset(length=2), None, {"epochs": 1})
