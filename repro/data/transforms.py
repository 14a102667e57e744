"""Joint image/label/scribble transforms for segmentation training and evaluation.

The training augmentation of DSNet's "Implementation details" (horizontal flip, image scaling in
the range 0.5 to 2.0, then a fixed-size random crop; 512×512 on VOC/Context, 576×576 on ADE20K),
which the DeepLab-style code bases of GDPP and DDSM share: random scaling by a factor in
``[0.5, 2.0]``, a random crop padded with the ignore label where the scaled image is smaller than
the crop, a random horizontal flip, then ImageNet normalisation.

Every random draw comes from an explicit :class:`torch.Generator` passed to the call, and the same
draw is applied to the image, the label and the scribbles, so they stay aligned. Datasets seed that
generator from ``(seed, epoch, index)`` (:func:`sample_generator`), which makes an augmented sample
independent of the number of data-loader workers and of the order samples are read in.

A transform is any callable ``(sample: SegmentationSample, generator: torch.Generator) ->
SegmentationSample``. Before :class:`Normalize` the image holds float values in ``0..255``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from repro.data.palette import IGNORE_INDEX

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SegmentationSample:
    """One sample on its way through the transforms.

    Attributes:
        image: ``[3, H, W]`` float32; values ``0..255`` before :class:`Normalize`.
        label: ``[H, W]`` int64 class indices, ``255`` = ignore.
        scribbles: optional ``[H, W]`` int64 scribble classes, ``255`` = unlabelled.
    """

    image: torch.Tensor
    label: torch.Tensor
    scribbles: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[0] != 3:
            raise ValueError(f"image: expected shape [3, H, W], got {tuple(self.image.shape)}")
        if tuple(self.label.shape) != tuple(self.image.shape[1:]):
            raise ValueError(
                f"label: expected shape {tuple(self.image.shape[1:])} (the image's H, W), "
                f"got {tuple(self.label.shape)}"
            )
        if self.scribbles is not None and tuple(self.scribbles.shape) != tuple(self.label.shape):
            raise ValueError(
                f"scribbles: expected shape {tuple(self.label.shape)}, "
                f"got {tuple(self.scribbles.shape)}"
            )

    def masks(self) -> list[torch.Tensor]:
        """The label-like maps (label, then scribbles if present)."""
        return [self.label] if self.scribbles is None else [self.label, self.scribbles]

    def with_masks(self, image: torch.Tensor, masks: Sequence[torch.Tensor]) -> SegmentationSample:
        """A copy with a new image and label-like maps in the order of :meth:`masks`."""
        return replace(
            self, image=image, label=masks[0], scribbles=masks[1] if len(masks) > 1 else None
        )


Transform = Callable[[SegmentationSample, torch.Generator], SegmentationSample]


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator seeded from ``(seed, epoch, index)`` without collisions between the three."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(2)
    generator = torch.Generator()
    generator.manual_seed(int(state[0]) << 32 | int(state[1]))
    return generator


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(
        self, sample: SegmentationSample, generator: torch.Generator
    ) -> SegmentationSample:
        for transform in self.transforms:
            sample = transform(sample, generator)
        return sample

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class RandomScale:
    """Resize by a factor drawn uniformly from ``scale_range`` (image bilinear, maps nearest)."""

    def __init__(self, scale_range: tuple[float, float] = (0.5, 2.0)) -> None:
        low, high = scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range: expected 0 < low <= high, got {scale_range}")
        self.scale_range = (float(low), float(high))

    def __call__(
        self, sample: SegmentationSample, generator: torch.Generator
    ) -> SegmentationSample:
        scale = _uniform(generator, *self.scale_range)
        height, width = sample.label.shape
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = F.interpolate(sample.image[None], size=size, mode="bilinear", align_corners=False)[
            0
        ]
        masks = [
            F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()
            for mask in sample.masks()
        ]
        return sample.with_masks(image, masks)

    def __repr__(self) -> str:
        return f"RandomScale(scale_range={self.scale_range})"


class RandomCrop:
    """Crop ``size`` at a random position; pad first where the sample is smaller.

    Padding goes to the bottom and right; the label and scribbles are padded with the ignore
    label, the image with the ImageNet mean (which :class:`Normalize` maps to zero).
    """

    def __init__(self, size: int | tuple[int, int], ignore_index: int = IGNORE_INDEX) -> None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size: expected a positive int or (height, width), got {size}")
        self.size = (int(size[0]), int(size[1]))
        self.ignore_index = ignore_index

    def __call__(
        self, sample: SegmentationSample, generator: torch.Generator
    ) -> SegmentationSample:
        crop_h, crop_w = self.size
        height, width = sample.label.shape
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        image, masks = sample.image, sample.masks()
        if pad_h or pad_w:
            mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype).view(3, 1, 1) * 255.0
            padded = mean.expand(3, height + pad_h, width + pad_w).clone()
            padded[:, :height, :width] = image
            image = padded
            masks = [F.pad(mask, (0, pad_w, 0, pad_h), value=self.ignore_index) for mask in masks]
            height, width = height + pad_h, width + pad_w
        top = int(torch.randint(0, height - crop_h + 1, (), generator=generator))
        left = int(torch.randint(0, width - crop_w + 1, (), generator=generator))
        image = image[:, top : top + crop_h, left : left + crop_w]
        masks = [mask[top : top + crop_h, left : left + crop_w] for mask in masks]
        return sample.with_masks(image.contiguous(), [mask.contiguous() for mask in masks])

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p = p

    def __call__(
        self, sample: SegmentationSample, generator: torch.Generator
    ) -> SegmentationSample:
        if float(torch.rand((), generator=generator)) >= self.p:
            return sample
        return sample.with_masks(sample.image.flip(-1), [mask.flip(-1) for mask in sample.masks()])

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """Map ``0..255`` values to ``(x / 255 - mean) / std`` (ImageNet statistics by default)."""

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean/std: expected 3 values each, std > 0; got {mean}, {std}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(
        self, sample: SegmentationSample, generator: torch.Generator
    ) -> SegmentationSample:
        image = (sample.image.float() / 255.0 - self.mean) / self.std
        return replace(sample, image=image)

    def __repr__(self) -> str:
        return "Normalize()"


def build_train_transform(
    crop_size: int | tuple[int, int],
    scale_range: tuple[float, float] = (0.5, 2.0),
    flip: bool = True,
) -> Compose:
    """Random scale → random crop (ignore-padded) → optional flip → normalise."""
    steps: list[Transform] = [RandomScale(scale_range), RandomCrop(crop_size)]
    if flip:
        steps.append(RandomHorizontalFlip())
    steps.append(Normalize())
    return Compose(steps)


def build_eval_transform() -> Compose:
    """Evaluation: the full image, normalised only."""
    return Compose([Normalize()])


def denormalize(image: torch.Tensor) -> np.ndarray:
    """Invert :class:`Normalize` for display: ``[3, H, W]`` tensor → ``[H, W, 3]`` uint8."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = ((image.detach().cpu().float() * std + mean) * 255.0).clamp(0, 255)
    return pixels.round().byte().permute(1, 2, 0).numpy()
