"""Epoch-seeded sampling: the order of an epoch depends only on ``(seed, epoch)``, so a
run resumed at an epoch boundary draws exactly the batches an uninterrupted run draws.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """Shuffles ``num_samples`` indices with a generator seeded by ``seed + epoch``, and
    hands process ``rank`` of ``world_size`` its share (``rank::world_size``) of the
    first ``len // world_size * world_size`` indices (every process gets as many).

    Call :meth:`set_epoch` before each epoch.
    """

    def __init__(
        self, num_samples: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        if num_samples < world_size:
            raise ValueError(
                f"num_samples={num_samples} is smaller than world_size={world_size}; "
                "every process needs at least one sample"
            )
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            order = list(range(self.num_samples))
        usable = len(self) * self.world_size
        return iter(order[:usable][self.rank :: self.world_size])

    def __len__(self) -> int:
        return self.num_samples // self.world_size
