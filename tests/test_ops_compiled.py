"""The compiled CPU kernels of the sampling ops (repro._C): opcheck, gradcheck, oracles.

Skipped, with the reason, when the extension is not built.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
import torch
import torchvision

from repro.ops import backend, dynamic_sampling_conv2d, reference, sample_points
from repro.ops.library import has_compiled_kernel
from repro.ops.testing import ConvCase, make_conv_inputs, make_point_inputs
from tests.test_ops_reference import CONV_CASES, assert_matches_torchvision, call_conv

# Under CI (CI=true) the package build must have compiled the ops: there the tests run and fail
# loudly rather than skip, so a broken build cannot hide behind the reference fallback.
pytestmark = pytest.mark.skipif(
    not has_compiled_kernel(torch.device("cpu")) and os.environ.get("CI", "") != "true",
    reason="compiled extension repro._C not built (python setup.py build_ext --inplace)",
)


def conv_op_args(inputs: dict, case: ConvCase) -> tuple:
    return (
        inputs["input"],
        inputs["offset"],
        inputs["weight"],
        inputs["bias"],
        inputs["mask"],
        *case.stride,
        *case.padding,
        *case.dilation,
        case.groups,
        case.offset_groups,
    )


def test_backend_reports_compiled():
    assert backend().startswith("compiled (cpu")


@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_opcheck_conv(with_mask: bool):
    case = ConvCase(
        batch=2,
        in_channels=4,
        out_channels=4,
        height=5,
        width=5,
        groups=2,
        offset_groups=2,
        stride=(2, 1),
        with_mask=with_mask,
        with_bias=with_mask,
    )
    inputs = make_conv_inputs(case, requires_grad=True)
    torch.library.opcheck(torch.ops.repro.dynamic_sampling_conv2d, conv_op_args(inputs, case))


def test_opcheck_sample_points():
    input, offset = make_point_inputs(channels=4, points=2, offset_groups=2, requires_grad=True)
    torch.library.opcheck(torch.ops.repro.sample_points, (input, offset, 2))


@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_gradcheck_conv(with_mask: bool):
    case = ConvCase(
        batch=2,
        in_channels=4,
        out_channels=2,
        height=4,
        width=5,
        groups=2,
        offset_groups=2,
        with_mask=with_mask,
    )
    inputs = make_conv_inputs(case, seed=11, requires_grad=True)

    def function(input, offset, weight, bias, mask):
        return dynamic_sampling_conv2d(
            input, offset, weight, bias, case.stride, case.padding, case.dilation, mask
        )

    assert torch.autograd.gradcheck(function, tuple(inputs.values()), eps=1e-6, atol=1e-6)


def test_gradcheck_sample_points():
    input, offset = make_point_inputs(
        channels=4, height=4, width=5, points=2, offset_groups=2, seed=12, requires_grad=True
    )
    assert torch.autograd.gradcheck(
        lambda x, o: sample_points(x, o, offset_groups=2), (input, offset), eps=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("name", list(CONV_CASES))
def test_compiled_conv_matches_torchvision(name: str, with_mask: bool, dtype: torch.dtype):
    case = ConvCase(**{**CONV_CASES[name].__dict__, "with_mask": with_mask})
    assert_matches_torchvision(dynamic_sampling_conv2d, case, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_compiled_conv_matches_reference(with_mask: bool, dtype: torch.dtype):
    case = ConvCase(
        in_channels=6,
        out_channels=4,
        groups=2,
        offset_groups=3,
        kernel=(3, 5),
        padding=(1, 2),
        with_mask=with_mask,
    )
    tolerance = 1e-10 if dtype == torch.float64 else 1e-4
    results = []
    for function in (dynamic_sampling_conv2d, reference.dynamic_sampling_conv2d):
        inputs = make_conv_inputs(case, dtype=dtype, seed=13, offset_scale=3.0, requires_grad=True)
        leaves = [t for t in inputs.values() if t is not None]
        output = call_conv(function, inputs, case)
        grads = torch.autograd.grad(output.sin().sum(), leaves)
        results.append((output, *grads))
    for mine, oracle in zip(*results, strict=True):
        torch.testing.assert_close(mine, oracle, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_compiled_sample_points_matches_reference(dtype: torch.dtype):
    tolerance = 1e-10 if dtype == torch.float64 else 1e-4
    results = []
    for function in (sample_points, reference.sample_points):
        input, offset = make_point_inputs(
            channels=6,
            points=5,
            offset_groups=3,
            dtype=dtype,
            seed=14,
            offset_scale=3.0,
            requires_grad=True,
        )
        output = function(input, offset, offset_groups=3)
        results.append((output, *torch.autograd.grad(output.sin().sum(), (input, offset))))
    for mine, oracle in zip(*results, strict=True):
        torch.testing.assert_close(mine, oracle, rtol=tolerance, atol=tolerance)


def test_compiled_backward_is_deterministic():
    case = ConvCase(batch=3, in_channels=8, out_channels=8, height=12, width=12, with_mask=True)
    runs = []
    for _ in range(2):
        inputs = make_conv_inputs(
            case, dtype=torch.float32, seed=15, offset_scale=2.0, requires_grad=True
        )
        call_conv(dynamic_sampling_conv2d, inputs, case).square().sum().backward()
        input, offset = make_point_inputs(
            channels=8, points=9, dtype=torch.float32, seed=16, requires_grad=True
        )
        sample_points(input, offset).square().sum().backward()
        runs.append([t.grad for t in inputs.values()] + [input.grad, offset.grad])
    for first, second in zip(*runs, strict=True):
        assert torch.equal(first, second)


def test_torch_compile_traces_the_ops():
    case = ConvCase(with_mask=True)
    inputs = make_conv_inputs(case, seed=17, requires_grad=True)

    def model(input, offset, weight, bias, mask):
        out = dynamic_sampling_conv2d(input, offset, weight, bias, 1, 1, 1, mask)
        points = sample_points(out, offset[:, :4])
        return points.square().sum()

    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    leaves = tuple(inputs.values())
    expected = torch.autograd.grad(model(*leaves), leaves)
    actual = torch.autograd.grad(compiled(*leaves), leaves)
    for mine, oracle in zip(actual, expected, strict=True):
        torch.testing.assert_close(mine, oracle)


def test_compiled_equals_torchvision_zero_offset_large_batch():
    """Guards the per-image loop: batch 40 with distinct images."""
    case = ConvCase(batch=40, in_channels=3, out_channels=2, height=4, width=4)
    inputs = make_conv_inputs(case, seed=18)
    inputs["offset"].zero_()
    torch.testing.assert_close(
        call_conv(dynamic_sampling_conv2d, inputs, case),
        torchvision.ops.deform_conv2d(
            inputs["input"], inputs["offset"], inputs["weight"], inputs["bias"], padding=1
        ),
    )


def check_under_autocast(device: str, dtype: torch.dtype, tolerance: float) -> None:
    """A conv → sampling-conv block under ``torch.autocast`` agrees with float32 (no autocast).

    Autocast leaves the sampling conv's input and offset in ``dtype`` (outputs of convolutions)
    and its weight in float32, the mix a model gives it; the op runs in float32 and returns
    ``dtype`` (``repro.ops.functional``, "Autocast"). Gradients reach the float32 weight.
    """
    generator = torch.Generator().manual_seed(41)
    x = torch.randn(2, 4, 9, 11, generator=generator).to(device)
    features = torch.nn.Conv2d(4, 6, 3, padding=1).to(device)
    offsets = torch.nn.Conv2d(6, 18, 3, padding=1).to(device)
    torch.nn.init.normal_(offsets.weight, std=0.5)
    weight = torch.nn.Parameter(0.1 * torch.randn(5, 6, 3, 3, generator=generator).to(device))

    def block() -> tuple[torch.Tensor, torch.Tensor]:
        f = features(x)
        out = dynamic_sampling_conv2d(f, offsets(f), weight, padding=1)
        (grad,) = torch.autograd.grad(out.float().square().sum(), weight)
        return out, grad

    expected, expected_grad = block()
    with torch.autocast(device, dtype=dtype):
        output, grad = block()
    assert output.dtype == dtype and grad.dtype == torch.float32
    scale = float(expected.detach().abs().max())
    torch.testing.assert_close(output.float(), expected, rtol=0, atol=tolerance * scale)
    grad_scale = float(expected_grad.abs().max())
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=tolerance * grad_scale)
    with torch.autocast(device, dtype=dtype):
        points = sample_points(features(x), offsets(features(x))[:, :8])
    assert points.dtype == dtype and torch.isfinite(points).all()


def test_cpu_autocast_bfloat16_runs_in_float32():
    check_under_autocast("cpu", torch.bfloat16, tolerance=5e-2)


GRADIENT_SUBSETS = {
    "weight_only": ("weight",),  # GDC on frozen features: drawn offsets, input without grad
    "input_weight": ("input", "weight"),
    "offset_mask": ("offset", "mask"),
    "input_only": ("input",),
    "nothing_but_bias": ("bias",),
}


@pytest.mark.parametrize("needed", list(GRADIENT_SUBSETS.values()), ids=list(GRADIENT_SUBSETS))
def test_backward_computes_only_the_gradients_asked_for(needed: tuple[str, ...]):
    case = ConvCase(in_channels=4, out_channels=6, groups=2, offset_groups=2, with_mask=True)
    grads = []
    for function in (dynamic_sampling_conv2d, reference.dynamic_sampling_conv2d):
        inputs = make_conv_inputs(case, dtype=torch.float64, seed=21, offset_scale=2.0)
        leaves = [inputs[name].requires_grad_() for name in needed]
        output = call_conv(function, inputs, case)
        grads.append(torch.autograd.grad(output.sin().sum(), leaves))
    for mine, oracle in zip(*grads, strict=True):
        torch.testing.assert_close(mine, oracle, rtol=1e-10, atol=1e-10)


def test_backward_op_returns_empty_gradients_not_asked_for():
    case = ConvCase(in_channels=4, out_channels=6, with_mask=True)
    inputs = make_conv_inputs(case, dtype=torch.float64, seed=22)
    args = conv_op_args(inputs, case)
    grad_output = torch.ones_like(torch.ops.repro.dynamic_sampling_conv2d(*args))
    input, offset, weight, _, mask, *hyper = args
    grad_input, grad_offset, grad_weight, grad_mask = (
        torch.ops.repro.dynamic_sampling_conv2d_backward(
            grad_output, input, offset, weight, mask, *hyper, [False, False, True]
        )
    )
    assert grad_weight.shape == weight.shape and grad_weight.abs().sum() > 0
    assert grad_input.numel() == grad_offset.numel() == grad_mask.numel() == 0
    point_input, point_offset = make_point_inputs(channels=4, points=3, dtype=torch.float64)
    grad_output = torch.ones_like(sample_points(point_input, point_offset))
    grad_point_input, grad_point_offset = torch.ops.repro.sample_points_backward(
        grad_output, point_input, point_offset, 1, [True, False]
    )
    assert grad_point_input.shape == point_input.shape and grad_point_offset.numel() == 0


def test_sample_points_gradient_of_input_or_offset_alone():
    for needed in ((True, False), (False, True)):
        grads = []
        for function in (sample_points, reference.sample_points):
            input, offset = make_point_inputs(
                channels=4, points=3, dtype=torch.float64, seed=23, offset_scale=2.0
            )
            leaves = [
                t.requires_grad_() for t, need in zip((input, offset), needed, strict=True) if need
            ]
            grads.append(torch.autograd.grad(function(input, offset).sin().sum(), leaves))
        for mine, oracle in zip(*grads, strict=True):
            torch.testing.assert_close(mine, oracle, rtol=1e-10, atol=1e-10)


# The CPU kernels split the work by images, or by position ranges of an image when the batch is
# short (1 or 3 images on 2 threads), read channels-last inputs in place and scatter their input
# gradient in place there: every path must give the reference's values and gradients.
WORK_SPLITS = {
    "one_image_split": (1, 2),
    "three_images_on_two_threads": (3, 2),
    "one_thread": (2, 1),
    "many_images": (9, 2),
}


@contextlib.contextmanager
def _with_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("split", list(WORK_SPLITS), ids=list(WORK_SPLITS))
def test_work_splits_and_layouts_match_the_reference(split: str, channels_last: bool):
    batch, threads = WORK_SPLITS[split]
    case = ConvCase(
        batch=batch, in_channels=6, out_channels=4, groups=2, offset_groups=3, with_mask=True
    )
    results = []
    for function in (dynamic_sampling_conv2d, reference.dynamic_sampling_conv2d):
        inputs = make_conv_inputs(case, seed=31, offset_scale=2.0, requires_grad=True)
        if channels_last:
            inputs["input"] = (
                inputs["input"].detach().to(memory_format=torch.channels_last).requires_grad_()
            )
        leaves = [t for t in inputs.values() if t is not None]
        with _with_threads(threads):
            output = call_conv(function, inputs, case)
            grads = torch.autograd.grad(output.sin().sum(), leaves)
        results.append((output, *grads))
        if channels_last and function is dynamic_sampling_conv2d:
            assert inputs["input"].is_contiguous(memory_format=torch.channels_last)
    for mine, oracle in zip(*results, strict=True):
        torch.testing.assert_close(mine, oracle, rtol=1e-10, atol=1e-10)

    points = []
    for function in (sample_points, reference.sample_points):
        input, offset = make_point_inputs(
            batch=batch, channels=6, points=4, offset_groups=2, seed=32, requires_grad=True
        )
        if channels_last:
            input = input.detach().to(memory_format=torch.channels_last).requires_grad_()
        with _with_threads(threads):
            output = function(input, offset, offset_groups=2)
            points.append((output, *torch.autograd.grad(output.sin().sum(), (input, offset))))
    for mine, oracle in zip(*points, strict=True):
        torch.testing.assert_close(mine, oracle, rtol=1e-10, atol=1e-10)


def test_gradients_repeat_exactly_with_a_split_image():
    """One image on two threads: two position ranges, each with its own input-gradient buffer
    and weight-gradient partial, added in a fixed order."""
    case = ConvCase(batch=1, in_channels=8, out_channels=8, height=20, width=20, with_mask=True)
    runs = []
    for _ in range(2):
        inputs = make_conv_inputs(case, dtype=torch.float32, seed=33, requires_grad=True)
        with _with_threads(2):
            call_conv(dynamic_sampling_conv2d, inputs, case).square().sum().backward()
        runs.append([t.grad for t in inputs.values() if t is not None])
    for first, second in zip(*runs, strict=True):
        assert torch.equal(first, second)


def test_large_tiles_and_many_channels_match_torchvision():
    """More positions than one tile holds, and channels not a multiple of the vector width."""
    case = ConvCase(batch=2, in_channels=37, out_channels=5, height=41, width=43)
    inputs = make_conv_inputs(case, dtype=torch.float32, seed=34, offset_scale=3.0)
    torch.testing.assert_close(
        call_conv(dynamic_sampling_conv2d, inputs, case),
        torchvision.ops.deform_conv2d(
            inputs["input"], inputs["offset"], inputs["weight"], inputs["bias"], padding=1
        ),
        rtol=1e-4,
        atol=1e-4,
    )


def test_gradients_do_not_depend_on_the_thread_count_for_long_batches():
    """From four images per thread, a task is an image whatever the thread count, and the
    per-task weight-gradient partials are added in task order: bit-identical gradients."""
    case = ConvCase(batch=9, in_channels=8, out_channels=8, height=10, width=10, with_mask=True)
    runs = []
    for threads in (1, 2):
        inputs = make_conv_inputs(case, dtype=torch.float32, seed=35, requires_grad=True)
        with _with_threads(threads):
            call_conv(dynamic_sampling_conv2d, inputs, case).square().sum().backward()
        runs.append([t.grad for t in inputs.values() if t is not None])
    for first, second in zip(*runs, strict=True):
        assert torch.equal(first, second)
