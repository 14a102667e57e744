"""The table API (repro.experiments.table) and the run cache that makes tables resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch

from repro.engine import TrainConfig
from repro.experiments import run_cache, supervised
from repro.experiments.dsnet import family_rows
from repro.experiments.gdc import label_source_rows, table5_rows
from repro.experiments.supervised import DataSpec, RunJob, run_cached
from repro.experiments.table import Row, TableSpec, describe_recipe, run_table
from repro.results import Recorder
from repro.results.fingerprint import fingerprint_of, is_timing

matplotlib.use("Agg")

TINY = {"image_size": 32, "num_train": 4, "num_val": 2}
MNV2 = {"width_mult": 0.25, "channels": 8}
REPO = Path(__file__).resolve().parent.parent


def tiny_spec(root: Path, epochs: int = 1, seeds: tuple[int, ...] = (0, 1)) -> TableSpec:
    data = DataSpec(crop_size=32, scale_range=(1.0, 1.0), root=str(root), offline=TINY)
    return TableSpec(
        prefix="t",
        rows=[
            Row("plain/short", "mobilenetv2", MNV2, reported="x.plain"),
            Row("plain/long", "mobilenetv2", MNV2, {"epochs": epochs + 1}, label="long"),
        ],
        seeds=seeds,
        data=data,
        train=TrainConfig(epochs=epochs, batch_size=2, lr=0.01, eval_every=0, device="cpu"),
        metrics=("miou", "pixel_acc"),
    )


# ------------------------------------------------------------------------------ the spec
def test_spec_validation(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    with pytest.raises(ValueError, match="unique"):
        replace(spec, rows=[spec.rows[0], spec.rows[0]])
    with pytest.raises(ValueError, match="seeds"):
        replace(spec, seeds=[0, 0])
    with pytest.raises(ValueError, match="seeds"):
        replace(spec, seeds=[])
    with pytest.raises(ValueError, match="metrics"):
        replace(spec, metrics=("dice",))
    with pytest.raises(ValueError, match="TrainConfig fields"):
        replace(spec, rows=[Row("a", "mobilenetv2", train={"epoch": 3})])
    with pytest.raises(ValueError, match="at least one row"):
        replace(spec, rows=[])


def test_keys_jobs_and_recipe(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    assert spec.key("plain/short", "miou") == "t/plain/short/miou"
    assert replace(spec, prefix="").key("fcn", "miou") == "fcn/miou"
    jobs = spec.jobs()
    assert [(row.key, job.train_config.seed) for row, job in jobs] == [
        ("plain/short", 0),
        ("plain/short", 1),
        ("plain/long", 0),
        ("plain/long", 1),
    ]
    assert [job.train_config.epochs for _, job in jobs] == [1, 1, 2, 2]
    recipe = describe_recipe(replace(spec.train, optimizer="sgd", momentum=0.8, loss="ohem"))
    for words in ("sgd", "lr 0.01", "momentum 0.8", "weight decay 0.0001", "poly power 0.9"):
        assert words in recipe
    assert "keep p < 0.7" in recipe and "batch 2" in recipe
    assert "momentum" not in describe_recipe(replace(spec.train, optimizer="adamw"))


def test_paper_rows_builders(tmp_path: Path) -> None:
    rows = table5_rows(["none", "gdpp"], {"epochs50": 1, "epochs100": 2}, {"channels": 8}, 0.25)
    assert [r.key for r in rows] == [
        "none/epochs50",
        "none/epochs100",
        "gdpp/epochs50",
        "gdpp/epochs100",
    ]
    assert [r.reported for r in rows] == [
        "gdc.t5.none.miou",
        None,
        "gdc.t5.gdpp.epochs50.miou",
        "gdc.t5.gdpp.epochs100.miou",
    ]
    assert rows[3].train == {"epochs": 2} and rows[3].config["channels"] == 8
    with pytest.raises(ValueError, match="rows"):
        table5_rows(["pyramid"], {"epochs50": 1}, {}, 1.0)
    data = DataSpec(root=str(tmp_path), offline=TINY)
    sources = label_source_rows(["gdc_pseudo", "full"], data, "LABELS", "mobilenetv2", MNV2)
    assert [(r.key, r.data.train_labels, r.data.pseudo_labels) for r in sources] == [
        ("gdc_pseudo", "pseudo", "LABELS"),
        ("full", "full", "LABELS"),
    ]
    family = family_rows(["dsnet", "fcn"], 16, {"backbone": "resnet18"})
    assert [r.key for r in family] == ["dsnet", "fcn"]
    assert family[0].config["sampled_channels"] == 16 and family[1].config == {
        "backbone": "resnet18"
    }
    with pytest.raises(ValueError, match="models_to_run"):
        family_rows(["pspnet"], 16, {})


# ------------------------------------------------------------------------------ a table
@pytest.mark.slow
def test_run_table_records_the_standard_table(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path / "data")
    recorder = Recorder(tmp_path / "out", setting={"dataset": "mine"})
    table = run_table(spec, recorder)
    for row in ("plain/short", "plain/long"):
        for metric in ("miou", "pixel_acc", "train_images_per_s", "train_minutes"):
            assert recorder.metrics[f"t/{row}/{metric}"].n == 2
        assert recorder.metrics[f"t/{row}/miou"].seeds == [0, 1]
    assert "reference/background_only/miou" in recorder.metrics
    assert table.floor is not None and 0 < table.floor["miou"] < 1
    assert len(table.per_seed) == 4 and set(table.per_seed["row"]) == {"plain/short", "plain/long"}
    assert list(table.per_class.columns[:2]) == ["row", "seed"]
    for name in ("per_seed", "per_class_iou", "configurations"):
        assert (tmp_path / "out" / "tables" / f"{name}.csv").is_file()
    configurations = pd.read_csv(tmp_path / "out" / "tables" / "configurations.csv")
    assert json.loads(configurations["training overrides"][1]) == {"epochs": 2}
    # The notebook's own words win; the rest of the setting comes from the spec.
    assert recorder.setting["dataset"] == "mine"
    assert recorder.setting["epochs"] == "1/2" and recorder.setting["device"] == "cpu"
    assert "adamw" not in recorder.setting["training"] and "lr 0.01" in recorder.setting["training"]
    assert any("background everywhere" in note for note in recorder.notes)

    gain = table.record_difference("t/gain/miou", "plain/long", "plain/short")
    expected = [
        a - b for a, b in zip(table.values("plain/long"), table.values("plain/short"), strict=True)
    ]
    assert gain.values == pytest.approx(expected) and gain.unit == "points"

    reported = pd.DataFrame([{"id": "x.plain", "value": "12.3", "missing": False}])
    versus = table.versus_paper(reported)
    assert versus["paper mIoU (%)"].tolist() == ["12.3", "-"]
    assert versus["this project mIoU (%)"][0] == table.metric("plain/short").format()
    fig, axes = table.figure(metrics=("miou", "pixel_acc"), extra_panels=1)
    assert len(axes) == 4 and axes[0].get_ylabel() == "mIoU (%)"
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["plain/short", "long"]


# ------------------------------------------------------------------------------ rows built on rows
def staged_spec(root: Path) -> TableSpec:
    """A trained row, two evaluations of its models and a fine-tuning that starts from them."""
    spec = tiny_spec(root)
    base = spec.rows[0]
    subset = replace(spec.data, offline={**TINY, "num_train": 2})
    return replace(
        spec,
        rows=[
            base,
            base.evaluated("again"),
            base.evaluated("flipped", eval_flip=True, reported="x.flip", label="flip"),
            Row("tuned", "mobilenetv2", MNV2, {"lr": 1e-9}, data=subset, init_from=base.key),
        ],
    )


def test_rows_that_start_from_or_evaluate_other_rows_are_checked(tmp_path: Path) -> None:
    spec = staged_spec(tmp_path)
    base, again, _, tuned = spec.rows
    assert again.evaluation_of == base.key and again.reported is None
    with pytest.raises(ValueError, match="not another row"):
        replace(spec, rows=[base, replace(tuned, init_from="nothing")])
    with pytest.raises(ValueError, match="evaluation row"):
        replace(spec, rows=[base, again, replace(tuned, init_from="again")])
    with pytest.raises(ValueError, match="may change only"):
        replace(spec, rows=[base, replace(again, train={"epochs": 3})])
    with pytest.raises(ValueError, match="may change only"):
        replace(spec, rows=[base, replace(again, config={**MNV2, "channels": 4})])
    with pytest.raises(ValueError, match="exclude each other"):
        replace(spec, rows=[base, replace(again, init_from=base.key)])
    cycle = [replace(base, init_from="tuned"), replace(tuned, init_from=base.key)]
    with pytest.raises(ValueError, match="cycle"):
        replace(spec, rows=cycle)
    assert [spec.depth(row) for row in spec.rows] == [0, 0, 0, 1]
    # The fine-tuning's identity holds its parent's; the parent keeps its weights, the
    # evaluation rows run the parent's job; nothing else keeps weights unless asked.
    job = spec.job(tuned, 0)
    assert job.init_from == spec.job(base, 0) and job.init_from.keep_weights
    assert job.description()["init_from"] == spec.job(base, 0).description()
    assert spec.job(again, 1) == spec.job(base, 1) and not job.keep_weights
    assert (
        spec.evaluation(spec.rows[2], 0)["eval_flip"] and not spec.evaluation(base, 0)["eval_flip"]
    )


@pytest.mark.slow
def test_evaluation_and_fine_tuning_rows_reuse_the_trained_models(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    spec = staged_spec(tmp_path / "data")
    table = run_table(spec, Recorder(tmp_path / "out"))
    # Evaluating the same models with the same settings gives the same numbers exactly.
    assert table.values("again") == table.values("plain/short")
    assert table.values("flipped", "train min") == table.values("plain/short", "train min")
    assert all(0 <= v <= 100 for v in table.values("flipped"))
    # A fine-tuning at a negligible learning rate keeps its parent's convolutions.
    parent, tuned = table.trained_model("plain/short", 0), table.trained_model("tuned", 0)
    for name, weight in parent.state_dict().items():
        if name.endswith("conv.weight") or name.endswith(".0.weight"):
            assert torch.allclose(weight, tuned.state_dict()[name], atol=1e-6), name
    # ... which the same training from its own initialisation does not.
    alone = replace(spec.rows[3], key="alone", init_from=None)
    scratch = run_table(replace(spec, rows=[alone], keep_weights=True), Recorder(tmp_path / "o"))
    differs = [
        not torch.allclose(weight, scratch.trained_model("alone", 0).state_dict()[name], atol=1e-3)
        for name, weight in parent.state_dict().items()
        if name.endswith(".0.weight")
    ]
    assert differs and all(differs)
    # Re-run: every training and every evaluation is reused, with the same numbers.
    again = run_table(spec, Recorder(tmp_path / "out2"))
    assert all(outcome.reused for _, outcome in again.outcomes)
    assert again.per_seed["mIoU (%)"].tolist() == table.per_seed["mIoU (%)"].tolist()
    configurations = pd.read_csv(tmp_path / "out" / "tables" / "configurations.csv")
    assert configurations["starts from"].fillna("").tolist() == ["", "", "", "plain/short"]


# ------------------------------------------------------------------------------ resumption
def test_run_key_names_what_decides_the_outcome(tmp_path: Path) -> None:
    job = tiny_spec(tmp_path).jobs()[0][1]
    key = run_cache.run_key(job.description(), threads=1)
    assert key == run_cache.run_key(job.description(), threads=1)
    assert key != run_cache.run_key(job.description(), threads=2)
    moved = replace(job, train_config=replace(job.train_config, device="cuda"))
    assert run_cache.run_key(moved.description(), threads=1) == key  # where, not what
    other_seed = replace(job, train_config=replace(job.train_config, seed=5))
    assert run_cache.run_key(other_seed.description(), threads=1) != key
    wider = replace(job, model_config={**job.model_config, "channels": 16})
    assert run_cache.run_key(wider.description(), threads=1) != key


class Interrupted(Exception):
    pass


def untimed(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if not is_timing(key)}


@pytest.mark.slow
def test_an_interrupted_table_resumes_with_the_same_metrics(tmp_path: Path, monkeypatch) -> None:
    spec = tiny_spec(tmp_path / "data", epochs=2, seeds=(0,))
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "uninterrupted"))
    expected = run_table(spec, Recorder(tmp_path / "a"), floor=False)

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "interrupted"))
    real_train = supervised.train
    calls: list[int] = []

    def train_then_stop(model, train_set, val_set, config, **kwargs):
        calls.append(config.epochs)

        def stop_after_first_epoch(record) -> None:
            if len(calls) == 2 and record.epoch == 1:  # the second run, after its epoch 1
                raise Interrupted

        return real_train(
            model, train_set, val_set, config, **kwargs, on_epoch_end=stop_after_first_epoch
        )

    monkeypatch.setattr(supervised, "train", train_then_stop)
    with pytest.raises(Interrupted):
        run_table(spec, Recorder(tmp_path / "b"), floor=False)
    monkeypatch.setattr(supervised, "train", real_train)
    cache = tmp_path / "interrupted" / "runs"
    assert len(list(cache.glob("*/outcome.json"))) == 1  # the first run finished
    assert len(list(cache.glob("*/checkpoints/last.pt"))) == 1  # the second stopped after an epoch

    resumed = run_table(spec, Recorder(tmp_path / "c"), floor=False)
    first, second = (outcome for _, outcome in resumed.outcomes)
    assert first.reused and not second.reused
    assert second.resumed_from_epoch == 1
    for (_, a), (_, b) in zip(expected.outcomes, resumed.outcomes, strict=True):
        assert untimed(a.metrics) == untimed(b.metrics)
        assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert not list(cache.glob("*/checkpoints"))  # finished runs keep only their outcome


def test_a_broken_outcome_file_is_trained_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    job = RunJob(
        "mobilenetv2",
        MNV2,
        tiny_spec(tmp_path).data,
        TrainConfig(epochs=1, batch_size=2, lr=0.01, eval_every=0),
    )
    folder = run_cache.runs_cache_dir() / run_cache.run_key(job.description(), 1)
    folder.mkdir(parents=True)
    (folder / run_cache.OUTCOME_FILE).write_text("{truncated")
    outcome = run_cached(job, threads=1, progress=False)
    assert not outcome.reused
    assert json.loads((folder / run_cache.OUTCOME_FILE).read_text())["seed"] == 0


def _wait_for(condition, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(
                f"the run ended before it could be interrupted: {process.returncode}"
            )
        if time.monotonic() > deadline:
            raise AssertionError("the run never reached the point to interrupt it")
        time.sleep(0.2)


@pytest.mark.slow
def test_repro_run_resumes_an_interrupted_notebook_at_smoke(tmp_path: Path) -> None:
    """Stop ``repro run feasibility`` (SIGTERM) after its first run finished and the second
    wrote a checkpoint; the re-run reuses the first, resumes the second, and records the
    metrics of an uninterrupted run."""
    # Four epochs: the second run's checkpoint exists for three of them, time enough to see it.
    parameters = ["-p", "epochs", "4", "-p", "models_to_run", "dsnet,fcn"]

    def start(cache: Path, out: Path) -> subprocess.Popen:
        env = {**os.environ, "REPRO_CACHE": str(cache), "PYTHONPATH": str(REPO)}
        return subprocess.Popen(
            [sys.executable, "-m", "repro", "run", "feasibility", "--profile", "smoke",
             "--out", str(out), "--no-progress", *parameters],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    cache = tmp_path / "cache"
    runs = cache / "runs"
    process = start(cache, tmp_path / "stopped")
    _wait_for(
        lambda: (
            len(list(runs.glob("*/outcome.json"))) == 1
            and len(list(runs.glob("*/checkpoints/last.pt"))) == 1
        ),
        timeout=300,
        process=process,
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    resumed = start(cache, tmp_path / "resumed")
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log
    executed = (tmp_path / "resumed" / "feasibility" / "smoke" / "feasibility.ipynb").read_text()
    assert "finished earlier: reused" in executed and "resumed after epoch" in executed

    fresh = start(tmp_path / "fresh_cache", tmp_path / "fresh")
    fresh_log = fresh.communicate(timeout=600)[0]
    assert fresh.returncode == 0, fresh_log

    def metrics(out: Path) -> dict:
        return json.loads((out / "feasibility" / "smoke" / "metrics.json").read_text())["metrics"]

    assert fingerprint_of(metrics(tmp_path / "resumed")) == fingerprint_of(
        metrics(tmp_path / "fresh")
    )


def test_the_code_hash_ignores_prose_but_not_code(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text('"""Doc."""\n\n\ndef f(x):\n    """Doc."""\n    return x + 1  # why\n')
    base = run_cache._code_form(source)
    source.write_text('"""Other words."""\ndef f(x):\n    """More."""\n    return x + 1\n')
    assert run_cache._code_form(source) == base
    source.write_text('"""Doc."""\ndef f(x):\n    return x + 2\n')
    assert run_cache._code_form(source) != base


# ------------------------------------------------------------------------------ device
def test_the_spec_device_reaches_training_and_evaluation(tmp_path: Path, monkeypatch) -> None:
    """TableSpec.train.device -> RunJob -> train() -> the model -> final_evaluation(device)."""
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    seen: dict[str, list] = {"train": [], "evaluate": [], "parameters": []}
    real_train, real_evaluate = supervised.train, supervised.final_evaluation

    def spy_train(model, train_set, val_set, config, **kwargs):
        seen["train"].append(config.device)
        return real_train(model, train_set, val_set, config, **kwargs)

    def spy_evaluate(model, val_set, num_classes, config, device, progress=True):
        seen["evaluate"].append(device)
        seen["parameters"].append({p.device for p in model.parameters()})
        return real_evaluate(model, val_set, num_classes, config, device, progress)

    monkeypatch.setattr(supervised, "train", spy_train)
    monkeypatch.setattr(supervised, "final_evaluation", spy_evaluate)
    spec = tiny_spec(tmp_path / "data", seeds=(0,))
    spec = replace(spec, rows=spec.rows[:1], train=replace(spec.train, device="auto"))
    recorder = Recorder(tmp_path / "out")
    run_table(spec, recorder, floor=False)
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert seen["train"] == ["auto"]
    assert seen["evaluate"] == [expected] and seen["parameters"] == [{expected}]
    assert recorder.setting["device"] == str(expected)
