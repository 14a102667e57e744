"""Public functions of the sampling ops: validate, then dispatch to kernels or reference.

See ``repro.ops`` for what the ops compute and which papers use them.

As drop-ins for ``torchvision.ops.deform_conv2d`` they differ in two documented ways:

* Dtypes: float32 and float64 everywhere; float16 and bfloat16 natively on CUDA. On CPU, where
  torchvision accepts half precision too but the compiled kernels are float32/float64 only,
  half-precision arguments are computed in float32 and the output rounded back to their dtype
  (gradients come back in it as well): the result is that of the float32 op, rounded once,
  at twice the memory of the arguments.
* Autocast: inside ``torch.autocast`` (CUDA or CPU) the ops run in float32 (float64 if an
  argument is float64) with autocast off, whatever mix of dtypes autocast left their
  arguments in, and return ``input``'s dtype, as ``torchvision.ops.deform_conv2d`` does: the
  bilinear weights and the accumulation are never in half precision.
* Zero sizes: an empty batch gives an empty output (and zero gradients); zero channels or an
  empty ``H x W`` input are refused with a ``ValueError`` naming ``input``, as an empty
  ``weight`` dimension or an output smaller than 1 x 1 are.
"""

from __future__ import annotations

import torch

from repro.ops import reference
from repro.ops.library import backend, compiled_devices, has_compiled_kernel, warn_fallback
from repro.ops.validation import (
    ConvGeometry,
    IntPair,
    PointGeometry,
    check_conv_arguments,
    check_point_arguments,
)

__all__ = ["backend", "dynamic_sampling_conv2d", "sample_points"]

#: Dtypes without a CPU kernel: computed in float32 on CPU and rounded back.
HALF_DTYPES: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16)

# Load the compiled library now, outside any torch.compile trace.
compiled_devices()


def _half_on_cpu(input: torch.Tensor) -> bool:
    """Whether ``input`` is half precision on CPU (computed in float32, see module docstring)."""
    return input.device.type == "cpu" and input.dtype in HALF_DTYPES


def _float32(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.float()


_AUTOCAST_DEVICE_TYPES = frozenset({"cpu", "cuda", "xpu", "mps", "hpu", "xla"})


def _autocast_dtype(*tensors: torch.Tensor | None) -> torch.dtype | None:
    """The dtype to run in when autocast is on for the tensors' device (else ``None``)."""
    first = tensors[0]
    assert first is not None
    if first.device.type not in _AUTOCAST_DEVICE_TYPES:
        # e.g. "meta" (shape-only runs such as FLOP counting): autocast has no such device.
        return None
    if not torch.is_autocast_enabled(first.device.type):
        return None
    dtype = torch.float32
    for tensor in tensors:
        if tensor is not None and tensor.dtype.is_floating_point:
            dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _cast(tensor: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(dtype)


def dynamic_sampling_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Convolution whose taps are read at ``base + offset`` by bilinear interpolation.

    DCNv2 (Zhu et al. 2019) Eq. 3: ``y(p) = sum_k w_k * x(p + p_k + dp_k) * m_k``; without
    ``mask`` it is DCNv1 and the sampling convolution of CGDS (DSNet Eq. 2) and GDC (Eq. 1).
    Drop-in replacement for ``torchvision.ops.deform_conv2d`` (same arguments and layouts;
    dtypes and zero sizes as in the module docstring: float16/bfloat16 on CPU are computed in
    float32, zero channels or an empty ``H x W`` are refused).

    Args:
        input: ``[B, C_in, H, W]``, floating point; ``C_in, H, W >= 1``.
        offset: ``[B, 2*offset_groups*kh*kw, Ho, Wo]``; channel ``2*(g*K + i*kw + j)`` is the y
            offset of tap ``(i, j)`` in offset group ``g``, ``+1`` the x offset.
        weight: ``[C_out, C_in/groups, kh, kw]`` (``groups`` is inferred).
        bias: ``[C_out]`` or ``None``.
        stride, padding, dilation: int or ``(h, w)``.
        mask: ``[B, offset_groups*kh*kw, Ho, Wo]`` modulation or ``None``.

    Every tensor has the dtype and device of ``input``.

    Returns:
        ``[B, C_out, Ho, Wo]`` of ``input``'s dtype. Points outside the map (or with non-finite
        offsets) read 0.
    """
    dtype = _autocast_dtype(input, offset, weight, bias, mask)
    if dtype is not None:
        with torch.autocast(input.device.type, enabled=False):
            output = dynamic_sampling_conv2d(
                input.to(dtype),
                offset.to(dtype),
                weight.to(dtype),
                _cast(bias, dtype),
                stride,
                padding,
                dilation,
                _cast(mask, dtype),
            )
        return output.to(input.dtype)
    geometry = check_conv_arguments(input, offset, weight, bias, stride, padding, dilation, mask)
    if _half_on_cpu(input):
        output = _conv(
            input.float(), offset.float(), weight.float(), _float32(bias), _float32(mask), geometry
        )
        return output.to(input.dtype)
    return _conv(input, offset, weight, bias, mask, geometry)


def _conv(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    geometry: ConvGeometry,
) -> torch.Tensor:
    """The validated convolution on the compiled kernel of the device, else the reference."""
    if has_compiled_kernel(input.device):
        return torch.ops.repro.dynamic_sampling_conv2d(
            input,
            offset,
            weight,
            bias,
            mask,
            *geometry.stride,
            *geometry.padding,
            *geometry.dilation,
            geometry.groups,
            geometry.offset_groups,
        )
    warn_fallback(input.device)
    return reference.dynamic_sampling_conv2d_reference(input, offset, weight, bias, mask, geometry)


def sample_points(
    input: torch.Tensor, offset: torch.Tensor, offset_groups: int = 1
) -> torch.Tensor:
    """Read P points per position by bilinear interpolation, without weights.

    ``out[b, c, p, h, w] = bilinear(input[b, c], h + dy, w + dx)`` with ``dy, dx`` taken from
    offset channels ``g*2P + 2p`` and ``g*2P + 2p + 1`` for the offset group ``g`` of channel
    ``c`` (channels split into ``offset_groups`` contiguous groups). Serves DDSM's sampled keys
    and values (Li and Tong 2021, Sec. 2), GDC's scattered taps and the sampling-point figures.
    Dtypes and zero sizes as in the module docstring.

    Args:
        input: ``[B, C, H, W]``, floating point; ``C, H, W >= 1`` (``B`` may be 0).
        offset: ``[B, 2*P*offset_groups, H, W]``, of ``input``'s dtype and device.
        offset_groups: number of channel groups with their own offsets.

    Returns:
        ``[B, C, P, H, W]`` of ``input``'s dtype; points outside the map (or with non-finite
        offsets) read 0.
    """
    dtype = _autocast_dtype(input, offset)
    if dtype is not None:
        with torch.autocast(input.device.type, enabled=False):
            output = sample_points(input.to(dtype), offset.to(dtype), offset_groups)
        return output.to(input.dtype)
    geometry = check_point_arguments(input, offset, offset_groups)
    if _half_on_cpu(input):
        return _points(input.float(), offset.float(), geometry).to(input.dtype)
    return _points(input, offset, geometry)


def _points(input: torch.Tensor, offset: torch.Tensor, geometry: PointGeometry) -> torch.Tensor:
    """The validated point sampling on the compiled kernel of the device, else the reference."""
    if has_compiled_kernel(input.device):
        return torch.ops.repro.sample_points(input, offset, geometry.offset_groups)
    warn_fallback(input.device)
    return reference.sample_points_reference(input, offset, geometry)
