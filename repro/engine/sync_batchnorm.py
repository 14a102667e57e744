"""Cross-process batch normalisation that also runs on the CPU.

DSNet trains with "Cross-GPU Batch Normalization" (Zhang et al., EncNet, CVPR 2018):
batch statistics are computed over the whole distributed batch. ``torch.nn.SyncBatchNorm``
does this on GPUs, but in torch 2.14 its forward raises ``ValueError("SyncBatchNorm
expected input tensor to be on GPU ...")`` for CPU tensors, so a CPU/gloo run (this
project's tests) cannot use it, and DistributedDataParallel refuses CPU modules that
hold ``SyncBatchNorm`` layers. :func:`convert_to_sync_batchnorm` therefore uses torch's
``SyncBatchNorm`` on accelerators and :class:`CpuSyncBatchNorm` on the CPU, which
all-reduces the per-channel sums, sums of squares and counts (EncNet's formulation)
with a differentiable all-reduce.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


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


class CpuSyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics cover the batches of all processes, for CPU
    (gloo) runs. It is not an ``nn.SyncBatchNorm`` subclass on purpose: DDP refuses CPU
    modules holding those. Same parameters, buffers and state-dict keys as BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (N, C, ...), got {input.dim()}D input")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        needs_sync = (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        )
        if not needs_sync:
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        reduce_dims = [0, *range(2, input.dim())]
        local_count = torch.full(
            (channels,), input.numel() / channels, dtype=input.dtype, device=input.device
        )
        local = torch.cat([input.sum(reduce_dims), (input * input).sum(reduce_dims), local_count])
        total = _AllReduceSum.apply(local)
        sums = total[:channels]
        squares = total[channels : 2 * channels]
        count = total[2 * channels :]
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


def _to_cpu_sync(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(
        module, nn.SyncBatchNorm | CpuSyncBatchNorm
    ):
        converted = CpuSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, _to_cpu_sync(child))
    return module


def convert_to_sync_batchnorm(module: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Replaces every ``BatchNorm*d`` of ``module`` by a synchronised batch norm:
    ``torch.nn.SyncBatchNorm`` on accelerators, :class:`CpuSyncBatchNorm` on the CPU.
    Parameters and buffers are kept (the same tensors)."""
    if torch.device(device).type == "cpu":
        return _to_cpu_sync(module)
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)
