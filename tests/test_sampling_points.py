"""Learned sampling points in image pixels (``repro.analysis.sampling_points``).

The positions are checked against the layers themselves: reading the sampled map bilinearly at
them and applying the layer's kernel reproduces the layer's output (CGDS, DSNet Eq. 2; DCNv2
with its mask), and zero offsets give the regular grid, placed in the image by hand.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from repro import models
from repro.analysis.sampling_points import (
    SamplingField,
    boundary_distance,
    choose_pixels,
    offset_table,
    sampling_field,
    to_image,
)
from repro.viz import teaching
from repro.viz.sampling_points import (
    offset_distribution_figure,
    sampling_points_figure,
    segmentation_figure,
)

matplotlib.use("Agg")

SMALL = {"backbone": "resnet18", "weights": None, "deep_supervision": False}


def _model(name: str, **config: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build(name, num_classes=3, **SMALL, aspp_channels=8, **config).eval()


def _dsnet() -> torch.nn.Module:
    channels = {"modification_channels": 8, "sampled_channels": 8, "classifier_channels": 8}
    return _model("dsnet", **channels)


def _dcnv2() -> torch.nn.Module:
    return _model("deeplabv3plus", decoder_channels=8, refinement="dcnv2")


def _images(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(seed))


def _capture_inputs(module: torch.nn.Module, model: torch.nn.Module, images: torch.Tensor):
    seen: dict[str, tuple[torch.Tensor, ...]] = {}
    handle = module.register_forward_pre_hook(lambda _m, args: seen.update(args=args))
    with torch.no_grad():
        model(images)
    handle.remove()
    return seen["args"]


def _feature_positions(field: SamplingField) -> torch.Tensor:
    """Image pixels back to the sampled map's coordinates: ``u = (y + 0.5) / s - 0.5``."""
    scale = torch.tensor(field.scale, dtype=field.positions.dtype)
    return (field.positions + 0.5) / scale - 0.5


def test_image_coordinates_follow_align_corners_false():
    feature = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    assert to_image(feature, (8.0, 4.0)).tolist() == [[3.5, 1.5], [11.5, 9.5]]
    assert to_image(feature, (8.0, 4.0), offset=True).tolist() == [[0.0, 0.0], [8.0, 8.0]]


def test_zero_offsets_give_the_regular_grid_in_image_pixels():
    # A fresh CGDS predicts zero offsets (DSNet: it starts as a plain 3x3 convolution).
    field = sampling_field(_dsnet(), _images())
    assert field.layer == "CGDS on X(3)" and field.scale == (8.0, 8.0) and field.mask is None
    assert field.shape == (8, 6)
    assert torch.equal(field.positions, field.grid)
    assert float(field.magnitudes().abs().max()) == 0.0
    row, col = 2, 3  # centre at image pixel (2.5 * 8 - 0.5, 3.5 * 8 - 0.5) = (19.5, 27.5)
    expected = [[19.5 + 8 * dy, 27.5 + 8 * dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert field.positions[1, :, row, col].tolist() == expected
    assert field.cell_of((19, 27)) == (2, 3) and field.cell_of((16, 24)) == (2, 3)
    assert field.cell_of((15, 23)) == (1, 2) and field.cell_of((500, -3)) == (7, 0)


def test_cgds_positions_reproduce_the_layer():
    model = _dsnet()
    teaching.randomise_predictor(model.cgds.offset_predictor, std=0.05, seed=1)
    images = _images(1)
    field = sampling_field(model, images)
    assert float(field.magnitudes().min()) > 0.0
    low, high = _capture_inputs(model.cgds, model, images)
    reads = teaching.read_at(low.double(), _feature_positions(field))
    rebuilt = teaching.weighted_sum(reads, model.cgds.weight.double())
    with torch.no_grad():
        expected = model.cgds.sampled_features(low, high).double()
    torch.testing.assert_close(rebuilt, expected, rtol=1e-4, atol=1e-4)
    # Offsets in image pixels are the feature offsets times the stride.
    with torch.no_grad():
        feature_offsets = model.cgds.sampling_offsets(low, high).double()
    dy = feature_offsets[0, 0::2]  # channel 2n: tap n's y offset
    torch.testing.assert_close(field.offsets()[0, ..., 0], 8.0 * dy)


def test_dcnv2_positions_and_mask_reproduce_the_layer():
    model = _dcnv2()
    dcn = model.refinement[0]
    teaching.randomise_predictor(dcn.offset_predictor, std=0.05, seed=2)
    images = _images(2)
    field = sampling_field(model, images)
    assert field.layer == "DCNv2 on ASPP" and field.scale == (16.0, 16.0)
    assert field.mask is not None and field.mask.shape == (2, 9, 4, 3)
    (x,) = _capture_inputs(dcn, model, images)
    reads = teaching.read_at(x.double(), _feature_positions(field))
    rebuilt = teaching.weighted_sum(reads, dcn.weight.double(), field.mask)
    with torch.no_grad():
        expected = dcn(x).double()
    torch.testing.assert_close(rebuilt, expected, rtol=1e-4, atol=1e-4)


def test_a_model_without_learned_offsets_is_refused():
    model = _model("deeplabv3plus")
    with pytest.raises(ValueError, match="DSNet or a DeepLabV3Plus with refinement='dcnv2'"):
        sampling_field(model, _images())


def test_chosen_pixels():
    label = np.zeros((20, 20), dtype=np.uint8)
    label[2:9, 2:9] = 1  # large: 7x7, centre (5, 5)
    label[15:18, 15:18] = 2  # small: 3x3, centre (16, 16)
    label[0, 19] = 255
    chosen = choose_pixels(label)
    assert chosen["large object"] == (5, 5)
    assert chosen["small object"] == (16, 16)
    # The outline pixels nearest to (5, 5) are the four edge midpoints; raster order picks (2, 5).
    assert chosen["boundary"] == (2, 5)
    # Farthest background pixel from both objects (the ignored corner is not background).
    distance = np.hypot(*np.indices((20, 20)) - np.array([[[19]], [[0]]]))
    assert chosen["background"] == (19, 0) and distance[19, 0] == 0
    only_one = np.zeros((8, 8), dtype=np.uint8)
    only_one[2:5, 2:5] = 3
    assert "small object" not in choose_pixels(only_one)
    assert list(choose_pixels(np.zeros((4, 4), dtype=np.uint8))) == ["background"]


def test_boundary_distance():
    label = np.zeros((5, 6), dtype=np.uint8)
    label[:, 3:] = 1  # boundary pixels: columns 2 and 3
    assert boundary_distance(label)[0].tolist() == [2.0, 1.0, 0.0, 0.0, 1.0, 2.0]
    assert np.isinf(boundary_distance(np.zeros((3, 3), dtype=np.uint8))).all()


def _field_with_offset(dy: float, dx: float) -> SamplingField:
    grid = torch.zeros(1, 9, 4, 4, 2, dtype=torch.float64)
    offsets = torch.tensor([dy, dx], dtype=torch.float64).expand_as(grid)
    return SamplingField("test", grid + offsets, grid, None, (8.0, 8.0))


def test_offset_table_bins_positions_by_object_and_boundary():
    label = np.zeros((32, 32), dtype=np.uint8)
    label[:, 16:] = 1  # one object, half the image: large
    label[0:8, 0:8] = 255  # feature position (0, 0) stands on an ignored pixel
    lines = offset_table(_field_with_offset(3.0, 4.0), [label], (0.02, 0.1))
    assert len(lines) == 15
    assert (lines["offset_px"] == 5.0).all()
    by_x = lines.groupby("x")["where"].first().to_dict()
    # Centres at x = 3.5, 11.5, 19.5, 27.5, rounded half up to pixels 4, 12, 20, 28.
    assert by_x == {4: "background", 12: "background", 20: "large", 28: "large"}
    # The boundary pixels are columns 15 and 16: distances 11, 3, 4, 12; near is <= 8 (a stride).
    near = lines.groupby("x")["near"].first().to_dict()
    assert near == {4: False, 12: True, 20: True, 28: False}


def test_figures_draw(tmp_path):
    images = [np.full((32, 32, 3), 128, dtype=np.uint8)]
    label = np.zeros((32, 32), dtype=np.uint8)
    label[8:24, 8:24] = 1
    label[2:4, 28:30] = 2
    field = _field_with_offset(1.0, -2.0)
    figure = sampling_points_figure(images, [label], [choose_pixels(label)], [{"a": field}])
    figure.savefig(tmp_path / "points.png")
    segmentation_figure(images, [label], {"model": [label]}).savefig(tmp_path / "maps.png")
    lines = offset_table(field, [label], (0.02, 0.1)).assign(layer="a")
    offset_distribution_figure(pd.concat([lines, lines.assign(layer="b")])).savefig(
        tmp_path / "offsets.png"
    )
    for name in ("points", "maps", "offsets"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1_000


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_the_figure_notebook_draws_the_sampler_tables_runs(profile):
    """dsnet_sampling_points reuses dsnet_samplers' trained models: at every profile the two
    notebooks resolve to one setting, so the shared rows are the same runs (same run-cache
    description, threads and weights kept)."""
    from repro.experiments.dsnet import DSNetTableSetting, sampler_table
    from repro.notebooks.spec import discover

    specs = discover()
    resolved = {
        name: specs[name].resolve(profile) for name in ("dsnet_samplers", "dsnet_sampling_points")
    }
    samplers, figure = resolved["dsnet_samplers"], resolved["dsnet_sampling_points"]
    assert set(figure["rows"]) <= set(samplers["rows"])
    assert figure["num_threads"] == samplers["num_threads"]
    tables = {
        name: sampler_table(DSNetTableSetting.from_parameters(values), figure["rows"], name)
        for name, values in resolved.items()
    }
    jobs = {name: [job for _, job in table.jobs()] for name, table in tables.items()}
    assert [job.description() for job in jobs["dsnet_samplers"]] == [
        job.description() for job in jobs["dsnet_sampling_points"]
    ]
    assert all(job.keep_weights for job in jobs["dsnet_samplers"])
