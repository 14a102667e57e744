"""GDC's per-image segmentation procedure (Sun et al., TCSVT 2021, Sections IV-A and V-A).

For one image and its scribbles:

1. the scribbles are expanded to whole SLIC superpixels (Sec. V-A, Fig. 6;
   :func:`repro.data.expand_scribbles_slic`);
2. a fresh lightweight network is built (Sec. IV-A1, Fig. 3; ``lightweight_<conv>`` in
   :mod:`repro.models`) and its frozen MobileNetV2 features are computed **once**;
3. the trainable part is optimised for ``steps`` SGD steps (paper: 50, learning rate 0.01) with
   the weighted cross-entropy of Eq. 5-6 (:func:`repro.engine.weighted_cross_entropy`);
4. the prediction is the average of the softmax of ``num_draws`` stochastic forward passes
   (paper: 50; one pass for deterministic convolutions). The draws are batched: the features
   are repeated ``T`` times along the batch and the GDC layer draws independent offsets for
   every copy (``batch_draws="independent"``), so ``T`` passes cost one call per chunk.

Choices of this project, each a field of :class:`SingleImageConfig`:

* The classifier predicts only the classes present in the scribbles (a user who scribbles
  three classes asks for three); they are mapped back to the original indices at the end.
* ``momentum``: the text says SGD with learning rate 0.01, nothing about momentum; 0.9 here.
* ``working_size``: the image may be processed at a smaller size (shortest side) and the
  averaged probabilities resized back; the paper works at the native size (``None``).
* The loss is computed at the network's output size (the working image size).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from repro.data.palette import IGNORE_INDEX
from repro.data.scribbles import expand_scribbles_slic
from repro.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from repro.engine.device import resolve_device
from repro.engine.losses import weighted_cross_entropy
from repro.models import build
from repro.modules.resize import resize_to

logger = logging.getLogger(__name__)

CONVOLUTIONS = ("normal", "dilated", "deformable", "gdc", "uniform")
STOCHASTIC_CONVOLUTIONS = ("gdc", "uniform")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class SingleImageConfig:
    """Settings of the per-image procedure; the defaults are the paper's (Sec. V-A).

    Args:
        conv: the layer under test (GDC Table I/VII): ``normal``, ``dilated``, ``deformable``,
            ``gdc`` or ``uniform`` (the random dynamic convolution of Table VII).
        sigma: GDC/uniform sigma relative to the feature map's shortest side (Table IV).
        dilation: rate of the ``dilated`` layer (Table I: 6, 16, 24).
        gdc_mode: ``per_tap`` (Eq. 3, the authors' code) or ``shared`` (Eq. 4).
        gdc_sampling: ``bilinear`` or ``truncate`` (integer positions, the authors' code).
        uniform_high: upper bound of the uniform draw (default ``3 * sigma``).
        steps: optimisation steps (paper: 50).
        lr: learning rate (paper: 0.01).
        momentum: SGD momentum (not stated in the paper).
        optimizer: ``sgd`` (paper) or ``adam``.
        num_draws: stochastic passes averaged at test time (paper: 50).
        draw_chunk: passes per batched forward (memory bound).
        channels: width of the trainable part (fused feature, each branch, classifier).
        expand_superpixels: expand scribbles with SLIC (paper: yes).
        slic_segments, slic_compactness: SLIC parameters (the paper gives none).
        working_size: process at this shortest side (``None`` = the image's own size).
        weights: MobileNetV2 weights (``None`` = random: no download is possible here;
            ``"offline-pretrained"``: this project's stand-in, :mod:`repro.models.pretrained`).
        device: where the network runs: ``"cpu"``, ``"cuda[:N]"`` or ``"auto"`` (CUDA when
            available); :func:`repro.engine.resolve_device`.
    """

    conv: str = "gdc"
    sigma: float = 0.2
    dilation: int = 6
    gdc_mode: str = "per_tap"
    gdc_sampling: str = "bilinear"
    uniform_high: float | None = None
    steps: int = 50
    lr: float = 0.01
    momentum: float = 0.9
    optimizer: str = "sgd"
    num_draws: int = 50
    draw_chunk: int = 25
    channels: int = 64
    expand_superpixels: bool = True
    slic_segments: int = 300
    slic_compactness: float = 10.0
    working_size: int | None = None
    weights: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.conv not in CONVOLUTIONS:
            raise ValueError(f"conv: expected one of {CONVOLUTIONS}, got {self.conv!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("steps", "num_draws", "draw_chunk", "channels", "dilation", "slic_segments"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if self.sigma < 0:
            raise ValueError(f"sigma: expected >= 0, got {self.sigma}")
        if self.lr <= 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if self.working_size is not None and self.working_size < 16:
            raise ValueError(f"working_size: expected None or >= 16, got {self.working_size}")

    @property
    def stochastic(self) -> bool:
        """Whether test-time passes differ (GDC and uniform), i.e. averaging draws matters."""
        return self.conv in STOCHASTIC_CONVOLUTIONS

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SegmentationResult:
    """Output of :func:`segment_image`.

    ``prediction`` ``[H, W]`` uint8 in the scribbles' class indices; ``probabilities``
    ``[K, H, W]`` over ``classes`` (the scribbled classes, ascending); ``expanded`` the training
    label after superpixel expansion; ``timings`` seconds per stage; ``probe_features``
    ``[steps, P, C]`` the sampling layer's output at ``probe_pixels`` at every training step
    (GDC Fig. 11), or ``None``.
    """

    prediction: np.ndarray
    probabilities: torch.Tensor
    classes: list[int]
    expanded: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    probe_features: np.ndarray | None = None


def check_inputs(image: np.ndarray, scribbles: np.ndarray, ignore_index: int) -> list[int]:
    """Validate an image/scribble pair; returns the scribbled classes (ascending).

    Raises ``ValueError`` naming the problem: wrong shapes, sizes that differ, no scribbles, or
    only one class scribbled (nothing to separate).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected an RGB [H, W, 3] array, got shape {image.shape}")
    if scribbles.ndim != 2:
        raise ValueError(f"scribbles: expected a 2-D [H, W] map, got shape {scribbles.shape}")
    if scribbles.shape != image.shape[:2]:
        raise ValueError(
            f"scribbles: size {scribbles.shape[1]}x{scribbles.shape[0]} (WxH) differs from the "
            f"image's {image.shape[1]}x{image.shape[0]}"
        )
    classes = sorted(int(c) for c in np.unique(scribbles) if c != ignore_index)
    if not classes:
        raise ValueError(f"scribbles: no scribbled pixel (every pixel is {ignore_index})")
    if len(classes) < 2:
        raise ValueError(
            f"scribbles: only class {classes[0]} is scribbled; at least two classes are needed"
        )
    return classes


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((pixels - mean) / std).unsqueeze(0)


def _working_shape(height: int, width: int, working_size: int | None) -> tuple[int, int]:
    if working_size is None or min(height, width) <= working_size:
        return height, width
    scale = working_size / min(height, width)
    return max(round(height * scale), 1), max(round(width * scale), 1)


def build_network(config: SingleImageConfig, num_classes: int) -> torch.nn.Module:
    """A fresh ``lightweight_<conv>`` network for one image (GDC Sec. IV-A1)."""
    options: dict = {"channels": config.channels, "classifier_channels": config.channels}
    options["weights"] = config.weights
    if config.conv == "dilated":
        options["dilation"] = config.dilation
    if config.stochastic:
        options["sigma"] = config.sigma
        gdc_options: dict = {
            "mode": config.gdc_mode,
            "sampling": config.gdc_sampling,
            # Test-time passes re-draw like training, one draw per batch copy; the procedure
            # averages the passes' softmax (Sec. V-A), not the layer's output.
            "eval_draws": "random",
            "batch_draws": "independent",
        }
        if config.conv == "uniform" and config.uniform_high is not None:
            gdc_options["uniform_high"] = config.uniform_high
        options["gdc_options"] = gdc_options
    return build(f"lightweight_{config.conv}", num_classes, **options)


def _probe_hook(
    store: list[torch.Tensor], rows: torch.Tensor, cols: torch.Tensor
) -> Callable[..., None]:
    def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if module.training:
            store.append(output[0, :, rows, cols].detach().T.cpu())

    return hook


def segment_image(
    image: np.ndarray,
    scribbles: np.ndarray,
    config: SingleImageConfig | None = None,
    seed: int = 0,
    *,
    ignore_index: int = IGNORE_INDEX,
    probe_pixels: Sequence[tuple[int, int]] | None = None,
) -> SegmentationResult:
    """Segment one image from its scribbles with GDC's per-image procedure (Sec. V-A).

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        scribbles: ``[H, W]`` class indices, ``ignore_index`` = unlabelled; >= 2 classes.
        config: the procedure's settings (default: the paper's).
        seed: seeds the network's initialisation and every offset draw; the same seed gives
            the same result on CPU. The global RNG state is restored afterwards.
        probe_pixels: ``(row, col)`` image pixels whose sampling-layer features are recorded
            at every training step (GDC Fig. 11).

    Returns:
        :class:`SegmentationResult`.
    """
    config = config or SingleImageConfig()
    image = np.asarray(image)
    scribbles = np.asarray(scribbles)
    if image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 RGB, got dtype {image.dtype}")
    classes = check_inputs(image, scribbles, ignore_index)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    if config.expand_superpixels:
        expanded = expand_scribbles_slic(
            image,
            scribbles,
            n_segments=config.slic_segments,
            compactness=config.slic_compactness,
            ignore_index=ignore_index,
        )
    else:
        expanded = scribbles.astype(np.uint8)
    timings["expand"] = time.perf_counter() - start

    height, width = scribbles.shape
    work_h, work_w = _working_shape(height, width, config.working_size)
    lookup = np.full(256, ignore_index, dtype=np.int64)
    lookup[classes] = np.arange(len(classes))
    target = torch.from_numpy(lookup[expanded]).unsqueeze(0)
    images = _to_tensor(image)
    if (work_h, work_w) != (height, width):
        images = F.interpolate(images, size=(work_h, work_w), mode="bilinear", antialias=True)
        target = F.interpolate(target[None].float(), size=(work_h, work_w), mode="nearest")
        target = target[0].long()

    device = resolve_device(config.device)
    images, target = images.to(device), target.to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tick = time.perf_counter()
        network = build_network(config, len(classes)).to(device)
        timings["build"] = time.perf_counter() - tick

        tick = time.perf_counter()
        features = network.extract_features(images)
        timings["features"] = time.perf_counter() - tick

        probes: list[torch.Tensor] = []
        handle = None
        if probe_pixels:
            feature_h, feature_w = features.shape[-2:]
            rows = torch.tensor(
                [min(r * feature_h // height, feature_h - 1) for r, _ in probe_pixels],
                device=device,
            )
            cols = torch.tensor(
                [min(c * feature_w // width, feature_w - 1) for _, c in probe_pixels],
                device=device,
            )
            handle = network.sampling_branch.register_forward_hook(_probe_hook(probes, rows, cols))

        tick = time.perf_counter()
        losses = _optimise(network, features, target, config, ignore_index)
        timings["train"] = time.perf_counter() - tick
        if handle is not None:
            handle.remove()

        tick = time.perf_counter()
        probabilities = _average_prediction(network, features, (work_h, work_w), config)
        if (work_h, work_w) != (height, width):
            probabilities = resize_to(probabilities[None], (height, width))[0]
        probabilities = probabilities.cpu()
        timings["predict"] = time.perf_counter() - tick

    prediction = np.asarray(classes, dtype=np.uint8)[probabilities.argmax(0).numpy()]
    timings["total"] = time.perf_counter() - start
    return SegmentationResult(
        prediction=prediction,
        probabilities=probabilities,
        classes=classes,
        expanded=expanded,
        timings=timings,
        losses=losses,
        probe_features=torch.stack(probes).numpy() if probes else None,
    )


def _optimise(
    network: torch.nn.Module,
    features: torch.Tensor,
    target: torch.Tensor,
    config: SingleImageConfig,
    ignore_index: int,
) -> list[float]:
    """``config.steps`` steps on the cached features with the weighted CE (GDC Eq. 5-6)."""
    parameters = [p for p in network.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        optimiser: torch.optim.Optimizer = torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum
        )
    else:
        optimiser = torch.optim.Adam(parameters, lr=config.lr)
    network.train()
    size = tuple(target.shape[-2:])
    losses = []
    for _ in range(config.steps):
        logits = network.forward_features(features, size)["out"]
        loss = weighted_cross_entropy(logits, target, ignore_index=ignore_index)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def _average_prediction(
    network: torch.nn.Module,
    features: torch.Tensor,
    size: tuple[int, int],
    config: SingleImageConfig,
) -> torch.Tensor:
    """Softmax averaged over ``num_draws`` batched stochastic passes (Sec. V-A); ``[K, H, W]``.

    The softmax is taken and averaged at the classifier's own resolution (half of ``size``) and
    the mean is resized bilinearly to ``size``: resizing probabilities instead of logits is
    this project's shortcut (it avoids ``T`` full-size maps); it can only move the argmax
    near class boundaries.
    """
    network.eval()
    draws = config.num_draws if config.stochastic else 1
    total: torch.Tensor | None = None
    remaining = draws
    while remaining > 0:
        chunk = min(remaining, config.draw_chunk)
        logits = network.forward_features(
            features.expand(chunk, -1, -1, -1), tuple(features.shape[-2:])
        )["out"]
        summed = logits.softmax(dim=1).sum(dim=0)
        total = summed if total is None else total + summed
        remaining -= chunk
    assert total is not None
    mean = total / draws
    return resize_to(mean[None], size)[0]
