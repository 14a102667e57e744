"""Every registered model runs forward and backward at a tiny resolution on CPU."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from repro.models import available, build, config_keys, default_config, describe
from repro.models.backbones import MobileNetV2Backbone, ResNetBackbone

warnings.filterwarnings("ignore", message=".*compiled sampling ops.*")

NUM_CLASSES = 5
SIZE = 33

#: Small widths per model family (prefix match, longest first) so the suite stays fast.
SMALL = {
    "fcn": {"head_channels": 8},
    "deeplabv3plus": {
        "backbone": "resnet18",
        "aspp_channels": 16,
        "low_level_channels": 8,
        "decoder_channels": 16,
    },
    "dsnet": {
        "backbone": "resnet18",
        "aspp_channels": 16,
        "modification_channels": 16,
        "sampled_channels": 16,
        "classifier_channels": 16,
    },
    "mobilenetv2": {"width_mult": 0.25, "channels": 16},
    "deeplabv3": {"backbone": "resnet18", "channels": 16, "gdpp_num_eval_draws": 2},
    "lightweight": {"channels": 8, "classifier_channels": 8},
    "ddsm": {
        "aspp_channels": 16,
        "inner_channels": 16,
        "refined_channels": 16,
        "classifier_channels": 16,
    },
}


def small_config(name: str) -> dict:
    prefix = max((p for p in SMALL if name.startswith(p)), key=len)
    config = dict(SMALL[prefix])
    if name.startswith("mobilenetv2"):
        config["gdpp_num_eval_draws"] = 2
    if name in ("lightweight_gdc", "lightweight_uniform"):
        config["gdc_options"] = {"num_eval_draws": 2}
    return config


@pytest.mark.parametrize("name", available())
def test_every_model_runs_forward_and_backward(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, NUM_CLASSES, **small_config(name))
    assert isinstance(model.backbone, torch.nn.Module)
    images = torch.randn(2, 3, SIZE, SIZE)
    outputs = model(images)
    assert outputs["out"].shape == (2, NUM_CLASSES, SIZE, SIZE)
    loss = outputs["out"].logsumexp(1).mean()
    if "aux" in outputs:
        assert outputs["aux"].shape == (2, NUM_CLASSES, SIZE, SIZE)
        loss = loss + outputs["aux"].logsumexp(1).mean()
    loss.backward()
    trainable = [p for n, p in model.named_parameters() if p.requires_grad]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(images)["out"]).all()


def test_registry_lists_descriptions_and_defaults() -> None:
    names = available()
    assert {"dsnet", "deeplabv3plus", "fcn", "mobilenetv2_gdpp", "lightweight_gdc", "ddsm"} <= set(
        names
    )
    assert all(describe(name) for name in names)
    assert default_config("dsnet_non_local")["sampler"] == "non_local"
    assert "kernel_size" in config_keys("dsnet")


def test_registry_rejects_unknown_names_and_keys() -> None:
    with pytest.raises(ValueError, match="available: .*dsnet"):
        build("pspnet", 3)
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['widht'\].*allowed"):
        build("fcn", 3, widht=4)
    with pytest.raises(ValueError, match="num_classes"):
        build("fcn", 0)
    with pytest.raises(ValueError, match="sampler"):
        build("dsnet", 3, sampler="attention")


@pytest.mark.parametrize(("low", "high"), [("x3", "x5"), ("x4", "aspp"), ("x5", "aspp")])
def test_dsnet_low_high_pairs_of_table_1(low: str, high: str) -> None:
    config = small_config("dsnet") | {"low_level": low, "high_level": high}
    model = build("dsnet", 3, deep_supervision=False, **config)
    outputs = model(torch.randn(2, 3, 32, 32))
    assert set(outputs) == {"out"} and outputs["out"].shape == (2, 3, 32, 32)


@pytest.mark.parametrize(("output_stride", "x5_size"), [(8, 8), (16, 4), (32, 2)])
def test_resnet_backbone_output_stride(output_stride: int, x5_size: int) -> None:
    features = ResNetBackbone(18, output_stride)(torch.randn(1, 3, 64, 64))
    assert features["x2"].shape[-1] == 16 and features["x3"].shape[-1] == 8
    assert features["x5"].shape[-1] == x5_size


def test_mobilenet_backbone_output_stride() -> None:
    backbone = MobileNetV2Backbone(output_stride=8, width_mult=0.25)
    features = backbone(torch.randn(1, 3, 64, 64))
    assert features["low"].shape[-1] == 16 and features["out"].shape[-1] == 8


def test_backbone_weights_from_file_and_clear_errors(tmp_path: Path) -> None:
    import torchvision

    path = tmp_path / "resnet18.pth"
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), path)
    backbone = ResNetBackbone(18, 16, weights=path)
    torch.testing.assert_close(backbone.stem[0].weight, reference.conv1.weight)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        ResNetBackbone(18, 16, weights=tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="does not match"):
        ResNetBackbone(18, 16, weights=bad)
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        ResNetBackbone(18, 16, weights="NOT_A_WEIGHTS_NAME")
    with pytest.raises(ValueError, match="output_stride"):
        ResNetBackbone(18, 4)


def test_lightweight_network_caches_frozen_features() -> None:
    torch.manual_seed(0)
    model = build("lightweight_gdc", 4, channels=8, gdc_options={"eval_draws": "fixed"})
    frozen = [p for p in model.backbone.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    model.train()
    assert not model.backbone.training
    images = torch.randn(1, 3, 30, 34)
    features = model.extract_features(images)
    assert features.shape == (1, 40, 15, 17) and not features.requires_grad
    model.eval()
    torch.testing.assert_close(
        model.forward_features(features, (30, 34))["out"], model(images)["out"]
    )
    with pytest.raises(ValueError, match="extract_features"):
        model.forward_features(torch.randn(1, 8, 4, 4))


@pytest.mark.parametrize("branch", ["normal", "dilated", "deformable", "gdc", "uniform"])
def test_lightweight_branches_have_normal_convolution_parameter_count(branch: str) -> None:
    model = build("lightweight_gdc", 4, branch=branch, channels=8)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    normal = build("lightweight_normal", 4, channels=8)
    normal_count = sum(p.numel() for p in normal.parameters() if p.requires_grad)
    if branch == "deformable":
        assert trainable > normal_count  # the offset predictor
    else:
        assert trainable == normal_count
