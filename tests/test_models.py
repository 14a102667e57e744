"""Every registered model runs forward and backward at a tiny resolution on CPU."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from repro.models import available, build, config_keys, default_config, describe
from repro.models.backbones import MobileNetV2Backbone, ResNetBackbone
from repro.models.segmentation import context_option_defaults
from repro.modules.aspp import ASPP, SeparableASPP
from repro.modules.gdc import GaussianDynamicConv, GaussianDynamicPyramidPooling

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
    "deeplabv3": {"backbone": "resnet18", "channels": 16},
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
    if name.endswith("_gdpp"):
        config["context_options"] = {"num_eval_draws": 2}
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


# ----------------------------------------------------------------- context_options
#: Registered models with a context module (the ones that take ``context_options``).
CONTEXT_MODELS = [name for name in available() if "context_options" in config_keys(name)]


def context_kind(name: str) -> str:
    """The context module a registered model builds (``DeepLabV3`` has a selector)."""
    return default_config(name).get("context", "aspp")


def context_module(model: torch.nn.Module) -> torch.nn.Module:
    return model.context if hasattr(model, "context") else model.aspp


def dilations_3x3(module: torch.nn.Module) -> list[tuple[int, int]]:
    """Dilations of the 3x3 convolutions of a pyramid's branches, in branch order."""
    return [
        m.dilation
        for m in module.branches.modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
    ]


def test_every_model_with_a_context_module_takes_context_options() -> None:
    assert CONTEXT_MODELS == [n for n in available() if not n.startswith(("fcn", "lightweight"))]
    for name in CONTEXT_MODELS:
        keys = config_keys(name)
        assert default_config(name)["context_options"] is None
        assert not {"rates", "image_pooling"} & set(keys)
        assert not [key for key in keys if key.startswith("gdpp_")]


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("name", CONTEXT_MODELS)
def test_explicit_default_context_options_build_the_default_network(
    name: str, output_stride: int
) -> None:
    config = small_config(name) | {"output_stride": output_stride}
    given = dict(config.pop("context_options", {}))
    explicit = context_option_defaults(context_kind(name), output_stride) | given
    images = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    built = []
    for options in (given or None, explicit):
        torch.manual_seed(0)
        model = build(name, NUM_CLASSES, **config, context_options=options).eval()
        with torch.no_grad():
            outputs = model(images)["out"]
        built.append((model.state_dict(), [n for n, _ in model.named_parameters()], outputs))
    (state_a, names_a, out_a), (state_b, names_b, out_b) = built
    assert names_a == names_b  # same parameters, created in the same order
    assert list(state_a) == list(state_b)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert torch.equal(out_a, out_b)


@pytest.mark.parametrize(
    ("name", "output_stride", "expected"),
    [
        ("deeplabv3plus", 16, (6, 12, 18)),
        ("dsnet", 8, (12, 24, 36)),
        ("ddsm", 16, (6, 12, 18)),
        ("deeplabv3", 8, (12, 24, 36)),
        ("mobilenetv2_aspp", 16, (6, 12, 18)),
        ("mobilenetv2_saspp", 16, (1, 9, 18)),
        ("mobilenetv2_saspp", 8, (1, 9, 18)),
    ],
)
def test_default_rates_are_the_papers(name: str, output_stride: int, expected: tuple) -> None:
    model = build(name, 3, **small_config(name), output_stride=output_stride)
    module = context_module(model)
    assert isinstance(module, ASPP | SeparableASPP) and module.image_pooling is not None
    assert module.rates == expected
    assert dilations_3x3(module) == [(r, r) for r in expected]


def test_default_gdpp_is_the_papers() -> None:
    model = build("mobilenetv2_gdpp", 3, width_mult=0.25, channels=8)
    gdpp = model.context
    assert isinstance(gdpp, GaussianDynamicPyramidPooling) and gdpp.image_pooling is not None
    (gdc,) = [m for m in gdpp.modules() if isinstance(m, GaussianDynamicConv)]
    assert (gdc.base, gdc.sigma, gdc.offset_unit, gdc.mode) == (9.0, 2.0, "pixels", "shared")
    assert (gdc.eval_draws, gdc.num_eval_draws) == ("mean", 50)
    depthwise = [m.dilation for m in gdpp.branches.modules() if isinstance(m, torch.nn.Conv2d)]
    assert (1, 1) in depthwise and (18, 18) in depthwise


@pytest.mark.parametrize(
    "name", ["deeplabv3plus", "dsnet", "ddsm", "deeplabv3", "mobilenetv2_aspp"]
)
def test_aspp_context_options_reach_the_module(name: str) -> None:
    options = {"rates": (2, 3), "image_pooling": False}
    model = build(name, 3, **small_config(name), context_options=options)
    module = context_module(model)
    assert isinstance(module, ASPP)
    assert module.rates == (2, 3) and dilations_3x3(module) == [(2, 2), (3, 3)]
    assert module.image_pooling is None
    assert model(torch.randn(1, 3, SIZE, SIZE))["out"].shape == (1, 3, SIZE, SIZE)


def test_separable_aspp_and_gdpp_context_options_reach_the_module() -> None:
    small = {"width_mult": 0.25, "channels": 8}
    saspp = build("mobilenetv2_saspp", 3, **small, context_options={"rates": (1, 2, 5)}).context
    assert isinstance(saspp, SeparableASPP) and dilations_3x3(saspp) == [(1, 1), (2, 2), (5, 5)]
    options = {
        "rates": (2, 5),
        "bases": (2.25, 4.0),
        "sigma": 0.5,
        "image_pooling": False,
        "eval_draws": "fixed",
        "num_eval_draws": 3,
    }
    gdpp = build("mobilenetv2_gdpp", 3, **small, context_options=options).context
    layers = [m for m in gdpp.modules() if isinstance(m, GaussianDynamicConv)]
    assert [layer.base for layer in layers] == [2.25, 4.0]
    assert all(
        (layer.sigma, layer.eval_draws, layer.num_eval_draws) == (0.5, "fixed", 3)
        for layer in layers
    )
    dilations = [
        m.dilation
        for m in gdpp.branches.modules()
        if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.dilation != (1, 1)
    ]
    assert dilations == [(2, 2), (5, 5)] and gdpp.image_pooling is None


def test_unknown_context_options_name_the_model_the_key_and_the_allowed_keys() -> None:
    with pytest.raises(
        ValueError,
        match=r"DSNet: unknown context_options key\(s\) \['rate'\].*"
        r"allowed keys: image_pooling, rates",
    ):
        build("dsnet", 3, context_options={"rate": (1, 2)})
    with pytest.raises(
        ValueError,
        match=r"DeepLabV3\(context='gdpp'\).*\['gdpp_sigma'\].*"
        r"allowed keys: bases, eval_draws, image_pooling, num_eval_draws, rates",
    ):
        build("mobilenetv2_gdpp", 3, context_options={"gdpp_sigma": 2.0})
    with pytest.raises(ValueError, match=r"DeepLabV3\(context='none'\).*allowed keys: none"):
        build("mobilenetv2", 3, context_options={"rates": (1,)})
    with pytest.raises(ValueError, match=r"\(small, large\)"):
        build("mobilenetv2_gdpp", 3, context_options={"rates": (1, 2, 3)})
    with pytest.raises(TypeError, match="mapping"):
        build("deeplabv3plus", 3, context_options=[("rates", (1,))])
    for old in ("rates", "image_pooling", "gdpp_num_eval_draws", "gdpp_rates"):
        with pytest.raises(ValueError, match=rf"unknown config key\(s\) \['{old}'\]"):
            build("mobilenetv2_gdpp", 3, **{old: None})
