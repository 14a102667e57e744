"""DDSM's model options (branches), the table API's boundary metrics and kept weights, the
DDSM rows and setting, the cost measurements and the attention figure's helpers."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from repro import models
from repro.engine import TrainConfig
from repro.experiments.ddsm import (
    AFFINITY_ROWS,
    DDSMTableSetting,
    affinity_rows,
    boundary_metrics,
)
from repro.experiments.ddsm_cost import CostCase, count_flops, measure, record_sweep, sweep
from repro.experiments.supervised import DataSpec
from repro.experiments.table import Row, TableSpec, evaluation_widths, metric_info
from repro.modules.ddsm import DynamicDualSampling, SpatialNonLocalAffinity
from repro.results import Recorder

SMALL = {"backbone": "resnet18", "weights": None, "aspp_channels": 16, "inner_channels": 16}


def _state(model: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}


@pytest.mark.parametrize("branches", ["spatial", "channel", "none"])
def test_a_left_out_branch_leaves_every_shared_weight_as_ddsm_draws_it(branches):
    torch.manual_seed(3)
    full = models.build("ddsm", 5, **SMALL)
    torch.manual_seed(3)
    ablated = models.build("ddsm", 5, branches=branches, **SMALL)
    for part in ("backbone.", "aspp.", "classifier."):
        mine, theirs = _state(ablated, part), _state(full, part)
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert (ablated.ddsm.spatial is None) == (branches in ("channel", "none"))
    assert (ablated.ddsm.channel is None) == (branches in ("spatial", "none"))
    out = ablated.eval()(torch.randn(1, 3, 64, 64))["out"]
    assert out.shape == (1, 5, 64, 64)


def test_the_plain_fusion_baseline_fuses_only_the_low_level_map():
    module = DynamicDualSampling(8, 12, 10, inner_channels=4, branches="none")
    assert module.fuse[0].in_channels == 8
    low, high = torch.randn(2, 8, 6, 6), torch.randn(2, 12, 3, 3)
    module.eval()
    assert torch.equal(module(low, high), module.fuse(low))


def test_registry_names_the_baseline_and_the_branch_rows():
    for name, (registered, _) in AFFINITY_ROWS.items():
        assert registered in models.available(), name
    assert models.default_config("ddsm_plain_fusion")["branches"] == "none"
    assert models.default_config("ddsm")["branches"] == "both"
    with pytest.raises(ValueError, match="branches"):
        DynamicDualSampling(8, 8, 8, inner_channels=4, branches="one")


def test_non_local_attention_rows_are_a_softmax_and_rebuild_the_output():
    torch.manual_seed(0)
    branch = SpatialNonLocalAffinity(6, 5, inner_channels=4).eval()
    low, high = torch.randn(2, 6, 5, 4), torch.randn(2, 5, 3, 2)
    weights, values = branch.attention(low, high)
    assert weights.shape == (2, 20, 20)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 20))
    rebuilt = branch.out((weights @ values).transpose(1, 2).reshape(2, -1, 5, 4))
    assert torch.equal(rebuilt, branch(low, high))
    rows, _ = branch.attention(low, high, torch.tensor([7, 3]))
    assert torch.allclose(rows, weights[:, [7, 3]])


# ------------------------------------------------------------------ the table API


def test_patterned_metrics_name_their_tolerance_and_ask_the_evaluation_for_it():
    assert metric_info("boundary_f_2px")[0] == "boundary F@2px (%)"
    assert "8 pixels" in metric_info("trimap_iou_8px")[1]
    with pytest.raises(KeyError):
        metric_info("boundary_f_px")
    widths = evaluation_widths(["miou", "trimap_iou_8px", "boundary_f_3px", "boundary_f_1px"])
    assert widths == {"eval_boundary_tolerances_px": (1, 3), "eval_trimap_widths_px": (8,)}


def _spec(**changes) -> TableSpec:
    fields = {
        "prefix": "t",
        "rows": [Row("a", "ddsm"), Row("b", "ddsm_plain_fusion")],
        "seeds": [0],
        "data": DataSpec(),
        "train": TrainConfig(epochs=1, batch_size=2, lr=0.1),
        "metrics": ("miou", "boundary_f_1px", "trimap_iou_4px"),
    }
    return TableSpec(**{**fields, **changes})


def test_a_table_with_boundary_metrics_evaluates_them_and_only_then():
    config = _spec().train_config(_spec().rows[0], 5)
    assert config.eval_boundary_tolerances_px == (1,) and config.eval_trimap_widths_px == (4,)
    assert config.seed == 5
    plain = _spec(metrics=("miou",)).train_config(_spec().rows[0], 5)
    assert plain == dataclasses.replace(_spec().train, seed=5)


def test_a_table_rejects_unknown_metrics_and_kept_rows():
    with pytest.raises(ValueError, match="trimap_iou_<w>px"):
        _spec(metrics=("trimap_iou",))
    with pytest.raises(ValueError, match="keep_weights"):
        _spec(keep_weights=("c",))
    jobs = _spec(keep_weights=("a",)).jobs()
    assert [job.keep_weights for _, job in jobs] == [True, False]


def test_train_config_checks_the_evaluation_widths():
    with pytest.raises(ValueError, match="eval_trimap_widths_px"):
        TrainConfig(epochs=1, batch_size=1, lr=0.1, eval_trimap_widths_px=(2, 2))
    with pytest.raises(ValueError, match="eval_boundary_tolerances_px"):
        TrainConfig(epochs=1, batch_size=1, lr=0.1, eval_boundary_tolerances_px=(-1,))


# ------------------------------------------------------------------ the DDSM rows


def _setting(**changes) -> DDSMTableSetting:
    values = dict(
        dataset="offline",
        backbone="resnet18",
        weights="none",
        output_stride=16,
        image_size=64,
        train_scale_range=[1.0, 1.0],
        num_train=4,
        num_val=2,
        epochs=1,
        batch_size=2,
        optimizer="adamw",
        lr=0.001,
        head_lr_mult=1.0,
        deep_supervision=False,
        eval_flip=False,
        eval_scales=[1.0],
        seeds=[0, 1],
        device="cpu",
        low_level="x2",
        width=16,
        inner_channels=16,
        refined_channels=8,
        spatial_samples=4,
        channel_samples=4,
        anchors="global",
    )
    values.update(changes)
    return DDSMTableSetting.from_parameters(values)


def test_ddsm_setting_builds_rows_that_differ_only_in_the_module():
    setting = _setting()
    rows = affinity_rows(list(AFFINITY_ROWS), setting.model_options())
    configs = {row.key: dict(row.config) for row in rows}
    assert all(config == configs["ddsm"] for config in configs.values())
    assert configs["ddsm"]["low_level"] == "x2" and configs["ddsm"]["weights"] is None
    for row in rows:
        models.build(row.model, 3, **row.config)  # every row builds with the shared options
    spec = setting.table_spec("affinity", rows, boundary_metrics((1, 2), (4,)), ["ddsm"])
    assert spec.metrics == (
        "miou",
        "pixel_acc",
        "boundary_f_1px",
        "boundary_f_2px",
        "trimap_iou_4px",
    )
    assert spec.keep_weights == ("ddsm",) and spec.seeds == [0, 1]
    assert "X(2) 16x16" in setting.recorded()["module"]
    with pytest.raises(ValueError, match="not in"):
        affinity_rows(["dense"], {})


def test_a_setting_names_the_parameters_a_notebook_lacks():
    with pytest.raises(ValueError, match="anchors"):
        DDSMTableSetting.from_parameters(
            {k: v for k, v in dataclasses.asdict(_setting()).items() if k != "anchors"}
        )


# ------------------------------------------------------------------ the cost measurements

TINY = {"batch": 1, "low_channels": 8, "high_channels": 8, "inner_channels": 4, "out_channels": 8}


def test_baseline_flops_are_the_fusion_convolution_by_hand():
    # One 1x1 convolution 8 -> 8 channels on 8 x 8 pixels: 2 * 8 * 8 * 64 FLOPs.
    assert count_flops(CostCase("baseline", 8, **TINY)) == 2 * 8 * 8 * 64


def test_non_local_flops_grow_with_the_pairs_and_ddsm_flops_with_the_pixels():
    growth = {
        variant: count_flops(CostCase(variant, 64, **TINY))
        / count_flops(CostCase(variant, 32, **TINY))
        for variant in ("ddsm", "non_local")
    }
    assert 3.5 < growth["ddsm"] <= 4.0  # ~S^2 (the pooled channel branch is constant)
    assert growth["non_local"] > 12  # ~S^4 dominates
    assert count_flops(CostCase("ddsm", 64, **TINY)) < count_flops(
        CostCase("non_local", 64, **TINY)
    )


def test_measure_skips_a_dense_case_over_the_limit_but_counts_it():
    case = CostCase("non_local", 16, **TINY)
    row = measure(case, torch.device("cpu"), repeats=1, threads=1, max_dense_gib=1e-9)
    assert row["status"].startswith("skipped") and row["flops"] == count_flops(case)
    assert row["forward_backward_ms"] is None


def test_sweep_measures_memory_in_a_fresh_process_and_records_curves(tmp_path):
    frame = sweep(["ddsm", "non_local"], [8], [12], torch.device("cpu"), 1, 1, 1.0, **TINY)
    assert frame["status"].tolist() == ["ok", "ok", "counted only", "counted only"]
    assert (frame["peak_memory_mib"].dropna() > 0).all()
    recorder = Recorder(tmp_path)
    record_sweep(recorder, frame)
    flops = recorder.metrics["efficiency/ddsm/flops"]
    assert flops.seeds == [8, 12] and flops.unit == "GFLOPs"
    assert recorder.metrics["efficiency/ddsm/peak_memory"].seeds == [8]
    ratio = recorder.metrics["efficiency/ddsm_over_non_local/flops"]
    assert ratio.values[0] == pytest.approx(frame["flops"][0] / frame["flops"][1])
    assert "efficiency/non_local_over_non_local/flops" not in recorder.metrics


def test_an_ablated_fusion_keeps_ddsm_fusion_weights_of_the_remaining_inputs():
    torch.manual_seed(1)
    full = DynamicDualSampling(8, 12, 10, inner_channels=4)
    torch.manual_seed(1)
    spatial = DynamicDualSampling(8, 12, 10, inner_channels=4, branches="spatial")
    torch.manual_seed(1)
    channel = DynamicDualSampling(8, 12, 10, inner_channels=4, branches="channel")
    weight = full.fuse[0].weight
    assert torch.equal(spatial.fuse[0].weight, weight[:, :12])
    assert torch.equal(channel.fuse[0].weight, torch.cat([weight[:, :8], weight[:, 12:]], 1))
