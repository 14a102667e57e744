"""Cross-process batch normalisation that also runs on the CPU.

DSNet trains with "Cross-GPU Batch Normalization" (Zhang et al., EncNet, CVPR 2018):
batch statistics are computed over the whole distributed batch. ``torch.nn.SyncBatchNorm``
does this on GPUs, but in torch 2.14 its forward raises ``ValueError("SyncBatchNorm
expected input tensor to be on GPU ...")`` for CPU tensors, so a CPU/gloo run (this
project's tests) cannot use it. :class:`PortableSyncBatchNorm` is a ``SyncBatchNorm``
that delegates to torch's kernels on accelerators and, on the CPU, all-reduces the
per-channel sums, sums of squares and counts (EncNet's formulation) with a
differentiable all-reduce.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is the sum of the processes' gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        reduced = tensor.clone()
        dist.all_reduce(reduced)
        return reduced

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        grad = grad_output.clone()
        dist.all_reduce(grad)
        return grad


class PortableSyncBatchNorm(nn.SyncBatchNorm):
    """``nn.SyncBatchNorm`` with a CPU path (see module docstring); same parameters,
    buffers and state-dict keys, so checkpoints move freely between the two."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        needs_cpu_sync = (
            input.device.type == "cpu"
            and self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size(self.process_group or dist.group.WORLD) > 1
        )
        if not needs_cpu_sync:
            return super().forward(input)
        if self.process_group is not None:
            raise NotImplementedError(
                "PortableSyncBatchNorm's CPU path syncs over the default process group only; "
                f"got process_group={self.process_group!r}"
            )
        self._check_input_dim(input)
        channels = input.shape[1]
        reduce_dims = [0, *range(2, input.dim())]
        local_count = torch.full(
            (channels,), input.numel() / channels, dtype=input.dtype, device=input.device
        )
        local = torch.cat([input.sum(reduce_dims), (input * input).sum(reduce_dims), local_count])
        total = _AllReduceSum.apply(local)
        sums, squares, count = (
            total[:channels],
            total[channels : 2 * channels],
            total[2 * channels :],
        )
        mean = sums / count
        var = (squares / count - mean * mean).clamp(min=0)
        if self.track_running_stats and self.running_mean is not None:
            self._update_running_stats(mean.detach(), var.detach(), count.detach())
        shape = [1, channels] + [1] * (input.dim() - 2)
        output = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output

    @torch.no_grad()
    def _update_running_stats(
        self, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor
    ) -> None:
        assert self.num_batches_tracked is not None
        self.num_batches_tracked += 1
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * count / (count - 1).clamp(min=1)
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


def convert_to_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replaces every ``BatchNorm*d`` of ``module`` by :class:`PortableSyncBatchNorm`.

    Uses torch's converter (which keeps the parameters and buffers) and then switches
    the class of each converted layer; the subclass adds no state.
    """
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for layer in converted.modules():
        if type(layer) is nn.SyncBatchNorm:
            layer.__class__ = PortableSyncBatchNorm
    return converted
