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
#: The CUDA backward scatters with atomic adds, whose order varies from run to run (as in
#: torchvision's kernel): float64 gradients agree across runs to rounding, not bitwise.
NONDETERMINISM = 1e-12
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 1e-1}


def test_cuda_kernels_are_built():
    assert has_compiled_kernel(torch.device("cuda")), "repro._C was built without CUDA kernels"


def _as_oracle_inputs(inputs: dict) -> dict:
    """The same values in float64, as new leaves: the oracle reads exactly what the kernel read.

    (Drawing the oracle's inputs in float64 from the same seed gives values that differ by the
    half-precision rounding, and where a rounded sampling position crosses an integer the
    offset gradient, piecewise constant there, jumps: isolated false mismatches, seen on the
    first run on a GPU.)
    """
    return {
        k: None if t is None else t.detach().double().requires_grad_(t.requires_grad)
        for k, t in inputs.items()
    }


def _away_from_integers(offset: torch.Tensor) -> None:
    """Move every offset's fractional part into [0.1, 0.9], in place.

    The base positions are integers, and at an integer position the bilinear read's derivative
    jumps, so kernel and oracle may take either side. bfloat16 has so few bits that a fair share
    of random offsets are whole numbers (multiples of 1/64 between 2 and 4); seen on the first
    runs on a GPU as isolated offset-gradient mismatches.
    """
    with torch.no_grad():
        whole = offset.floor()
        offset.copy_(whole + 0.1 + 0.8 * (offset - whole))


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
    inputs = make_conv_inputs(
        case, dtype=dtype, device="cuda", seed=31, offset_scale=3.0, requires_grad=True
    )
    _away_from_integers(inputs["offset"])
    results = []
    for function, run_inputs in (
        (dynamic_sampling_conv2d, inputs),
        (reference.dynamic_sampling_conv2d, _as_oracle_inputs(inputs)),
    ):
        leaves = [t for t in run_inputs.values() if t is not None]
        output = call_conv(function, run_inputs, case)
        grads = torch.autograd.grad(output.float().sin().sum(), leaves)
        results.append([t.double() for t in (output, *grads)])
    tolerance = TOLERANCE[dtype]
    for mine, oracle in zip(*results, strict=True):
        torch.testing.assert_close(mine, oracle, rtol=tolerance, atol=tolerance * 10)


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
def test_cuda_sample_points_matches_reference(dtype: torch.dtype):
    input, offset = make_point_inputs(
        channels=6,
        points=5,
        offset_groups=3,
        dtype=dtype,
        device="cuda",
        seed=32,
        offset_scale=3.0,
        requires_grad=True,
    )
    _away_from_integers(offset)
    oracle_inputs = [t.detach().double().requires_grad_() for t in (input, offset)]
    results = []
    for function, (x, o) in (
        (sample_points, (input, offset)),
        (reference.sample_points, oracle_inputs),
    ):
        output = function(x, o, offset_groups=3)
        grads = torch.autograd.grad(output.float().sin().sum(), (x, o))
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
        nondet_tol=NONDETERMINISM,
    )
    input, offset = make_point_inputs(device="cuda", seed=34, requires_grad=True)
    torch.library.opcheck(torch.ops.repro.sample_points, (input, offset, 1))
    assert torch.autograd.gradcheck(
        sample_points, (input, offset), eps=1e-6, atol=1e-6, nondet_tol=NONDETERMINISM
    )


def test_cuda_non_finite_offsets_read_zero():
    input, offset = make_point_inputs(device="cuda", seed=35)
    offset[0, 0, 1, 1] = float("nan")
    offset[1, 1, 2, 2] = 1e30
    sampled = sample_points(input, offset)
    assert sampled[0, :, 0, 1, 1].eq(0).all() and sampled[1, :, 0, 2, 2].eq(0).all()
    assert torch.isfinite(sampled).all()


@pytest.mark.parametrize(
    ("dtype", "tolerance"), [(torch.float16, 5e-3), (torch.bfloat16, 5e-2)], ids=str
)
def test_cuda_autocast_runs_in_float32(dtype: torch.dtype, tolerance: float):
    from tests.test_ops_compiled import check_under_autocast

    check_under_autocast("cuda", dtype, tolerance)
