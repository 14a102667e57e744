"""Where a boundary pixel attends (repro.viz.ddsm_attention)."""

from __future__ import annotations

import numpy as np
import torch

from repro import models
from repro.viz import ddsm_attention

SMALL = {"backbone": "resnet18", "weights": None, "aspp_channels": 16, "inner_channels": 16}


def test_boundary_pixel_is_on_the_edge_nearest_the_centre():
    label = torch.zeros(16, 16, dtype=torch.long)
    label[:, 12:] = 1  # the edge at columns 11/12, i.e. 5/6 on an 8 x 8 map
    assert ddsm_attention.boundary_pixel(label, (8, 8)) in {(3, 5), (4, 5), (3, 6), (4, 6)}
    assert ddsm_attention.boundary_pixel(torch.zeros(16, 16, dtype=torch.long), (8, 8)) is None


def test_pixel_attention_reads_ddsm_points_and_the_dense_row():
    torch.manual_seed(0)
    ddsm = models.build("ddsm", 3, low_level="x2", **SMALL).eval()
    dense = models.build("ddsm_non_local", 3, low_level="x2", **SMALL).eval()
    image = torch.randn(3, 64, 64)
    found = ddsm_attention.pixel_attention(ddsm, dense, image, (5, 7))
    assert found.map_size == (16, 16) and found.points.shape == (9, 2)
    assert np.isclose(found.affinities.sum(), 1, atol=1e-5)
    assert np.isclose(found.dense.sum(), 1, atol=1e-5)
    # Zero offsets at initialisation: the 9 global anchors, all on the map.
    assert not found.outside().any()
    assert 0 < found.dense_mass_at_points() <= 1
    fig = ddsm_attention.attention_figure(
        [torch.zeros(64, 64, dtype=torch.long)], [found], [np.zeros((64, 64, 3))]
    )
    assert len(fig.axes) == 2


def test_points_off_the_map_are_counted():
    found = ddsm_attention.PixelAttention(
        (0, 0),
        np.array([[0.0, 0.0], [-3.0, 1.0], [2.0, 9.0]]),
        np.ones(3) / 3,
        np.full((4, 4), 1 / 16),
        (4, 4),
    )
    assert found.outside().tolist() == [False, True, True]
    assert np.isclose(found.dense_mass_at_points(), 4 / 16)  # the 2 x 2 corner around (0, 0)
