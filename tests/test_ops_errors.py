"""Bad and unusual input for the sampling ops, on every available backend."""

from __future__ import annotations

import pytest
import torch

import repro.ops as ops
from repro.ops import reference
from repro.ops.library import has_compiled_kernel
from repro.ops.testing import ConvCase, make_conv_inputs, make_point_inputs

BACKENDS = {"reference": (reference.dynamic_sampling_conv2d, reference.sample_points)}
if has_compiled_kernel(torch.device("cpu")):
    BACKENDS["compiled"] = (ops.dynamic_sampling_conv2d, ops.sample_points)


def conv_inputs(**overrides) -> dict:
    return make_conv_inputs(ConvCase(with_mask=True, **overrides), seed=21)


def call(function, inputs: dict, **kwargs):
    return function(
        inputs["input"],
        inputs["offset"],
        inputs["weight"],
        inputs["bias"],
        padding=kwargs.get("padding", 1),
        mask=inputs["mask"],
    )


@pytest.mark.parametrize(
    ("argument", "shape", "message"),
    [
        ("input", (4, 7, 8), r"input must have rank 4 .*got shape \(4, 7, 8\)"),
        ("offset", (2, 17, 7, 8), r"offset must have 2\*offset_groups\*kh\*kw.*\(2, 17, 7, 8\)"),
        ("offset", (2, 18, 6, 8), r"offset must have shape \[2, 18, 7, 8\].*got \[2, 18, 6, 8\]"),
        ("offset", (3, 18, 7, 8), r"offset must have shape \[2, 18, 7, 8\].*got \[3, 18, 7, 8\]"),
        ("mask", (2, 8, 7, 8), r"mask must have shape \[2, 9, 7, 8\].*got \[2, 8, 7, 8\]"),
        ("weight", (6, 3, 3, 3), r"weight.shape\[1\] must divide the input channels 4"),
        ("bias", (5,), r"bias must have shape \[6\], got \(5,\)"),
    ],
)
def test_conv_shape_errors_name_the_argument(argument, shape, message):
    inputs = conv_inputs()
    inputs[argument] = torch.randn(shape, dtype=torch.float64)
    for conv, _ in BACKENDS.values():
        with pytest.raises(ValueError, match=message):
            call(conv, inputs)


def test_conv_dtype_and_device_mismatch():
    inputs = conv_inputs()
    inputs["offset"] = inputs["offset"].float()
    with pytest.raises(TypeError, match=r"offset must have the dtype of input \(torch.float64\)"):
        call(ops.dynamic_sampling_conv2d, inputs)
    inputs = conv_inputs()
    inputs["weight"] = inputs["weight"].to("meta")
    with pytest.raises(ValueError, match=r"weight must be on the device of input \(cpu\)"):
        call(ops.dynamic_sampling_conv2d, inputs)
    with pytest.raises(TypeError, match="input must be a floating point tensor"):
        ops.sample_points(torch.zeros(1, 1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, 2))


def test_hyper_parameter_errors():
    inputs = conv_inputs()
    with pytest.raises(ValueError, match=r"stride must be >= 1.*got \(0, 0\)"):
        ops.dynamic_sampling_conv2d(inputs["input"], inputs["offset"], inputs["weight"], stride=0)
    with pytest.raises(
        TypeError, match=r"dilation must be an int or a pair of ints, got \(1, 2, 3\)"
    ):
        ops.dynamic_sampling_conv2d(
            inputs["input"], inputs["offset"], inputs["weight"], dilation=(1, 2, 3)
        )


def test_point_sampling_errors():
    input, offset = make_point_inputs(channels=4, points=3)
    with pytest.raises(ValueError, match=r"offset must have 2\*P\*offset_groups channels"):
        ops.sample_points(input, offset[:, :5])
    with pytest.raises(
        ValueError, match=r"offset must have shape \[2, 6, 6, 7\].*got \[2, 6, 5, 7\]"
    ):
        ops.sample_points(input, offset[:, :, :5])
    with pytest.raises(ValueError, match="offset_groups=3 must divide the input channels"):
        ops.sample_points(input, offset, offset_groups=3)
    with pytest.raises(ValueError, match=r"offset must have rank 4"):
        ops.sample_points(input, offset[0])


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_non_contiguous_inputs_work(backend):
    conv, points = BACKENDS[backend]
    inputs = conv_inputs()
    expected = call(conv, inputs)
    strided = {
        name: tensor.transpose(-1, -2).contiguous().transpose(-1, -2)
        if tensor is not None and tensor.dim() == 4
        else tensor
        for name, tensor in inputs.items()
    }
    assert not strided["input"].is_contiguous()
    torch.testing.assert_close(call(conv, strided), expected)
    input, offset = make_point_inputs()
    torch.testing.assert_close(
        points(input.transpose(2, 3).contiguous().transpose(2, 3), offset), points(input, offset)
    )


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_empty_batch_returns_empty(backend):
    conv, points = BACKENDS[backend]
    inputs = make_conv_inputs(ConvCase(batch=0, with_mask=True), requires_grad=True)
    output = call(conv, inputs)
    assert output.shape == (0, 6, 7, 8)
    output.sum().backward()
    assert inputs["weight"].grad is not None and inputs["weight"].grad.abs().sum() == 0
    input, offset = make_point_inputs(batch=0, requires_grad=True)
    sampled = points(input, offset)
    assert sampled.shape == (0, 4, 3, 6, 7)
    sampled.sum().backward()


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e30, -1e9])
def test_non_finite_and_far_offsets_read_zero(backend, bad):
    _, points = BACKENDS[backend]
    input, offset = make_point_inputs(channels=3, points=2, offset_scale=1.0)
    offset = offset.detach().clone()
    offset[0, 0, 2, 3] = bad  # y of point 0 at (b=0, h=2, w=3)
    offset.requires_grad_()
    input.requires_grad_()
    sampled = points(input, offset)
    assert torch.all(sampled[0, :, 0, 2, 3] == 0)
    assert torch.isfinite(sampled).all()
    sampled.sum().backward()
    assert torch.isfinite(input.grad).all() and torch.isfinite(offset.grad).all()
    assert offset.grad[0, 0, 2, 3] == 0
    clean = offset.detach().clone()
    clean[0, 0, 2, 3] = 0.0
    others = torch.ones_like(sampled, dtype=torch.bool)
    others[0, :, 0, 2, 3] = False
    torch.testing.assert_close(sampled[others], points(input, clean)[others])


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_non_finite_conv_offsets_do_not_spread(backend):
    conv, _ = BACKENDS[backend]
    inputs = conv_inputs()
    inputs["offset"][1, 4, 3, 3] = float("nan")
    output = call(conv, inputs)
    assert torch.isfinite(output).all()


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize(
    "shape", [(2, 0, 6, 7), (2, 4, 0, 7), (2, 4, 6, 0)], ids=["C0", "H0", "W0"]
)
def test_zero_channels_or_empty_map_are_refused_naming_input(backend, shape):
    """Only the batch may be empty: C = 0 or H x W = 0 is a ValueError on every backend."""
    conv, points = BACKENDS[backend]
    batch, channels, height, width = shape
    message = r"input must have at least one channel and a non-empty H x W.*got shape"
    with pytest.raises(ValueError, match=message + rf" \({batch}, {channels}, {height}, {width}\)"):
        points(torch.zeros(shape, dtype=torch.float64), torch.zeros(batch, 6, height, width))
    inputs = conv_inputs()
    inputs["input"] = torch.zeros(shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        call(conv, inputs)


HALF_TOLERANCE = {torch.float16: 2e-2, torch.bfloat16: 1e-1}


@pytest.mark.parametrize("dtype", list(HALF_TOLERANCE), ids=["f16", "bf16"])
def test_half_precision_on_cpu_is_computed_in_float32(dtype):
    """As torchvision's CPU deform_conv2d, half precision is accepted on CPU (module docstring):
    the result is the float32 op's, rounded to the input's dtype, and so are the gradients."""
    inputs = make_conv_inputs(ConvCase(with_mask=True), dtype=dtype, seed=3, requires_grad=True)
    output = call(ops.dynamic_sampling_conv2d, inputs)
    assert output.dtype == dtype
    single = {k: v.detach().float().requires_grad_() for k, v in inputs.items() if v is not None}
    expected = call(ops.dynamic_sampling_conv2d, {**inputs, **single})
    torch.testing.assert_close(output, expected.to(dtype), rtol=0, atol=0)
    exact = call(
        reference.dynamic_sampling_conv2d, {k: v.detach().double() for k, v in single.items()}
    )
    torch.testing.assert_close(
        output.double(), exact, rtol=HALF_TOLERANCE[dtype], atol=HALF_TOLERANCE[dtype]
    )
    output.float().sum().backward()
    expected.sum().backward()
    for name, tensor in single.items():
        assert inputs[name].grad.dtype == dtype, name
        torch.testing.assert_close(inputs[name].grad, tensor.grad.to(dtype), rtol=0, atol=0)

    input, offset = make_point_inputs(dtype=dtype, seed=3)
    sampled = ops.sample_points(input, offset)
    assert sampled.dtype == dtype
    torch.testing.assert_close(sampled, ops.sample_points(input.float(), offset.float()).to(dtype))
