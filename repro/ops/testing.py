"""Seeded random arguments for the sampling ops, shared by the tests and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ConvCase:
    """One configuration of ``dynamic_sampling_conv2d``."""

    batch: int = 2
    in_channels: int = 4
    out_channels: int = 6
    height: int = 7
    width: int = 8
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    offset_groups: int = 1
    with_mask: bool = False
    with_bias: bool = True

    def output_size(self) -> tuple[int, int]:
        """Spatial size of the convolution's output."""
        sizes = []
        for axis in (0, 1):
            size = (self.height, self.width)[axis]
            extent = self.dilation[axis] * (self.kernel[axis] - 1) + 1
            sizes.append((size + 2 * self.padding[axis] - extent) // self.stride[axis] + 1)
        return sizes[0], sizes[1]


def make_conv_inputs(
    case: ConvCase,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    offset_scale: float = 1.5,
    requires_grad: bool = False,
) -> dict[str, torch.Tensor | None]:
    """Random ``input, offset, weight, bias, mask`` for ``case`` (keyword names of the op)."""
    generator = torch.Generator().manual_seed(seed)
    out_h, out_w = case.output_size()
    taps = case.kernel[0] * case.kernel[1]

    def draw(*shape: int, scale: float = 1.0, uniform: bool = False) -> torch.Tensor:
        sample = torch.rand if uniform else torch.randn
        values = sample(*shape, generator=generator, dtype=torch.float64) * scale
        return values.to(dtype=dtype, device=device).requires_grad_(requires_grad)

    return {
        "input": draw(case.batch, case.in_channels, case.height, case.width),
        "offset": draw(case.batch, 2 * case.offset_groups * taps, out_h, out_w, scale=offset_scale),
        "weight": draw(case.out_channels, case.in_channels // case.groups, *case.kernel, scale=0.3),
        "bias": draw(case.out_channels) if case.with_bias else None,
        "mask": (
            draw(case.batch, case.offset_groups * taps, out_h, out_w, uniform=True)
            if case.with_mask
            else None
        ),
    }


def make_point_inputs(
    batch: int = 2,
    channels: int = 4,
    height: int = 6,
    width: int = 7,
    points: int = 3,
    offset_groups: int = 1,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    offset_scale: float = 1.5,
    requires_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ``input [B, C, H, W]`` and ``offset [B, 2*P*G, H, W]`` for ``sample_points``."""
    generator = torch.Generator().manual_seed(seed)
    input = torch.randn(batch, channels, height, width, generator=generator, dtype=torch.float64)
    offset = torch.randn(
        batch, 2 * points * offset_groups, height, width, generator=generator, dtype=torch.float64
    )
    return (
        input.to(dtype=dtype, device=device).requires_grad_(requires_grad),
        (offset * offset_scale).to(dtype=dtype, device=device).requires_grad_(requires_grad),
    )
