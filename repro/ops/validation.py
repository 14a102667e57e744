"""Argument checks and output geometry shared by every backend of the sampling ops.

Both ops (the dynamic sampling convolution and point sampling, see ``repro.ops``) take
their offsets in the layout of ``torchvision.ops.deform_conv2d`` (DCNv2, Zhu et al. 2019,
Eq. 3): offset channel ``2 * (g * K + k)`` is the y displacement of tap ``k`` in offset
group ``g``, ``+1`` the x displacement. This module checks the arguments once, with errors
that name the argument, what it got and what it needs, and computes the geometry that the
reference and the compiled kernels both consume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IntPair = int | tuple[int, int] | list[int]


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes and hyper-parameters of one dynamic sampling convolution call."""

    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    offset_groups: int
    out_h: int
    out_w: int

    @property
    def taps(self) -> int:
        """Number of kernel taps ``K = kh * kw``."""
        return self.kernel_h * self.kernel_w


@dataclass(frozen=True)
class PointGeometry:
    """Shapes of one point sampling call."""

    batch: int
    channels: int
    height: int
    width: int
    points: int
    offset_groups: int


def as_pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    """Turn an int or a pair of ints into a ``(h, w)`` pair, checking the minimum."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        pair = (value, value)
    elif (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} in both directions, got {pair}")
    return pair


def _check_rank(tensor: object, name: str, rank: int, layout: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != rank:
        raise ValueError(
            f"{name} must have rank {rank} ({layout}), got shape {tuple(tensor.shape)}"
        )
    return tensor


def _check_same_kind(reference: torch.Tensor, tensor: torch.Tensor, name: str) -> None:
    if tensor.dtype != reference.dtype:
        raise TypeError(
            f"{name} must have the dtype of input ({reference.dtype}), got {tensor.dtype}"
        )
    if tensor.device != reference.device:
        raise ValueError(
            f"{name} must be on the device of input ({reference.device}), got {tensor.device}"
        )


def _check_floating(input: torch.Tensor) -> None:
    if not input.dtype.is_floating_point:
        raise TypeError(f"input must be a floating point tensor, got dtype {input.dtype}")


def _check_non_empty(input: torch.Tensor) -> None:
    """Only the batch of ``input`` may be empty (an empty batch gives an empty output).

    Zero channels or an empty ``H x W`` leave nothing to sample from: refused, as
    ``weight`` with an empty dimension and an output smaller than 1 x 1 are.
    """
    if any(size == 0 for size in input.shape[1:]):
        raise ValueError(
            "input must have at least one channel and a non-empty H x W ([B, C, H, W] with "
            f"C, H, W >= 1; only B may be 0), got shape {tuple(input.shape)}"
        )


def check_conv_arguments(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: IntPair,
    padding: IntPair,
    dilation: IntPair,
    mask: torch.Tensor | None,
) -> ConvGeometry:
    """Validate the arguments of ``dynamic_sampling_conv2d`` and return its geometry.

    Same conventions as ``torchvision.ops.deform_conv2d``: ``groups`` is inferred from
    ``input.shape[1] // weight.shape[1]`` and ``offset_groups`` from
    ``offset.shape[1] // (2 * kh * kw)``.
    """
    _check_rank(input, "input", 4, "[B, C, H, W]")
    _check_rank(offset, "offset", 4, "[B, 2*offset_groups*kh*kw, Ho, Wo]")
    _check_rank(weight, "weight", 4, "[C_out, C_in/groups, kh, kw]")
    _check_floating(input)
    _check_non_empty(input)
    _check_same_kind(input, offset, "offset")
    _check_same_kind(input, weight, "weight")
    if bias is not None:
        _check_rank(bias, "bias", 1, "[C_out]")
        _check_same_kind(input, bias, "bias")
    if mask is not None:
        _check_rank(mask, "mask", 4, "[B, offset_groups*kh*kw, Ho, Wo]")
        _check_same_kind(input, mask, "mask")
    stride_hw = as_pair(stride, "stride", 1)
    padding_hw = as_pair(padding, "padding", 0)
    dilation_hw = as_pair(dilation, "dilation", 1)

    batch, in_channels, height, width = input.shape
    out_channels, channels_per_group, kernel_h, kernel_w = weight.shape
    if channels_per_group < 1 or kernel_h < 1 or kernel_w < 1:
        raise ValueError(f"weight must have non-empty dims 1-3, got shape {tuple(weight.shape)}")
    if in_channels % channels_per_group != 0:
        raise ValueError(
            f"weight.shape[1] must divide the input channels {in_channels} "
            f"(groups = C_in / weight.shape[1]), got weight shape {tuple(weight.shape)}"
        )
    groups = in_channels // channels_per_group
    if out_channels % groups != 0 or out_channels == 0:
        raise ValueError(
            f"weight.shape[0] must be a positive multiple of groups={groups}, "
            f"got weight shape {tuple(weight.shape)}"
        )
    if bias is not None and bias.shape[0] != out_channels:
        raise ValueError(f"bias must have shape [{out_channels}], got {tuple(bias.shape)}")

    out_h = (height + 2 * padding_hw[0] - dilation_hw[0] * (kernel_h - 1) - 1) // stride_hw[0] + 1
    out_w = (width + 2 * padding_hw[1] - dilation_hw[1] * (kernel_w - 1) - 1) // stride_hw[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"input spatial size {height}x{width} is too small for kernel {kernel_h}x{kernel_w} "
            f"with padding {padding_hw} and dilation {dilation_hw}: output would be {out_h}x{out_w}"
        )

    taps = kernel_h * kernel_w
    offset_channels = offset.shape[1]
    if offset_channels == 0 or offset_channels % (2 * taps) != 0:
        raise ValueError(
            f"offset must have 2*offset_groups*kh*kw = a positive multiple of {2 * taps} channels "
            f"for a {kernel_h}x{kernel_w} kernel, got offset shape {tuple(offset.shape)}"
        )
    offset_groups = offset_channels // (2 * taps)
    if in_channels % offset_groups != 0:
        raise ValueError(
            f"offset_groups={offset_groups} (from offset shape {tuple(offset.shape)}) must divide "
            f"the input channels {in_channels}"
        )
    expected_offset = (batch, 2 * offset_groups * taps, out_h, out_w)
    if tuple(offset.shape) != expected_offset:
        raise ValueError(
            f"offset must have shape {list(expected_offset)} [B, 2*offset_groups*kh*kw, Ho, Wo], "
            f"got {list(offset.shape)}"
        )
    if mask is not None:
        expected_mask = (batch, offset_groups * taps, out_h, out_w)
        if tuple(mask.shape) != expected_mask:
            raise ValueError(
                f"mask must have shape {list(expected_mask)} [B, offset_groups*kh*kw, Ho, Wo], "
                f"got {list(mask.shape)}"
            )
    return ConvGeometry(
        batch=batch,
        in_channels=in_channels,
        height=height,
        width=width,
        out_channels=out_channels,
        kernel_h=kernel_h,
        kernel_w=kernel_w,
        stride=stride_hw,
        padding=padding_hw,
        dilation=dilation_hw,
        groups=groups,
        offset_groups=offset_groups,
        out_h=out_h,
        out_w=out_w,
    )


def check_point_arguments(
    input: torch.Tensor, offset: torch.Tensor, offset_groups: int
) -> PointGeometry:
    """Validate the arguments of ``sample_points`` and return its geometry."""
    _check_rank(input, "input", 4, "[B, C, H, W]")
    _check_rank(offset, "offset", 4, "[B, 2*P*offset_groups, H, W]")
    _check_floating(input)
    _check_non_empty(input)
    _check_same_kind(input, offset, "offset")
    if isinstance(offset_groups, bool) or not isinstance(offset_groups, int) or offset_groups < 1:
        raise ValueError(f"offset_groups must be a positive int, got {offset_groups!r}")
    batch, channels, height, width = input.shape
    if channels % offset_groups != 0:
        raise ValueError(
            f"offset_groups={offset_groups} must divide the input channels, got input shape "
            f"{tuple(input.shape)}"
        )
    offset_channels = offset.shape[1]
    if offset_channels == 0 or offset_channels % (2 * offset_groups) != 0:
        raise ValueError(
            f"offset must have 2*P*offset_groups channels (a positive multiple of "
            f"{2 * offset_groups}), got offset shape {tuple(offset.shape)}"
        )
    points = offset_channels // (2 * offset_groups)
    expected = (batch, offset_channels, height, width)
    if tuple(offset.shape) != expected:
        raise ValueError(
            f"offset must have shape {list(expected)} [B, 2*P*offset_groups, H, W] matching input "
            f"{list(input.shape)}, got {list(offset.shape)}"
        )
    return PointGeometry(batch, channels, height, width, points, offset_groups)
