"""Pretraining backbones offline, and the evidence of what the pretraining gave them.

The papers' networks start from ImageNet-pretrained backbones; this module pretrains the same
torchvision architectures on :class:`repro.data.pretraining.PretrainTask` (image
classification, images disjoint from every experiment's splits) with the project's training
engine (:func:`repro.engine.train`: the classification logits are a 1x1 segmentation map, so the
engine's loss, optimiser, poly schedule, per-epoch checkpoints and exact resumption apply
unchanged), and writes the weights file of :mod:`repro.models.pretrained`.

The evidence (the notebook ``pretrain_backbones``):

* :func:`probe_backbone`: a linear probe, the standard measure of learnt features: the
  backbone is frozen, its features on a held-out task (:class:`repro.data.pretraining.
  ProbeTask`, the offline dataset's eight shapes, never a pretraining label) are average-pooled
  to a small grid and a multinomial logistic regression is fitted on them; its test accuracy
  compares pretrained with randomly initialised weights, at an early and a deep tap of each
  backbone, the early tap of MobileNetV2 x1.0 being the frozen extractor of GDC's single-image
  network (GDC Sec. IV-A1).
* :func:`first_layer_weight`: the first convolution's filters, to be shown as images.

Runs are kept like the tables' runs (:mod:`repro.experiments.run_cache`): a run folder under
``cache_dir("weights")/runs/<key>`` holds the engine's checkpoint while it trains, so an
interrupted notebook resumes, and its outcome when it has finished, so a re-run with the same
parameters and code reuses the weights file (after checking its hash) instead of training again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader

from repro.data.pretraining import GeneratedImages, PretrainTask, ProbeTask
from repro.engine import TrainConfig, train
from repro.engine.evaluate import stack_same_size
from repro.experiments.parallel import map_side_by_side
from repro.experiments.run_cache import read_outcome, run_key, write_outcome
from repro.models import pretrained
from repro.models.backbones import MobileNetV2Backbone, ResNetBackbone
from repro.models.lightweight import FrozenMobileNetV2Extractor
from repro.models.pretrained import PretrainSpec, architecture_label, sha256_of

log = logging.getLogger(__name__)

PROBE_TAPS: tuple[str, ...] = ("early", "deep")
"""Where a probe reads a backbone: ``early`` (stride 4: ResNet X(2), MobileNetV2's low-level
map; at width 1.0 the single-image network's frozen extractor) and ``deep`` (its output)."""


class ImageClassifier(nn.Module):
    """A torchvision classification network as ``.backbone``, its logits as a 1x1 map.

    ``forward(images) -> {"out": [B, K, 1, 1]}``: the engine's segmentation loss resizes the
    logits to the ``[B, 1, 1]`` labels of :class:`~repro.data.pretraining.GeneratedImages` and
    is then the plain image cross-entropy.
    """

    def __init__(self, arch: str, width_mult: float, num_classes: int) -> None:
        super().__init__()
        if arch == "mobilenet_v2":
            self.backbone = torchvision.models.mobilenet_v2(
                weights=None, num_classes=num_classes, width_mult=width_mult
            )
        elif arch in pretrained.ARCHITECTURES:
            if width_mult != 1.0:
                raise ValueError(f"width_mult: {arch} has no width multiplier, got {width_mult}")
            self.backbone = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
        else:
            raise ValueError(f"arch: expected one of {pretrained.ARCHITECTURES}, got {arch!r}")

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.backbone(images)[:, :, None, None]}


def spec_for(
    arch: str, width_mult: float, task: PretrainTask, config: TrainConfig, threads: int
) -> PretrainSpec:
    """The :class:`~repro.models.pretrained.PretrainSpec` (the weights' key) of one run."""
    return PretrainSpec(arch, width_mult, task.to_dict(), config.to_dict(), threads)


def task_of(spec: PretrainSpec) -> PretrainTask:
    """The :class:`PretrainTask` a spec was made from (its recorded extras dropped)."""
    fields = {f.name for f in dataclasses.fields(PretrainTask)}
    values = {k: v for k, v in spec.task.items() if k in fields}
    if "scale_range" in values:
        values["scale_range"] = tuple(values["scale_range"])
    task = PretrainTask(**values)
    if task.to_dict() != dict(spec.task):
        raise ValueError(
            "the spec's task was made by another version of the pretraining images or another "
            "texture pool; build the spec again with spec_for()"
        )
    return task


@torch.no_grad()
def classification_accuracy(
    model: nn.Module, dataset: GeneratedImages, batch_size: int = 100
) -> float:
    """Top-1 accuracy of ``model`` (``{"out": [B, K, 1, 1]}``) on ``dataset``, in [0, 1]."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for images, labels in DataLoader(
            dataset, batch_size=batch_size, collate_fn=stack_same_size
        ):
            logits = model(images.to(device))["out"].flatten(1)
            correct += int((logits.argmax(1).cpu() == labels.flatten()).sum())
    finally:
        model.train(was_training)
    return correct / len(dataset)


@dataclass
class PretrainOutcome:
    """What one pretraining run produced: its weights file and how the training went."""

    label: str
    file: str
    sha256: str
    val_accuracy: float
    history: list[dict[str, Any]]
    train_seconds: float
    train_images_per_s: float
    parameters: int
    reused: bool = False

    @property
    def path(self) -> Path:
        return pretrained.weights_dir() / self.file

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainOutcome:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def run_dir_of(spec: PretrainSpec) -> Path:
    """The run folder of ``spec``: its checkpoint while it trains, its outcome after."""
    return pretrained.weights_dir() / "runs" / run_key({"pretrain": spec.to_dict()}, spec.threads)


def pretrain(spec: PretrainSpec, device: str = "auto", progress: bool = True) -> PretrainOutcome:
    """Pretrain ``spec``'s backbone with :func:`repro.engine.train` and write its weights file.

    A finished run with the same parameters and code whose file is still there with the
    same hash is reused; an interrupted one resumes from its last epoch.
    """
    task = task_of(spec)
    config = dataclasses.replace(TrainConfig.from_dict(dict(spec.train)), device=device)
    run_dir = run_dir_of(spec)
    finished = read_outcome(run_dir)
    if finished is not None:
        outcome = PretrainOutcome.from_dict(finished)
        if outcome.path.is_file() and sha256_of(outcome.path) == outcome.sha256:
            outcome.reused = True
            log.info("reusing the pretrained weights %s", outcome.path)
            return outcome
        log.warning("the weights file of the finished run %s changed; training again", run_dir)
    torch.manual_seed(config.seed)
    model = ImageClassifier(spec.arch, spec.width_mult, len(task.class_names))
    started = time.perf_counter()
    result = train(
        model, task.dataset("train", flip=True), None, config, run_dir=run_dir, progress=progress
    )
    train_seconds = time.perf_counter() - started
    history = [asdict(record) for record in result.history]
    busy = sum(record["time_s"] for record in history)
    images = sum(record["images_per_s"] * record["time_s"] for record in history)
    if result.resumed_from_epoch:
        train_seconds = busy  # the wall clock saw only the epochs after the interruption
    accuracy = classification_accuracy(model, task.dataset("val"))
    path = pretrained.save_weights(model.backbone, spec)
    outcome = PretrainOutcome(
        label=architecture_label(spec.arch, spec.width_mult),
        file=path.name,
        sha256=sha256_of(path),
        val_accuracy=accuracy,
        history=history,
        train_seconds=train_seconds,
        train_images_per_s=images / busy if busy else float("nan"),
        parameters=sum(p.numel() for p in model.backbone.parameters()),
    )
    write_outcome(run_dir, asdict(outcome))
    return outcome


def _pretrain_quietly(spec: PretrainSpec, device: str) -> PretrainOutcome:
    return pretrain(spec, device, progress=False)


def pretrain_many(
    specs: Sequence[PretrainSpec], processes: int = 1, device: str = "auto"
) -> list[PretrainOutcome]:
    """Pretrain every spec, ``processes`` side by side (each with its spec's thread count).

    The outcomes come back in the order of ``specs`` and do not depend on ``processes``. On
    two cores, two single-threaded runs side by side train more images per second in total than
    one run on two threads (:func:`repro.experiments.supervised.train_and_evaluate_many`);
    ordering the slowest run first keeps both processes busy.
    """
    if processes < 1:
        raise ValueError(f"processes: expected >= 1, got {processes}")
    if processes == 1:
        outcomes = []
        for spec in specs:
            torch.set_num_threads(spec.threads)
            outcomes.append(pretrain(spec, device))
        return outcomes
    threads = {spec.threads for spec in specs}
    if len(threads) != 1:
        raise ValueError(f"specs run side by side must share a thread count, got {threads}")
    return map_side_by_side(_pretrain_quietly, specs, processes, threads.pop(), device)


class ProbeTaps(nn.Module):
    """The two taps of :data:`PROBE_TAPS` of one backbone, built as the experiments build it.

    The backbones are the project's own (:class:`~repro.models.backbones.ResNetBackbone` and
    :class:`~repro.models.backbones.MobileNetV2Backbone` at output stride 16, the
    single-image network's :class:`~repro.models.lightweight.FrozenMobileNetV2Extractor`),
    so the probe goes through the same weights loading as every experiment.
    """

    def __init__(self, arch: str, width_mult: float, weights: str | None) -> None:
        super().__init__()
        self.arch, self.width_mult = arch, float(width_mult)
        self.extractor: nn.Module | None = None
        if arch.startswith("resnet"):
            self.backbone: nn.Module = ResNetBackbone(int(arch[6:]), 16, weights)
        elif arch == "mobilenet_v2":
            seed_state = torch.random.get_rng_state()
            self.backbone = MobileNetV2Backbone(16, weights, width_mult)
            if self.width_mult == 1.0:
                # Same seed as the backbone: random weights are then those of one network too.
                torch.random.set_rng_state(seed_state)
                self.extractor = FrozenMobileNetV2Extractor(weights)
        else:
            raise ValueError(f"arch: expected one of {pretrained.ARCHITECTURES}, got {arch!r}")
        self.eval()

    @property
    def early_description(self) -> str:
        if self.arch.startswith("resnet"):
            return "X(2) (layer1, stride 4)"
        if self.extractor is not None:
            return "single-image extractor (features[0:4], 40 ch, stride 2)"
        return "low-level map (features[0:4], stride 4)"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        if self.arch.startswith("resnet"):
            return {"early": features["x2"], "deep": features["x5"]}
        early = self.extractor(images) if self.extractor is not None else features["low"]
        return {"early": early, "deep": features["out"]}


def materialise(dataset: GeneratedImages) -> tuple[torch.Tensor, np.ndarray]:
    """All images ``[N, 3, S, S]`` and labels ``[N]`` of a generated dataset."""
    items = [dataset[index] for index in range(len(dataset))]
    images = torch.stack([image for image, _ in items])
    labels = np.array([int(label.flatten()[0]) for _, label in items])
    return images, labels


@torch.no_grad()
def pooled_features(
    taps: ProbeTaps, images: torch.Tensor, grids: dict[str, int], batch_size: int = 100
) -> dict[str, np.ndarray]:
    """Each tap's features average-pooled to ``grids[tap]`` x ``grids[tap]``, flattened."""
    parts: dict[str, list[np.ndarray]] = {tap: [] for tap in grids}
    for start in range(0, len(images), batch_size):
        outputs = taps(images[start : start + batch_size])
        for tap, grid in grids.items():
            pooled = F.adaptive_avg_pool2d(outputs[tap], grid).flatten(1)
            parts[tap].append(pooled.numpy().astype(np.float64))
    return {tap: np.concatenate(chunks) for tap, chunks in parts.items()}


def linear_probe_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    l2: float = 1e-3,
    max_iter: int = 500,
) -> float:
    """Test accuracy of a multinomial logistic regression on standardised features.

    Minimises the mean cross-entropy plus ``l2 / 2`` times the squared norm of the weights
    (scikit-learn's default ``C = 1`` at 1,000 training images) by full-batch L-BFGS in
    float64, which is deterministic and takes a second where scikit-learn's solver took tens
    of seconds on these features. Standardisation uses the training features' statistics.
    """
    if l2 <= 0:
        raise ValueError(f"l2: expected > 0, got {l2}")
    train = torch.from_numpy(np.asarray(train_x, dtype=np.float64))
    test = torch.from_numpy(np.asarray(test_x, dtype=np.float64))
    mean, std = train.mean(0), train.std(0).clamp_min(1e-8)
    train, test = (train - mean) / std, (test - mean) / std
    if train.shape[1] > train.shape[0]:
        # The optimal weights lie in the span of the training features (they enter the loss
        # only through X w, and any other component only adds to the penalty), so solving in
        # that span's orthonormal basis V (X = U S V^T) gives the same classifier at the cost
        # of N instead of D dimensions.
        basis = torch.linalg.svd(train, full_matrices=False).Vh.T
        train, test = train @ basis, test @ basis
    labels = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    classes = int(max(labels.max().item(), int(np.max(test_y)))) + 1
    weight = torch.zeros(train.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(train @ weight + bias, labels) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predicted = (test @ weight + bias).argmax(1).numpy()
    return float((predicted == np.asarray(test_y)).mean())


@dataclass(frozen=True)
class ProbeData:
    """One probe seed's images, generated once and shared by every backbone."""

    seed: int
    train_images: torch.Tensor
    train_labels: np.ndarray
    test_images: torch.Tensor
    test_labels: np.ndarray

    @classmethod
    def generate(cls, task: ProbeTask) -> ProbeData:
        train_images, train_labels = materialise(task.dataset("train"))
        test_images, test_labels = materialise(task.dataset("test"))
        return cls(task.seed, train_images, train_labels, test_images, test_labels)


def probe_backbone(
    arch: str,
    width_mult: float,
    weights: str | None,
    data: ProbeData,
    grids: dict[str, int],
    init_seed: int = 0,
    l2: float = 1e-3,
) -> dict[str, float]:
    """Linear-probe accuracy (in [0, 1]) of every tap of one backbone on one probe seed.

    ``init_seed`` seeds the random initialisation (``weights=None``); pretrained weights
    overwrite it. The backbone stays frozen in eval mode (batch-norm statistics as stored:
    the pretrained ones, or the initial ones of a random network), as the single-image
    network keeps its extractor.
    """
    torch.manual_seed(init_seed)
    taps = ProbeTaps(arch, width_mult, weights)
    train_x = pooled_features(taps, data.train_images, grids)
    test_x = pooled_features(taps, data.test_images, grids)
    return {
        tap: linear_probe_accuracy(
            train_x[tap], data.train_labels, test_x[tap], data.test_labels, l2
        )
        for tap in grids
    }


def first_layer_weight(arch: str, width_mult: float, weights: str | None, seed: int = 0) -> Any:
    """The first convolution's weight ``[out, 3, k, k]`` of the backbone, as a numpy array."""
    torch.manual_seed(seed)
    taps = ProbeTaps(arch, width_mult, weights)
    backbone = taps.backbone
    if isinstance(backbone, ResNetBackbone):
        conv = backbone.stem[0]
    else:
        conv = backbone.low_level[0][0]
    return conv.weight.detach().cpu().numpy()


def probe_table(
    backbones: Sequence[tuple[str, str]],
    seeds: Sequence[int],
    task: ProbeTask,
    grids: dict[str, int],
    l2: float = 1e-3,
) -> pd.DataFrame:
    """Linear probes of every backbone, pretrained and randomly initialised, on every seed.

    ``backbones``: ``(architecture label, pretrained weights)`` pairs (a weights file or
    name). Seed ``s`` draws new probe images (``task`` with ``seed=s``) for both sides and
    the random initialisation of the random side, so the two are paired by seed. The
    pretrained side has one set of weights (one pretraining run): its spread over seeds is
    that of the probe alone. Returns one line per (backbone, tap, seed) with the accuracy
    of each side in percent.
    """
    lines = []
    for seed in seeds:
        data = ProbeData.generate(dataclasses.replace(task, seed=seed))
        for label, weights in backbones:
            arch, width = pretrained.parse_architecture(label)
            sides = {
                side: probe_backbone(arch, width, chosen, data, grids, init_seed=seed, l2=l2)
                for side, chosen in (("pretrained", weights), ("random", None))
            }
            for tap in grids:
                lines.append(
                    {
                        "backbone": label,
                        "tap": tap,
                        "seed": seed,
                        "pretrained (%)": 100 * sides["pretrained"][tap],
                        "random init (%)": 100 * sides["random"][tap],
                    }
                )
    return pd.DataFrame(lines)


@dataclass
class RestoredWeights:
    """What :func:`restore_committed` did for one committed weights file."""

    label: str
    path: Path
    expected_sha256: str
    actual_sha256: str
    trained: bool

    @property
    def matches(self) -> bool:
        return self.actual_sha256 == self.expected_sha256


def restore_committed(
    labels: Sequence[str] | None = None,
    processes: int = 1,
    device: str = "cpu",
    record: str | Path | None = None,
) -> list[RestoredWeights]:
    """Put the committed ``offline-pretrained`` weights files back into the cache.

    A fresh clone has the record (``results/pretrain_backbones/cpu/metrics.json``) but not the
    files it describes (tens of MB, never committed). Each entry's spec holds every parameter of
    its pretraining run, so the run is repeated from it with the recorded thread count and the
    new file's SHA-256 is compared with the record's. CPU training is deterministic for a given
    thread count, code, library versions *and processor*: on the machine (and software) that
    made the record the bytes come back; elsewhere they may not (this project's own ResNet-18 came back
    with other bytes and a slightly different pretraining accuracy on a fresh machine).
    Unlike re-running the notebook, this never rewrites the committed record: a file that comes
    out different is reported (``matches`` false) and the loader keeps refusing it, naming the
    notebook as the way to a new record.

    Args:
        labels: architecture labels to restore (``"resnet18"``, ``"mobilenet_v2_x0.5"``);
            default every committed entry.
        processes: runs side by side (each with its spec's thread count).
        device: where to train; ``"cpu"`` by default because the record was made on CPU and
            another device sums floats in another order.
        record: another record file (tests).
    """
    entries = pretrained.committed_entries(record)
    known = {architecture_label(e.spec.arch, e.spec.width_mult): e for e in entries}
    chosen = list(known) if labels is None else list(labels)
    unknown = [label for label in chosen if label not in known]
    if unknown:
        raise ValueError(f"architectures: {unknown} not in the committed record ({list(known)})")
    todo = [known[label] for label in chosen]
    missing = [e for e in todo if not (e.path.is_file() and sha256_of(e.path) == e.sha256)]
    if missing:
        pretrain_many([e.spec for e in missing], processes=processes, device=device)
    results = []
    for entry in todo:
        actual = sha256_of(entry.path) if entry.path.is_file() else ""
        results.append(
            RestoredWeights(
                label=architecture_label(entry.spec.arch, entry.spec.width_mult),
                path=entry.path,
                expected_sha256=entry.sha256,
                actual_sha256=actual,
                trained=entry in missing,
            )
        )
    return results
