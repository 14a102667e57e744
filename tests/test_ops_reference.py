"""The grid_sample reference of the sampling ops against torchvision.ops.deform_conv2d.

torchvision is the independent oracle (DCNv2 Eq. 3, same offset layout); the reference is in
turn the oracle of the compiled kernels (tests/test_ops_compiled.py).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

from repro.ops import reference
from repro.ops.testing import ConvCase, make_conv_inputs, make_point_inputs

# Shapes covering stride 1/2, padding, dilation 1/2, kernels 1x1/3x3/3x5, groups and offset
# groups > 1 and a batch above 32. Shared with test_ops_compiled.py.
CONV_CASES: dict[str, ConvCase] = {
    "3x3": ConvCase(),
    "stride2": ConvCase(height=9, width=8, stride=(2, 2)),
    "dilation2": ConvCase(height=8, width=9, padding=(2, 2), dilation=(2, 2)),
    "1x1": ConvCase(kernel=(1, 1), padding=(0, 0)),
    "3x5_mixed": ConvCase(
        height=9, width=10, kernel=(3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2)
    ),
    "groups": ConvCase(in_channels=8, out_channels=6, groups=2, offset_groups=4),
    "batch33": ConvCase(batch=33, in_channels=2, out_channels=3, height=5, width=5),
}
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}


def torchvision_conv(inputs: dict, case: ConvCase) -> torch.Tensor:
    return torchvision.ops.deform_conv2d(
        inputs["input"],
        inputs["offset"],
        inputs["weight"],
        inputs["bias"],
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        mask=inputs["mask"],
    )


def call_conv(function, inputs: dict, case: ConvCase) -> torch.Tensor:
    return function(
        inputs["input"],
        inputs["offset"],
        inputs["weight"],
        inputs["bias"],
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        mask=inputs["mask"],
    )


def assert_matches_torchvision(function, case: ConvCase, dtype: torch.dtype) -> None:
    """Forward and every gradient of ``function`` equal torchvision's within ``TOLERANCE``."""
    inputs = make_conv_inputs(case, dtype=dtype, seed=3, requires_grad=True)
    leaves = [tensor for tensor in inputs.values() if tensor is not None]
    ours = call_conv(function, inputs, case)
    theirs = torchvision_conv(inputs, case)
    tolerance = TOLERANCE[dtype]
    torch.testing.assert_close(ours, theirs, rtol=tolerance, atol=tolerance)
    grad_output = torch.randn(ours.shape, generator=torch.Generator().manual_seed(4)).to(dtype)
    our_grads = torch.autograd.grad(ours, leaves, grad_output)
    their_grads = torch.autograd.grad(theirs, leaves, grad_output)
    for name, mine, reference_grad in zip(
        [k for k, v in inputs.items() if v is not None], our_grads, their_grads, strict=True
    ):
        scale = max(1.0, reference_grad.abs().max().item())
        torch.testing.assert_close(
            mine, reference_grad, rtol=tolerance, atol=tolerance * scale, msg=f"grad of {name}"
        )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("name", list(CONV_CASES))
def test_reference_conv_matches_torchvision(name: str, with_mask: bool, dtype: torch.dtype):
    case = CONV_CASES[name]
    case = ConvCase(**{**case.__dict__, "with_mask": with_mask})
    assert_matches_torchvision(reference.dynamic_sampling_conv2d, case, dtype)


@pytest.mark.parametrize("function", [reference.dynamic_sampling_conv2d], ids=["reference"])
def test_zero_offsets_equal_conv2d(function):
    case = ConvCase(
        in_channels=4,
        out_channels=6,
        groups=2,
        stride=(2, 1),
        dilation=(1, 2),
        padding=(1, 2),
        height=9,
        width=9,
    )
    inputs = make_conv_inputs(case, seed=5)
    inputs["offset"] = torch.zeros_like(inputs["offset"])
    expected = F.conv2d(
        inputs["input"],
        inputs["weight"],
        inputs["bias"],
        case.stride,
        case.padding,
        case.dilation,
        case.groups,
    )
    torch.testing.assert_close(call_conv(function, inputs, case), expected, rtol=1e-10, atol=1e-10)


def test_reference_sample_points_is_a_1x1_deformable_read():
    """Point p equals torchvision's 1x1 deform conv with an identity weight and offset p."""
    input, offset = make_point_inputs(channels=4, points=3, offset_groups=2, seed=6)
    sampled = reference.sample_points(input, offset, offset_groups=2)
    assert sampled.shape == (2, 4, 3, 6, 7)
    identity = torch.eye(4, dtype=input.dtype).reshape(4, 4, 1, 1)
    pairs = offset.reshape(2, 2, 3, 2, 6, 7)
    for point in range(3):
        expected = torchvision.ops.deform_conv2d(
            input, pairs[:, :, point].reshape(2, 4, 6, 7), identity
        )
        torch.testing.assert_close(sampled[:, :, point], expected, rtol=1e-12, atol=1e-12)


def test_reference_sample_points_integer_offsets_shift_the_map():
    input = torch.arange(12.0, dtype=torch.float64).reshape(1, 1, 3, 4)
    offset = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    offset[:, 1] = 1.0  # read one pixel to the right
    sampled = reference.sample_points(input, offset)[:, :, 0]
    expected = torch.cat([input[..., 1:], torch.zeros(1, 1, 3, 1, dtype=torch.float64)], dim=-1)
    torch.testing.assert_close(sampled, expected)


def test_reference_gradients_reach_every_argument():
    case = ConvCase(with_mask=True)
    inputs = make_conv_inputs(case, requires_grad=True)
    call_conv(reference.dynamic_sampling_conv2d, inputs, case).square().sum().backward()
    for name, tensor in inputs.items():
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0, name
    input, offset = make_point_inputs(requires_grad=True)
    reference.sample_points(input, offset).square().sum().backward()
    assert input.grad.abs().sum() > 0 and offset.grad.abs().sum() > 0
