"""Tiny synthetic data and models for the engine tests (no downloads, 32x32 images).

Also the ``--factory`` of the torchrun test: ``engine_fixtures:build_tiny_experiment``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from repro.engine import TrainConfig

NUM_CLASSES = 3
IGNORE_INDEX = 255


class TinyShapesDataset(Dataset):
    """Background (0) with one square (class 1) or disc (class 2), noisy colours tied to the
    class, a one-pixel ignore band at the image border; optional random flip that draws from
    torch's global RNG (as real transforms do), so resumption must restore RNG state.
    """

    num_classes = NUM_CLASSES
    class_names = ("background", "square", "disc")
    ignore_index = IGNORE_INDEX

    def __init__(
        self,
        length: int = 8,
        size: int = 32,
        seed: int = 0,
        augment: bool = False,
        ignore_border: bool = True,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.items: list[tuple[torch.Tensor, torch.Tensor]] = []
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        colours = torch.tensor([[0.2, 0.2, 0.2], [0.9, 0.1, 0.1], [0.1, 0.1, 0.9]])
        for index in range(length):
            label = torch.zeros(size, size, dtype=torch.long)
            radius = int(torch.randint(4, size // 3, (1,), generator=generator))
            cy, cx = (
                int(v) for v in torch.randint(radius, size - radius, (2,), generator=generator)
            )
            if index % 2 == 0:
                mask = ((ys - cy).abs() <= radius) & ((xs - cx).abs() <= radius)
                label[mask] = 1
            else:
                mask = (ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2
                label[mask] = 2
            image = colours[label].permute(2, 0, 1).clone()
            image += 0.3 * torch.randn(image.shape, generator=generator)
            if ignore_border:
                label[0, :] = label[-1, :] = label[:, 0] = label[:, -1] = IGNORE_INDEX
            self.items.append((image, label))
        self.augment = augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.items[index]
        if self.augment and bool(torch.rand(()) < 0.5):
            image, label = image.flip(-1), label.flip(-1)
        return image, label


class TinySegNet(nn.Module):
    """conv-BN-ReLU backbone at 1/2 resolution, a 1x1 classifier, a deep-supervision head,
    and dropout (so training consumes the RNG)."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 8, aux: bool = True) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.aux_classifier = nn.Conv2d(width, num_classes, 1) if aux else None

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        logits = self.classifier(self.dropout(features))
        out = {
            "out": F.interpolate(
                logits, size=images.shape[-2:], mode="bilinear", align_corners=False
            )
        }
        if self.aux_classifier is not None and self.training:
            out["aux"] = self.aux_classifier(features)  # low resolution on purpose
        return out


class ColourOracle(nn.Module):
    """Predicts the class from the noiseless colour-coded image of ``oracle_pair``; used to
    check that a perfect prediction scores 1 everywhere."""

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": 10.0 * images}


def oracle_pair(label: torch.Tensor) -> torch.Tensor:
    """One-hot image ``[3, H, W]`` of a label map (ignore pixels -> class 0)."""
    clean = label.clone()
    clean[clean == IGNORE_INDEX] = 0
    return F.one_hot(clean, NUM_CLASSES).permute(2, 0, 1).float()


def tiny_config(**overrides: object) -> TrainConfig:
    values: dict[str, object] = dict(epochs=3, batch_size=4, lr=0.05, head_lr_mult=1.0, seed=7)
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


def build_tiny_experiment() -> tuple[nn.Module, Dataset, Dataset, TrainConfig]:
    """The torchrun test's factory; ``ENGINE_TEST_AUGMENT=0`` turns augmentation off."""
    augment = os.environ.get("ENGINE_TEST_AUGMENT", "1") == "1"
    torch.manual_seed(0)
    model = TinySegNet()
    train_set = TinyShapesDataset(length=8, seed=1, augment=augment)
    val_set = TinyShapesDataset(length=4, seed=2)
    return model, train_set, val_set, tiny_config(epochs=2, batch_size=4)


def sync_batchnorm_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """Spawned by the SyncBN test: each rank normalises its half of one batch with
    ``CpuSyncBatchNorm`` and saves output, input gradient and running stats."""
    import torch.distributed as dist

    from repro.engine.sync_batchnorm import convert_to_sync_batchnorm

    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        torch.manual_seed(0)
        full = torch.randn(4, 3, 5, 5) * 2 + 1
        weights = torch.randn(4, 3, 5, 5)
        layer = convert_to_sync_batchnorm(nn.BatchNorm2d(3))
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
            layer.bias.copy_(torch.tensor([0.0, -1.0, 1.0]))
        half = full[rank * 2 : rank * 2 + 2].clone().requires_grad_(True)
        out = layer(half)
        (out * weights[rank * 2 : rank * 2 + 2]).sum().backward()
        torch.save(
            {
                "type": type(layer).__name__,
                "out": out.detach(),
                "grad": half.grad,
                "running_mean": layer.running_mean,
                "running_var": layer.running_var,
                "weight_grad": layer.weight.grad,
            },
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()
