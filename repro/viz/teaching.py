"""Where dynamic sampling layers read, on real photos: the teaching chapter's figures and checks.

The chapter "Learn: dynamic sampling" (notebooks ``teaching_basics`` and ``teaching_layers``)
walks from the regular grid of a convolution to the layers of the three papers. Everything
it draws comes from the project's own op and modules, read the way the op reads it:

* a convolution tap ``n`` of output pixel ``p0`` reads the input at
  ``p0 + p_n + Δp_n`` (DSNet Eq. 1 with ``Δp_n = 0``; with dilation ``d`` the grid is
  ``d·p_n``; DCNv2 Eq. 3 adds ``Δp_n`` and a modulation ``Δm_n``). :func:`conv_tap_positions`
  computes these positions with the reference's own base grid
  (``repro.ops.reference.tap_base_positions``) plus the offsets in the layout of
  ``torchvision.ops.deform_conv2d`` (channel ``2k`` the y offset of tap ``k``, ``2k + 1`` the
  x offset);
* a point sampler (DDSM's N keys and values) reads at ``p + Δp`` (:func:`point_positions`);
* :func:`read_at` reads an image at given positions with ``repro.ops.sample_points`` and
  :func:`weighted_sum` applies a kernel to those reads: the notebooks check (:func:`compare`)
  that this equals the layer's own output, so a figure of positions is the positions the
  layer uses.

The photos are those that ship inside scikit-image (read from the installed package, never
fetched). Positions are ``(y, x)`` pixel coordinates, 0 at the centre of the first pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from repro.modules.cgds import ContextGuidedSampling
from repro.modules.ddsm import SpatialDynamicAffinity
from repro.modules.dynamic_baselines import DeformableConv
from repro.modules.gaussian_offsets import displacements_to_deform_offsets
from repro.modules.gdc import GaussianDynamicConv
from repro.ops import dynamic_sampling_conv2d, sample_points
from repro.ops.reference import tap_base_positions
from repro.ops.validation import check_conv_arguments

PHOTOS: dict[str, str] = {
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "camera": "camera.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
}
"""Photos of scikit-image that ship with the package (no download), by the chapter's names."""

LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights of R, G, B in the grey value of a photo."""

Conv = Callable[..., torch.Tensor]
"""A function with the signature of ``dynamic_sampling_conv2d``."""


# --------------------------------------------------------------------------- photos


def load_photo(name: str, side: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A scikit-image photo as ``[1, 3, H, W]`` in ``[0, 1]``, its shortest side ``side`` pixels.

    Read from the files installed with scikit-image (:data:`PHOTOS`); a grey photo is repeated
    over the three channels. Downscaled with PIL's (antialiased) bilinear filter.
    """
    if name not in PHOTOS:
        raise ValueError(f"photo must be one of {sorted(PHOTOS)}, got {name!r}")
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}")
    path = Path(skimage.data.__file__).parent / PHOTOS[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"photo {name!r}: {PHOTOS[name]} is not installed with this scikit-image"
        )
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        scale = side / min(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        array = np.asarray(rgb.resize(size, Image.Resampling.BILINEAR), dtype=np.float64)
    return torch.from_numpy(array / 255.0).permute(2, 0, 1).unsqueeze(0).to(dtype).contiguous()


def luminance(photo: torch.Tensor) -> torch.Tensor:
    """The grey value ``[B, 1, H, W]`` of an RGB photo ``[B, 3, H, W]`` (:data:`LUMA`)."""
    weights = torch.tensor(LUMA, dtype=photo.dtype, device=photo.device).view(1, 3, 1, 1)
    return (photo * weights).sum(dim=1, keepdim=True)


def pixels_at(
    rows: Sequence[float], cols: Sequence[float], height: int, width: int
) -> list[tuple[int, int]]:
    """Pixels ``(y, x)`` at fractions ``rows`` and ``cols`` of the map (0: first, 1: last)."""
    if len(rows) != len(cols):
        raise ValueError(f"rows and cols must pair up, got {len(rows)} and {len(cols)} values")
    for value in (*rows, *cols):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"pixel fractions must lie in [0, 1], got {value}")
    return [
        (round(r * (height - 1)), round(c * (width - 1))) for r, c in zip(rows, cols, strict=True)
    ]


# --------------------------------------------------------------------------- positions


def conv_tap_positions(
    input: torch.Tensor,
    offset: torch.Tensor,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> torch.Tensor:
    """Where ``dynamic_sampling_conv2d(input, offset, ...)`` reads every tap: ``[B, G, K, Ho, Wo, 2]``.

    Tap ``n = i*k + j`` of output pixel ``p0`` reads at ``p0 + d·p_n + Δp_n`` (DSNet Eq. 1 for the
    regular grid, DCNv2 Eq. 3 with the offsets ``Δp_n``), ``(y, x)`` in the last dimension, ``G``
    the offset groups. The base grid is the reference op's (``tap_base_positions``), the offsets
    are read in ``deform_conv2d``'s layout, as the op reads them.
    """
    weight = input.new_empty(1, input.shape[1], kernel_size, kernel_size)
    geometry = check_conv_arguments(input, offset, weight, None, stride, padding, dilation, None)
    base_y, base_x = tap_base_positions(geometry, input.device, input.dtype)
    pairs = offset.reshape(
        geometry.batch, geometry.offset_groups, geometry.taps, 2, geometry.out_h, geometry.out_w
    )
    return torch.stack((pairs[:, :, :, 0] + base_y, pairs[:, :, :, 1] + base_x), dim=-1)


def grid_positions(input: torch.Tensor, kernel_size: int = 3, dilation: int = 1) -> torch.Tensor:
    """The regular (dilated) grid of a "same" convolution: positions ``[B, K, H, W, 2]``.

    Zero offsets, padding ``dilation * (k // 2)``: DSNet Eq. 1, ``p0 + d·p_n``.
    """
    batch, _, height, width = input.shape
    taps = kernel_size * kernel_size
    offset = input.new_zeros(batch, 2 * taps, height, width)
    padding = dilation * (kernel_size // 2)
    return conv_tap_positions(input, offset, kernel_size, padding=padding, dilation=dilation)[:, 0]


def point_positions(offset: torch.Tensor) -> torch.Tensor:
    """Where ``sample_points(input, offset)`` reads: ``[B, P, H, W, 2]``, ``p + Δp`` per point.

    ``offset`` is ``[B, 2*P, H, W]`` (channel ``2p`` the y offset of point ``p``, one offset
    group).
    """
    batch, channels, height, width = offset.shape
    if channels % 2:
        raise ValueError(f"offset must have 2*P channels, got {channels}")
    pairs = offset.reshape(batch, channels // 2, 2, height, width)
    rows = torch.arange(height, dtype=offset.dtype, device=offset.device).view(height, 1)
    cols = torch.arange(width, dtype=offset.dtype, device=offset.device).view(1, width)
    return torch.stack((pairs[:, :, 0] + rows, pairs[:, :, 1] + cols), dim=-1)


def at_pixels(
    positions: torch.Tensor, pixels: Sequence[tuple[int, int]], batch: int = 0
) -> torch.Tensor:
    """The taps of each of ``pixels``: ``[len(pixels), K, 2]`` from ``[B, K, H, W, 2]``."""
    return torch.stack([positions[batch, :, y, x] for y, x in pixels])


def read_at(input: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Bilinear reads of ``input`` ``[B, C, H, W]`` at ``positions`` ``[B, K, H, W, 2]``.

    Returns ``[B, C, K, H, W]``: the value at ``positions[b, k, y, x]`` for every channel, read
    with ``repro.ops.sample_points`` (DCNv2 Eq. 4's bilinear kernel, zero outside the map).
    """
    batch, taps, height, width, _ = positions.shape
    rows = torch.arange(height, dtype=positions.dtype, device=positions.device).view(height, 1)
    cols = torch.arange(width, dtype=positions.dtype, device=positions.device).view(1, width)
    offsets = torch.stack((positions[..., 0] - rows, positions[..., 1] - cols), dim=2)
    return sample_points(input, offsets.reshape(batch, 2 * taps, height, width).contiguous())


def weighted_sum(
    reads: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``Σ_n w_n · Δm_n · x(p_n)`` (DCNv2 Eq. 3) from the reads ``[B, C, K, H, W]``.

    ``weight`` is ``[C_out, C, k, k]`` (``K = k*k``, no groups), ``mask`` ``[B, K, H, W]`` or
    ``None``. Returns ``[B, C_out, H, W]``.
    """
    if mask is not None:
        reads = reads * mask.unsqueeze(1)
    out = torch.einsum("ock,bckhw->bohw", weight.flatten(2), reads)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def deformable_sampling(
    module: DeformableConv, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Positions ``[B, K, H, W, 2]`` and mask ``[B, K, H, W]`` (or ``None``) of a
    :class:`DeformableConv` on ``x``: offsets and mask predicted from ``x`` itself (DCNv2)."""
    taps = module.kernel_size * module.kernel_size
    predicted = module.offset_predictor(x)
    mask = torch.sigmoid(predicted[:, 2 * taps :]) if module.modulated else None
    positions = conv_tap_positions(
        x,
        predicted[:, : 2 * taps],
        module.kernel_size,
        padding=module.dilation * (module.kernel_size // 2),
        dilation=module.dilation,
    )
    return positions[:, 0], mask


def cgds_sampling(
    module: ContextGuidedSampling, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """Positions ``[B, K, H, W, 2]`` where CGDS reads ``low``, predicted from ``high`` (DSNet Eq. 2-3)."""
    offsets = module.sampling_offsets(low, high)
    positions = conv_tap_positions(
        low, offsets, module.kernel_size, padding=module.kernel_size // 2
    )
    return positions[:, 0]


def gdc_sampling(
    module: GaussianDynamicConv, x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One draw of a GDC layer on ``x``: positions ``[1, K, H, W, 2]`` and the displacements
    ``[H, W, K, 2]`` (GDC Eq. 3, ``p = p0 + d ⊙ (r L)``) to pass to ``module.convolve``."""
    height, width = x.shape[-2:]
    displacements = module.draw_displacements(height, width, generator)
    offsets = displacements_to_deform_offsets(displacements, module.kernel_size)
    offsets = offsets.permute(2, 0, 1).unsqueeze(0).contiguous()
    positions = conv_tap_positions(
        x[:1], offsets, module.kernel_size, padding=module.kernel_size // 2
    )
    return positions[:, 0], displacements


def gdc_draws(
    module: GaussianDynamicConv,
    x: torch.Tensor,
    pixels: Sequence[tuple[int, int]],
    draws: int,
    seed: int,
) -> torch.Tensor:
    """``draws`` draws of a GDC layer's taps at ``pixels``: ``[draws, len(pixels), K, 2]``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack(
        [at_pixels(gdc_sampling(module, x, generator)[0], pixels) for _ in range(draws)]
    )


def ddsm_sampling(
    module: SpatialDynamicAffinity, low: torch.Tensor, high: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """DDSM branch (a) on ``(low, high)``: the N sampled positions ``[B, N, H, W, 2]`` of every
    pixel (anchors + predicted offsets) and their softmax affinities ``[B, N, H, W]``."""
    embedded_low, high_up = module.embedded(low, high)
    offsets = module.sampling_offsets(torch.cat([embedded_low, high_up], dim=1))
    weights, _ = module.affinity(low, high)
    return point_positions(offsets), weights


def ddsm_output_from_positions(
    module: SpatialDynamicAffinity, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """DDSM branch (a) rebuilt from :func:`ddsm_sampling`: values read at the drawn positions
    with :func:`read_at`, weighted by the affinities; equals ``module(low, high)``."""
    positions, weights = ddsm_sampling(module, low, high)
    _, high_up = module.embedded(low, high)
    values = read_at(module.value(high_up), positions)
    return module.out((weights.unsqueeze(1) * values).sum(dim=2))


def randomise_predictor(conv: nn.Conv2d, std: float, seed: int) -> None:
    """Give an offset predictor (zero at initialisation) random weights, in place.

    The project's layers start with zero offsets (the regular grid); an untrained layer with
    random predictor weights shows how the positions depend on the input before any
    training. Bias stays zero.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
        if conv.bias is not None:
            conv.bias.zero_()


# --------------------------------------------------------------------------- checks


NOISE_FLOOR = 1e-3
"""Differences below this fraction of a check's tolerance are recorded as that fraction."""


@dataclass(frozen=True)
class Check:
    """A comparison of two computations: their largest absolute difference and its bound."""

    name: str
    max_abs_diff: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return math.isfinite(self.max_abs_diff) and self.max_abs_diff <= self.tolerance

    @property
    def recorded_difference(self) -> float:
        """The difference as a metric: ``max_abs_diff``, or :data:`NOISE_FLOOR` × ``tolerance``
        when smaller.

        A difference far within the tolerance is rounding noise (~1e-15 in float64) whose last
        digits differ between machines and library builds; recording it as the floor keeps a
        notebook's smoke fingerprint deterministic, while a difference that grows towards the
        tolerance (a real discrepancy) is recorded as it is.
        """
        if not math.isfinite(self.max_abs_diff):
            return self.max_abs_diff
        return max(self.max_abs_diff, NOISE_FLOOR * self.tolerance)

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{verdict}  {self.name}: max |difference| = {self.max_abs_diff:.3g} "
            f"(tolerance {self.tolerance:g})"
        )


def compare(name: str, a: torch.Tensor, b: torch.Tensor, tolerance: float = 1e-10) -> Check:
    """:class:`Check` of two tensors of the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ, {tuple(a.shape)} and {tuple(b.shape)}")
    return Check(name, float((a.detach() - b.detach()).abs().max()), tolerance)


def check_zero_offsets(
    x: torch.Tensor, weight: torch.Tensor, dilation: int = 1, conv: Conv = dynamic_sampling_conv2d
) -> Check:
    """With all offsets 0 the op is a (dilated) convolution: ``conv`` against ``F.conv2d``."""
    k = weight.shape[-1]
    padding = dilation * (k // 2)
    offset = x.new_zeros(x.shape[0], 2 * k * k, x.shape[2], x.shape[3])
    ours = conv(x, offset, weight, None, 1, padding, dilation, None)
    return compare(
        f"zero offsets = F.conv2d (dilation {dilation})",
        ours,
        F.conv2d(x, weight, padding=padding, dilation=dilation),
    )


def check_torchvision(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor | None,
    dilation: int = 1,
    conv: Conv = dynamic_sampling_conv2d,
) -> Check:
    """``conv`` against ``torchvision.ops.deform_conv2d`` on the same arguments."""
    from torchvision.ops import deform_conv2d

    padding = dilation * (weight.shape[-1] // 2)
    arguments = dict(padding=(padding, padding), dilation=(dilation, dilation), mask=mask)
    return compare(
        "op = torchvision.ops.deform_conv2d",
        conv(x, offset, weight, None, 1, padding, dilation, mask),
        deform_conv2d(x, offset, weight, **arguments),
    )


def read_points(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values ``[C, P]`` of ``image`` ``[1, C, H, W]`` at ``points`` ``[P, 2]``, read
    with ``sample_points`` (the points are the offsets of output pixel ``(0, 0)``)."""
    height, width = image.shape[-2:]
    offset = F.pad(points.reshape(1, -1, 1, 1), (0, width - 1, 0, height - 1))
    return sample_points(image, offset)[0, :, :, 0, 0]


def check_integer_reads(
    image: torch.Tensor,
    pixels: Sequence[tuple[int, int]],
    read: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = read_points,
) -> Check:
    """Bilinear reads at integer positions against indexing ``image[..., y, x]``."""
    values = read(image, torch.tensor(pixels, dtype=image.dtype))  # [C, P]
    indexed = torch.stack([image[0, :, y, x] for y, x in pixels], dim=1)
    return compare("bilinear read at integer positions = indexing", values, indexed)


def read_with_gradient(
    image: torch.Tensor, points: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear values ``[C, P]`` of ``image`` ``[1, C, H, W]`` at ``points`` ``[P, 2]`` and their
    gradient to the position ``[C, P, 2]`` (``∂x(p)/∂p_y``, ``∂x(p)/∂p_x``), by autograd
    through :func:`read_points`."""
    channels = image.shape[1]
    position = points.detach().clone().to(image.dtype).requires_grad_(True)
    values = read_points(image, position)
    gradients = torch.stack(
        [
            torch.autograd.grad(values[c].sum(), position, retain_graph=c < channels - 1)[0]
            for c in range(channels)
        ]
    )
    return values.detach(), gradients


def finite_difference_gradient(
    image: torch.Tensor, points: torch.Tensor, eps: float = 1e-3
) -> torch.Tensor:
    """Central differences ``(x(p + ε e) - x(p - ε e)) / 2ε`` of the reads: ``[C, P, 2]``."""
    columns = []
    for axis in (0, 1):
        step = torch.zeros(2, dtype=image.dtype)
        step[axis] = eps
        plus, _ = read_with_gradient(image, points + step)
        minus, _ = read_with_gradient(image, points - step)
        columns.append((plus - minus) / (2 * eps))
    return torch.stack(columns, dim=-1)


def check_position_gradient(
    image: torch.Tensor,
    points: torch.Tensor,
    eps: float = 1e-3,
    gradient: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = (
        read_with_gradient
    ),
) -> Check:
    """The gradient of the reads to the position (autograd) against finite differences.

    Bilinear interpolation is linear between pixel centres, so away from integer
    coordinates (the kinks, where the derivative jumps) central differences are exact up to
    rounding: ``points`` must stay more than ``eps`` away from integer ``y`` and ``x``. Hence a
    large step (``1e-3``): the rounding error of the difference quotient, ~1e-16 / ``eps``,
    stays far below the tolerance.
    """
    fractions = points - points.round()
    if bool((fractions.abs() <= eps).any()):
        raise ValueError("points must lie more than eps away from integer coordinates")
    _, analytic = gradient(image, points)
    return compare(
        "gradient to the position = finite differences",
        analytic,
        finite_difference_gradient(image, points, eps),
        tolerance=1e-7,
    )


def check_sigma_zero(module: GaussianDynamicConv, x: torch.Tensor) -> Check:
    """GDC with σ = 0 and no base: every tap at the centre, i.e. a 1×1 convolution with the
    kernel's weights summed over its taps."""
    height, width = x.shape[-2:]
    displacements = module.draw_displacements(height, width)
    collapsed = F.conv2d(x, module.weight.sum(dim=(2, 3), keepdim=True), module.bias)
    return compare(
        "GDC with σ = 0 = 1×1 conv of the summed kernel",
        module.convolve(x, displacements),
        collapsed,
    )


def check_shared_dilation(module: GaussianDynamicConv, x: torch.Tensor) -> Check:
    """GDC's shared mode with σ = 0 and an integer base ``b``: a dilated convolution of rate ``b``
    (GDPP Eq. 4)."""
    height, width = x.shape[-2:]
    rate = int(module.base)
    displacements = module.draw_displacements(height, width)
    padding = rate * (module.kernel_size // 2)
    dilated = F.conv2d(x, module.weight, module.bias, padding=padding, dilation=rate)
    return compare(
        f"GDC shared, σ = 0, base {rate} = conv with dilation {rate}",
        module.convolve(x, displacements),
        dilated,
    )


# --------------------------------------------------------------------------- analysis


def interpolation_weights(height: int, width: int, point: tuple[float, float]) -> torch.Tensor:
    """The bilinear kernel ``G(q, p)`` of DCNv2 Eq. 4 over all pixels ``q``: ``[H, W]``.

    Obtained without a formula: the read at ``p`` is linear in the image, so its gradient to
    the image (autograd through ``sample_points``) is the weight each pixel gets.
    """
    image = torch.zeros(1, 1, height, width, dtype=torch.float64, requires_grad=True)
    offset = torch.zeros(1, 2, height, width, dtype=torch.float64)
    offset[0, 0, 0, 0], offset[0, 1, 0, 0] = point
    sample_points(image, offset)[0, 0, 0, 0, 0].backward()
    assert image.grad is not None
    return image.grad[0, 0]


def line_profile(
    image: torch.Tensor, row: float, start: float, stop: float, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reads of channel 0 along ``y = row`` from ``x = start`` to ``stop``: ``(x, value,
    ∂value/∂x)``, each ``[count]``, the derivative by autograd."""
    xs = torch.linspace(start, stop, count, dtype=image.dtype)
    points = torch.stack((torch.full_like(xs, row), xs), dim=-1)
    values, gradients = read_with_gradient(image[:, :1], points)
    return xs.numpy(), values[0].numpy(), gradients[0, :, 1].numpy()


def receptive_field(
    layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, pixel: tuple[int, int]
) -> torch.Tensor:
    """``|∂ Σ_c y_c(p0) / ∂x|`` summed over input channels: ``[H, W]``, the pixels output ``p0``
    of ``layer(x)`` depends on (through the features, and through the offsets where they
    are predicted from ``x``)."""
    inputs = x.detach().clone().requires_grad_(True)
    y, x0 = pixel
    layer(inputs)[0, :, y, x0].sum().backward()
    assert inputs.grad is not None
    return inputs.grad.abs().sum(dim=1)[0]


def support_radius(field: torch.Tensor, pixel: tuple[int, int], relative: float = 1e-9) -> int:
    """The largest Chebyshev distance from ``pixel`` of a pixel where ``field`` exceeds
    ``relative`` times its maximum: the half-width of a receptive field."""
    ys, xs = torch.nonzero(field > relative * field.max(), as_tuple=True)
    return int(torch.maximum((ys - pixel[0]).abs(), (xs - pixel[1]).abs()).max())


def conv_stack(
    channels: int, layers: int, dilation: int, seed: int, dtype: torch.dtype = torch.float64
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``layers`` 3×3 convolutions with dilation ``dilation`` (zero offsets of the project's op),
    positive random weights, no non-linearity: for receptive fields."""
    generator = torch.Generator().manual_seed(seed)
    weights = [
        torch.rand(channels, channels, 3, 3, generator=generator, dtype=dtype) + 0.1
        for _ in range(layers)
    ]

    def apply(x: torch.Tensor) -> torch.Tensor:
        offset = x.new_zeros(x.shape[0], 18, x.shape[2], x.shape[3])
        for weight in weights:
            x = dynamic_sampling_conv2d(x, offset, weight, padding=dilation, dilation=dilation)
        return x

    return apply


def fit(
    module: nn.Module,
    inputs: Sequence[torch.Tensor],
    target: torch.Tensor,
    steps: int,
    lr: float = 0.05,
) -> list[float]:
    """Adam on the mean squared error of ``module(*inputs)`` to ``target``; the loss per step.

    Only the parameters with ``requires_grad`` learn. A few hundred steps on one photo: enough
    to show what a layer does with its sampling positions, not a training recipe.
    """
    optimiser = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = F.mse_loss(module(*inputs), target)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def shifted(photo: torch.Tensor, shift: tuple[float, float]) -> torch.Tensor:
    """The photo read at ``p + shift`` everywhere (bilinear, zero outside): a translated copy."""
    batch, _, height, width = photo.shape
    offset = photo.new_zeros(batch, 2, height, width)
    offset[:, 0], offset[:, 1] = shift
    return sample_points(photo, offset)[:, :, 0]


def identity_deformable(channels: int, dtype: torch.dtype = torch.float64) -> DeformableConv:
    """A 3×3 DCNv1 layer whose kernel copies each channel from its centre tap, kernel frozen:
    only the offset predictor can learn, so what it learns is where to read."""
    layer = DeformableConv(channels, channels, 3, modulated=False).to(dtype)
    with torch.no_grad():
        layer.weight.zero_()
        for c in range(channels):
            layer.weight[c, c, 1, 1] = 1.0
    layer.weight.requires_grad_(False)
    return layer


# --------------------------------------------------------------------------- figures


def show_photo(ax: Axes, photo: torch.Tensor, title: str | None = None) -> None:
    """Draw ``[1, 3, H, W]`` or ``[1, 1, H, W]`` in ``[0, 1]`` with pixel centres at integers."""
    image = photo[0].detach().permute(1, 2, 0).clamp(0, 1).numpy()
    if image.shape[2] == 1:
        ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_taps(
    ax: Axes,
    photo: torch.Tensor,
    taps: torch.Tensor,
    centre: tuple[int, int],
    half_window: float | None = None,
    sizes: torch.Tensor | None = None,
    title: str | None = None,
    colour: str | None = None,
) -> None:
    """The photo with the read positions ``taps`` ``[K, 2]`` of output pixel ``centre``.

    Each tap is coloured by its index (tap ``i*k + j``), or all in ``colour``; ``sizes``
    ``[K]`` (in ``[0, 1]``) scales the markers (a modulation mask or an affinity).
    ``half_window`` zooms on ``centre``; the regular 3×3 grid around it is drawn as faint
    crosses for reference.
    """
    show_photo(ax, photo, title)
    points = taps.detach().reshape(-1, 2).numpy()
    area = 40.0 if sizes is None else 10.0 + 150.0 * sizes.detach().reshape(-1).numpy()
    colours = colour or plt.get_cmap("viridis")(np.linspace(0, 1, len(points)))
    y0, x0 = centre
    grid = np.array([(y0 + dy, x0 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    ax.scatter(grid[:, 1], grid[:, 0], marker="+", s=30, color="white", alpha=0.7, lw=0.8)
    ax.scatter(
        points[:, 1], points[:, 0], s=area, c=colours, edgecolors="black", linewidths=0.5, zorder=3
    )
    ax.scatter([x0], [y0], marker="*", s=90, color="red", edgecolors="white", zorder=4)
    if half_window is not None:
        ax.set_xlim(x0 - half_window, x0 + half_window)
        ax.set_ylim(y0 + half_window, y0 - half_window)


def window_for(taps: Sequence[torch.Tensor], centres: Sequence[tuple[int, int]]) -> float:
    """A half window that holds every tap of every panel around its centre, plus a margin."""
    reach = 1.0
    for positions in taps:
        for (y0, x0), points in zip(centres, positions, strict=True):
            offsets = points.detach() - torch.tensor([y0, x0], dtype=points.dtype)
            reach = max(reach, float(offsets.abs().max()))
    return math.ceil(reach) + 1.5


def sampling_figure(
    photo: torch.Tensor,
    pixels: Sequence[tuple[int, int]],
    panels: Mapping[str, torch.Tensor],
    sizes: Mapping[str, torch.Tensor] | None = None,
    half_window: float | None = None,
) -> Figure:
    """Rows: ``pixels``; first column the whole photo with the zoom window, then one column per
    entry of ``panels`` (title → taps ``[len(pixels), K, 2]``), zoomed alike on each pixel."""
    half = half_window or window_for(list(panels.values()), pixels)
    rows, cols = len(pixels), len(panels) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for row, (y0, x0) in enumerate(pixels):
        overview = axes[row, 0]
        show_photo(overview, photo, f"pixel (y={y0}, x={x0})")
        overview.add_patch(
            Rectangle((x0 - half, y0 - half), 2 * half, 2 * half, fill=False, color="red", lw=1.2)
        )
        overview.scatter([x0], [y0], marker="*", s=40, color="red")
        for col, (title, taps) in enumerate(panels.items(), start=1):
            size = None if sizes is None or title not in sizes else sizes[title][row]
            plot_taps(
                axes[row, col], photo, taps[row], (y0, x0), half, size, title if row == 0 else None
            )
    fig.tight_layout()
    return fig


def field_panel(
    ax: Axes, photo: torch.Tensor, field: torch.Tensor, pixel: tuple[int, int], half: float
) -> None:
    """A receptive field ``[H, W]`` over the grey photo, zoomed on ``pixel``."""
    show_photo(ax, luminance(photo) if photo.shape[1] == 3 else photo)
    shown = (field / field.max()).detach().numpy()
    ax.imshow(
        np.ma.masked_less_equal(shown, 1e-9),
        cmap="magma",
        alpha=0.8,
        interpolation="nearest",
        vmin=0,
        vmax=1,
    )
    ax.scatter([pixel[1]], [pixel[0]], marker="*", s=60, color="cyan", zorder=4)
    ax.set_xlim(pixel[1] - half, pixel[1] + half)
    ax.set_ylim(pixel[0] + half, pixel[0] - half)


def interpolation_figure(photo: torch.Tensor, point: tuple[float, float]) -> Figure:
    """Left: the photo near ``point`` with its four neighbours; right: the bilinear weight each
    pixel gets (:func:`interpolation_weights`, from autograd), printed on the pixels."""
    height, width = photo.shape[-2:]
    weights = interpolation_weights(height, width, point)
    y, x = point
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    show_photo(axes[0], photo, f"read at p = ({y:g}, {x:g})")
    axes[0].scatter([x], [y], marker="x", s=80, color="red", zorder=4)
    axes[1].imshow(weights.numpy(), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title("G(q, p): the weight of each pixel q", fontsize=9)
    axes[1].scatter([x], [y], marker="x", s=80, color="red", zorder=4)
    for qy, qx in torch.nonzero(weights > 0).tolist():
        axes[1].text(qx, qy, f"{float(weights[qy, qx]):.2f}", ha="center", va="center")
    for ax in axes:
        ax.set_xlim(math.floor(x) - 2.5, math.floor(x) + 3.5)
        ax.set_ylim(math.floor(y) + 3.5, math.floor(y) - 2.5)
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    fig.tight_layout()
    return fig


def draws_figure(
    photo: torch.Tensor,
    pixel: tuple[int, int],
    draws: Mapping[str, torch.Tensor],
    shown: int,
) -> Figure:
    """Rows: the variants in ``draws`` (title → taps ``[draws, K, 2]`` at ``pixel``); columns:
    the first ``shown`` draws, and last all draws overlaid."""
    half = window_for([d.reshape(1, -1, 2) for d in draws.values()], [pixel])
    rows, cols = len(draws), shown + 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows), squeeze=False)
    for row, (title, taps) in enumerate(draws.items()):
        for col in range(shown):
            plot_taps(axes[row, col], photo, taps[col], pixel, half, title=f"draw {col + 1}")
        plot_taps(
            axes[row, shown],
            photo,
            taps.reshape(-1, 2),
            pixel,
            half,
            title=f"all {len(taps)} draws",
            colour="tab:orange",
        )
        axes[row, 0].set_ylabel(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_draws_animation(
    photo: torch.Tensor, pixel: tuple[int, int], taps: torch.Tensor, path: Path, fps: int = 4
) -> Path:
    """A GIF of the GDC draws ``[draws, K, 2]`` at ``pixel``, one frame a draw (small: 60 dpi)."""
    half = window_for([taps.reshape(1, -1, 2)], [pixel])
    fig, ax = plt.subplots(figsize=(3, 3))
    points = taps.detach().numpy()

    def frame(index: int) -> None:
        ax.clear()
        plot_taps(ax, photo, taps[index], pixel, half, title=f"draw {index + 1} of {len(points)}")

    animation = FuncAnimation(fig, frame, frames=len(points))
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(path, writer=PillowWriter(fps=fps), dpi=60)
    plt.close(fig)
    return path
