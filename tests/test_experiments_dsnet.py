"""DSNet's table builders (repro.experiments.dsnet) and the coarse-label stand-in of VOC aug."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from repro.audit.reported import load_reported
from repro.experiments.dsnet import (
    MULTI_SCALE,
    TABLE2_ROWS,
    DSNetTableSetting,
    fine_tune_data,
    table2_rows,
)
from repro.experiments.pseudo_labels import RelabelledDataset, coarse_label
from repro.experiments.supervised import DataSpec

SETTING = {
    "dataset": "offline", "backbone": "resnet18", "weights": "none", "output_stride": 16,
    "width": 16, "image_size": 64, "train_scale_range": [1.0, 1.0], "num_train": 10,
    "num_val": 4, "epochs": 1, "batch_size": 2, "optimizer": "adamw", "lr": 0.001,
    "head_lr_mult": 0.1, "deep_supervision": True, "eval_flip": False, "eval_scales": [1.0],
    "seeds": [0, 1], "device": "cpu",
}  # fmt: skip


def test_coarse_labels_take_each_blocks_centre_class():
    label = np.zeros((6, 6), dtype=np.uint8)
    label[:, 3] = 1  # a one-pixel line on the centre column of the second block column
    label[5, 0] = 2  # one pixel that no block centre sees
    # The block centres are (1, 1), (1, 4), (4, 1), (4, 4): none lies on column 3 or at (5, 0).
    assert not coarse_label(label, grid=3).any()
    label[:, 4] = 1  # now the line covers the centre column of the second block column
    coarse = coarse_label(label, grid=3)
    assert np.array_equal(coarse[:, 3:], np.ones((6, 3))) and not coarse[:, :3].any()
    assert coarse.shape == label.shape and coarse.dtype == label.dtype
    assert np.array_equal(coarse_label(label[:5, :5], grid=3).shape, (5, 5))
    assert np.array_equal(coarse_label(label, grid=1), label)
    with pytest.raises(ValueError, match="grid"):
        coarse_label(label, grid=0)


def test_coarse_label_source_changes_training_labels_only(tmp_path):
    data = DataSpec(crop_size=64, scale_range=(1.0, 1.0), root=str(tmp_path),
                    offline={"image_size": 64, "num_train": 3, "num_val": 2},
                    train_labels="coarse")  # fmt: skip
    train_set, val_set = data.build(0)
    assert isinstance(train_set, RelabelledDataset) and train_set.source == "coarse"
    exact = train_set.base.load_label(0)
    assert np.array_equal(train_set.load_label(0), coarse_label(exact))
    assert not np.array_equal(train_set.load_label(0), exact)  # shapes have curved edges
    assert not isinstance(val_set, RelabelledDataset)


def test_table2_rows_train_two_models_and_build_the_rest_on_dsnets():
    setting = DSNetTableSetting.from_parameters({**SETTING, "train_labels": "coarse"})
    data = setting.data()
    assert data.train_labels == "coarse" and data.offline["num_train"] == 10
    ft_data = fine_tune_data(data, "voc", 4)
    assert ft_data.offline["num_train"] == 4 and ft_data.train_labels == "full"
    assert ft_data.offline["image_size"] == 64 and ft_data.dataset == "offline"
    real = fine_tune_data(replace(data, dataset="voc_aug"), "voc", 4)
    assert (real.dataset, real.train_split, real.train_labels) == ("voc", "train", "full")

    rows = table2_rows(16, setting.model_options(), MULTI_SCALE, ft_data, {"epochs": 2})
    spec = setting.table_spec("table2", rows)
    assert [r.key for r in rows] == list(TABLE2_ROWS)
    by_key = {r.key: r for r in rows}
    assert [r.key for r in rows if r.evaluation_of is None and r.init_from is None] == [
        "baseline",
        "dsnet",
    ]
    assert by_key["dsnet_flip"].evaluation_of == "dsnet"
    assert spec.evaluation(by_key["dsnet_flip"], 0)["eval_flip"]
    assert spec.evaluation(by_key["dsnet_flip"], 0)["eval_scales"] == (1.0,)
    assert spec.evaluation(by_key["dsnet_flip_ms"], 0)["eval_scales"] == MULTI_SCALE
    tuned = spec.job(by_key["dsnet_flip_ms_ft"], 1)
    assert tuned.init_from == spec.job(by_key["dsnet"], 1) and tuned.data == ft_data
    assert tuned.train_config.epochs == 2 and tuned.train_config.eval_flip
    assert all(r.config["deep_supervision"] for r in rows)
    # Every row names a number of the paper's Table 2 that the transcription holds.
    ids = set(load_reported()["id"])
    assert all(r.reported in ids and ".t2." in r.reported for r in rows)


def test_the_setting_needs_every_parameter_without_a_default():
    with pytest.raises(ValueError, match="lacks"):
        DSNetTableSetting.from_parameters({k: v for k, v in SETTING.items() if k != "lr"})
    assert DSNetTableSetting.from_parameters(SETTING).train_labels == "full"
