"""Half-Gaussian sampling offsets of the Gaussian Dynamic Convolution (GDC).

GDC (Sun et al., TCSVT 2021, Section III, Eq. 1-4; see ``results/reported/PAPERS.md``
for the math the text extraction lost): a tap of a k x k kernel with direction
``d`` from the kernel centre is read at ``p = p0 + d * r``. A normal convolution has
``r = 1``, a dilated one ``r = dilation``; GDC draws ``r`` from a half-Gaussian
``|N(0, sigma^2)|``, scaled by the length ``L`` of the feature map's shortest side
(Eq. 3, "adaptive" offsets). The centre tap never moves (``d = 0``).

Two variants are implemented because the paper and the authors' code differ:

* ``mode="per_tap"`` (the paper's Eq. 3 and the public code): every tap draws its own
  ``r`` for y and x independently.
* ``mode="shared"`` (the GDPP variant, Eq. 4): one ``r`` per position is shared by all
  taps and added to a constant base offset ``b``: ``p = p0 + d * (b + r)``. With
  ``sigma -> 0`` this is a dilated convolution of rate ``b``.

This module is the single source of these draws: the GDC layer, the GDPP module and
the Fig. 10 notebook all call it.
"""

from __future__ import annotations

from typing import Literal

import torch

OffsetMode = Literal["per_tap", "shared"]
OFFSET_MODES: tuple[str, ...] = ("per_tap", "shared")


def tap_directions(kernel_size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Directions ``d`` of the taps of a square kernel from its centre.

    Returns a ``[k*k, 2]`` tensor of ``(dy, dx)`` in tap order ``i * k + j`` (the
    layout of ``torchvision.ops.deform_conv2d``'s offsets). For ``k = 3`` the values
    are in ``{-1, 0, 1}`` as in GDC Eq. (1).
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    half = kernel_size // 2
    steps = torch.arange(-half, half + 1, dtype=dtype)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([dy.reshape(-1), dx.reshape(-1)], dim=-1)


def draw_half_gaussian(
    sigma: float,
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``|N(0, sigma^2)|`` samples of the given shape (GDC Eq. 3)."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    noise = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    return noise.abs() * sigma


def gdc_tap_displacements(
    kernel_size: int,
    sigma: float,
    scale: float = 1.0,
    mode: OffsetMode = "per_tap",
    base: float = 0.0,
    batch_shape: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Displacements of every tap from the kernel centre, ``d * (base + scale * r)``.

    Args:
        kernel_size: odd kernel size ``k``.
        sigma: standard deviation of the half-Gaussian (relative to ``scale``).
        scale: the unit of ``r``; the feature map's shortest side ``L`` for the
            image-adaptive offsets of single-image GDC, ``1`` for pixel units.
        mode: ``"per_tap"`` (independent y and x magnitudes per tap) or
            ``"shared"`` (one magnitude for all taps, GDPP Eq. 4).
        base: constant base offset ``b`` of the shared variant (9 in GDPP).
        batch_shape: leading dimensions, e.g. ``(num_draws,)`` or ``(H, W)``.

    Returns:
        ``[*batch_shape, k*k, 2]`` tensor of ``(dy, dx)``; the centre tap is 0.
    """
    if mode not in OFFSET_MODES:
        raise ValueError(f"mode must be one of {OFFSET_MODES}, got {mode!r}")
    directions = tap_directions(kernel_size, dtype=dtype).to(device)
    taps = kernel_size * kernel_size
    if mode == "per_tap":
        magnitude = draw_half_gaussian(sigma, (*batch_shape, taps, 2), generator, dtype, device)
    else:
        magnitude = draw_half_gaussian(sigma, (*batch_shape, 1, 1), generator, dtype, device)
    return directions * (base + scale * magnitude)


def displacements_to_deform_offsets(
    displacements: torch.Tensor, kernel_size: int, dilation: int = 1
) -> torch.Tensor:
    """Turn tap displacements into ``deform_conv2d`` offsets.

    ``deform_conv2d`` reads tap ``(i, j)`` at ``p0 + dilation * d + offset``; to read it at
    ``p0 + displacement`` the offset is ``displacement - dilation * d``. Input
    ``[..., k*k, 2]``; output ``[..., 2*k*k]`` with channel ``2*(i*k+j)`` the y offset.
    """
    directions = tap_directions(kernel_size, dtype=displacements.dtype).to(displacements.device)
    offsets = displacements - dilation * directions
    return offsets.reshape(*offsets.shape[:-2], -1)


def uniform_tap_displacements(
    kernel_size: int,
    high: float,
    scale: float = 1.0,
    mode: OffsetMode = "per_tap",
    base: float = 0.0,
    batch_shape: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Displacements ``d * (base + scale * u)`` with ``u ~ U(0, high)``.

    The "random dynamic convolution" of GDC Table VII: the same construction as
    :func:`gdc_tap_displacements` with the half-Gaussian magnitude replaced by a uniform
    one. The paper does not give the uniform range; callers choose ``high`` (the GDC
    layer's default is ``3 * sigma``, the range holding 99.7 % of the half-Gaussian).
    Returns ``[*batch_shape, k*k, 2]``; the centre tap is 0.
    """
    if mode not in OFFSET_MODES:
        raise ValueError(f"mode must be one of {OFFSET_MODES}, got {mode!r}")
    if high < 0:
        raise ValueError(f"high must be >= 0, got {high}")
    directions = tap_directions(kernel_size, dtype=dtype).to(device)
    taps = kernel_size * kernel_size
    shape = (*batch_shape, taps, 2) if mode == "per_tap" else (*batch_shape, 1, 1)
    magnitude = torch.rand(shape, generator=generator, dtype=dtype, device=device) * high
    return directions * (base + scale * magnitude)


def truncate_to_map(displacements: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Integer sampling as in the authors' GDC code: clamp the read position to the map, floor it.

    ``displacements`` is ``[..., H, W, P, 2]`` (one per output position, optionally one set
    per batch element); returns displacements whose target positions ``p0 + displacement``
    are integer pixels inside the map, so bilinear sampling reads them exactly and gives no
    gradient to the position.
    """
    if displacements.ndim < 4 or tuple(displacements.shape[-4:-2]) != (height, width):
        raise ValueError(
            f"displacements must be [..., {height}, {width}, P, 2], got "
            f"{tuple(displacements.shape)}"
        )
    ys = torch.arange(height, dtype=displacements.dtype, device=displacements.device)
    xs = torch.arange(width, dtype=displacements.dtype, device=displacements.device)
    p0y = ys.view(height, 1, 1)
    p0x = xs.view(1, width, 1)
    ty = (p0y + displacements[..., 0]).clamp(0, height - 1).floor()
    tx = (p0x + displacements[..., 1]).clamp(0, width - 1).floor()
    return torch.stack([ty - p0y, tx - p0x], dim=-1)
