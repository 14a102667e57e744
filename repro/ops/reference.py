"""Pure-PyTorch reference of the sampling ops, built on ``F.grid_sample``.

This is the oracle of the tests and the runtime fallback when the compiled library
(``repro._C``) is absent: one implementation, used for both.

* ``dynamic_sampling_conv2d_reference``: a k x k convolution whose taps are read at
  ``base + offset`` by bilinear interpolation, zero outside the map, optionally modulated
  per tap (DCNv2 Eq. 3; DSNet Eq. 2 reads CGDS features the same way).
* ``sample_points_reference``: P bilinear reads per position without weights (DDSM's
  dynamically sampled keys and values, GDC's scattered taps).

Bilinear reads follow ``torchvision.ops.deform_conv2d``: a point with ``y <= -1``,
``y >= H``, ``x <= -1`` or ``x >= W`` reads 0, and corners outside the map count as 0.
Non-finite offsets read 0 as well.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from repro.ops.validation import (
    ConvGeometry,
    IntPair,
    PointGeometry,
    check_conv_arguments,
    check_point_arguments,
)


def _sanitize(coordinate: torch.Tensor, size: int) -> torch.Tensor:
    """Move non-finite coordinates off the map and clamp far ones to just outside it.

    Clamping to ``[-2, size + 1]`` changes neither the value (0 outside ``(-1, size)``) nor
    the gradient (0 there too) but keeps ``grid_sample``'s integer casts in range.
    """
    outside = torch.full_like(coordinate, -2.0)
    finite = torch.where(torch.isfinite(coordinate), coordinate, outside)
    return finite.clamp(-2.0, size + 1.0)


def bilinear_gather(input: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Read ``input`` bilinearly at pixel coordinates ``(y, x)``.

    Args:
        input: ``[B, C, H, W]``.
        y, x: ``[B, G, P, Ho, Wo]`` pixel coordinates (0 = centre of the first pixel);
            the channels are split into ``G`` contiguous groups, group ``g`` reads at
            ``(y[:, g], x[:, g])``.

    Returns:
        ``[B, C, P, Ho, Wo]``.
    """
    batch, channels, height, width = input.shape
    groups, points, out_h, out_w = y.shape[1:]
    y = _sanitize(y, height)
    x = _sanitize(x, width)
    # align_corners=False maps pixel centre i to (2i + 1) / size - 1; it stays defined for size 1.
    grid = torch.stack(((2.0 * x + 1.0) / width - 1.0, (2.0 * y + 1.0) / height - 1.0), dim=-1)
    grid = grid.reshape(batch * groups, points * out_h, out_w, 2)
    sampled = F.grid_sample(
        input.reshape(batch * groups, channels // groups, height, width),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return sampled.reshape(batch, channels, points, out_h, out_w)


def tap_base_positions(
    geometry: ConvGeometry, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Regular-grid read positions of every tap: ``([K, Ho, 1], [K, 1, Wo])`` for y and x."""
    (stride_h, stride_w), (pad_h, pad_w) = geometry.stride, geometry.padding
    dil_h, dil_w = geometry.dilation
    rows = torch.arange(geometry.out_h, device=device, dtype=dtype) * stride_h - pad_h
    cols = torch.arange(geometry.out_w, device=device, dtype=dtype) * stride_w - pad_w
    tap_i = torch.arange(geometry.kernel_h, device=device, dtype=dtype) * dil_h
    tap_j = torch.arange(geometry.kernel_w, device=device, dtype=dtype) * dil_w
    tap_y = tap_i.repeat_interleave(geometry.kernel_w)
    tap_x = tap_j.repeat(geometry.kernel_h)
    return tap_y[:, None, None] + rows[None, :, None], tap_x[:, None, None] + cols[None, None, :]


def dynamic_sampling_conv2d_reference(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    geometry: ConvGeometry,
) -> torch.Tensor:
    """Dynamic sampling convolution (DCNv2 Eq. 3) by ``grid_sample`` + one batched GEMM.

    Arguments are already validated (see ``validation.check_conv_arguments``).
    """
    g = geometry
    taps = g.taps
    offset_pairs = offset.reshape(g.batch, g.offset_groups, taps, 2, g.out_h, g.out_w)
    base_y, base_x = tap_base_positions(g, input.device, input.dtype)
    y = offset_pairs[:, :, :, 0] + base_y
    x = offset_pairs[:, :, :, 1] + base_x
    columns = bilinear_gather(input, y, x)  # [B, C, K, Ho, Wo]
    if mask is not None:
        columns = columns.reshape(
            g.batch, g.offset_groups, g.in_channels // g.offset_groups, taps, g.out_h, g.out_w
        ) * mask.reshape(g.batch, g.offset_groups, 1, taps, g.out_h, g.out_w)
    columns = columns.reshape(
        g.batch, g.groups, (g.in_channels // g.groups) * taps, g.out_h * g.out_w
    )
    kernel = weight.reshape(g.groups, g.out_channels // g.groups, -1)
    out = torch.einsum("gok,bgkl->bgol", kernel, columns)
    out = out.reshape(g.batch, g.out_channels, g.out_h, g.out_w)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out


def sample_points_reference(
    input: torch.Tensor, offset: torch.Tensor, geometry: PointGeometry
) -> torch.Tensor:
    """Point sampling: ``out[b, c, p, h, w] = bilinear(input[b, c], h + dy_p, w + dx_p)``.

    Arguments are already validated (see ``validation.check_point_arguments``).
    """
    g = geometry
    pairs = offset.reshape(g.batch, g.offset_groups, g.points, 2, g.height, g.width)
    rows = torch.arange(g.height, device=input.device, dtype=input.dtype)[:, None]
    cols = torch.arange(g.width, device=input.device, dtype=input.dtype)[None, :]
    return bilinear_gather(input, pairs[:, :, :, 0] + rows, pairs[:, :, :, 1] + cols)


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
    """The reference with the public signature (validated): the tests' oracle."""
    geometry = check_conv_arguments(input, offset, weight, bias, stride, padding, dilation, mask)
    return dynamic_sampling_conv2d_reference(input, offset, weight, bias, mask, geometry)


def sample_points(
    input: torch.Tensor, offset: torch.Tensor, offset_groups: int = 1
) -> torch.Tensor:
    """The point sampling reference with the public signature (validated)."""
    return sample_points_reference(
        input, offset, check_point_arguments(input, offset, offset_groups)
    )
