"""The complexity command: parameter counts and FLOPs on the meta device."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from repro.models.complexity import _register_sampling_conv_flops, complexity_table, main
from repro.modules.gdc import GaussianDynamicConv

warnings.filterwarnings("ignore", message=".*compiled sampling ops.*")


def test_complexity_command_writes_json_and_table(tmp_path: Path, capsys) -> None:
    output = tmp_path / "cpu.json"
    assert (
        main(["--size", "64", "--models", "fcn", "mobilenetv2_gdpp", "--output", str(output)]) == 0
    )
    assert "mobilenetv2_gdpp" in capsys.readouterr().out
    data = json.loads(output.read_text())
    assert data["input_size"] == [64, 64]
    table = complexity_table(output)
    assert list(table.index) == ["fcn", "mobilenetv2_gdpp"]
    assert (table["params"] > 0).all() and (table["gflops"] > 0).all()
    assert table.loc["fcn", "context_params"] == 0


def test_complexity_command_rejects_unknown_models(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--models", "pspnet", "--output", str(tmp_path / "x.json")])
    with pytest.raises(FileNotFoundError, match="not found"):
        complexity_table(tmp_path / "missing.json")


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_sampling_convolution_counts_as_convolution(device: str) -> None:
    _register_sampling_conv_flops()
    with torch.device(device):
        layer = GaussianDynamicConv(4, 6, eval_draws="random")
        x = torch.zeros(1, 4, 10, 10)
    counted, plain = FlopCounterMode(display=False), FlopCounterMode(display=False)
    with counted, torch.no_grad():
        layer(x)
    with plain, torch.no_grad():
        F.conv2d(x, layer.weight, padding=1)
    assert counted.get_total_flops() == plain.get_total_flops() > 0
