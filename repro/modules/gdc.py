"""Gaussian dynamic convolution (GDC), its uniform-random control, and GDPP.

GDC (Sun et al., TCSVT 2021, Sec. III, Fig. 2, Eq. 1-4; ``results/reported/PAPERS.md``):
the centre tap of a k x k kernel is fixed, every other tap ``d`` is read at
``p0 + d * r`` with ``r`` drawn from a half-Gaussian ``|N(0, sigma^2)|`` (see
:mod:`repro.modules.gaussian_offsets`, the single source of these draws). The
convolution weights are learned; the offsets are not.

Choices the paper leaves open, each a parameter of :class:`GaussianDynamicConv`:

* ``offset_unit``: ``"shortest_side"`` multiplies ``r`` by the feature map's shortest side
  ``L`` (single-image GDC, Sec. V-A: "adaptive Gaussian dynamic offset"); ``"pixels"``
  uses pixel units (GDPP, Sec. V-B1: base 9, sigma 2).
* ``mode``: ``"per_tap"`` (Eq. 3 and the authors' code: independent y and x magnitudes for
  every tap) or ``"shared"`` (Eq. 4, GDPP: one magnitude per position added to ``base``).
* Draws are made per output position and shared across the batch and channels (as in
  the authors' code), anew on every training forward pass. ``batch_draws="independent"``
  gives every batch element its own draw instead: a batch of ``T`` copies of one input is
  then ``T`` stochastic passes in one call (the single-image procedure averages its ``T``
  test-time predictions this way, GDC Sec. V-A).
* ``eval_draws``: at evaluation, ``"mean"`` averages the layer's output over
  ``num_eval_draws`` draws (the paper averages 50 at test time; averaging here, at the
  layer, is this project's placement: the layer is linear in the sampled features, so
  it equals one convolution of the mean sampled feature), ``"fixed"`` uses one draw, and
  ``"random"`` re-draws like training (the authors' code). ``"mean"`` and ``"fixed"`` use
  a generator seeded with ``eval_seed``, so evaluation is deterministic.
* ``sampling``: ``"bilinear"`` (default; gives gradients to nothing but the features,
  since offsets are not learned) or ``"truncate"`` (the authors' code: clamp to the map,
  then take the integer pixel).
* ``distribution``: ``"half_gaussian"`` (GDC) or ``"uniform"`` (the random dynamic
  convolution of Table VII, ``r ~ U(0, uniform_high)``, default ``3 * sigma``: the paper
  gives no range).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from repro.modules.aspp import PyramidPooling
from repro.modules.conv_blocks import (
    ConvBNReLU,
    SeparableConvBNReLU,
    check_choice,
    check_positive_int,
)
from repro.modules.gaussian_offsets import (
    OFFSET_MODES,
    displacements_to_deform_offsets,
    gdc_tap_displacements,
    truncate_to_map,
    uniform_tap_displacements,
)
from repro.ops import dynamic_sampling_conv2d

OFFSET_UNITS = ("shortest_side", "pixels")
EVAL_DRAWS = ("mean", "fixed", "random")
SAMPLINGS = ("bilinear", "truncate")
BATCH_DRAWS = ("shared", "independent")
DISTRIBUTIONS = ("half_gaussian", "uniform")


class GaussianDynamicConv(nn.Module):
    """GDC layer (GDC Sec. III, Eq. 3; shared-offset variant Eq. 4). See module docstring.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel size k (3 in the paper).
        sigma: half-Gaussian standard deviation in units of ``offset_unit`` (0.2 in
            single-image GDC, Table I/IV; 2 pixels in GDPP).
        offset_unit: ``"shortest_side"`` or ``"pixels"``.
        mode: ``"per_tap"`` or ``"shared"``.
        base: constant base offset of the shared mode (9 in GDPP), in ``offset_unit``.
        sampling: ``"bilinear"`` or ``"truncate"``.
        eval_draws: ``"mean"``, ``"fixed"`` or ``"random"``.
        num_eval_draws: T of ``eval_draws="mean"`` (50 in the paper).
        eval_seed: seed of the evaluation draws.
        distribution: ``"half_gaussian"`` or ``"uniform"``.
        uniform_high: upper bound of the uniform magnitude (default ``3 * sigma``).
        depthwise: depthwise kernel (``groups = in_channels``, requires
            ``out_channels == in_channels``), for GDPP's separable mode.
        bias: learn a bias.
        batch_draws: ``"shared"`` (one draw for the whole batch, the authors' code) or
            ``"independent"`` (one draw per batch element) for the re-drawn passes
            (training, ``eval_draws="random"``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        sigma: float = 0.2,
        offset_unit: str = "shortest_side",
        mode: str = "per_tap",
        base: float = 0.0,
        sampling: str = "bilinear",
        eval_draws: str = "mean",
        num_eval_draws: int = 50,
        eval_seed: int = 0,
        distribution: str = "half_gaussian",
        uniform_high: float | None = None,
        depthwise: bool = False,
        bias: bool = True,
        batch_draws: str = "shared",
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("num_eval_draws", num_eval_draws)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        if depthwise and out_channels != in_channels:
            raise ValueError(
                f"depthwise=True needs out_channels == in_channels, got {out_channels} "
                f"and {in_channels}"
            )
        self.offset_unit = check_choice("offset_unit", offset_unit, OFFSET_UNITS)
        self.mode = check_choice("mode", mode, OFFSET_MODES)
        self.sampling = check_choice("sampling", sampling, SAMPLINGS)
        self.eval_draws = check_choice("eval_draws", eval_draws, EVAL_DRAWS)
        self.distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
        self.batch_draws = check_choice("batch_draws", batch_draws, BATCH_DRAWS)
        if uniform_high is not None and uniform_high < 0:
            raise ValueError(f"uniform_high must be >= 0, got {uniform_high}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.sigma = float(sigma)
        self.base = float(base)
        self.num_eval_draws = num_eval_draws
        self.eval_seed = eval_seed
        self.uniform_high = 3.0 * self.sigma if uniform_high is None else float(uniform_high)
        self.depthwise = depthwise
        in_per_group = 1 if depthwise else in_channels
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_per_group, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def draw_displacements(
        self,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
        batch: int | None = None,
    ) -> torch.Tensor:
        """One draw of tap displacements ``[H, W, k*k, 2]`` in pixels (centre tap 0);
        ``[batch, H, W, k*k, 2]`` (one independent draw per element) when ``batch`` is given."""
        unit = float(min(height, width)) if self.offset_unit == "shortest_side" else 1.0
        leading = (height, width) if batch is None else (batch, height, width)
        common = dict(
            kernel_size=self.kernel_size,
            scale=unit,
            mode=self.mode,
            base=self.base * unit,
            batch_shape=leading,
            generator=generator,
            dtype=self.weight.dtype,
            device=self.weight.device,
        )
        if self.distribution == "half_gaussian":
            disp = gdc_tap_displacements(sigma=self.sigma, **common)
        else:
            disp = uniform_tap_displacements(high=self.uniform_high, **common)
        if self.sampling == "truncate":
            disp = truncate_to_map(disp, height, width)
        return disp

    def convolve(self, x: torch.Tensor, displacements: torch.Tensor) -> torch.Tensor:
        """Dynamic sampling convolution of ``x`` with taps at ``displacements``: ``[H, W, k*k, 2]``
        shared by the batch, or ``[B, H, W, k*k, 2]`` one per batch element."""
        offsets = displacements_to_deform_offsets(displacements, self.kernel_size)
        if offsets.ndim == 3:
            offsets = offsets.permute(2, 0, 1).unsqueeze(0).expand(x.shape[0], -1, -1, -1)
        else:
            offsets = offsets.permute(0, 3, 1, 2)
        return dynamic_sampling_conv2d(
            x, offsets.contiguous(), self.weight, self.bias, padding=self.kernel_size // 2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must be [B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if self.training or self.eval_draws == "random":
            batch = x.shape[0] if self.batch_draws == "independent" else None
            return self.convolve(x, self.draw_displacements(height, width, batch=batch))
        generator = torch.Generator(device=x.device).manual_seed(self.eval_seed)
        if self.eval_draws == "fixed":
            return self.convolve(x, self.draw_displacements(height, width, generator))
        total = None
        for _ in range(self.num_eval_draws):
            out = self.convolve(x, self.draw_displacements(height, width, generator))
            total = out if total is None else total + out
        return total / self.num_eval_draws

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"sigma={self.sigma}, unit={self.offset_unit}, mode={self.mode}, base={self.base}, "
            f"distribution={self.distribution}, sampling={self.sampling}, "
            f"eval_draws={self.eval_draws}, batch_draws={self.batch_draws}"
        )


class SeparableGDCBranch(nn.Sequential):
    """GDPP's middle branch: depthwise shared-offset GDC + BN + ReLU + pointwise Conv-BN-ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, base: float, sigma: float, **gdc_options
    ) -> None:
        super().__init__(
            GaussianDynamicConv(
                in_channels,
                in_channels,
                sigma=sigma,
                offset_unit="pixels",
                mode="shared",
                base=base,
                depthwise=True,
                bias=False,
                **gdc_options,
            ),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            ConvBNReLU(in_channels, out_channels, kernel_size=1),
        )


class GaussianDynamicPyramidPooling(PyramidPooling):
    """GDPP (GDC Fig. 5, Sec. IV-B and V-B1).

    Branches, all depthwise-separable: dilation ``small_rate`` (1), one shared-offset GDC
    branch per entry of ``middle_bases`` (base 9, sigma 2 pixels in the text), dilation
    ``large_rate`` (18); optional image pooling (the DeepLabv3 tail; the figure does not
    show it, default on so GDPP, S-ASPP and ASPP differ only in their middle branches);
    concat + 1x1 projection. ``gdc_options`` go to every :class:`GaussianDynamicConv`
    (e.g. ``eval_draws``, ``sampling``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        small_rate: int = 1,
        middle_bases: Sequence[float] = (9.0,),
        large_rate: int = 18,
        sigma: float = 2.0,
        image_pooling: bool = True,
        dropout: float = 0.1,
        **gdc_options,
    ) -> None:
        if len(middle_bases) == 0:
            raise ValueError("middle_bases must hold at least one base offset, got none")
        branches: list[nn.Module] = [
            SeparableConvBNReLU(in_channels, out_channels, 3, dilation=small_rate)
        ]
        branches += [
            SeparableGDCBranch(in_channels, out_channels, base=b, sigma=sigma, **gdc_options)
            for b in middle_bases
        ]
        branches.append(SeparableConvBNReLU(in_channels, out_channels, 3, dilation=large_rate))
        super().__init__(in_channels, out_channels, branches, image_pooling, dropout)
