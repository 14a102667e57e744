"""Tests of the modules of DSNet (CGDS), GDC (GDC, GDPP) and DDSM on tiny CPU tensors."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from repro.modules.aspp import ASPP, SeparableASPP
from repro.modules.cgds import ContextGuidedSampling
from repro.modules.ddsm import (
    ChannelDynamicAffinity,
    ChannelNonLocalAffinity,
    DynamicDualSampling,
    SpatialDynamicAffinity,
    SpatialNonLocalAffinity,
    anchor_offsets,
)
from repro.modules.dynamic_baselines import DeformableConv, DynamicFilter
from repro.modules.gaussian_offsets import tap_directions, truncate_to_map
from repro.modules.gdc import GaussianDynamicConv, GaussianDynamicPyramidPooling
from repro.modules.resize import resize_to

warnings.filterwarnings("ignore", message=".*compiled sampling ops.*")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ---------------------------------------------------------------- ASPP / S-ASPP


def test_aspp_shapes_and_image_pooling_option() -> None:
    x = torch.randn(2, 8, 7, 9)
    assert ASPP(8, 6, rates=(1, 2))(x).shape == (2, 6, 7, 9)
    without = ASPP(8, 6, rates=(1, 2), image_pooling=False)
    assert without.image_pooling is None and without(x).shape == (2, 6, 7, 9)
    assert SeparableASPP(8, 6)(x).shape == (2, 6, 7, 9)


def test_separable_aspp_has_fewer_parameters_than_aspp() -> None:
    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert count(SeparableASPP(64, 32, rates=(1, 9, 18))) < count(ASPP(64, 32, rates=(9, 18)))


def test_aspp_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="rates"):
        ASPP(8, 6, rates=())
    with pytest.raises(ValueError, match=r"\[B, 8, H, W\]"):
        ASPP(8, 6)(torch.randn(1, 5, 4, 4))


# ---------------------------------------------------------------- CGDS


def test_cgds_with_zero_offsets_equals_plain_convolution() -> None:
    cgds = ContextGuidedSampling(low_channels=4, high_channels=6, out_channels=5, kernel_size=3)
    low, high = torch.randn(2, 4, 9, 8), torch.randn(2, 6, 5, 4)
    expected = F.conv2d(low, cgds.weight, padding=1)
    torch.testing.assert_close(cgds.sampled_features(low, high), expected, atol=1e-5, rtol=1e-5)
    offsets = cgds.sampling_offsets(low, high)
    assert offsets.shape == (2, 18, 9, 8) and offsets.abs().max() == 0


@pytest.mark.parametrize("kernel_size", [1, 5])
def test_cgds_kernel_size_is_a_parameter(kernel_size: int) -> None:
    cgds = ContextGuidedSampling(4, 6, 5, kernel_size=kernel_size)
    low = torch.randn(1, 4, 6, 6)
    expected = F.conv2d(low, cgds.weight, padding=kernel_size // 2)
    torch.testing.assert_close(cgds.sampled_features(low, torch.randn(1, 6, 3, 3)), expected)


@pytest.mark.parametrize("sampler", ["conv", "non_local"])
def test_cgds_gradients_reach_the_offset_predictor(sampler: str) -> None:
    cgds = ContextGuidedSampling(4, 6, 5, sampler=sampler)
    low, high = torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4)
    cgds(low, high).square().mean().backward()
    grad = cgds.offset_predictor.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_cgds_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sampler"):
        ContextGuidedSampling(4, 6, 5, sampler="attention")
    with pytest.raises(ValueError, match="kernel_size"):
        ContextGuidedSampling(4, 6, 5, kernel_size=2)
    with pytest.raises(ValueError, match="high must be"):
        ContextGuidedSampling(4, 6, 5)(torch.randn(1, 4, 4, 4), torch.randn(1, 3, 4, 4))


# ---------------------------------------------------------------- DCNv2 / dynamic filter


def test_deformable_conv_starts_as_half_masked_convolution() -> None:
    layer = DeformableConv(4, 3, modulated=True, dilation=2)
    x = torch.randn(1, 4, 7, 7)
    expected = 0.5 * F.conv2d(x, layer.weight, padding=2, dilation=2)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    plain = DeformableConv(4, 3, modulated=False)
    torch.testing.assert_close(plain(x), F.conv2d(x, plain.weight, padding=1), atol=1e-5, rtol=1e-5)


def test_dynamic_filter_uses_each_images_own_kernels() -> None:
    layer = DynamicFilter(3, kernel_size=3, hidden_channels=4)
    x = torch.randn(2, 3, 6, 6)
    out = layer(x)
    kernels = layer.kernels(x)
    for b in range(2):
        expected = F.conv2d(x[b : b + 1], kernels[b].unsqueeze(1), padding=1, groups=3)
        torch.testing.assert_close(out[b : b + 1], expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- GDC


def _drawn(layer: GaussianDynamicConv, size: int = 16, draws: int = 40) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.stack([layer.draw_displacements(size, size, generator) for _ in range(draws)])


def test_gdc_offsets_follow_the_half_gaussian_along_tap_directions() -> None:
    sigma, size = 0.2, 16
    layer = GaussianDynamicConv(2, 2, sigma=sigma, offset_unit="shortest_side")
    disp = _drawn(layer, size)  # [draws, H, W, 9, 2]
    directions = tap_directions(3)
    centre = 4
    assert disp[..., centre, :].abs().max() == 0
    moving = directions != 0
    signs = torch.sign(disp[..., moving])
    assert torch.all((signs == directions[moving]) | (signs == 0))
    assert torch.all(disp[..., ~moving] == 0)
    magnitude = disp[..., moving].abs() / size
    half_gaussian_mean = sigma * math.sqrt(2 / math.pi)
    half_gaussian_std = sigma * math.sqrt(1 - 2 / math.pi)
    assert magnitude.mean().item() == pytest.approx(half_gaussian_mean, rel=0.03)
    assert magnitude.std().item() == pytest.approx(half_gaussian_std, rel=0.03)


def test_gdc_shared_mode_moves_every_tap_by_one_magnitude() -> None:
    layer = GaussianDynamicConv(2, 2, sigma=2.0, offset_unit="pixels", mode="shared", base=9.0)
    disp = _drawn(layer, draws=5)
    per_position = disp.abs().amax(dim=(-2, -1))
    torch.testing.assert_close(disp, tap_directions(3) * per_position[..., None, None])
    assert per_position.min() >= 9.0


def test_gdc_draws_anew_in_training_and_is_deterministic_in_evaluation() -> None:
    layer = GaussianDynamicConv(3, 2, sigma=0.3, num_eval_draws=4)
    x = torch.randn(1, 3, 10, 10)
    assert not torch.equal(layer(x), layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x), rtol=0, atol=0)
    layer.eval_draws = "fixed"
    torch.testing.assert_close(layer(x), layer(x), rtol=0, atol=0)
    layer.eval_draws = "random"
    assert not torch.equal(layer(x), layer(x))


def test_gdc_evaluation_mean_averages_the_draws() -> None:
    layer = GaussianDynamicConv(3, 2, sigma=0.3, num_eval_draws=3, eval_seed=7).eval()
    x = torch.randn(1, 3, 8, 8)
    generator = torch.Generator().manual_seed(7)
    outs = [layer.convolve(x, layer.draw_displacements(8, 8, generator)) for _ in range(3)]
    torch.testing.assert_close(layer(x), torch.stack(outs).mean(0), atol=1e-5, rtol=1e-5)


def test_gdc_shared_variant_with_zero_sigma_is_dilated_convolution() -> None:
    base = 3
    layer = GaussianDynamicConv(
        4, 5, sigma=0.0, offset_unit="pixels", mode="shared", base=float(base)
    )
    x = torch.randn(2, 4, 11, 12)
    expected = F.conv2d(x, layer.weight, layer.bias, padding=base, dilation=base)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_gdc_truncation_reads_integer_pixels_inside_the_map() -> None:
    disp = torch.randn(5, 6, 9, 2) * 4
    truncated = truncate_to_map(disp, 5, 6)
    ys = torch.arange(5.0).view(5, 1, 1)
    xs = torch.arange(6.0).view(1, 6, 1)
    ty, tx = ys + truncated[..., 0], xs + truncated[..., 1]
    assert torch.equal(ty, ty.round()) and torch.equal(tx, tx.round())
    assert ty.min() >= 0 and ty.max() <= 4 and tx.min() >= 0 and tx.max() <= 5
    layer = GaussianDynamicConv(2, 2, sigma=0.5, sampling="truncate")
    assert layer(torch.randn(1, 2, 5, 6)).shape == (1, 2, 5, 6)


def test_uniform_random_convolution_draws_within_its_range() -> None:
    layer = GaussianDynamicConv(2, 2, sigma=0.2, distribution="uniform", offset_unit="pixels")
    disp = _drawn(layer, draws=20)
    magnitude = disp[..., tap_directions(3) != 0].abs()
    assert magnitude.max() <= 0.6 + 1e-6
    assert magnitude.mean().item() == pytest.approx(0.3, rel=0.05)


def test_gdc_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="eval_draws"):
        GaussianDynamicConv(2, 2, eval_draws="median")
    with pytest.raises(ValueError, match="sigma"):
        GaussianDynamicConv(2, 2, sigma=-1.0)
    with pytest.raises(ValueError, match="depthwise"):
        GaussianDynamicConv(2, 3, depthwise=True)


def test_gdpp_shapes_and_gradients() -> None:
    gdpp = GaussianDynamicPyramidPooling(8, 6, middle_bases=(2.0,), sigma=1.0, large_rate=4)
    x = torch.randn(2, 8, 9, 9, requires_grad=True)
    gdpp(x).sum().backward()
    assert x.grad is not None and gdpp.branches[1][0].weight.grad is not None


# ---------------------------------------------------------------- DDSM


def test_ddsm_spatial_affinity_shapes_and_softmax_over_n() -> None:
    module = SpatialDynamicAffinity(6, 5, inner_channels=8, num_samples=4)
    low, high = torch.randn(2, 6, 8, 7), torch.randn(2, 5, 4, 4)
    weights, values = module.affinity(low, high)
    assert weights.shape == (2, 4, 8, 7) and values.shape == (2, 8, 4, 8, 7)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 8, 7))
    assert module(low, high).shape == (2, 6, 8, 7)


def test_ddsm_channel_affinity_shapes_and_softmax_over_n() -> None:
    module = ChannelDynamicAffinity(6, 5, channels=16, num_samples=4, pooled_size=2)
    low, high = torch.randn(2, 6, 8, 8), torch.randn(2, 5, 4, 4)
    weights, values = module.affinity(low, high)
    assert weights.shape == (2, 16, 4) and values.shape == (2, 16, 4, 16)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 16))
    assert module(low, high).shape == (2, 6, 8, 8)


def test_ddsm_spatial_with_all_positions_equals_full_non_local() -> None:
    dynamic = SpatialDynamicAffinity(4, 3, inner_channels=6, num_samples=6 * 5)
    full = SpatialNonLocalAffinity(4, 3, inner_channels=6)
    missing, unexpected = full.load_state_dict(dynamic.state_dict(), strict=False)
    assert not missing and all(k.startswith("offset_predictor") for k in unexpected)
    dynamic.eval(), full.eval()
    low, high = torch.randn(2, 4, 6, 5), torch.randn(2, 3, 3, 3)
    torch.testing.assert_close(dynamic(low, high), full(low, high), atol=1e-5, rtol=1e-4)


def test_ddsm_channel_with_all_channels_equals_full_non_local() -> None:
    dynamic = ChannelDynamicAffinity(4, 3, channels=9, num_samples=9, pooled_size=2)
    full = ChannelNonLocalAffinity(4, 3, channels=9, pooled_size=2)
    full.load_state_dict(dynamic.state_dict(), strict=False)
    dynamic.eval(), full.eval()
    low, high = torch.randn(2, 4, 6, 6), torch.randn(2, 3, 3, 3)
    torch.testing.assert_close(dynamic(low, high), full(low, high), atol=1e-5, rtol=1e-4)


def test_ddsm_local_anchors_form_a_window() -> None:
    offsets = anchor_offsets(9, 5, 5, "local", local_dilation=2)
    assert offsets.shape == (1, 18, 5, 5)
    assert offsets[0, 0::2, 0, 0].unique().tolist() == [-2.0, 0.0, 2.0]
    with pytest.raises(ValueError, match="square"):
        anchor_offsets(8, 5, 5, "local")


@pytest.mark.parametrize("affinity", ["dynamic", "non_local"])
def test_dynamic_dual_sampling_forward_backward(affinity: str) -> None:
    module = DynamicDualSampling(6, 5, 7, inner_channels=4, affinity=affinity, pooled_size=2)
    low, high = torch.randn(2, 6, 8, 8, requires_grad=True), torch.randn(2, 5, 4, 4)
    out = module(low, high)
    assert out.shape == (2, 7, 8, 8)
    out.sum().backward()
    assert low.grad is not None


def test_ddsm_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="perfect square"):
        ChannelDynamicAffinity(4, 3, channels=10)
    with pytest.raises(ValueError, match="affinity"):
        DynamicDualSampling(4, 3, 4, affinity="full")


# ---------------------------------------------------------------- the one feature resize
def test_resize_to_is_bilinear_without_corner_alignment() -> None:
    x = torch.randn(2, 3, 5, 7)
    expected = F.interpolate(x, size=(9, 4), mode="bilinear", align_corners=False)
    assert torch.equal(resize_to(x, (9, 4)), expected)
    assert torch.equal(resize_to(x, torch.zeros(1, 8, 9, 4)), expected)  # a reference map
    assert torch.equal(resize_to(x, torch.zeros(9, 4)), expected)  # a label map [H, W]
    assert resize_to(x, x) is x and resize_to(x, x.shape[-2:]) is x  # same size: no copy
    with pytest.raises(ValueError, match="height, width"):
        resize_to(x, (3,))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        resize_to(x, torch.zeros(4))
