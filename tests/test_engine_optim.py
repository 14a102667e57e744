"""Config validation, poly schedule and backbone/head learning rates (DSNet impl. details)."""

import pytest
import torch
from engine_fixtures import TinySegNet
from torch import nn

from repro.engine.config import TrainConfig
from repro.engine.optim import build_optimizer, parameter_groups
from repro.engine.schedule import PolyLRScheduler, poly_lr_factor


def test_poly_factor_values():
    assert poly_lr_factor(0, 100) == 1.0
    assert poly_lr_factor(50, 100, 0.9) == pytest.approx(0.5**0.9)
    assert poly_lr_factor(100, 100) == 0.0
    with pytest.raises(ValueError, match="total_iterations"):
        poly_lr_factor(0, 0)


def test_scheduler_decays_every_group_and_keeps_their_ratio():
    model = TinySegNet()
    config = TrainConfig(epochs=1, batch_size=1, lr=0.01, head_lr_mult=0.1)
    optimizer = build_optimizer(model, config)
    scheduler = PolyLRScheduler(optimizer, total_iterations=10, power=0.9)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    backbone, head = (g["lr"] for g in optimizer.param_groups)
    assert backbone == pytest.approx(0.01 * 0.6**0.9)
    assert head == pytest.approx(0.1 * backbone)
    restored = PolyLRScheduler(build_optimizer(model, config), total_iterations=10)
    restored.load_state_dict(scheduler.state_dict())
    assert restored.last_epoch == 4


def test_default_trains_the_whole_network_at_one_rate():
    config = TrainConfig(epochs=1, batch_size=1, lr=0.01)
    assert config.head_lr_mult == 1.0
    groups = build_optimizer(TinySegNet(), config).param_groups
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 0.01), ("head", 0.01)]


def test_dsnets_ratio_gives_the_rest_a_tenth_of_the_backbone_rate():
    model = TinySegNet()
    groups = parameter_groups(model, lr=0.01, head_lr_mult=0.1)
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == 0.01
    assert by_name["head"]["lr"] == pytest.approx(0.001)
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    assert {id(p) for p in by_name["backbone"]["params"]} == backbone_ids
    all_ids = {id(p) for p in model.parameters()}
    assert {id(p) for p in by_name["head"]["params"]} == all_ids - backbone_ids


def test_model_without_backbone_gets_one_group_and_frozen_params_are_left_out():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Conv2d(2, 2, 1))
    model[0].weight.requires_grad_(False)
    groups = parameter_groups(model, lr=0.1, head_lr_mult=0.1)
    assert len(groups) == 1 and groups[0]["lr"] == 0.1
    assert len(groups[0]["params"]) == 3


def test_optimizer_is_sgd_with_momentum_and_weight_decay():
    optimizer = build_optimizer(TinySegNet(), TrainConfig(epochs=1, batch_size=1, lr=0.01))
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.9
    assert optimizer.defaults["weight_decay"] == 1e-4


def test_adamw_keeps_the_two_learning_rates_and_decoupled_weight_decay():
    config = TrainConfig(
        epochs=1, batch_size=1, lr=0.002, optimizer="adamw", head_lr_mult=0.5, weight_decay=0.01
    )
    optimizer = build_optimizer(TinySegNet(), config)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert sorted(group["lr"] for group in optimizer.param_groups) == [0.001, 0.002]
    assert optimizer.defaults["weight_decay"] == 0.01


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", 0, "epochs must be an int >= 1"),
        ("lr", -1.0, "lr must be a finite number > 0"),
        ("loss", "focal", "loss must be one of"),
        ("optimizer", "adam", "optimizer must be one of"),
        ("ohem_thresh", 1.5, "ohem_thresh must be in"),
        ("eval_scales", (), "eval_scales must be"),
        ("class_weights", (1.0, -2.0), "class_weights must be"),
        ("device", "gpu", "device must be a device name"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value, message):
    values = {"epochs": 1, "batch_size": 2, "lr": 0.01, field: value}
    with pytest.raises(ValueError, match=message):
        TrainConfig(**values)


def test_config_round_trips_through_a_dict():
    config = TrainConfig(epochs=2, batch_size=2, lr=0.01, eval_scales=(1.0, 1.5))
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.differences_for_resume(TrainConfig(2, 2, 0.01, eval_scales=[1.0, 1.5])) == []
    assert config.differences_for_resume(TrainConfig(2, 2, 0.02, device="cuda")) == [
        "eval_scales",
        "lr",
    ]
    with pytest.raises(ValueError, match="unknown fields"):
        TrainConfig.from_dict({**config.to_dict(), "crop": 3})
