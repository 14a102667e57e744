"""Public functions of the sampling ops: validate, then dispatch to kernels or reference.

See ``repro.ops`` for what the ops compute and which papers use them.
"""

from __future__ import annotations

import torch

from repro.ops import reference
from repro.ops.library import backend, compiled_devices, has_compiled_kernel, warn_fallback
from repro.ops.validation import IntPair, check_conv_arguments, check_point_arguments

__all__ = ["backend", "dynamic_sampling_conv2d", "sample_points"]

# Load the compiled library now, outside any torch.compile trace.
compiled_devices()


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
    Drop-in replacement for ``torchvision.ops.deform_conv2d`` (same arguments and layouts).

    Args:
        input: ``[B, C_in, H, W]``.
        offset: ``[B, 2*offset_groups*kh*kw, Ho, Wo]``; channel ``2*(g*K + i*kw + j)`` is the y
            offset of tap ``(i, j)`` in offset group ``g``, ``+1`` the x offset.
        weight: ``[C_out, C_in/groups, kh, kw]`` (``groups`` is inferred).
        bias: ``[C_out]`` or ``None``.
        stride, padding, dilation: int or ``(h, w)``.
        mask: ``[B, offset_groups*kh*kw, Ho, Wo]`` modulation or ``None``.

    Returns:
        ``[B, C_out, Ho, Wo]``. Points outside the map (or with non-finite offsets) read 0.
    """
    geometry = check_conv_arguments(input, offset, weight, bias, stride, padding, dilation, mask)
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

    Args:
        input: ``[B, C, H, W]``.
        offset: ``[B, 2*P*offset_groups, H, W]``.
        offset_groups: number of channel groups with their own offsets.

    Returns:
        ``[B, C, P, H, W]``; points outside the map (or with non-finite offsets) read 0.
    """
    geometry = check_point_arguments(input, offset, offset_groups)
    if has_compiled_kernel(input.device):
        return torch.ops.repro.sample_points(input, offset, geometry.offset_groups)
    warn_fallback(input.device)
    return reference.sample_points_reference(input, offset, geometry)
