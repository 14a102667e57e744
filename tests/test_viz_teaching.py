"""The teaching chapter draws what the op reads: positions, reads and checks of ``repro.viz.teaching``.

Each helper is tested against something independent of it: the op's output, a bilinear
interpolation written out by hand, finite differences, ``F.conv2d``. The checks the notebooks
print are also tested to *fail* on a wrong computation, so a passing check means something.
"""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from repro.modules.cgds import ContextGuidedSampling
from repro.modules.ddsm import SpatialDynamicAffinity
from repro.modules.dynamic_baselines import DeformableConv
from repro.modules.gdc import GaussianDynamicConv
from repro.ops import dynamic_sampling_conv2d, sample_points
from repro.viz import teaching

matplotlib.use("Agg")

DTYPE = torch.float64


def _image(channels: int = 2, height: int = 7, width: int = 9, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, height, width, generator=generator, dtype=DTYPE)


def _bilinear_by_hand(image: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """DCNv2 Eq. 4 written out: ``Σ_q max(0, 1-|q_y-y|) max(0, 1-|q_x-x|) image[q]``, zero outside."""
    _, channels, height, width = image.shape
    value = torch.zeros(channels, dtype=image.dtype)
    for qy in (math.floor(y), math.floor(y) + 1):
        for qx in (math.floor(x), math.floor(x) + 1):
            if 0 <= qy < height and 0 <= qx < width:
                weight = max(0.0, 1 - abs(qy - y)) * max(0.0, 1 - abs(qx - x))
                value += weight * image[0, :, qy, qx]
    return value


# --------------------------------------------------------------------------- positions


@pytest.mark.parametrize("dilation", [1, 2])
def test_grid_positions_are_the_dilated_grid(dilation):
    image = _image()
    grid = teaching.grid_positions(image, dilation=dilation)
    assert grid.shape == (1, 9, 7, 9, 2)
    for y, x in [(0, 0), (3, 4), (6, 8)]:
        expected = [
            (y + dilation * dy, x + dilation * dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        ]
        assert grid[0, :, y, x].tolist() == [list(map(float, p)) for p in expected]


@pytest.mark.parametrize("dilation", [1, 2])
def test_weighted_sum_of_reads_at_the_tap_positions_is_the_op(dilation):
    image = _image(3)
    generator = torch.Generator().manual_seed(1)
    offset = 2.5 * torch.randn(1, 18, 7, 9, generator=generator, dtype=DTYPE)
    mask = torch.rand(1, 9, 7, 9, generator=generator, dtype=DTYPE)
    weight = torch.randn(4, 3, 3, 3, generator=generator, dtype=DTYPE)
    bias = torch.randn(4, generator=generator, dtype=DTYPE)
    padding = dilation
    positions = teaching.conv_tap_positions(image, offset, 3, padding=padding, dilation=dilation)
    assert positions.shape == (1, 1, 9, 7, 9, 2)
    rebuilt = teaching.weighted_sum(teaching.read_at(image, positions[:, 0]), weight, mask, bias)
    op = dynamic_sampling_conv2d(image, offset, weight, bias, 1, padding, dilation, mask)
    torch.testing.assert_close(rebuilt, op, rtol=0, atol=1e-12)


def test_tap_positions_follow_the_offset_layout():
    """Channel 2k is the y offset of tap k, 2k + 1 its x offset (deform_conv2d's layout)."""
    image = _image()
    offset = torch.zeros(1, 18, 7, 9, dtype=DTYPE)
    offset[0, 2 * 5, 3, 4] = 0.25  # tap 5 = (0, +1): y offset
    offset[0, 2 * 5 + 1, 3, 4] = -1.5  # its x offset
    positions = teaching.conv_tap_positions(image, offset, 3, padding=1)[0, 0]
    assert positions[5, 3, 4].tolist() == [3.25, 4.0 + 1 - 1.5]
    assert positions[4, 3, 4].tolist() == [3.0, 4.0]


def test_read_at_is_bilinear_interpolation_by_hand():
    image = _image()
    generator = torch.Generator().manual_seed(2)
    positions = torch.rand(1, 2, 7, 9, 2, generator=generator, dtype=DTYPE) * 12 - 2
    reads = teaching.read_at(image, positions)  # [1, C, 2, 7, 9]
    for k, y, x in [(0, 0, 0), (1, 3, 5), (0, 6, 8), (1, 2, 1)]:
        py, px = positions[0, k, y, x].tolist()
        torch.testing.assert_close(reads[0, :, k, y, x], _bilinear_by_hand(image, py, px))


def test_point_positions_are_where_sample_points_reads():
    image = _image()
    offset = 3 * torch.randn(1, 10, 7, 9, generator=torch.Generator().manual_seed(3), dtype=DTYPE)
    reads = teaching.read_at(image, teaching.point_positions(offset))
    torch.testing.assert_close(reads, sample_points(image, offset), rtol=0, atol=1e-14)


def test_pixels_at_and_at_pixels():
    assert teaching.pixels_at([0.0, 1.0, 0.5], [0.0, 1.0, 0.5], 11, 21) == [
        (0, 0),
        (10, 20),
        (5, 10),
    ]
    with pytest.raises(ValueError):
        teaching.pixels_at([1.5], [0.0], 11, 21)
    with pytest.raises(ValueError):
        teaching.pixels_at([0.5, 0.2], [0.0], 11, 21)
    grid = teaching.grid_positions(_image())
    assert teaching.at_pixels(grid, [(3, 4)])[0, 4].tolist() == [3.0, 4.0]


# --------------------------------------------------------------------------- layers


def test_deformable_positions_rebuild_the_layer():
    image = _image(3)
    layer = DeformableConv(3, 4, modulated=True).double()
    teaching.randomise_predictor(layer.offset_predictor, 0.5, 0)
    positions, mask = teaching.deformable_sampling(layer, image)
    assert mask is not None
    assert not torch.allclose(positions, teaching.grid_positions(image))  # the taps moved
    rebuilt = teaching.weighted_sum(teaching.read_at(image, positions), layer.weight, mask)
    if layer.bias is not None:
        rebuilt = rebuilt + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(rebuilt, layer(image), rtol=0, atol=1e-12)


def test_cgds_positions_come_from_the_context():
    low = _image(3, 8, 8)
    layer = ContextGuidedSampling(3, 3, 4).double().eval()
    teaching.randomise_predictor(layer.offset_predictor, 0.5, 1)
    own, flipped = F.avg_pool2d(low, 4), F.avg_pool2d(low.flip(-2), 4)
    positions = teaching.cgds_sampling(layer, low, own)
    assert not torch.allclose(positions, teaching.cgds_sampling(layer, low, flipped))
    rebuilt = teaching.weighted_sum(teaching.read_at(low, positions), layer.weight)
    torch.testing.assert_close(rebuilt, layer.sampled_features(low, own), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "options",
    [{}, {"mode": "shared", "base": 0.1}, {"sampling": "truncate"}],
    ids=["per_tap", "shared", "truncate"],
)
def test_gdc_positions_rebuild_the_layer(options):
    image = _image(2, 12, 12)
    layer = GaussianDynamicConv(2, 3, sigma=0.2, **options).double()
    positions, displacements = teaching.gdc_sampling(layer, image, torch.Generator().manual_seed(0))
    rebuilt = teaching.weighted_sum(
        teaching.read_at(image, positions), layer.weight, bias=layer.bias
    )
    torch.testing.assert_close(rebuilt, layer.convolve(image, displacements), rtol=0, atol=1e-12)
    draws = teaching.gdc_draws(layer, image, [(5, 5)], 3, 0)
    assert draws.shape == (3, 1, 9, 2)
    assert draws[:, 0, 4].tolist() == [[5.0, 5.0]] * 3  # the centre tap never moves
    assert not torch.equal(draws[0], draws[1])  # a new draw every time


def test_ddsm_positions_rebuild_the_layer():
    low, high = _image(3, 8, 8), _image(3, 4, 4, seed=1)
    layer = SpatialDynamicAffinity(3, 3, inner_channels=4, num_samples=5, position_embedding=False)
    layer = layer.double().eval()
    teaching.randomise_predictor(layer.offset_predictor, 1.0, 2)
    with torch.no_grad():
        positions, affinity = teaching.ddsm_sampling(layer, low, high)
        rebuilt = teaching.ddsm_output_from_positions(layer, low, high)
        expected = layer(low, high)
    assert positions.shape == (1, 5, 8, 8, 2)
    torch.testing.assert_close(affinity.sum(dim=1), torch.ones(1, 8, 8, dtype=DTYPE))
    torch.testing.assert_close(rebuilt, expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- checks


def test_checks_pass_on_the_op():
    image = _image(3)
    weight = torch.randn(2, 3, 3, 3, generator=torch.Generator().manual_seed(4), dtype=DTYPE)
    generator = torch.Generator().manual_seed(5)
    offset = 2 * torch.randn(1, 18, 7, 9, generator=generator, dtype=DTYPE)
    mask = torch.rand(1, 9, 7, 9, generator=generator, dtype=DTYPE)
    checks = [
        teaching.check_zero_offsets(image, weight, dilation=1),
        teaching.check_zero_offsets(image, weight, dilation=2),
        teaching.check_torchvision(image, offset, weight, mask),
        teaching.check_integer_reads(image, [(0, 0), (3, 4), (6, 8)]),
    ]
    for check in checks:
        assert check.passed, str(check)
        assert "PASS" in str(check)


def test_checks_fail_on_a_wrong_computation():
    image = _image(3)
    weight = torch.randn(2, 3, 3, 3, generator=torch.Generator().manual_seed(4), dtype=DTYPE)

    def half_pixel_off(x, offset, *args):
        return dynamic_sampling_conv2d(x, offset + 0.5, *args)

    check = teaching.check_zero_offsets(image, weight, conv=half_pixel_off)
    assert not check.passed and "FAIL" in str(check)
    assert not teaching.check_torchvision(
        image, torch.zeros(1, 18, 7, 9, dtype=DTYPE), weight, None, conv=half_pixel_off
    ).passed

    def read_next_row(img, points):
        return teaching.read_points(img, points + torch.tensor([1.0, 0.0], dtype=DTYPE))

    assert not teaching.check_integer_reads(image, [(2, 2)], read=read_next_row).passed
    assert not teaching.compare("nan", torch.tensor([math.nan]), torch.tensor([0.0])).passed
    with pytest.raises(ValueError):
        teaching.compare("shapes", torch.zeros(2), torch.zeros(3))


def test_gradient_to_the_position_agrees_with_finite_differences():
    image = _image(2, 6, 6)
    points = torch.tensor([[1.3, 2.6], [3.9, 0.2], [4.5, 4.45]], dtype=DTYPE)
    values, gradient = teaching.read_with_gradient(image, points)
    assert gradient.shape == (2, 3, 2)
    for p, (y, x) in enumerate(points.tolist()):
        torch.testing.assert_close(values[:, p], _bilinear_by_hand(image, y, x))
    torch.testing.assert_close(
        gradient, teaching.finite_difference_gradient(image, points), rtol=0, atol=1e-8
    )
    # d/dx between columns 2 and 3 on row 1.3: the difference of the columns, weighted in y
    expected_x = 0.7 * (image[0, :, 1, 3] - image[0, :, 1, 2]) + 0.3 * (
        image[0, :, 2, 3] - image[0, :, 2, 2]
    )
    torch.testing.assert_close(gradient[:, 0, 1], expected_x)
    assert teaching.check_position_gradient(image, points).passed


def test_gradient_check_fails_on_a_wrong_gradient_and_rejects_kinks():
    image = _image(2, 6, 6)
    points = torch.tensor([[1.3, 2.6], [3.9, 0.2]], dtype=DTYPE)

    def wrong(img, pts):
        values, gradient = teaching.read_with_gradient(img, pts)
        return values, gradient.flip(-1)  # y and x swapped

    assert not teaching.check_position_gradient(image, points, gradient=wrong).passed
    with pytest.raises(ValueError):
        teaching.check_position_gradient(image, torch.tensor([[2.0, 1.5]], dtype=DTYPE))


def test_reads_and_gradients_off_the_map():
    image = _image(1, 6, 6)
    values, gradient = teaching.read_with_gradient(
        image, torch.tensor([[2.0, -0.5], [2.0, -3.0]], dtype=DTYPE)
    )
    torch.testing.assert_close(values[0, 0], 0.5 * image[0, 0, 2, 0])
    torch.testing.assert_close(gradient[0, 0, 1], image[0, 0, 2, 0])
    assert values[0, 1] == 0 and gradient[0, 1].abs().max() == 0


def test_gdc_collapse_checks():
    image = _image(2, 10, 10)
    assert teaching.check_sigma_zero(GaussianDynamicConv(2, 3, sigma=0.0).double(), image).passed
    shared = GaussianDynamicConv(2, 3, sigma=0.0, mode="shared", base=2.0, offset_unit="pixels")
    assert teaching.check_shared_dilation(shared.double(), image).passed
    # with sigma > 0 the layer is no 1x1 conv: the check can fail
    assert not teaching.check_sigma_zero(
        GaussianDynamicConv(2, 3, sigma=0.3).double(), image
    ).passed


def test_recorded_difference_floors_rounding_noise_only():
    assert teaching.Check("a", 3e-16, 1e-10).recorded_difference == 1e-13
    assert teaching.Check("b", 5e-11, 1e-10).recorded_difference == 5e-11
    assert teaching.Check("c", 0.2, 1e-10).recorded_difference == 0.2
    assert math.isnan(teaching.Check("d", math.nan, 1e-10).recorded_difference)


# --------------------------------------------------------------------------- analysis


def test_interpolation_weights_are_the_bilinear_kernel():
    weights = teaching.interpolation_weights(5, 6, (1.25, 3.5))
    assert int((weights > 0).sum()) == 4
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=DTYPE))
    torch.testing.assert_close(weights[1, 3], torch.tensor(0.75 * 0.5, dtype=DTYPE))
    torch.testing.assert_close(weights[2, 4], torch.tensor(0.25 * 0.5, dtype=DTYPE))
    on_pixel = teaching.interpolation_weights(5, 6, (2.0, 2.0))
    assert on_pixel[2, 2] == 1 and on_pixel.sum() == 1


@pytest.mark.parametrize(("layers", "dilation"), [(1, 1), (2, 1), (2, 3)])
def test_receptive_field_radius_is_layers_times_dilation(layers, dilation):
    image = _image(2, 21, 21)
    field = teaching.receptive_field(teaching.conv_stack(2, layers, dilation, 0), image, (10, 10))
    assert teaching.support_radius(field, (10, 10)) == layers * dilation
    if dilation > 1:  # gridding: the pixel next to the centre is never read
        assert field[10, 11] == 0


def test_identity_deformable_copies_and_shifted_translates():
    image = _image(2, 8, 8)
    torch.testing.assert_close(teaching.identity_deformable(2)(image), image)
    moved = teaching.shifted(image, (1.0, 0.0))
    torch.testing.assert_close(moved[..., :-1, :], image[..., 1:, :])
    assert moved[..., -1, :].abs().max() == 0


def test_load_photo():
    photo = teaching.load_photo("coffee", 24)
    assert photo.dtype == DTYPE and photo.shape[:2] == (1, 3) and min(photo.shape[-2:]) == 24
    assert 0 <= float(photo.min()) and float(photo.max()) <= 1
    grey = teaching.load_photo("camera", 16)  # a grey photo, repeated over the channels
    assert torch.equal(grey[:, 0], grey[:, 1])
    with pytest.raises(ValueError):
        teaching.load_photo("lena", 16)


def test_figures_and_animation(tmp_path):
    photo = teaching.load_photo("chelsea", 20)
    grid = teaching.at_pixels(teaching.grid_positions(photo), [(5, 5), (10, 12)])
    fig = teaching.sampling_figure(photo, [(5, 5), (10, 12)], {"grid": grid})
    assert len(fig.axes) == 4
    layer = GaussianDynamicConv(3, 2, sigma=0.1).double()
    taps = teaching.gdc_draws(layer, photo, [(8, 8)], 3, 0)[:, 0]
    assert len(teaching.draws_figure(photo, (8, 8), {"gdc": taps}, 2).axes) == 3
    gif = teaching.save_draws_animation(photo, (8, 8), taps, tmp_path / "draws.gif")
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert gif.stat().st_size < 1_000_000


def test_the_learn_part_comes_before_the_papers():
    from repro.site.build import toc

    parts = toc({"teaching": ["generated/notebooks/teaching_basics"]})["parts"]
    captions = [part["caption"] for part in parts]
    assert captions.index("Learn") < captions.index("The papers")
    learn = parts[captions.index("Learn")]["chapters"]
    assert learn == [
        {"file": "teaching", "sections": [{"file": "generated/notebooks/teaching_basics"}]}
    ]
