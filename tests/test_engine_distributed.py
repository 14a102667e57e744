"""Distributed training on CPU with gloo and 2 processes: synchronised batch norm (DSNet's
cross-GPU BN) and the torchrun entry point (``repro.engine.distributed``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from engine_fixtures import sync_batchnorm_worker
from torch import nn

from repro.engine import checkpoint_path, load_checkpoint
from repro.engine.config import TrainConfig
from repro.engine.distributed import apply_overrides, load_factory

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with the gloo backend is not available in this build",
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_cpu_sync_batchnorm_on_two_processes_processes_equals_batchnorm_on_the_whole_batch(
    tmp_path,
):
    mp.spawn(
        sync_batchnorm_worker,
        args=(2, str(tmp_path / "store"), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[0]["type"] == "CpuSyncBatchNorm"

    torch.manual_seed(0)
    full = (torch.randn(4, 3, 5, 5) * 2 + 1).requires_grad_(True)
    weights = torch.randn(4, 3, 5, 5)
    reference = nn.BatchNorm2d(3)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        reference.bias.copy_(torch.tensor([0.0, -1.0, 1.0]))
    out = reference(full)
    (out * weights).sum().backward()

    torch.testing.assert_close(torch.cat([r["out"] for r in ranks]), out.detach())
    torch.testing.assert_close(torch.cat([r["grad"] for r in ranks]), full.grad)
    for r in ranks:
        torch.testing.assert_close(r["running_mean"], reference.running_mean)
        torch.testing.assert_close(r["running_var"], reference.running_var)
    # Each rank holds the gradient of its own half; DDP sums (and averages) them.
    torch.testing.assert_close(
        ranks[0]["weight_grad"] + ranks[1]["weight_grad"], reference.weight.grad
    )


def test_torchrun_entry_point_trains_two_ranks_to_identical_weights(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--standalone", "-m", "repro.engine.distributed",
        "--factory", "engine_fixtures:build_tiny_experiment",
        "--run-dir", str(tmp_path / "run"), "--no-progress",
        "--set", "epochs=2", "--save-final-weights", str(tmp_path / "weights"),
    ]  # fmt: skip
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout[completed.stdout.index("{") :])
    assert summary["world_size"] == 2 and len(summary["history"]) == 2
    assert summary["final_metrics"]["num_images"] == 4  # both ranks' shares were summed

    rank0 = torch.load(tmp_path / "weights" / "rank0.pt")
    rank1 = torch.load(tmp_path / "weights" / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    initial = load_checkpoint(checkpoint_path(tmp_path / "run"))
    assert initial["epoch"] == 2 and len(initial["rng"]) == 2
    assert any(not torch.equal(rank0[k], v) for k, v in _initial_weights().items())


def _initial_weights():
    from engine_fixtures import build_tiny_experiment

    model, *_ = build_tiny_experiment()
    return model.state_dict()


def test_entry_point_helpers_report_bad_input():
    with pytest.raises(ValueError, match="package.module:function"):
        load_factory("no_colon")
    config = TrainConfig(epochs=1, batch_size=2, lr=0.1)
    assert apply_overrides(config, ["epochs=3", "eval_scales=[1.0, 1.5]"]).eval_scales == (1.0, 1.5)
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(config, ["crop=3"])


def test_cpu_conversion_keeps_tensors_and_acts_as_batchnorm_without_a_process_group():
    from repro.engine import CpuSyncBatchNorm, convert_to_sync_batchnorm

    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    weight = plain[1].weight
    images = torch.randn(2, 3, 4, 4)
    expected = plain(images)
    plain[1].reset_running_stats()
    converted = convert_to_sync_batchnorm(plain, "cpu")
    assert isinstance(converted[1], CpuSyncBatchNorm) and converted[1].weight is weight
    torch.testing.assert_close(converted(images), expected)
