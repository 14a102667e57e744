"""``weights="offline-pretrained"``: backbones pretrained here, named like torchvision's weights.

Every paper starts from ImageNet-pretrained backbones (DSNet Sec. "Implementation Details":
ResNet-101 "pretrained on ImageNet"; GDC Sec. V: MobileNetV2 and ResNet-101 from ImageNet;
DDSM: ResNets from ImageNet). Nothing can be downloaded here, so the notebook
``pretrain_backbones`` pretrains the backbones the ``cpu`` profiles use on an image
classification task of its own (:mod:`repro.data.pretraining`), the closest honest stand-in.
Its weights are a named artefact: ``OFFLINE_PRETRAINED`` (``"offline-pretrained"``) is accepted
wherever a torchvision weights name is (the ResNet and MobileNetV2 backbones of
:mod:`repro.models.backbones`, the frozen MobileNetV2 of the single-image network in
:mod:`repro.models.lightweight`), for the architecture and width of the model asking.

Where things live
-----------------
* **The file**: ``cache_dir("weights")/<key>.pt`` (``$REPRO_CACHE/weights``, default
  ``~/.cache/repro/weights``), outside the repository and never committed (tens of MB). It holds
  the torchvision model's state dict without its classifier (``fc.*`` / ``classifier.*``, which
  belong to the pretraining task), and beside it ``<key>.json`` says what it is.
* **The key** (:meth:`PretrainSpec.key`): the architecture, the width and a hash of every
  pretraining parameter (the images, the training recipe, the thread count), so other
  parameters never reuse a file.
* **The expected hash and provenance**: the committed result of the notebook's ``cpu`` profile,
  ``results/pretrain_backbones/cpu/metrics.json``, section ``artefacts``: one entry per weights
  file with its name, size, SHA-256 and parameters, beside the evidence of what pretraining did
  (pretraining accuracy, linear probes, first-layer filters) and the run's provenance.

Resolution: the name looks up the entry of the model's (architecture, width) in that record,
checks that its parameters hash to its file name, that the file is in the cache and that its
SHA-256 is the recorded one, and only then loads it. Any failure is an error naming the fix,
``repro run pretrain_backbones --profile cpu`` (:data:`PRODUCE_COMMAND`): there is never a silent
fallback to random weights. Re-running that command rewrites both the file and the record, so
the name always means "the weights of the committed ``cpu`` run".
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repro.paths import cache_dir, file_sha256, repo_root, results_dir
from repro.safe_write import write_texts

logger = logging.getLogger(__name__)

OFFLINE_PRETRAINED = "offline-pretrained"
"""The weights name, next to torchvision's (``"IMAGENET1K_V1"``) and state-dict files."""

PRETRAIN_NOTEBOOK = "pretrain_backbones"
PRETRAIN_PROFILE = "cpu"
PRODUCE_COMMAND = f"repro run {PRETRAIN_NOTEBOOK} --profile {PRETRAIN_PROFILE}"
"""What produces the weights file and its committed record."""

WEIGHTS_FORMAT = 1
"""Bumped when what a weights file holds changes (part of the key)."""

ARCHITECTURES: tuple[str, ...] = ("resnet18", "resnet50", "resnet101", "mobilenet_v2")
"""torchvision classification models the backbones are built from."""

CLASSIFIER_PREFIXES: dict[str, str] = {
    "resnet18": "fc.",
    "resnet50": "fc.",
    "resnet101": "fc.",
    "mobilenet_v2": "classifier.",
}
"""The pretraining task's classifier, left out of the file (no backbone uses it)."""

ARTEFACT_KIND = "backbone weights"
"""The ``kind`` detail of the record's weights entries."""

# Fields of a training configuration that do not change what it computes.
_RUN_FREE_FIELDS = ("device", "num_workers")


class PretrainedWeightsMissing(FileNotFoundError):
    """The weights file or its committed record is absent; the message names the command."""


class PretrainedWeightsMismatch(ValueError):
    """The cached file is not the one the committed record describes (hash or key)."""


def architecture_label(arch: str, width_mult: float = 1.0) -> str:
    """``"resnet18"``, ``"mobilenet_v2_x0.5"``: an architecture at a width, in one word."""
    return arch if arch.startswith("resnet") else f"{arch}_x{float(width_mult)!r}"


def parse_architecture(label: str) -> tuple[str, float]:
    """Inverse of :func:`architecture_label`: ``"mobilenet_v2_x0.5"`` -> ``("mobilenet_v2", 0.5)``."""
    arch, _, width = label.rpartition("_x")
    if arch == "mobilenet_v2":
        try:
            value = float(width)
        except ValueError:
            value = float("nan")
        if math.isfinite(value) and value > 0:
            return arch, value
    elif label in ARCHITECTURES and label.startswith("resnet"):
        return label, 1.0
    raise ValueError(
        f"architecture: expected one of {[a for a in ARCHITECTURES if a.startswith('resnet')]} "
        f"or mobilenet_v2_x<width> (e.g. mobilenet_v2_x0.5), got {label!r}"
    )


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that decides a pretrained backbone's weights, and so its file's key.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        width_mult: MobileNetV2's width multiplier (ResNets: 1.0).
        task: the pretraining images' parameters
            (:meth:`repro.data.pretraining.PretrainTask.to_dict`).
        train: the training recipe (:meth:`repro.engine.TrainConfig.to_dict`); where it runs
            (``device``, ``num_workers``) is dropped, as it does not change the result.
        threads: torch CPU threads (float sums are reordered across thread counts).
    """

    arch: str
    width_mult: float = 1.0
    task: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    threads: int = 1

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch: expected one of {ARCHITECTURES}, got {self.arch!r}")
        width = float(self.width_mult)
        if not math.isfinite(width) or width <= 0:
            raise ValueError(f"width_mult: expected a number > 0, got {self.width_mult!r}")
        if self.arch.startswith("resnet") and width != 1.0:
            raise ValueError(f"width_mult: {self.arch} has no width multiplier, got {width}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads: expected an int >= 1, got {self.threads!r}")
        object.__setattr__(self, "width_mult", width)
        object.__setattr__(self, "task", dict(self.task))
        train = {k: v for k, v in dict(self.train).items() if k not in _RUN_FREE_FIELDS}
        object.__setattr__(self, "train", train)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "width_mult": self.width_mult,
            "task": dict(self.task),
            "train": dict(self.train),
            "threads": self.threads,
        }

    def key(self) -> str:
        """``<arch>[_x<width>]_<16 hex digits>``: readable, and a hash of every parameter."""
        payload = json.dumps({"format": WEIGHTS_FORMAT, **self.to_dict()}, sort_keys=True)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return f"{architecture_label(self.arch, self.width_mult)}_{digest}"

    @property
    def file_name(self) -> str:
        return f"{self.key()}.pt"


def weights_dir() -> Path:
    """``$REPRO_CACHE/weights`` (default ``~/.cache/repro/weights``): the weights files."""
    return cache_dir("weights")


sha256_of = file_sha256
"""SHA-256 of a file's bytes (:func:`repro.paths.file_sha256`)."""


def backbone_state(model: nn.Module, arch: str) -> dict[str, torch.Tensor]:
    """A torchvision model's state dict without the pretraining classifier, on the CPU."""
    prefix = CLASSIFIER_PREFIXES[arch]
    return {
        key: value.detach().cpu().clone()
        for key, value in model.state_dict().items()
        if not key.startswith(prefix)
    }


def save_weights(model: nn.Module, spec: PretrainSpec) -> Path:
    """Write ``model``'s backbone weights (see :func:`backbone_state`) as ``spec``'s file.

    Written to a temporary file in the same folder and renamed into place, so a reader never
    sees half a file; ``<key>.json`` beside it holds the parameters and the SHA-256. Returns
    the file's path (record it with :meth:`repro.results.Recorder.artefact`).
    """
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.file_name
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{spec.key()}.", suffix=".pt")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(backbone_state(model, spec.arch), file)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's file is private; a cache file is not
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sidecar = {
        "name": OFFLINE_PRETRAINED,
        "sha256": sha256_of(target),
        "produced_by": PRODUCE_COMMAND,
        "spec": spec.to_dict(),
    }
    write_texts({folder / f"{spec.key()}.json": json.dumps(sidecar, indent=2) + "\n"})
    logger.info("wrote %s weights to %s", architecture_label(spec.arch, spec.width_mult), target)
    return target


def artefact_details(spec: PretrainSpec) -> dict[str, Any]:
    """What the record keeps about a weights file besides its name, size and hash."""
    return {
        "kind": ARTEFACT_KIND,
        "weights_name": OFFLINE_PRETRAINED,
        "location": 'cache_dir("weights")',
        "arch": spec.arch,
        "width_mult": spec.width_mult,
        "key": spec.key(),
        "spec": spec.to_dict(),
    }


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file as the committed record describes it."""

    name: str
    spec: PretrainSpec
    file: str
    sha256: str

    @property
    def path(self) -> Path:
        return weights_dir() / self.file


def record_path() -> Path:
    """The committed record: ``results/pretrain_backbones/cpu/metrics.json``."""
    return results_dir() / PRETRAIN_NOTEBOOK / PRETRAIN_PROFILE / "metrics.json"


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(repo_root()).as_posix()
    except ValueError:
        return str(path)


def committed_entries(record: str | Path | None = None) -> list[WeightsEntry]:
    """The weights entries of the committed record (default :func:`record_path`).

    Raises:
        PretrainedWeightsMissing: the record does not exist (the notebook has not run at
            ``cpu``).
        PretrainedWeightsMismatch: it cannot be read, or an entry's parameters do not hash to
            its file name (a hand-edited or foreign record).
    """
    path = Path(record) if record is not None else record_path()
    if not path.is_file():
        raise PretrainedWeightsMissing(
            f"weights {OFFLINE_PRETRAINED!r}: no record of them ({_shown(path)} does not "
            f"exist); produce them with `{PRODUCE_COMMAND}`"
        )
    try:
        artefacts = json.loads(path.read_text()).get("artefacts", {})
        entries = []
        for name, entry in artefacts.items():
            if entry.get("kind") != ARTEFACT_KIND:
                continue
            spec = PretrainSpec(**entry["spec"])
            entries.append(WeightsEntry(name, spec, str(entry["file"]), str(entry["sha256"])))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise PretrainedWeightsMismatch(
            f"weights {OFFLINE_PRETRAINED!r}: {_shown(path)} is not a readable record of them "
            f"({error}); re-run `{PRODUCE_COMMAND}`"
        ) from error
    for entry in entries:
        if entry.file != entry.spec.file_name:
            raise PretrainedWeightsMismatch(
                f"weights {OFFLINE_PRETRAINED!r}: {_shown(path)} names the file {entry.file} for "
                f"parameters whose key is {entry.spec.key()}; re-run `{PRODUCE_COMMAND}`"
            )
    return entries


def find_entry(
    arch: str, width_mult: float = 1.0, record: str | Path | None = None
) -> WeightsEntry:
    """The committed entry of ``arch`` at ``width_mult``; a clear error when there is none."""
    entries = committed_entries(record)
    for entry in entries:
        if entry.spec.arch == arch and entry.spec.width_mult == float(width_mult):
            return entry
    have = ", ".join(architecture_label(e.spec.arch, e.spec.width_mult) for e in entries)
    raise PretrainedWeightsMissing(
        f"weights {OFFLINE_PRETRAINED!r}: the committed run pretrained no "
        f"{architecture_label(arch, width_mult)} (it has: {have or 'none'}); add it to the "
        f"notebook's architectures and run `{PRODUCE_COMMAND}`"
    )


def verified_path(arch: str, width_mult: float = 1.0, record: str | Path | None = None) -> Path:
    """The cached weights file of ``arch`` at ``width_mult``, checked against the record.

    Raises:
        PretrainedWeightsMissing: no record, no entry for this architecture, or no file.
        PretrainedWeightsMismatch: the file's SHA-256 differs from the recorded one.
    """
    entry = find_entry(arch, width_mult, record)
    label = architecture_label(arch, width_mult)
    if not entry.path.is_file():
        raise PretrainedWeightsMissing(
            f"weights {OFFLINE_PRETRAINED!r} for {label}: {entry.path} is not in the cache; "
            f"restore it from the committed record with `repro weights restore {label}` "
            f"(re-trains it from the recorded parameters; or make a new record with "
            f"`{PRODUCE_COMMAND}`) (the committed record "
            f"{_shown(record_path() if record is None else Path(record))} expects SHA-256 "
            f"{entry.sha256[:16]}...)"
        )
    actual = sha256_of(entry.path)
    if actual != entry.sha256:
        raise PretrainedWeightsMismatch(
            f"weights {OFFLINE_PRETRAINED!r} for {label}: {entry.path} has SHA-256 "
            f"{actual[:16]}..., the committed record expects {entry.sha256[:16]}...; the file "
            f"was changed or comes from another run: delete it and run `{PRODUCE_COMMAND}`"
        )
    return entry.path


def is_offline_pretrained(weights: object) -> bool:
    """Whether ``weights`` is the name :data:`OFFLINE_PRETRAINED`."""
    return isinstance(weights, str) and weights == OFFLINE_PRETRAINED


def load_backbone_state(
    model: nn.Module, arch: str, state: Mapping[str, torch.Tensor], source: str
) -> None:
    """Load ``state`` into torchvision ``model``: every key, except that the classifier
    (:data:`CLASSIFIER_PREFIXES`) may be absent, since no backbone uses it.

    Raises:
        ValueError: naming ``source``, when a shape differs or another key is missing or
            unexpected (another architecture or width).
    """
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a shape differs
        raise ValueError(f"{source} does not match torchvision's {arch}: {error}") from error
    prefix = CLASSIFIER_PREFIXES.get(arch)
    missing = [k for k in result.missing_keys if prefix is None or not k.startswith(prefix)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{source} does not match torchvision's {arch}: missing keys {missing[:4]}, "
            f"unexpected keys {result.unexpected_keys[:4]}"
        )


def load_offline_pretrained(
    model: nn.Module, arch: str, width_mult: float = 1.0, record: str | Path | None = None
) -> None:
    """Load the verified weights of ``arch`` at ``width_mult`` into torchvision ``model``
    (:func:`verified_path`, then :func:`load_backbone_state`)."""
    path = verified_path(arch, width_mult, record)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        load_backbone_state(model, arch, state, f"weights {OFFLINE_PRETRAINED!r} ({path})")
    except ValueError as error:
        raise PretrainedWeightsMismatch(str(error)) from error
    logger.info("loaded %s weights %s from %s", arch, OFFLINE_PRETRAINED, path)


def weights_identity(weights: object) -> object:
    """What a cache key should hold for ``weights``: the name itself, except for
    :data:`OFFLINE_PRETRAINED`, which becomes ``"offline-pretrained@<hash>"`` over the committed
    files' SHA-256, so that runs on other pretrained weights are never reused."""
    if not is_offline_pretrained(weights):
        return weights
    hashes = sorted(entry.sha256 for entry in committed_entries())
    digest = hashlib.sha256(json.dumps(hashes).encode()).hexdigest()[:16]
    return f"{OFFLINE_PRETRAINED}@{digest}"


def describe_weights(weights: object) -> str:
    """How a recorded setting names ``weights``: random init, this project's stand-in (and what
    it was pretrained on, since readers compare with the papers' ImageNet features), or the
    name or file given."""
    if weights is None or weights == "none":
        return "random init"
    if is_offline_pretrained(weights):
        try:  # which pretraining: re-made on another machine, the files differ (repro weights)
            made = f" (weights {str(weights_identity(weights)).split('@', 1)[1]})"
        except (PretrainedWeightsMissing, PretrainedWeightsMismatch):
            made = ""
        return (
            f"{OFFLINE_PRETRAINED}{made}: pretrained here on procedurally generated images from "
            "package photos, not ImageNet"
        )
    return str(weights)
