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
#     title: "Feasibility: what a 2-core CPU can train on the offline dataset"
#     paper: project
#     regenerates: [feasibility study]
#     description: >-
#       Trains a plain FCN head, DeepLabv3+ and DSNet on a dilated ResNet-18 (output stride 16)
#       on the offline dataset at 128x128; reports mIoU over seeds, throughput and DSNet's time
#       overhead, which decide the size of every later cpu profile.
#     profiles:
#       smoke: {num_train: 16, num_val: 8, image_size: 64, epochs: 1, batch_size: 4, width: 32, seeds: [0], parallel_runs: 1}
#       cpu: {}
#       full: {dataset: voc_aug, image_size: 512, train_scale_range: [0.5, 2.0], num_train: 10582, num_val: 1449, backbone: resnet101, width: 256, epochs: 50, batch_size: 16, optimizer: sgd, lr: 0.01, head_lr_mult: 0.1, weights: IMAGENET1K_V1, device: cuda, parallel_runs: 1, num_threads: 8}
# ---

# %% [markdown]
# # Feasibility: what a 2-core CPU can train on the offline dataset
#
# Before any table is reproduced at reduced scale, this study measures what fits: a plain FCN
# head (no context module), DeepLabv3+ (the DSNet baseline) and DSNet, all on a dilated
# ResNet-18 at output stride 16, trained from random initialisation on the offline dataset.
# Two questions: is the dataset hard enough that context matters (FCN clearly below the context
# models) and easy enough to learn on a CPU; and how many images per second each model trains,
# which sets the budget of every later `cpu` profile.
#
# **The `cpu` recipe departs from the papers' in three ways**: AdamW instead of SGD, no random
# rescaling of the training crops (the offline objects already vary 9x in scale within a class,
# and a 2x zoom of a 128-pixel image can cut the outline that names a shape), and a grey
# background with coloured objects (offline generator version 2: colour says *that* a pixel is
# an object, never *which* shape). Heads and context modules train at 0.1x the backbone's rate,
# as the DSNet text sets it (`head_lr_mult`). The [recipe probes](recipe_probes.ipynb) compare
# the optimizer, the rescaling and the head rate with the alternatives at equal budget, on
# paired seeds. The `full` profile keeps the papers' SGD recipe, rescaling and ImageNet
# backbone, on the GPU. Deep supervision (the auxiliary X(4) loss of DSNet Table 2) is one
# parameter applied to all three models alike.
#
# The budget is 9 epochs, as many as the slowest model (DeepLabv3+) trains within 15 minutes
# per run (its speed is measured below).

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
dataset: str = "offline"  # offline, or a real dataset name (full profile)
models_to_run: list[str] = ["fcn", "deeplabv3plus", "dsnet"]  # registry names [unique]
backbone: str = "resnet18"  # torchvision ResNet, dilated
weights: str = "none"  # none (random init), a torchvision weights name, or a file
output_stride: int = 16  # backbone output stride [>= 1]
width: int = 128  # channels of ASPP, decoder and DSNet branches (paper: 256) [>= 1]
image_size: int = 128  # offline image side = training crop [>= 16]
num_classes: int = 9  # offline dataset: background + this many - 1 shapes (9: all eight) [>= 2]
train_scale_range: list[float] = [1.0, 1.0]  # random rescaling of training crops (papers: 0.5-2.0) [> 0, len 2]
num_train: int = 1000  # training images (offline dataset) [>= 1]
num_val: int = 100  # validation images (offline dataset) [>= 1]
epochs: int = 9  # training epochs (9: the slowest model's runs within 15 minutes) [>= 1]
batch_size: int = 8  # images per optimiser step [>= 1]
optimizer: Literal["sgd", "adamw"] = "adamw"  # paper: sgd; adamw at cpu (random init, recipe probes)
lr: float = 0.001  # backbone learning rate (DSNet: 0.01 with SGD and an ImageNet backbone) [> 0]
weight_decay: float = 1e-4  # SGD weight decay (DSNet: 1e-4) or AdamW's decoupled decay [>= 0]
head_lr_mult: float = 0.1  # rest of the network relative to lr (the DSNet text's 0.1) [> 0]
deep_supervision: bool = False  # auxiliary FCN loss on X(4), for every model alike (DSNet Table 2 "DS")
seeds: list[int] = [0, 1, 2]  # one training run per seed and model [>= 0, unique]
device: str = "auto"  # auto (CUDA when available, else CPU), cpu, cuda or cuda:N
parallel_runs: int = 2  # training runs side by side (2 on 2 cores: ~30% more img/s than 1 x 2 threads) [>= 1]
num_threads: int = 1  # torch CPU threads per run [>= 1]
# fmt: on

# %%
import torch

from repro.audit.verdicts import SUPPORTED, judge_greater, spread
from repro.engine import TrainConfig
from repro.experiments.dsnet import family_rows
from repro.experiments.supervised import DataSpec
from repro.experiments.table import TableSpec, run_table
from repro.results import Recorder

torch.set_num_threads(num_threads)  # this process's own work (the floor, the tables)
common = {
    "backbone": backbone,
    "output_stride": output_stride,
    "weights": None if weights == "none" else weights,
    "deep_supervision": deep_supervision,
}
# FCN last: with runs side by side, the one left alone at the end trains faster, and FCN's
# time is not part of the DSNet/DeepLabv3+ overhead ratio.
spec = TableSpec(
    prefix="",
    rows=family_rows(sorted(models_to_run, key=lambda name: name == "fcn"), width, common),
    seeds=seeds,
    data=DataSpec(
        dataset=dataset,
        crop_size=image_size,
        scale_range=tuple(train_scale_range),
        offline={
            "image_size": image_size,
            "num_train": num_train,
            "num_val": num_val,
            "num_classes": num_classes,
        },
    ),
    train=TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        head_lr_mult=head_lr_mult,
        eval_every=0,
        device=device,
    ),
    metrics=("miou", "pixel_acc", "boundary_f"),
)
recorder = Recorder(
    output_dir,
    setting={
        "backbone": f"{backbone} (OS {output_stride}, {'random init' if weights == 'none' else weights})",
        "deep supervision": "aux X(4) loss, all models" if deep_supervision else "none",
    },
)

# %% [markdown]
# ## Train every model with every seed

# %%
table = run_table(spec, recorder, processes=parallel_runs, threads_per_process=num_threads)
table.summary()

# %% [markdown]
# Per class: compact shapes (disc, square, triangle) against those with thin parts (ring,
# cross, bar, star, crescent), where an output stride of 16 without a decoder loses detail.

# %%
table.per_class.drop(columns=["seed"]).groupby("row", sort=False).mean().round(1)

# %%
fig, _ = table.figure(metrics=("miou", "boundary_f"))
recorder.save_figure(fig, "feasibility")

# %% [markdown]
# ## Does context matter on this dataset?
# The offline dataset is meant to be hard enough that a plain FCN does clearly worse than a
# model with context. The check uses the audit's `greater` rule (`repro.audit.verdicts`): FCN
# is below the context model by more than the seed-to-seed spread of the difference, in mIoU
# (naming the shapes) and in boundary F (placing their outlines), for each context model.

# %%
if "fcn" in models_to_run:
    for key, words in (("miou", "mIoU"), ("boundary_f", "boundary F")):
        fcn = table.metric("fcn", key)
        for name in [m for m in ("deeplabv3plus", "dsnet") if m in models_to_run]:
            other = table.metric(name, key)
            verdict, _ = judge_greater(fcn, {name: other}, higher_is_better=False)
            recorder.note(
                f"FCN clearly below {name} in {words}: "
                f"{'holds' if verdict == SUPPORTED else 'does not hold'} ({name} "
                f"{other.mean - fcn.mean:+.2f} points over FCN; spread of the difference "
                f"{spread(fcn, other):.2f}, n = {fcn.n} and {other.n})."
            )
            print(recorder.notes[-1])

# %% [markdown]
# ## The budget this implies

# %%
if {"dsnet", "deeplabv3plus"} <= set(models_to_run):
    dsnet, baseline = table.runs("dsnet"), table.runs("deeplabv3plus")
    ratios = dsnet["train min"].to_numpy() / baseline["train min"].to_numpy()
    recorder.add(
        "dsnet_overhead/time_ratio",
        ratios.tolist(),
        seeds=dsnet["seed"],
        description="DSNet training time / DeepLabv3+ training time",
    )
    print(f"DSNet trains in {ratios.mean():.2f}x the time of DeepLabv3+")
slowest = table.per_seed.groupby("row")["train img/s"].mean().min()
budget_images = slowest * 15 * 60
recorder.note(
    f"At the slowest model's {slowest:.1f} training images/s, 15 minutes per run buys about "
    f"{budget_images:,.0f} image presentations (e.g. {num_train} images x "
    f"{budget_images / num_train:.1f} epochs at {image_size}x{image_size}); a cpu-profile table "
    "of k configurations x 3 seeds must fit that per run."
)
print(recorder.notes[-1])
recorder.write()
