"""The device flows through training, evaluation and inference (``TrainConfig.device``,
``evaluate(device=...)``, ``predict_probabilities(device=...)``, ``resolve_device``)."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from engine_fixtures import NUM_CLASSES, TinySegNet, TinyShapesDataset, tiny_config
from torch import nn

from repro import models
from repro.engine import evaluate, predict_probabilities, resolve_device, train

warnings.filterwarnings("ignore", message=".*compiled sampling ops.*")
# The module, not the function ``repro.engine.train`` that the package exports by that name.
train_module = importlib.import_module("repro.engine.train")

CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    ],
)

#: Tiny registered models whose context modules and sampling ops should all follow the
#: device: ASPP + CGDS's dynamic sampling (DSNet), GDPP's Gaussian draws (GDC).
TINY_MODELS: dict[str, dict[str, Any]] = {
    "dsnet": {
        "backbone": "resnet18",
        "aspp_channels": 8,
        "modification_channels": 8,
        "sampled_channels": 8,
        "classifier_channels": 8,
    },
    "mobilenetv2_gdpp": {
        "width_mult": 0.25,
        "channels": 8,
        "context_options": {"num_eval_draws": 2},
    },
}


# ----------------------------------------------------------------- resolve_device
def test_resolve_device_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("AUTO") == torch.device("cpu")
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(RuntimeError, match="'cuda' needs a CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device("gpu")


def test_resolve_device_with_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(RuntimeError, match="GPU 3, but only 1"):
        resolve_device("cuda:3")


def test_config_defaults_to_auto() -> None:
    assert tiny_config().device == "auto"


# ----------------------------------------------------------------- every stage, real devices
def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)


class DeviceRecorder:
    """Forward pre-hooks on every module: the devices of its inputs, parameters and buffers,
    and whether it ran in training or evaluation mode."""

    def __init__(self) -> None:
        self.devices: set[torch.device] = set()
        self.modes: set[bool] = set()
        self.calls = 0

    def attach(self, model: nn.Module) -> None:
        for module in model.modules():
            module.register_forward_pre_hook(self.hook)

    def hook(self, module: nn.Module, inputs: tuple) -> None:
        self.calls += 1
        self.modes.add(module.training)
        own = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        self.devices.update(t.device for t in [*_tensors(inputs), *own])


def _same_device(seen: set[torch.device], wanted: torch.device) -> bool:
    """``cuda`` (no index) is the current GPU; tensors report ``cuda:N``."""
    index = torch.cuda.current_device() if wanted.type == "cuda" and wanted.index is None else None
    expected = torch.device(wanted.type, index) if index is not None else wanted
    return seen == {expected}


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_device_reaches_training_loss_evaluation_and_inference(
    name: str, device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = resolve_device(device)
    torch.manual_seed(0)
    model = models.build(name, NUM_CLASSES, **TINY_MODELS[name])  # built on the CPU
    recorder = DeviceRecorder()
    recorder.attach(model)
    real_build_loss = train_module.build_loss

    def build_recorded_loss(config: Any) -> nn.Module:
        loss = real_build_loss(config)
        loss.register_forward_pre_hook(recorder.hook)
        return loss

    monkeypatch.setattr(train_module, "build_loss", build_recorded_loss)
    config = tiny_config(
        epochs=1, batch_size=2, device=device, eval_flip=True, eval_scales=(0.75, 1.0)
    )
    val_set = TinyShapesDataset(length=2, seed=2)
    result = train(model, TinyShapesDataset(length=2, seed=1), val_set, config, progress=False)
    assert len(result.history) == 1 and result.final_metrics is not None
    assert recorder.modes == {True, False}  # one training step, then the evaluations
    assert _same_device(recorder.devices, wanted), recorder.devices

    for evaluated_on in dict.fromkeys(("cpu", device)):  # moves the model back and forth
        recorder.devices.clear()
        metrics = evaluate(
            model,
            val_set,
            NUM_CLASSES,
            flip=True,
            scales=(1.0, 1.25),
            device=evaluated_on,
            progress=False,
        )
        assert 0.0 <= metrics["miou"] <= 1.0 and 0.0 <= metrics["boundary_f"] <= 1.0
        assert _same_device(recorder.devices, resolve_device(evaluated_on)), recorder.devices

    recorder.devices.clear()
    images = torch.stack([val_set[0][0], val_set[1][0]])  # on the CPU
    probs = predict_probabilities(model.eval(), images, flip=True, device=device)
    assert probs.shape == (2, NUM_CLASSES, 32, 32)
    assert _same_device({probs.device}, wanted)
    assert _same_device(recorder.devices, wanted), recorder.devices


# ----------------------------------------------------------------- a fake GPU on the CPU
class RecordingModel(TinySegNet):
    """Records ``.to()`` and stays where it is, so a fake GPU can be used on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.moves: list[Any] = []

    def to(self, *args: Any, **kwargs: Any) -> RecordingModel:  # type: ignore[override]
        self.moves.append(kwargs.get("device", args[0] if args else None))
        return self


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> list[torch.device]:
    """``torch.cuda`` says a GPU is there; tensors sent to it stay on the CPU and the
    destination is recorded (the returned list)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    sent: list[torch.device] = []
    real_to = torch.Tensor.to

    def to(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, str | torch.device) and torch.device(target).type == "cuda":
            sent.append(torch.device(target))
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    return sent


def test_auto_sends_the_model_and_every_batch_to_the_gpu(fake_gpu: list[torch.device]) -> None:
    cuda = torch.device("cuda")
    torch.manual_seed(0)
    model = RecordingModel()
    train_set, val_set = TinyShapesDataset(length=4, seed=1), TinyShapesDataset(length=3, seed=2)
    config = tiny_config(epochs=1, batch_size=2, eval_every=0)
    assert config.device == "auto"
    train(model, train_set, val_set, config, progress=False)
    # Training: the model, then images and labels of 2 batches; the final evaluation: the
    # model again and 3 single-image batches. Training names the current GPU's index
    # (torch.cuda.set_device refuses an unindexed "cuda").
    current = torch.device("cuda", 0)
    assert model.moves == [current, current]
    assert fake_gpu == [current] * (2 * 2 + 3)

    model.moves.clear()
    fake_gpu.clear()
    evaluate(model, val_set, NUM_CLASSES, flip=True, scales=(0.75, 1.0), progress=False)
    assert model.moves == [cuda] and fake_gpu == [cuda] * 3

    model.moves.clear()
    fake_gpu.clear()
    predict_probabilities(model, torch.zeros(1, 3, 16, 16), device="auto")
    assert model.moves == [cuda] and fake_gpu == [cuda]


def test_evaluate_and_inference_leave_the_device_alone_on_the_cpu() -> None:
    torch.manual_seed(0)
    model = RecordingModel().eval()
    images = torch.randn(1, 3, 16, 16)
    plain = predict_probabilities(model, images)
    assert model.moves == []  # no device given: runs where the images are
    torch.testing.assert_close(predict_probabilities(model, images, device="cpu"), plain)
    assert model.moves == [torch.device("cpu")]
