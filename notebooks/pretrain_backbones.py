# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   repro:
#     title: "Offline pretraining: a stand-in for ImageNet-pretrained backbones"
#     paper: project
#     regenerates: [offline-pretrained backbones]
#     description: >-
#       Pretrains the backbones of the cpu profiles (dilated ResNet-18 of the feasibility study,
#       MobileNetV2 x0.5 of the GDC tables, MobileNetV2 x1.0 of GDC's single-image network) on
#       image classification of generated images disjoint from every experiment's data (texture
#       sources of the package photos and eight shapes that are not the offline classes), writes
#       the weights named "offline-pretrained" with their SHA-256, and shows what pretraining
#       gave them: linear probes on the offline shapes against random initialisation over
#       seeds, and the first-layer filters.
#     profiles:
#       smoke: {image_size: 32, num_train: 64, num_val: 32, epochs: 1, batch_size: 16, probe_train: 48, probe_test: 24, seeds: [0, 1], parallel_runs: 1}
#       cpu: {}
# ---

# %% [markdown]
# # Offline pretraining: a stand-in for ImageNet-pretrained backbones
#
# Every paper of this book starts from backbones pretrained on ImageNet (DSNet: ResNet-101;
# GDC: MobileNetV2 and ResNet-101; DDSM: ResNets), and this project can download nothing, so
# its `cpu` networks have so far started from random weights. This notebook builds the closest
# honest stand-in: it pretrains the same torchvision architectures that the `cpu` profiles use
# on an image classification task of their own, on images that are in no experiment's training
# or validation split, and publishes the weights under one name, `weights="offline-pretrained"`,
# accepted wherever a torchvision weights name is.
#
# **The backbones.** The feasibility study's dilated ResNet-18 (`resnet18`; the file holds the
# plain torchvision network, dilated when a model is built, as ImageNet weights are); the GDC
# tables' MobileNetV2 at width 0.5 (`mobilenet_v2_x0.5`); and MobileNetV2 at width 1.0
# (`mobilenet_v2_x1.0`), whose first layers (`features[0:4]`: the 16-channel first layer and
# the 24-channel first bottleneck) are the frozen feature extractor of GDC's single-image
# network (GDC Sec. IV-A1). That extractor is never trained, so its weights are all its
# features are: for it, pretraining is the whole difference.
#
# **The task, and why this one.** Three candidates were open:
#
# 1. *segmentation on an offline split generated with its own seed*: the downstream task
#    itself, with its eight shape classes. Its images would be new, its labels would not:
#    this is more training data for the very task the experiments measure, not a stand-in for
#    ImageNet, whose classes are not those of PASCAL VOC. It would make every pretrained
#    result look better than ImageNet pretraining can make a VOC result look, and it learns
#    features specialised to those eight shapes;
# 2. *classification of the package photos' crops*: which of the photos and textures a crop
#    comes from. It asks for colour and texture filters but never for an outline;
# 3. *classification of shapes drawn with other generator settings*: asks for edges, corners
#    and outlines, the features that shape classes rest on.
#
# This notebook uses **2 and 3 together**, as one classification task: half of the images are
# a crop of one package photo or texture, labelled by its source image (`texture:` classes);
# the other half show one object of a **pretraining shape** (ellipse, pentagon, hexagon,
# semicircle, L, T, chevron, hourglass; none is one of the offline dataset's disc, ring,
# square, triangle, cross, bar, star, crescent) on a textured background with clutter, in
# colour or in grey, labelled by its shape (`shape:` classes). A network solves it only with
# both kinds of early features that an ImageNet network ends up with, texture and colour
# filters and edge and contour detectors, and no pretraining label is an experiment's class,
# as no ImageNet class is a VOC class by construction. The images share the photos' statistics
# with the offline dataset, as ImageNet and VOC share those of Flickr photos; none of them is
# one of its images: each has a random stream of its own (`repro.data.pretraining`), other
# shapes and other backgrounds.
#
# **The evidence.** Two checks on this page, against random initialisation:
#
# * a **linear probe** on a held-out task, the usual measure of learnt features: the backbone
#   is frozen, its features on images of the *offline dataset's eight shapes* (one object each,
#   with the offline dataset's look; classes that pretraining never saw) are average-pooled
#   and a multinomial logistic regression is fitted on them; its test accuracy is reported at an
#   early tap (stride 4; for MobileNetV2 x1.0 the single-image network's extractor) and at the
#   backbone's output, over several seeds. A seed draws new probe images for both sides and
#   the random initialisation of the random side; there is one pretraining run per backbone
#   (the published artefact), so the pretrained side's spread is that of the probe only;
# * the **first-layer filters**, drawn as images.
#
# **The budget.** The `cpu` profile is sized, from a timing of one training step of each
# backbone, to take about 25 minutes of two CPU cores: the two MobileNetV2 runs one after the
# other beside the ResNet-18 run, at 64×64, `num_train` × `epochs` image presentations per
# backbone (ImageNet pretraining shows 1.28 million images for tens of epochs). The minutes it
# took are in the table below; what it buys is measured below, at this setting only.

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
architectures: list[str] = ["resnet18", "mobilenet_v2_x0.5", "mobilenet_v2_x1.0"]  # backbones to pretrain [unique]
image_size: int = 64  # side of the pretraining and probe images [>= 16]
num_train: int = 16000  # pretraining images (generated when read) [>= 1]
num_val: int = 1000  # held-out pretraining images (pretraining accuracy) [>= 1]
texture_share: float = 0.5  # share of texture-crop images (the rest show a pretraining shape) [>= 0, <= 1]
grey_background_share: float = 0.5  # share of shape images on a grey background [>= 0, <= 1]
pretrain_seed: int = 1  # seed of the pretraining images (their random stream is their own) [>= 0]
epochs: int = 3  # passes over the pretraining images (a checkpoint after each) [>= 1]
batch_size: int = 32  # images per optimiser step [>= 1]
optimizer: Literal["sgd", "adamw"] = "adamw"  # adamw, as the cpu profiles train from scratch
lr: float = 0.003  # learning rate (poly schedule) [> 0]
weight_decay: float = 1e-4  # AdamW's decoupled weight decay (or SGD's) [>= 0]
train_seed: int = 0  # seed of the initial weights, sample order and flips of pretraining [>= 0]
probe_train: int = 1000  # probe images the linear classifier is fitted on, per seed [>= 1]
probe_test: int = 500  # probe images it is scored on, per seed [>= 1]
probe_grid_early: int = 4  # early features are average-pooled to this grid [>= 1]
probe_grid_deep: int = 1  # deep features are average-pooled to this grid (1: global) [>= 1]
probe_l2: float = 1e-3  # L2 weight of the probe's logistic regression [> 0]
seeds: list[int] = [0, 1, 2]  # probe seeds: new probe images and new random weights each [>= 0, unique]
device: str = "auto"  # auto (CUDA when available, else CPU), cpu, cuda or cuda:N
parallel_runs: int = 2  # pretraining runs side by side [>= 1]
num_threads: int = 1  # torch CPU threads per pretraining run [>= 1]
# fmt: on

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from repro.audit.verdicts import SUPPORTED, judge_greater, spread
from repro.data.pretraining import PretrainTask, ProbeTask
from repro.engine import TrainConfig, resolve_device
from repro.experiments.pretraining import (
    PROBE_TAPS,
    ProbeTaps,
    first_layer_weight,
    pretrain_many,
    probe_table,
    spec_for,
)
from repro.experiments.table import describe_recipe
from repro.models import pretrained
from repro.results import Recorder
from repro.viz.pretraining import plot_filters, plot_grouped_bars, plot_samples

torch.set_num_threads(num_threads)
task = PretrainTask(
    image_size=image_size,
    num_train=num_train,
    num_val=num_val,
    texture_share=texture_share,
    grey_background_share=grey_background_share,
    seed=pretrain_seed,
)
probe = ProbeTask(image_size=image_size, num_train=probe_train, num_test=probe_test)
config = TrainConfig(
    epochs=epochs,
    batch_size=batch_size,
    optimizer=optimizer,
    lr=lr,
    weight_decay=weight_decay,
    seed=train_seed,
    eval_every=0,
    device=device,
)
# One spelling per backbone ("mobilenet_v2_x1" is "mobilenet_v2_x1.0"), as the record has it.
architectures = [
    pretrained.architecture_label(*pretrained.parse_architecture(a)) for a in architectures
]
backbones = {label: pretrained.parse_architecture(label) for label in architectures}
specs = {
    label: spec_for(arch, width, task, config, num_threads)
    for label, (arch, width) in backbones.items()
}
grids = {"early": probe_grid_early, "deep": probe_grid_deep}
texture_classes = sum(name.startswith("texture:") for name in task.class_names)
recorder = Recorder(
    output_dir,
    setting={
        "pretraining data": (
            f"{num_train} generated {image_size}x{image_size} images ({num_val} held out), "
            f"{len(task.class_names)} classes: {texture_classes} texture sources and "
            f"{len(task.class_names) - texture_classes} pretraining shapes; seed {pretrain_seed}"
        ),
        "backbones": ", ".join(architectures) + " (torchvision, pretrained from random init)",
        "training": describe_recipe(config) + f"; {epochs} epochs; seed {train_seed}",
        "probe": (
            f"offline shapes, {len(probe.class_names)} classes, {probe_train} fit / {probe_test} "
            f"test images per seed at {image_size}x{image_size}; frozen features pooled to "
            f"{probe_grid_early}x{probe_grid_early} (early) and {probe_grid_deep}x"
            f"{probe_grid_deep} (deep); logistic regression, L2 {probe_l2:g}"
        ),
        "seeds": f"probe seeds {', '.join(map(str, seeds))}; one pretraining run per backbone",
        "device": str(resolve_device(device)),
        "threads": (
            f"pretraining: {parallel_runs} run(s) side by side, {num_threads} thread(s) each; "
            f"probes: {parallel_runs * num_threads} thread(s)"
        ),
    },
)

# %% [markdown]
# ## The images
# Pretraining images (top: texture crops named by their source, pretraining shapes) and probe
# images (bottom: the offline dataset's shapes, which pretraining never names).

# %%
fig = plot_samples(
    lambda i: task.sample("train", i), task.class_names, 12, title="pretraining task"
)
recorder.save_figure(fig, "pretraining_images")
fig = plot_samples(
    lambda i: probe.sample("train", i), probe.class_names, 12, title="held-out probe task"
)
recorder.save_figure(fig, "probe_images")

# %% [markdown]
# ## Pretrain every backbone
# With `repro.engine.train` (the classification logits as a 1×1 map; AdamW, poly schedule,
# a checkpoint per epoch): an interrupted run resumes from its last epoch, and a finished run
# is reused while its file keeps its hash.

# %%
# The slowest run (ResNet-18) first: with two processes, the MobileNetV2 runs, each about
# half as long, follow each other beside it.
order = sorted(specs, key=lambda label: not label.startswith("resnet"))
outcomes = dict(
    zip(order, pretrain_many([specs[label] for label in order], parallel_runs, device), strict=True)
)
chance = 100 / len(task.class_names)
lines = []
for label in architectures:
    outcome, spec = outcomes[label], specs[label]
    seed_list = [train_seed]
    recorder.add(
        f"pretrain/{label}/val_accuracy",
        100 * outcome.val_accuracy,
        seed_list,
        "%",
        "top-1 accuracy on the held-out pretraining images",
    )
    recorder.add(
        f"pretrain/{label}/final_loss",
        outcome.history[-1]["loss"],
        seed_list,
        description="mean training loss of the last epoch",
    )
    recorder.add(f"pretrain/{label}/train_minutes", outcome.train_seconds / 60, seed_list, "min")
    recorder.add(
        f"pretrain/{label}/train_images_per_s", outcome.train_images_per_s, seed_list, "img/s"
    )
    entry = recorder.artefact(f"weights/{label}", outcome.path, **pretrained.artefact_details(spec))
    lines.append(
        {
            "backbone": label,
            "parameters": outcome.parameters,
            "val accuracy (%)": 100 * outcome.val_accuracy,
            "train min": outcome.train_seconds / 60,
            "train img/s": outcome.train_images_per_s,
            "file": entry["file"],
            "MB": entry["bytes"] / 1e6,
            "sha256": entry["sha256"],
            "reused": outcome.reused,
        }
    )
recorder.add(
    "pretrain/chance", chance, unit="%", description="accuracy of guessing one class (1/K)"
)
weights_table = pd.DataFrame(lines)
recorder.save_table(weights_table, "weights")
print(f"chance on the pretraining task: {chance:.1f}%")
weights_table.round(2)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for label in architectures:
    curve = [record["loss"] for record in outcomes[label].history]
    ax.plot(range(1, len(curve) + 1), curve, marker="o", label=label)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_title("pretraining loss per epoch")
ax.legend()
recorder.save_figure(fig, "pretraining_loss")

# %% [markdown]
# ## Linear probes on the offline shapes
# Accuracy of a linear classifier on frozen features, pretrained against random
# initialisation, per backbone and tap; chance is one in eight. "Holds" means the audit's
# `greater` rule: the pretrained mean exceeds the random one by more than the spread of the two.

# %%
# Pretraining is over: the probes may use every core the runs had.
torch.set_num_threads(parallel_runs * num_threads)
per_seed = probe_table(
    [(label, str(outcomes[label].path)) for label in architectures], seeds, probe, grids, probe_l2
)
recorder.save_table(per_seed, "probe_per_seed")
recorder.add(
    "probe/chance",
    100 / len(probe.class_names),
    unit="%",
    description="probe accuracy of guessing one class",
)
for label in architectures:
    for tap in PROBE_TAPS:
        runs = per_seed[(per_seed["backbone"] == label) & (per_seed["tap"] == tap)]
        runs = runs.sort_values("seed")
        where = f"probe/{label}/{tap}"
        first = recorder.add(
            f"{where}/pretrained", runs["pretrained (%)"], runs["seed"], "%", "probe accuracy"
        )
        second = recorder.add(
            f"{where}/random", runs["random init (%)"], runs["seed"], "%", "probe accuracy"
        )
        recorder.add(
            f"{where}/gain",
            (runs["pretrained (%)"] - runs["random init (%)"]).tolist(),
            runs["seed"],
            "points",
            "pretrained minus random init, same probe images",
        )
        verdict, _ = judge_greater(first, {"random": second}, higher_is_better=True)
        recorder.note(
            f"{label}, {tap} features: pretrained above random init "
            f"{'holds' if verdict == SUPPORTED else 'does not hold'} (pretrained "
            f"{first.format()} against {second.format()} % probe accuracy; spread "
            f"{spread(first, second):.2f})."
        )
        print(recorder.notes[-1])
summary = per_seed.drop(columns=["seed"]).groupby(["backbone", "tap"], sort=False)
summary.agg(["mean", "std", "count"]).round(2)

# %%
fig, axes = plt.subplots(1, len(PROBE_TAPS), figsize=(6 * len(PROBE_TAPS), 4), squeeze=False)
for ax, tap in zip(axes[0], PROBE_TAPS, strict=True):
    runs = per_seed[per_seed["tap"] == tap]
    sides = {
        side.split(" (")[0]: [
            runs.loc[runs["backbone"] == label, side].tolist() for label in architectures
        ]
        for side in ("pretrained (%)", "random init (%)")
    }
    chance_line = 100 / len(probe.class_names)
    plot_grouped_bars(
        ax, architectures, sides, "probe accuracy (%)", f"{tap} features", chance_line
    )
fig.tight_layout()
recorder.save_figure(fig, "linear_probes")

# %% [markdown]
# The early taps, per backbone: ResNet-18's X(2) (`layer1`, stride 4); MobileNetV2 x0.5's
# low-level map (`features[0:4]`, stride 4); MobileNetV2 x1.0's single-image extractor.

# %%
print({label: ProbeTaps(*backbones[label], None).early_description for label in architectures})

# %% [markdown]
# ## First-layer filters
# Each tile is one filter of the first convolution (ResNet-18: 7×7; MobileNetV2: 3×3), scaled
# on its own (grey is zero), pretrained (left) and at random initialisation (right, seed
# `seeds[0]`).

# %%
fig, axes = plt.subplots(len(architectures), 2, figsize=(8, 3.6 * len(architectures)))
axes = axes.reshape(len(architectures), 2)
for row, label in enumerate(architectures):
    arch, width = backbones[label]
    plot_filters(
        axes[row, 0],
        first_layer_weight(arch, width, str(outcomes[label].path)),
        f"{label}: pretrained",
    )
    plot_filters(
        axes[row, 1], first_layer_weight(arch, width, None, seeds[0]), f"{label}: random init"
    )
fig.tight_layout()
recorder.save_figure(fig, "first_layer_filters")

# %% [markdown]
# ## Using the weights
# A run of this notebook at `cpu` through `repro run pretrain_backbones --profile cpu` writes
# the weights files into the cache (`$REPRO_CACHE/weights/<key>.pt`, default
# `~/.cache/repro/weights`; they are never committed) and records each file's name, size,
# SHA-256 and parameters in `results/pretrain_backbones/cpu/metrics.json` (section
# `artefacts`). From then on, any backbone of those architectures takes them by name:
#
# ```python
# build("mobilenetv2_gdpp", 9, width_mult=0.5, weights="offline-pretrained")  # GDC tables
# build("fcn", 9, backbone="resnet18", weights="offline-pretrained")          # feasibility
# SingleImageConfig(weights="offline-pretrained")                             # GDC single image
# ```
#
# or, in a notebook, `-p weights offline-pretrained`. The name is resolved against the
# committed record: the file must be in the cache with the recorded hash, or the error says to
# run this notebook (`repro.models.pretrained`); a run cache key holds the files' hashes, so
# runs on other weights are never reused.

# %%
recorder.write()
