"""Dynamic Dual Sampling Module (DDSM, ICIP 2021, arXiv 2105.11657) and its full non-local baseline.

Built from the module figure of the authors' repository as described in
``results/reported/PAPERS.md`` (the paper's own text is not available). A low-level map
``x_l`` [B, C_l, H, W] is refined with a coarser high-level map ``x_h`` [B, C_h, h, w]:

(a) spatial-wise (``SpatialDynamicAffinity``): position embeddings are added, ``x_h`` is
    upsampled; query ``theta(x_l)``; keys ``phi(concat[x_l, up(x_h)])`` and values
    ``g(up(x_h))`` are read at N dynamically sampled points per pixel (``sample_points``,
    bilinear); softmax over N of query.key; weighted sum of values; 1x1 conv.
(b) channel-wise (``ChannelDynamicAffinity``): both maps are average-pooled to a x a; the
    query (c descriptors of length a^2) comes from pooled ``x_l``; key descriptors from
    ``concat`` of both pooled maps, laid on a sqrt(c) x sqrt(c) channel grid, where N
    channels are sampled per channel; softmax over N; the values are ``x_h``'s channels
    (projected to c, at ``x_h``'s own resolution h x w) sampled at the same N channels;
    the result is upsampled to H x W.

Choices the figure leaves open (parameters):

* ``anchors``: where the N points sit before the predicted offsets move them.
  ``"global"`` spreads them evenly over the whole map (a g_h x g_w grid with
  g_h * g_w = N and an aspect closest to the map's): with N = H*W and zero offsets the
  module equals the full non-local one, which the tests check. ``"local"`` puts them on a
  sqrt(N) x sqrt(N) window (dilation ``local_dilation``) around the pixel. The offset
  predictor (a 3x3 conv of the key input) starts at zero.
* Position embeddings are learnable maps of ``embedding_size`` resized to the input.
* No 1/sqrt(d) scaling of the dot products (as in the embedded-Gaussian non-local block).
* Fusion (``DynamicDualSampling``): concat[x_l, x_S, x_C] -> 1x1 Conv-BN-ReLU.
* ``branches`` (the module's own ablation, which the abstract's "dual" implies but the
  figure does not tabulate): ``"both"`` (DDSM), ``"spatial"`` or ``"channel"`` alone, or
  ``"none"``: the refinement path with plain fusion (x_l -> 1x1 Conv-BN-ReLU), the
  baseline without the module. The default builds the same parameters in the same order
  as before the option existed, so seeded networks are bit-identical.

``SpatialNonLocalAffinity`` / ``ChannelNonLocalAffinity`` are the all-pairs baselines with
the same parameters (minus the offset predictor) computed with dense matrix products:
the efficiency comparison of the abstract.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from repro.modules.conv_blocks import ConvBNReLU, check_choice, check_positive_int
from repro.modules.resize import resize_to
from repro.ops import sample_points

ANCHORS = ("global", "local")
AFFINITIES = ("dynamic", "non_local")
BRANCHES = ("both", "spatial", "channel", "none")


def grid_shape_for(num_points: int, height: int, width: int) -> tuple[int, int]:
    """Factor ``num_points`` as ``g_h * g_w`` with ``g_h / g_w`` closest to ``height / width``."""
    best: tuple[float, int, int] | None = None
    for g_h in range(1, num_points + 1):
        if num_points % g_h:
            continue
        g_w = num_points // g_h
        cost = abs(math.log(g_h / g_w) - math.log(height / width))
        if best is None or cost < best[0]:
            best = (cost, g_h, g_w)
    assert best is not None
    return best[1], best[2]


def anchor_offsets(
    num_points: int,
    height: int,
    width: int,
    anchors: str,
    local_dilation: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Offsets ``[1, 2N, H, W]`` from every pixel to the N anchor points (layout of ``sample_points``)."""
    check_choice("anchors", anchors, ANCHORS)
    ys = torch.arange(height, dtype=dtype, device=device).view(1, height, 1)
    xs = torch.arange(width, dtype=dtype, device=device).view(1, 1, width)
    if anchors == "global":
        g_h, g_w = grid_shape_for(num_points, height, width)
        ay = (torch.arange(g_h, dtype=dtype, device=device) + 0.5) * height / g_h - 0.5
        ax = (torch.arange(g_w, dtype=dtype, device=device) + 0.5) * width / g_w - 0.5
        ay, ax = torch.meshgrid(ay, ax, indexing="ij")
        dy = ay.reshape(-1, 1, 1) - ys
        dx = ax.reshape(-1, 1, 1) - xs
    else:
        side = math.isqrt(num_points)
        if side * side != num_points:
            raise ValueError(f"anchors='local' needs a square num_samples, got {num_points}")
        steps = (torch.arange(side, dtype=dtype, device=device) - (side - 1) / 2) * local_dilation
        wy, wx = torch.meshgrid(steps, steps, indexing="ij")
        dy = wy.reshape(-1, 1, 1).expand(-1, height, width)
        dx = wx.reshape(-1, 1, 1).expand(-1, height, width)
    offsets = torch.stack([dy.expand(-1, height, width), dx.expand(-1, height, width)], dim=1)
    return offsets.reshape(1, 2 * num_points, height, width)


class _SpatialProjections(nn.Module):
    """Position embeddings and the theta / phi / g / output projections of branch (a)."""

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        inner_channels: int,
        out_channels: int,
        position_embedding: bool,
        embedding_size: tuple[int, int],
    ) -> None:
        super().__init__()
        for name, value in (
            ("low_channels", low_channels),
            ("high_channels", high_channels),
            ("inner_channels", inner_channels),
            ("out_channels", out_channels),
        ):
            check_positive_int(name, value)
        self.low_channels = low_channels
        self.high_channels = high_channels
        if position_embedding:
            self.low_embedding = nn.Parameter(torch.zeros(1, low_channels, *embedding_size))
            self.high_embedding = nn.Parameter(torch.zeros(1, high_channels, *embedding_size))
            nn.init.trunc_normal_(self.low_embedding, std=0.02)
            nn.init.trunc_normal_(self.high_embedding, std=0.02)
        else:
            self.low_embedding = None
            self.high_embedding = None
        self.query = nn.Conv2d(low_channels, inner_channels, 1)
        self.key = nn.Conv2d(low_channels + high_channels, inner_channels, 1)
        self.value = nn.Conv2d(high_channels, inner_channels, 1)
        self.out = ConvBNReLU(inner_channels, out_channels, kernel_size=1)

    def embedded(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_l + e_pl, up(x_h + e_ph))`` (step 1 of the figure)."""
        _check_pair(low, high, self.low_channels, self.high_channels)
        if self.low_embedding is not None:
            low = low + resize_to(self.low_embedding, low)
            high = high + resize_to(self.high_embedding, high)
        return low, resize_to(high, low)


class SpatialDynamicAffinity(_SpatialProjections):
    """DDSM branch (a): every pixel attends to N sampled positions (see module docstring)."""

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        inner_channels: int = 64,
        out_channels: int | None = None,
        num_samples: int = 9,
        anchors: str = "global",
        local_dilation: int = 1,
        position_embedding: bool = True,
        embedding_size: tuple[int, int] = (16, 16),
    ) -> None:
        super().__init__(
            low_channels,
            high_channels,
            inner_channels,
            out_channels or low_channels,
            position_embedding,
            embedding_size,
        )
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.anchors = check_choice("anchors", anchors, ANCHORS)
        self.local_dilation = check_positive_int("local_dilation", local_dilation)
        if anchors == "local" and math.isqrt(num_samples) ** 2 != num_samples:
            raise ValueError(f"anchors='local' needs a square num_samples, got {num_samples}")
        self.offset_predictor = nn.Conv2d(
            low_channels + high_channels, 2 * num_samples, 3, padding=1
        )
        nn.init.zeros_(self.offset_predictor.weight)
        nn.init.zeros_(self.offset_predictor.bias)

    def sampling_offsets(self, key_input: torch.Tensor) -> torch.Tensor:
        """Offsets ``[B, 2N, H, W]``: anchors + predicted displacement."""
        height, width = key_input.shape[-2:]
        base = anchor_offsets(
            self.num_samples,
            height,
            width,
            self.anchors,
            self.local_dilation,
            key_input.dtype,
            key_input.device,
        )
        return base + self.offset_predictor(key_input)

    def affinity(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax affinities ``[B, N, H, W]`` (sum to 1 over N) and sampled values ``[B, C', N, H, W]``."""
        low, high_up = self.embedded(low, high)
        key_input = torch.cat([low, high_up], dim=1)
        offsets = self.sampling_offsets(key_input)
        query = self.query(low)
        keys = sample_points(self.key(key_input), offsets)
        values = sample_points(self.value(high_up), offsets)
        weights = torch.softmax((query.unsqueeze(2) * keys).sum(dim=1), dim=1)
        return weights, values

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        weights, values = self.affinity(low, high)
        return self.out((weights.unsqueeze(1) * values).sum(dim=2))


class SpatialNonLocalAffinity(_SpatialProjections):
    """All-pairs counterpart of branch (a): every pixel attends to all H*W positions."""

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        inner_channels: int = 64,
        out_channels: int | None = None,
        position_embedding: bool = True,
        embedding_size: tuple[int, int] = (16, 16),
    ) -> None:
        super().__init__(
            low_channels,
            high_channels,
            inner_channels,
            out_channels or low_channels,
            position_embedding,
            embedding_size,
        )

    def attention(
        self, low: torch.Tensor, high: torch.Tensor, pixels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax affinities ``[B, HW, HW]`` (row: a pixel, over all positions) and the values
        ``[B, HW, C']`` they weight; with ``pixels`` (flat indices ``y * W + x``) only their
        rows, ``[B, len(pixels), HW]`` (a figure of one pixel needs no ``HW x HW`` matrix)."""
        low, high_up = self.embedded(low, high)
        query = self.query(low).flatten(2).transpose(1, 2)  # [B, HW, C']
        if pixels is not None:
            query = query[:, pixels]
        keys = self.key(torch.cat([low, high_up], dim=1)).flatten(2)  # [B, C', HW]
        values = self.value(high_up).flatten(2).transpose(1, 2)  # [B, HW, C']
        return torch.softmax(query @ keys, dim=-1), values

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        b, _, h, w = low.shape
        weights, values = self.attention(low, high)
        return self.out((weights @ values).transpose(1, 2).reshape(b, -1, h, w))


class _ChannelProjections(nn.Module):
    """Pooling and the query / key / value / output projections of branch (b)."""

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        channels: int,
        out_channels: int,
        pooled_size: int,
    ) -> None:
        super().__init__()
        for name, value in (
            ("low_channels", low_channels),
            ("high_channels", high_channels),
            ("out_channels", out_channels),
            ("pooled_size", pooled_size),
        ):
            check_positive_int(name, value)
        side = math.isqrt(check_positive_int("channels", channels))
        if side * side != channels:
            raise ValueError(
                f"channels must be a perfect square (the channels lie on a sqrt(c) x sqrt(c) "
                f"grid), got {channels}"
            )
        self.low_channels = low_channels
        self.high_channels = high_channels
        self.channels = channels
        self.grid_side = side
        self.pooled_size = pooled_size
        self.query = nn.Conv2d(low_channels, channels, 1)
        self.key = nn.Conv2d(low_channels + high_channels, channels, 1)
        self.value = nn.Conv2d(high_channels, channels, 1)
        self.out = ConvBNReLU(channels, out_channels, kernel_size=1)

    def descriptors(self, low: torch.Tensor, high: torch.Tensor):
        """Query ``[B, c, a^2]``, key ``[B, c, a^2]`` and value ``[B, c, h, w]`` maps."""
        _check_pair(low, high, self.low_channels, self.high_channels)
        pooled_low = F.adaptive_avg_pool2d(low, self.pooled_size)
        pooled_high = F.adaptive_avg_pool2d(high, self.pooled_size)
        query = self.query(pooled_low).flatten(2)
        key = self.key(torch.cat([pooled_low, pooled_high], dim=1)).flatten(2)
        return query, key, self.value(high)


class ChannelDynamicAffinity(_ChannelProjections):
    """DDSM branch (b): every channel attends to N channels sampled on the channel grid."""

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        channels: int = 64,
        out_channels: int | None = None,
        num_samples: int = 9,
        pooled_size: int = 4,
        anchors: str = "global",
    ) -> None:
        super().__init__(
            low_channels, high_channels, channels, out_channels or low_channels, pooled_size
        )
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.anchors = check_choice("anchors", anchors, ANCHORS)
        self.offset_predictor = nn.Conv2d(pooled_size * pooled_size, 2 * num_samples, 3, padding=1)
        nn.init.zeros_(self.offset_predictor.weight)
        nn.init.zeros_(self.offset_predictor.bias)

    def _on_grid(self, descriptors: torch.Tensor) -> torch.Tensor:
        """``[B, c, D]`` -> ``[B, D, s, s]``: channel ``i*s + j`` at grid cell ``(i, j)``."""
        b, _, d = descriptors.shape
        return descriptors.transpose(1, 2).reshape(b, d, self.grid_side, self.grid_side)

    def affinity(self, low: torch.Tensor, high: torch.Tensor):
        """Softmax affinities ``[B, c, N]`` and sampled values ``[B, c, N, h*w]``."""
        query, key, value = self.descriptors(low, high)
        key_grid = self._on_grid(key)  # [B, a^2, s, s]
        base = anchor_offsets(
            self.num_samples,
            self.grid_side,
            self.grid_side,
            self.anchors,
            dtype=key.dtype,
            device=key.device,
        )
        offsets = base + self.offset_predictor(key_grid)
        keys = sample_points(key_grid, offsets)  # [B, a^2, N, s, s]
        logits = (self._on_grid(query).unsqueeze(2) * keys).sum(dim=1)  # [B, N, s, s]
        weights = torch.softmax(logits.flatten(2).transpose(1, 2), dim=-1)  # [B, c, N]
        values = sample_points(self._on_grid(value.flatten(2)), offsets)  # [B, hw, N, s, s]
        values = values.flatten(3).permute(0, 3, 2, 1)  # [B, c, N, hw]
        return weights, values

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        weights, values = self.affinity(low, high)
        out = (weights.unsqueeze(-1) * values).sum(dim=2)  # [B, c, hw]
        out = out.reshape(high.shape[0], self.channels, *high.shape[-2:])
        return self.out(resize_to(out, low))


class ChannelNonLocalAffinity(_ChannelProjections):
    """All-pairs counterpart of branch (b): every channel attends to all c channels."""

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        channels: int = 64,
        out_channels: int | None = None,
        pooled_size: int = 4,
    ) -> None:
        super().__init__(
            low_channels, high_channels, channels, out_channels or low_channels, pooled_size
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        query, key, value = self.descriptors(low, high)
        weights = torch.softmax(query @ key.transpose(1, 2), dim=-1)  # [B, c, c]
        out = (weights @ value.flatten(2)).reshape(value.shape)
        return self.out(resize_to(out, low))


class DynamicDualSampling(nn.Module):
    """DDSM: spatial (a) and channel (b) branches fused into the low-level path.

    ``affinity="dynamic"`` is DDSM; ``"non_local"`` swaps both branches for their all-pairs
    counterparts (the efficiency baseline). Output: ``concat[x_l, x_S, x_C]`` -> 1x1
    Conv-BN-ReLU with ``out_channels`` channels, at ``x_l``'s resolution. ``branches``
    keeps both branches, one of them (its output alone joins ``x_l``) or none (plain
    fusion of ``x_l``: the baseline without the module).
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        out_channels: int,
        inner_channels: int = 64,
        affinity: str = "dynamic",
        spatial_samples: int = 9,
        channel_samples: int = 9,
        pooled_size: int = 4,
        anchors: str = "global",
        position_embedding: bool = True,
        embedding_size: tuple[int, int] = (16, 16),
        branches: str = "both",
    ) -> None:
        super().__init__()
        self.affinity = check_choice("affinity", affinity, AFFINITIES)
        self.branches = check_choice("branches", branches, BRANCHES)
        self.spatial: nn.Module | None
        self.channel: nn.Module | None
        if affinity == "dynamic":
            self.spatial = SpatialDynamicAffinity(
                low_channels,
                high_channels,
                inner_channels,
                inner_channels,
                spatial_samples,
                anchors,
                1,
                position_embedding,
                embedding_size,
            )
            self.channel = ChannelDynamicAffinity(
                low_channels,
                high_channels,
                inner_channels,
                inner_channels,
                channel_samples,
                pooled_size,
                anchors,
            )
        else:
            self.spatial = SpatialNonLocalAffinity(
                low_channels,
                high_channels,
                inner_channels,
                inner_channels,
                position_embedding,
                embedding_size,
            )
            self.channel = ChannelNonLocalAffinity(
                low_channels, high_channels, inner_channels, inner_channels, pooled_size
            )
        self.fuse = ConvBNReLU(low_channels + 2 * inner_channels, out_channels, kernel_size=1)
        if branches != "both":
            # Every part is drawn as for DDSM, then a left-out branch is dropped and the fusion
            # keeps DDSM's weights of the inputs that remain: the random stream, and so every
            # layer built after the module, is the same in every ablation row at a seed.
            parts = [range(low_channels)]
            if branches == "spatial":
                parts.append(range(low_channels, low_channels + inner_channels))
            if branches == "channel":
                parts.append(
                    range(low_channels + inner_channels, low_channels + 2 * inner_channels)
                )
            kept = [index for part in parts for index in part]
            full = self.fuse
            with torch.random.fork_rng(devices=[]):
                self.fuse = ConvBNReLU(len(kept), out_channels, kernel_size=1)
            with torch.no_grad():
                self.fuse[0].weight.copy_(full[0].weight[:, kept])
            self.spatial = self.spatial if branches == "spatial" else None
            self.channel = self.channel if branches == "channel" else None

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        parts = [low]
        for branch in (self.spatial, self.channel):
            if branch is not None:
                parts.append(branch(low, high))
        return self.fuse(torch.cat(parts, dim=1))


def _check_pair(
    low: torch.Tensor, high: torch.Tensor, low_channels: int, high_channels: int
) -> None:
    if low.ndim != 4 or low.shape[1] != low_channels:
        raise ValueError(f"low must be [B, {low_channels}, H, W], got {tuple(low.shape)}")
    if high.ndim != 4 or high.shape[1] != high_channels:
        raise ValueError(f"high must be [B, {high_channels}, h, w], got {tuple(high.shape)}")
    if low.shape[0] != high.shape[0]:
        raise ValueError(
            f"low and high must have the same batch size, got {low.shape[0]} and {high.shape[0]}"
        )
