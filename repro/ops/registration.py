"""Fake (meta) and autograd kernels of ``torch.ops.repro.*``, registered from Python.

The compiled library (``repro/ops/csrc``) declares the ops and their forward and backward
kernels; registering the fake kernels with ``torch.library.register_fake`` and the
derivatives with ``torch.library.register_autograd`` lets ``torch.compile`` trace the ops
and ``torch.library.opcheck`` verify them.
"""

from __future__ import annotations

from typing import Any

import torch

_registered = False


def _conv_output_size(size: Any, kernel: Any, stride: int, padding: int, dilation: int) -> Any:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _fake_conv(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    groups: int,
    offset_groups: int,
) -> torch.Tensor:
    out_h = _conv_output_size(input.shape[2], weight.shape[2], stride_h, pad_h, dilation_h)
    out_w = _conv_output_size(input.shape[3], weight.shape[3], stride_w, pad_w, dilation_w)
    return input.new_empty((input.shape[0], weight.shape[0], out_h, out_w))


def _fake_conv_backward(
    grad_output: torch.Tensor,
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor | None,
    *hyper_parameters_and_output_mask: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    needs_input, needs_offset, needs_weight = hyper_parameters_and_output_mask[-1]
    nothing = input.new_empty((0,))
    return (
        torch.empty_like(input) if needs_input else nothing,
        torch.empty_like(offset) if needs_offset else nothing,
        torch.empty_like(weight) if needs_weight else nothing,
        torch.empty_like(mask) if mask is not None and needs_offset else nothing,
    )


def _fake_points(input: torch.Tensor, offset: torch.Tensor, offset_groups: int) -> torch.Tensor:
    points = offset.shape[1] // (2 * offset_groups)
    return input.new_empty((input.shape[0], input.shape[1], points, input.shape[2], input.shape[3]))


def _fake_points_backward(
    grad_output: torch.Tensor,
    input: torch.Tensor,
    offset: torch.Tensor,
    offset_groups: int,
    output_mask: list[bool],
) -> tuple[torch.Tensor, torch.Tensor]:
    nothing = input.new_empty((0,))
    return (
        torch.empty_like(input) if output_mask[0] else nothing,
        torch.empty_like(offset) if output_mask[1] else nothing,
    )


def _conv_setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    input, offset, weight, bias, mask, *hyper_parameters = inputs
    ctx.save_for_backward(input, offset, weight, mask)
    ctx.hyper_parameters = hyper_parameters
    ctx.has_bias = bias is not None


def _conv_backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    input, offset, weight, mask = ctx.saved_tensors
    needs_input, needs_offset, needs_weight, needs_bias, needs_mask = ctx.needs_input_grad[:5]
    # Drawn offsets (GDC) and frozen features need no gradient: the kernel skips that work.
    output_mask = [needs_input, needs_offset or needs_mask, needs_weight]
    grad_input, grad_offset, grad_weight, grad_mask = (
        torch.ops.repro.dynamic_sampling_conv2d_backward(
            grad_output, input, offset, weight, mask, *ctx.hyper_parameters, output_mask
        )
    )
    return (
        grad_input if needs_input else None,
        grad_offset if needs_offset else None,
        grad_weight if needs_weight else None,
        grad_output.sum(dim=(0, 2, 3)) if ctx.has_bias and needs_bias else None,
        grad_mask if mask is not None and needs_mask else None,
        *([None] * len(ctx.hyper_parameters)),
    )


def _points_setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    input, offset, offset_groups = inputs
    ctx.save_for_backward(input, offset)
    ctx.offset_groups = offset_groups


def _points_backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    input, offset = ctx.saved_tensors
    needs_input, needs_offset = ctx.needs_input_grad[:2]
    grad_input, grad_offset = torch.ops.repro.sample_points_backward(
        grad_output, input, offset, ctx.offset_groups, [needs_input, needs_offset]
    )
    return (grad_input if needs_input else None, grad_offset if needs_offset else None, None)


def register_python_kernels() -> None:
    """Register fake and autograd kernels for the compiled ops (once per process)."""
    global _registered
    if _registered:
        return
    torch.library.register_fake("repro::dynamic_sampling_conv2d")(_fake_conv)
    torch.library.register_fake("repro::dynamic_sampling_conv2d_backward")(_fake_conv_backward)
    torch.library.register_fake("repro::sample_points")(_fake_points)
    torch.library.register_fake("repro::sample_points_backward")(_fake_points_backward)
    torch.library.register_autograd(
        "repro::dynamic_sampling_conv2d", _conv_backward, setup_context=_conv_setup_context
    )
    torch.library.register_autograd(
        "repro::sample_points", _points_backward, setup_context=_points_setup_context
    )
    _registered = True
