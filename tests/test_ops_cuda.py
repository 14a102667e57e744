"""CUDA kernels of the sampling ops against the reference (skipped without a CUDA device).

The CUDA sources are compiled by the package build wherever a toolkit exists; these tests run
them where a GPU does. The same logic is covered on CPU by tests/test_ops_compiled.py.
"""

from __future__ import annotations

import pytest
import torch

from repro.ops import dynamic_sampling_conv2d, reference, sample_points
from repro.ops.library import has_compiled_kernel
from repro.ops.testing import ConvCase, make_conv_inputs, make_point_inputs
from tests.test_ops_reference import call_conv

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 1e-1}


def test_cuda_kernels_are_built():
    assert has_compiled_kernel(torch.device("cuda")), "repro._C was built without CUDA kernels"


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_cuda_conv_matches_reference(dtype: torch.dtype, with_mask: bool):
    case = ConvCase(
        in_channels=6,
        out_channels=4,
        groups=2,
        offset_groups=3,
        kernel=(3, 5),
        padding=(1, 2),
        stride=(2, 1),
        with_mask=with_mask,
    )
    results = []
    for function, run_dtype in (
        (dynamic_sampling_conv2d, dtype),
        (reference.dynamic_sampling_conv2d, torch.float64),
    ):
        inputs = make_conv_inputs(
            case, dtype=run_dtype, device="cuda", seed=31, offset_scale=3.0, requires_grad=True
        )
        leaves = [t for t in inputs.values() if t is not None]
        output = call_conv(function, inputs, case)
        grads = torch.autograd.grad(output.float().sin().sum(), leaves)
        results.append([t.double() for t in (output, *grads)])
    tolerance = TOLERANCE[dtype]
    for mine, oracle in zip(*results, strict=True):
        torch.testing.assert_close(mine, oracle, rtol=tolerance, atol=tolerance * 10)


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
def test_cuda_sample_points_matches_reference(dtype: torch.dtype):
    results = []
    for function, run_dtype in ((sample_points, dtype), (reference.sample_points, torch.float64)):
        input, offset = make_point_inputs(
            channels=6,
            points=5,
            offset_groups=3,
            dtype=run_dtype,
            device="cuda",
            seed=32,
            offset_scale=3.0,
            requires_grad=True,
        )
        output = function(input, offset, offset_groups=3)
        grads = torch.autograd.grad(output.float().sin().sum(), (input, offset))
        results.append([t.double() for t in (output, *grads)])
    tolerance = TOLERANCE[dtype]
    for mine, oracle in zip(*results, strict=True):
        torch.testing.assert_close(mine, oracle, rtol=tolerance, atol=tolerance * 10)


def test_cuda_opcheck_and_gradcheck():
    case = ConvCase(
        in_channels=4, out_channels=2, height=4, width=5, offset_groups=2, with_mask=True
    )
    inputs = make_conv_inputs(case, device="cuda", seed=33, requires_grad=True)
    args = (
        *inputs.values(),
        *case.stride,
        *case.padding,
        *case.dilation,
        case.groups,
        case.offset_groups,
    )
    torch.library.opcheck(torch.ops.repro.dynamic_sampling_conv2d, args)
    assert torch.autograd.gradcheck(
        lambda *t: call_conv(dynamic_sampling_conv2d, dict(zip(inputs, t, strict=True)), case),
        tuple(inputs.values()),
        eps=1e-6,
        atol=1e-6,
    )
    input, offset = make_point_inputs(device="cuda", seed=34, requires_grad=True)
    torch.library.opcheck(torch.ops.repro.sample_points, (input, offset, 1))
    assert torch.autograd.gradcheck(sample_points, (input, offset), eps=1e-6, atol=1e-6)


def test_cuda_non_finite_offsets_read_zero():
    input, offset = make_point_inputs(device="cuda", seed=35)
    offset[0, 0, 1, 1] = float("nan")
    offset[1, 1, 2, 2] = 1e30
    sampled = sample_points(input, offset)
    assert sampled[0, :, 0, 1, 1].eq(0).all() and sampled[1, :, 0, 2, 2].eq(0).all()
    assert torch.isfinite(sampled).all()
