"""``weights="offline-pretrained"``: the registry, its checks, and the notebook that fills it.

Tiny stand-ins throughout: weights are saved from freshly initialised networks (or a few
pretraining steps on 16-pixel images), the record is written by the notebooks' ``Recorder``
into a temporary repository root, and the cache is a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from repro.data import texture_pool
from repro.data.offline import OfflineParameters, generate_sample
from repro.data.pretraining import PRETRAIN_SHAPES, PretrainTask, ProbeTask
from repro.data.shapes import SHAPES
from repro.engine import TrainConfig
from repro.experiments import pretraining
from repro.experiments.supervised import DataSpec, RunJob
from repro.models import build, pretrained
from repro.models.backbones import MobileNetV2Backbone, ResNetBackbone
from repro.models.lightweight import FrozenMobileNetV2Extractor
from repro.models.pretrained import (
    OFFLINE_PRETRAINED,
    PRODUCE_COMMAND,
    PretrainedWeightsMismatch,
    PretrainedWeightsMissing,
    PretrainSpec,
)
from repro.results import Recorder

TINY_TASK = {"image_size": 16, "num_train": 8}
TINY_TRAIN = {"epochs": 1, "batch_size": 4, "lr": 0.001}


def _spec(arch: str, width: float = 1.0, **changes) -> PretrainSpec:
    fields = {"task": TINY_TASK, "train": TINY_TRAIN, "threads": 1, **changes}
    return PretrainSpec(arch, width, **fields)


def _torchvision(arch: str, width: float) -> torch.nn.Module:
    if arch == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(weights=None, width_mult=width, num_classes=5)
    return getattr(torchvision.models, arch)(weights=None, num_classes=5)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A temporary repository root and cache; ``publish`` saves weights and writes the record
    as a ``cpu`` run of the notebook would, returning the networks whose weights were saved."""
    monkeypatch.setenv("REPRO_ROOT", str(tmp_path / "repo"))
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))

    def publish(*backbones: tuple[str, float]) -> dict[tuple[str, float], torch.nn.Module]:
        recorder = Recorder(pretrained.record_path().parent)
        networks = {}
        for arch, width in backbones:
            torch.manual_seed(len(networks))
            network = _torchvision(arch, width)
            spec = _spec(arch, width)
            path = pretrained.save_weights(network, spec)
            label = pretrained.architecture_label(arch, width)
            recorder.artefact(f"weights/{label}", path, **pretrained.artefact_details(spec))
            networks[(arch, width)] = network
        recorder.write()
        return networks

    return publish


def test_the_name_resolves_to_the_cached_file_and_loads(project):
    networks = project(("mobilenet_v2", 0.25))
    path = pretrained.verified_path("mobilenet_v2", 0.25)
    assert path == pretrained.weights_dir() / _spec("mobilenet_v2", 0.25).file_name
    assert path.is_file() and not str(path).startswith(str(pretrained.repo_root()))
    backbone = MobileNetV2Backbone(16, OFFLINE_PRETRAINED, width_mult=0.25)
    torch.testing.assert_close(
        backbone.low_level[0][0].weight, networks[("mobilenet_v2", 0.25)].features[0][0].weight
    )
    # The file holds no classifier of the pretraining task, and says what it is beside it.
    state = torch.load(path, weights_only=True)
    assert not any(key.startswith("classifier.") for key in state)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["sha256"] == pretrained.sha256_of(path)


def test_loading_into_every_backbone(project):
    networks = project(("resnet18", 1.0), ("mobilenet_v2", 0.5), ("mobilenet_v2", 1.0))
    resnet = ResNetBackbone(18, 16, OFFLINE_PRETRAINED)
    torch.testing.assert_close(resnet.stem[0].weight, networks[("resnet18", 1.0)].conv1.weight)
    assert resnet.layer4[0].conv2.dilation == (2, 2)  # dilated after loading, as ImageNet's
    small = MobileNetV2Backbone(16, OFFLINE_PRETRAINED, width_mult=0.5)
    torch.testing.assert_close(
        small.high_level[-1][0].weight, networks[("mobilenet_v2", 0.5)].features[-1][0].weight
    )
    extractor = FrozenMobileNetV2Extractor(OFFLINE_PRETRAINED)
    reference = networks[("mobilenet_v2", 1.0)]
    torch.testing.assert_close(
        extractor.first_bottleneck[-1].conv[-1].running_var,
        reference.features[3].conv[-1].running_var,
    )
    # Through the model registry, as notebooks build them.
    fcn = build("fcn", 3, backbone="resnet18", weights=OFFLINE_PRETRAINED, head_channels=8)
    torch.testing.assert_close(fcn.backbone.stem[0].weight, resnet.stem[0].weight)
    gdpp = build("mobilenetv2_gdpp", 3, width_mult=0.5, channels=8, weights=OFFLINE_PRETRAINED)
    torch.testing.assert_close(gdpp.backbone.low_level[0][0].weight, small.low_level[0][0].weight)
    single = build("lightweight_gdc", 3, channels=8, weights=OFFLINE_PRETRAINED)
    torch.testing.assert_close(
        single.backbone.first_layer[0][0].weight, reference.features[0][0].weight
    )


def test_a_missing_file_says_which_command_produces_it(project):
    project(("mobilenet_v2", 0.25))
    pretrained.verified_path("mobilenet_v2", 0.25).unlink()
    with pytest.raises(PretrainedWeightsMissing, match=f"`{PRODUCE_COMMAND}`"):
        MobileNetV2Backbone(16, OFFLINE_PRETRAINED, width_mult=0.25)
    # A FileNotFoundError, like a missing state-dict file; never random weights.
    with pytest.raises(FileNotFoundError, match="not in the cache"):
        pretrained.verified_path("mobilenet_v2", 0.25)


def test_no_record_or_no_entry_says_which_command_produces_it(project):
    with pytest.raises(PretrainedWeightsMissing, match=f"does not exist.*`{PRODUCE_COMMAND}`"):
        ResNetBackbone(18, 16, OFFLINE_PRETRAINED)
    project(("mobilenet_v2", 0.25))
    with pytest.raises(PretrainedWeightsMissing, match=f"no resnet18.*`{PRODUCE_COMMAND}`"):
        ResNetBackbone(18, 16, OFFLINE_PRETRAINED)
    with pytest.raises(PretrainedWeightsMissing, match="no mobilenet_v2_x0.5"):
        MobileNetV2Backbone(16, OFFLINE_PRETRAINED, width_mult=0.5)


def test_a_corrupted_or_replaced_file_fails_the_hash_check(project):
    project(("mobilenet_v2", 0.25))
    path = pretrained.verified_path("mobilenet_v2", 0.25)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PretrainedWeightsMismatch, match="SHA-256.*delete it and run"):
        MobileNetV2Backbone(16, OFFLINE_PRETRAINED, width_mult=0.25)
    # Valid weights of the right shapes, but not the recorded ones.
    pretrained.save_weights(_torchvision("mobilenet_v2", 0.25), _spec("mobilenet_v2", 0.25))
    with pytest.raises(PretrainedWeightsMismatch, match="committed record expects"):
        pretrained.verified_path("mobilenet_v2", 0.25)


def test_a_record_whose_parameters_do_not_match_its_file_is_refused(project):
    project(("mobilenet_v2", 0.25))
    record = pretrained.record_path()
    data = json.loads(record.read_text())
    entry = data["artefacts"]["weights/mobilenet_v2_x0.25"]
    entry["spec"]["train"]["lr"] = 0.5
    record.write_text(json.dumps(data))
    with pytest.raises(PretrainedWeightsMismatch, match="names the file"):
        pretrained.verified_path("mobilenet_v2", 0.25)


def test_the_key_changes_with_every_parameter_and_not_with_the_device():
    base = _spec("mobilenet_v2", 0.5)
    variants = [
        _spec("mobilenet_v2", 1.0),
        _spec("resnet18"),
        _spec("mobilenet_v2", 0.5, task={**TINY_TASK, "seed": 7}),
        _spec("mobilenet_v2", 0.5, train={**TINY_TRAIN, "lr": 0.01}),
        _spec("mobilenet_v2", 0.5, threads=2),
    ]
    keys = {base.key()} | {spec.key() for spec in variants}
    assert len(keys) == len(variants) + 1
    assert base.key().startswith("mobilenet_v2_x0.5_")
    same = _spec("mobilenet_v2", 0.5, train={**TINY_TRAIN, "device": "cuda", "num_workers": 3})
    assert same.key() == base.key()
    with pytest.raises(ValueError, match="no width multiplier"):
        PretrainSpec("resnet18", 0.5)
    assert pretrained.parse_architecture("mobilenet_v2_x1.0") == ("mobilenet_v2", 1.0)
    assert pretrained.architecture_label("mobilenet_v2", 1) == "mobilenet_v2_x1.0"
    with pytest.raises(ValueError, match="mobilenet_v2_x<width>"):
        pretrained.parse_architecture("vgg16")


def test_torchvision_names_still_need_width_one():
    with pytest.raises(ValueError, match="torchvision weights need width_mult=1.0"):
        MobileNetV2Backbone(16, "IMAGENET1K_V1", width_mult=0.5)


def test_run_cache_keys_hold_the_weights_hash(project):
    project(("mobilenet_v2", 0.25))
    job = RunJob(
        "mobilenetv2", {"weights": OFFLINE_PRETRAINED}, DataSpec(), TrainConfig(1, 2, 0.01)
    )
    first = job.description()["model_config"]["weights"]
    assert first.startswith(f"{OFFLINE_PRETRAINED}@")
    project(("mobilenet_v2", 0.25), ("resnet18", 1.0))  # pretrained again: other files
    assert job.description()["model_config"]["weights"] != first


def test_texture_crop_draws_as_random_texture_does():
    # The offline dataset is unchanged by the split of random_texture.
    first, second = np.random.default_rng(3), np.random.default_rng(3)
    expected = texture_pool.random_texture(first, 24)
    index = int(second.integers(len(texture_pool.texture_pool())))
    np.testing.assert_array_equal(texture_pool.texture_crop(second, index, 24), expected)


def test_pretraining_and_probe_images_are_their_own():
    task, probe = PretrainTask(image_size=32), ProbeTask(image_size=32)
    image, label = task.sample("train", 5)
    again, same = task.sample("train", 5)
    np.testing.assert_array_equal(image, again)
    assert label == same and image.shape == (32, 32, 3)
    assert not set(PRETRAIN_SHAPES) & set(SHAPES)  # no pretraining label is a downstream class
    assert probe.class_names == list(SHAPES)
    offline = generate_sample(OfflineParameters(image_size=32, seed=task.seed), "train", 5)[0]
    assert not np.array_equal(image, offline)
    assert not np.array_equal(probe.sample("train", 5)[0], offline)
    assert len(task.class_names) == len(texture_pool.texture_pool()) + len(PRETRAIN_SHAPES)


def test_linear_probe_separates_separable_features():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    centres = rng.normal(size=(3, 200)) * 3
    features = centres[labels] + rng.normal(size=(60, 200))  # more dimensions than images
    accuracy = pretraining.linear_probe_accuracy(
        features[:40], labels[:40], features[40:], labels[40:]
    )
    assert accuracy == 1.0


@pytest.mark.slow
def test_pretrain_writes_verified_weights_and_reuses_them(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    task = PretrainTask(image_size=16, num_train=8, num_val=4)
    config = TrainConfig(epochs=1, batch_size=4, lr=0.001, optimizer="adamw", eval_every=0)
    spec = pretraining.spec_for("mobilenet_v2", 0.25, task, config, 1)
    outcome = pretraining.pretrain(spec, device="cpu", progress=False)
    assert outcome.path == pretrained.weights_dir() / spec.file_name
    assert outcome.sha256 == pretrained.sha256_of(outcome.path) and not outcome.reused
    assert 0.0 <= outcome.val_accuracy <= 1.0
    again = pretraining.pretrain(spec, device="cpu", progress=False)
    assert again.reused and again.sha256 == outcome.sha256
    backbone = MobileNetV2Backbone(16, str(outcome.path), width_mult=0.25)  # a file, too
    data = pretraining.ProbeData.generate(ProbeTask(image_size=16, num_train=6, num_test=4))
    result = pretraining.probe_backbone(
        "mobilenet_v2", 0.25, str(outcome.path), data, {"early": 2, "deep": 1}
    )
    assert set(result) == {"early", "deep"} and backbone.channels["low"] == 8


@pytest.mark.slow
def test_notebook_smoke_run_records_files_the_loader_accepts(cli, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    result = cli(
        "run", "pretrain_backbones", "--profile", "smoke", "--out", str(tmp_path / "out"),
        "--no-progress",
        env={"REPRO_CACHE": str(cache)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    record = tmp_path / "out" / "pretrain_backbones" / "smoke" / "metrics.json"
    data = json.loads(record.read_text())
    labels = {"resnet18", "mobilenet_v2_x0.5", "mobilenet_v2_x1.0"}
    assert set(data["artefacts"]) == {f"weights/{label}" for label in labels}
    for entry in data["artefacts"].values():
        assert Path(entry["file"]).name == entry["file"]  # no machine path in the record
        assert pretrained.sha256_of(cache / "weights" / entry["file"]) == entry["sha256"]
    assert "probe/mobilenet_v2_x1.0/early/pretrained" in data["metrics"]
    # The loader accepts the smoke run's record as it does the committed cpu one.
    monkeypatch.setenv("REPRO_CACHE", str(cache))
    path = pretrained.verified_path("mobilenet_v2", 0.5, record=record)
    assert path.parent == cache / "weights"
    # A fresh clone has the record but not the files: restoring re-trains from the recorded
    # parameters and gets the recorded bytes back (CPU training is deterministic), without
    # touching the record.
    path.unlink()
    before = record.read_bytes()
    restored = pretraining.restore_committed(["mobilenet_v2_x0.5"], record=record)
    assert [r.label for r in restored] == ["mobilenet_v2_x0.5"]
    assert restored[0].trained and restored[0].matches, restored
    assert pretrained.verified_path("mobilenet_v2", 0.5, record=record) == path
    assert record.read_bytes() == before
    # A file already as recorded is left alone; an unknown label is a clear error.
    assert not pretraining.restore_committed(["mobilenet_v2_x0.5"], record=record)[0].trained
    with pytest.raises(ValueError, match="not in the committed record"):
        pretraining.restore_committed(["resnet50"], record=record)
    # A record whose hash no run can give (another torch, edited): reported, never accepted.
    entry = data["artefacts"]["weights/mobilenet_v2_x0.5"]
    entry["sha256"] = "0" * 64
    record.write_text(json.dumps(data))
    path.unlink()
    restored = pretraining.restore_committed(["mobilenet_v2_x0.5"], record=record)
    assert restored[0].trained and not restored[0].matches
    with pytest.raises(PretrainedWeightsMismatch):
        pretrained.verified_path("mobilenet_v2", 0.5, record=record)


def test_weights_command_lists_and_refuses_what_it_cannot_do(cli, project):
    project(("mobilenet_v2", 0.25))
    listed = cli("weights")
    assert listed.returncode == 0, listed.stderr
    assert "mobilenet_v2_x0.25" in listed.stdout and "SHA-256 as recorded" in listed.stdout
    pretrained.verified_path("mobilenet_v2", 0.25).unlink()
    assert "repro weights restore mobilenet_v2_x0.25" in cli("weights").stdout
    unknown = cli("weights", "restore", "resnet50")
    assert unknown.returncode == 2 and "not in the committed record" in unknown.stderr
    assert cli("weights", "list", "resnet18").returncode == 2
