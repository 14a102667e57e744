"""ONNX export of the sampling convolution as ``DeformConv`` (opset 19), issue 19 "Export".

The exported graph's structure is checked wherever ``onnx`` and ``onnxscript`` are installed;
its outputs against PyTorch's where onnxruntime (which has a CPU ``DeformConv`` kernel) is.
"""

from __future__ import annotations

import pytest
import torch

from repro.ops import dynamic_sampling_conv2d, export_onnx
from repro.ops.export import ONNX_OPSET, custom_translation_table

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install onnx onnxscript)")
pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install onnxscript)")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


class SamplingBlock(torch.nn.Module):
    """Offsets (and a mask) predicted by a convolution, read by the sampling conv: DCNv2."""

    def __init__(
        self, with_mask: bool, stride: int, dilation: int, groups: int, offset_groups: int
    ):
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.with_mask = with_mask
        self.stride, self.dilation, self.offset_groups = stride, dilation, offset_groups
        taps = offset_groups * 9
        self.predict = torch.nn.Conv2d(4, 3 * taps if with_mask else 2 * taps, 3, padding=1)
        torch.nn.init.normal_(self.predict.weight, std=0.3, generator=generator)
        self.weight = torch.nn.Parameter(
            0.2 * torch.randn(6, 4 // groups, 3, 3, generator=generator)
        )
        self.bias = torch.nn.Parameter(torch.randn(6, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.offset_groups * 9
        predicted = self.predict(x)[..., :: self.stride, :: self.stride]
        offset = predicted[:, : 2 * taps]
        mask = torch.sigmoid(predicted[:, 2 * taps :]) if self.with_mask else None
        return dynamic_sampling_conv2d(
            x,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.dilation,
            dilation=self.dilation,
            mask=mask,
        )


CONFIGS = {
    "plain": dict(with_mask=False, stride=1, dilation=1, groups=1, offset_groups=1),
    "mask_stride2_dilation2_groups": dict(
        with_mask=True, stride=2, dilation=2, groups=2, offset_groups=2
    ),
}


def _export(config: dict, path) -> tuple[SamplingBlock, torch.Tensor]:
    model = SamplingBlock(**config).eval()
    x = torch.randn(2, 4, 9, 11, generator=torch.Generator().manual_seed(4))
    export_onnx(model, (x,), path)
    return model, x


@pytest.mark.parametrize("name", list(CONFIGS))
def test_export_is_one_deform_conv_of_opset_19(name: str, tmp_path):
    config = CONFIGS[name]
    _export(config, tmp_path / "model.onnx")
    model = onnx.load(tmp_path / "model.onnx")
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [ONNX_OPSET]
    nodes = [node for node in model.graph.node if node.op_type == "DeformConv"]
    assert len(nodes) == 1
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    stride, dilation = config["stride"], config["dilation"]
    assert attributes["strides"] == [stride, stride]
    assert attributes["dilations"] == [dilation, dilation]
    assert attributes["pads"] == [dilation] * 4
    assert attributes["group"] == config["groups"]
    assert attributes["offset_group"] == config["offset_groups"]
    # Inputs X, W, offset, B, mask: the bias is passed, the mask only when the model has one.
    inputs = list(nodes[0].input) + [""] * (5 - len(nodes[0].input))
    assert all(inputs[:4]) and bool(inputs[4]) == config["with_mask"]
    assert not any(node.domain.startswith("repro") for node in model.graph.node)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_onnxruntime_gives_the_same_outputs(name: str, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="running the export needs onnxruntime")
    model, x = _export(CONFIGS[name], tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(torch.from_numpy(output), expected, rtol=1e-4, atol=1e-5)


def test_translation_table_names_the_op():
    table = custom_translation_table()
    assert list(table) == [torch.ops.repro.dynamic_sampling_conv2d.default]
