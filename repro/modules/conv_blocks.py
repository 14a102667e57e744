"""Small convolution blocks shared by every module and model.

``ConvBNReLU`` is the Conv-BN-ReLU unit of DeepLab/DSNet heads; ``SeparableConvBNReLU`` is
the depthwise-separable form (MobileNet; GDC Section V-B1: "we modify all the
convolution layers in the GDPP module to the separable mode").
"""

from __future__ import annotations

from torch import nn


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive int, else raise a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ``ValueError`` naming it."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value  # type: ignore[return-value]


class ConvBNReLU(nn.Sequential):
    """``kernel_size`` convolution (no bias) + BatchNorm + ReLU, padded to keep the size."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        stride: int = 1,
        relu: bool = True,
    ) -> None:
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        padding = dilation * (kernel_size // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise ``kernel_size`` convolution + BN + ReLU, then pointwise 1x1 + BN + ReLU.

    The MobileNet "separable mode" of GDC Section V-B1 (S-ASPP and GDPP branches).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1
    ) -> None:
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        padding = dilation * (kernel_size // 2)
        super().__init__(
            nn.Conv2d(
                in_channels,
                in_channels,
                kernel_size,
                padding=padding,
                dilation=dilation,
                groups=in_channels,
                bias=False,
            ),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            ConvBNReLU(in_channels, out_channels, kernel_size=1),
        )
