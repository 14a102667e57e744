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
#     title: "GDC Tables I, IV, VII: single-image segmentation from scribbles"
#     paper: gdc
#     regenerates: [Table I, Table IV, Table VII]
#     description: >-
#       GDC's per-image procedure (fresh lightweight network, frozen MobileNetV2 features, 50
#       steps on SLIC-expanded scribbles, 50 averaged draws) with a normal, dilated (6/16/24),
#       deformable, GDC and uniform-random layer; a sigma sweep; and the two sampling choices on
#       which the paper and the authors' code disagree.
#     profiles:
#       smoke: {num_images: 2, steps: 3, num_draws: 2, seeds: [0], sigmas: [0.1, 0.2, 0.3], sgd_check_steps: 3, weights: none, parallel_runs: 1}
#       cpu: {}
#       full: {dataset: voc, num_images: 1449, channels: 64, optimizer: sgd, weights: IMAGENET1K_V1, device: cuda, parallel_runs: 1, num_threads: 8}
# ---

# %% [markdown]
# # GDC Tables I, IV and VII: single-image segmentation from scribbles
#
# **Scope.** GDC (Sun et al., TCSVT 2021, Sections IV-A and V-A) segments one image at a time:
# a fresh lightweight network (frozen first layers of MobileNetV2, a fusing convolution, a
# normal 3×3 branch beside the *layer under test*, a small classifier) is optimised for 50 SGD
# steps (learning rate 0.01) on the image's scribbles, expanded to SLIC superpixels, with a
# class-weighted cross-entropy (Eq. 5–6); the prediction averages 50 stochastic passes. Table I
# compares the layer under test (normal, dilated 6/16/24, deformable, GDC with σ = 0.2),
# Table IV sweeps σ and Table VII replaces the half-Gaussian offsets with uniform ones.
#
# **Setting here.** The offline procedural dataset's validation images (shapes on real
# textures, up to 9 classes, scribbles synthesised from the labels), not Pascal VOC/Context. The
# frozen MobileNetV2 layers carry this project's stand-in for ImageNet features,
# `offline-pretrained`: pretrained on procedurally generated images from package photos, not
# ImageNet ([pretraining](pretrain_backbones.ipynb)). Each configuration runs with several seeds
# (the seed sets the network's initialisation and every offset draw); mIoU and pixel accuracy
# come from one confusion matrix accumulated over the image set. The procedure is
# `repro.singleimage.segment_image`, the same function `repro segment` runs.
#
# **The paper's optimiser, and how the verdicts depend on the features.** On random frozen
# features plain SGD at learning rate 0.01 does not move the loss in 50 steps, so earlier runs
# of this notebook used Adam. On the pretrained stand-in it does (the check cell shows the loss
# curves on both), so the `cpu` profile uses the paper's SGD; rows `normal@adam` and
# `gdc_sigma0.2@adam` score Adam on the same features, and rows `random/...` repeat Tables I and
# VII on random features with Adam (`random_optimizer`), the setting of those earlier runs, so
# the book shows which verdicts hold on both kinds of features.

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
dataset: Literal["offline", "voc", "context"] = "offline"  # offline, or a real dataset (full)
num_images: int = 32  # validation images segmented per configuration and seed [>= 1]
image_size: int = 128  # offline image side [>= 16]
num_classes: int = 9  # offline classes (background + shapes) [>= 2]
steps: int = 50  # optimisation steps per image (paper: 50) [>= 1]
lr: float = 0.01  # learning rate (paper: 0.01) [> 0]
optimizer: Literal["sgd", "adam"] = "sgd"  # paper: sgd (learns on the pretrained stand-in; see the check cell)
momentum: float = 0.9  # SGD momentum (not in the paper) [>= 0, < 1]
num_draws: int = 50  # averaged test-time passes of GDC / uniform (paper: 50) [>= 1]
channels: int = 32  # width of the trainable part (the paper does not give it) [>= 1]
sigmas: list[float] = [0.05, 0.1, 0.2, 0.3, 0.5]  # Table IV sweep (paper: 0.1, 0.2, 0.3) [> 0, unique]
dilations: list[int] = [6, 16, 24]  # Table I's dilation rates [>= 1, unique]
weights: str = "offline-pretrained"  # MobileNetV2 weights: offline-pretrained (this project's stand-in), none (random), a torchvision name, or a file
random_feature_rows: bool = True  # also run Table I/VII's rows on random frozen features
random_optimizer: Literal["sgd", "adam"] = "adam"  # the optimiser of those rows (sgd does not learn on random features)
sgd_check_steps: int = 50  # steps of the SGD-vs-Adam loss check (0 = skip) [>= 0]
seeds: list[int] = [0, 1, 2]  # one pass over the images per seed [>= 0, unique]
device: str = "cpu"  # cpu, cuda, cuda:N or auto (CUDA when available)
parallel_runs: int = 2  # (configuration, seed) evaluations side by side [>= 1]
num_threads: int = 1  # torch CPU threads per evaluation [>= 1]
# fmt: on

# %%
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from repro.audit.reported import load_reported
from repro.data.transforms import denormalize
from repro.models.pretrained import describe_weights
from repro.results import Recorder
from repro.singleimage import ImageSet, SingleImageConfig, evaluate_grid, segment_image
from repro.viz.bars import plot_grouped_mean_std_bars, plot_mean_std_bars

torch.set_num_threads(num_threads)
if 0.2 not in sigmas:
    raise ValueError(f"sigmas must contain 0.2 (Table I's GDC), got {sigmas}")
options = {"num_classes": num_classes, "image_size": image_size} if dataset == "offline" else {}
images = ImageSet.first(dataset, num_images, options)  # a real dataset fails without its files
data, indices = images.load(), list(images.indices)
base = SingleImageConfig(
    steps=steps,
    lr=lr,
    optimizer=optimizer,
    momentum=momentum,
    num_draws=num_draws,
    channels=channels,
    weights=None if weights == "none" else weights,
    device=device,
)
recorder = Recorder(
    output_dir,
    setting={
        "dataset": f"{dataset} val, first {len(indices)} images"
        + (f" ({image_size}x{image_size}, {num_classes} classes)" if dataset == "offline" else ""),
        "network": f"GDC lightweight net, frozen MobileNetV2 first layers ({describe_weights(weights)}), {channels} channels",
        "procedure": f"{steps} {optimizer} steps, lr {lr}, SLIC-expanded scribbles, weighted CE, {num_draws} draws",
        "resolution": "native image size",
        "seeds": len(seeds),
    },
)

# %% [markdown]
# ## Check: does the paper's optimiser learn on these features?
# One image, the normal and the GDC network, the paper's SGD (lr 0.01) against Adam (lr 0.01),
# on the pretrained stand-in and on random features: the weighted cross-entropy over the steps.
# The grid below also scores the other optimiser over the whole image set (rows `@sgd` /
# `@adam`).

# %%
feature_sources = {weights: base.weights, "none": None}  # one curve set each (deduplicated)
if sgd_check_steps > 0:
    image, label, scribbles = data[indices[0]]
    fig, axes = plt.subplots(
        1, len(feature_sources), figsize=(6 * len(feature_sources), 3.5), squeeze=False
    )
    check_rows = []
    for ax, (source, source_weights) in zip(axes[0], feature_sources.items(), strict=True):
        for conv in ("normal", "gdc"):
            for opt in ("sgd", "adam"):
                config = replace(
                    base,
                    conv=conv,
                    optimizer=opt,
                    lr=0.01,
                    steps=sgd_check_steps,
                    num_draws=1,
                    weights=source_weights,
                )
                result = segment_image(
                    denormalize(image), scribbles.numpy().astype(np.uint8), config, seed=0
                )
                ax.plot(result.losses, label=f"{conv}, {opt}")
                check_rows.append(
                    {
                        "features": source,
                        "conv": conv,
                        "optimizer": opt,
                        "first loss": result.losses[0],
                        "last loss": result.losses[-1],
                    }
                )
        ax.set_title(f"features: {source}")
        ax.set_xlabel("step")
        ax.set_ylabel("weighted cross-entropy")
        ax.legend()
    fig.tight_layout()
    recorder.save_figure(fig, "optimiser_check")
    check = pd.DataFrame(check_rows).round(3)
    recorder.save_table(check, "optimiser_check")
    display(check)  # noqa: F821

# %% [markdown]
# ## Every configuration, every seed
# Shared runs: Table I's GDC row is Table IV's σ = 0.2, Table VII's GDC row and the
# bilinear/per-tap sampling variant; Table VII's baseline is Table I's normal row. Rows
# `random/...` repeat Table I and VII on random frozen features (with `random_optimizer`);
# rows `...@<optimizer>` score the normal and GDC networks with the other optimiser.

# %%
configs: dict[str, SingleImageConfig] = {"normal": replace(base, conv="normal")}
for rate in dilations:
    configs[f"dilated{rate}"] = replace(base, conv="dilated", dilation=rate)
configs["deformable"] = replace(base, conv="deformable")
for sigma in sigmas:
    configs[f"gdc_sigma{sigma}"] = replace(base, conv="gdc", sigma=sigma)
configs["uniform"] = replace(base, conv="uniform", sigma=0.2)
for sampling, mode in [("truncate", "per_tap"), ("bilinear", "shared"), ("truncate", "shared")]:
    configs[f"gdc_{sampling}_{mode}"] = replace(
        base, conv="gdc", sigma=0.2, gdc_sampling=sampling, gdc_mode=mode
    )
other_optimizer = "adam" if optimizer == "sgd" else "sgd"
for name in ("normal", "gdc_sigma0.2"):
    configs[f"{name}@{other_optimizer}"] = replace(configs[name], optimizer=other_optimizer)
table1 = {
    "normal": "normal",
    **{f"dilated{r}": f"dilated{r}" for r in dilations},
    "deformable": "deformable",
    "gdc": "gdc_sigma0.2",
}
if random_feature_rows:
    for name in [*table1.values(), "uniform"]:
        configs[f"random/{name}"] = replace(configs[name], weights=None, optimizer=random_optimizer)

start = time.perf_counter()
per_seed = evaluate_grid(images, configs, seeds, processes=parallel_runs, threads=num_threads)
elapsed_min = (time.perf_counter() - start) / 60
recorder.save_table(per_seed.round(3), "per_seed")
print(f"all configurations: {elapsed_min:.1f} min")


# %%
def values(config_name: str, column: str = "mIoU (%)") -> list[float]:
    return per_seed[per_seed["config"] == config_name][column].tolist()


summary = (
    per_seed.groupby("config", sort=False)[["mIoU (%)", "pixel acc (%)", "s/image"]]
    .agg(["mean", "std"])
    .round(2)
)
summary

# %% [markdown]
# ## Metrics (the keys the claims registry reads)


# %%
def record(key: str, config_name: str, description: str, column: str = "mIoU (%)") -> None:
    recorder.add(key, values(config_name, column), seeds=seeds, unit="%", description=description)


for key, name in table1.items():
    record(f"table1/{key}/miou", name, f"Table I {key}: mIoU")
    record(f"table1/{key}/pixel_acc", name, f"Table I {key}: pixel accuracy", "pixel acc (%)")
for sigma in sigmas:
    record(f"table4/sigma{sigma}/miou", f"gdc_sigma{sigma}", f"Table IV: GDC sigma = {sigma}")
    record(
        f"table4/sigma{sigma}/pixel_acc",
        f"gdc_sigma{sigma}",
        f"Table IV: GDC sigma = {sigma}, pixel accuracy",
        "pixel acc (%)",
    )
table7 = {"normal": "normal", "gdc": "gdc_sigma0.2", "uniform": "uniform"}
for key, name in table7.items():
    record(f"table7/{key}/miou", name, f"Table VII {key}")
sampling_keys = {
    "bilinear_per_tap": "gdc_sigma0.2",
    "integer_per_tap": "gdc_truncate_per_tap",
    "bilinear_shared": "gdc_bilinear_shared",
    "integer_shared": "gdc_truncate_shared",
}
for key, name in sampling_keys.items():
    record(f"sampling/{key}/miou", name, f"GDC sigma 0.2, {key.replace('_', ' ')} offsets")
for key, name in {**table1, "uniform": "uniform"}.items():
    if random_feature_rows:
        description = f"Table I/VII {key} on random frozen features ({random_optimizer})"
        record(f"random_features/{key}/miou", f"random/{name}", description)
for key, name in {"normal": "normal", "gdc": "gdc_sigma0.2"}.items():
    for opt, row in ((optimizer, name), (other_optimizer, f"{name}@{other_optimizer}")):
        description = f"{key} network optimised with {opt}, lr {lr}, {steps} steps"
        record(f"optimiser/{opt}/{key}/miou", row, description)
recorder.add("runtime/minutes", elapsed_min, unit="min", description="all configurations and seeds")

# %% [markdown]
# ## Beside the paper
# The paper's values are read from the transcription (`results/reported/numbers.csv`); its
# pixel accuracy is a fraction, shown here in percent. The paper's numbers are on Pascal
# VOC / Context with ImageNet features; this project's on the offline dataset with the pretrained
# stand-in (and, in the last column, random features with Adam): compare directions, not values.

# %%
reported = load_reported().set_index("id")


def paper(row_id: str) -> float:
    value = reported.loc[row_id, "value_num"]
    return 100 * value if reported.loc[row_id, "unit"] == "fraction" else value


def mean_std(config_name: str, column: str = "mIoU (%)") -> str:
    v = values(config_name, column)
    return f"{np.mean(v):.2f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.2f}"


paper_rows = {
    "normal": "normal",
    "dilated6": "dilated6",
    "dilated16": "dilated16",
    "dilated24": "dilated24",
    "deformable": "deformable",
    "gdc": "gdc-sigma0.2",
}
comparison = pd.DataFrame(
    [
        {
            "Table I row": key,
            "paper VOC mIoU": paper(f"gdc.t1.{paper_rows[key]}.miou-voc"),
            "paper Context mIoU": paper(f"gdc.t1.{paper_rows[key]}.miou-context"),
            "paper VOC acc (%)": paper(f"gdc.t1.{paper_rows[key]}.pixel-acc-voc"),
            "this project mIoU": mean_std(name),
            "this project acc (%)": mean_std(name, "pixel acc (%)"),
            **({"random features mIoU": mean_std(f"random/{name}")} if random_feature_rows else {}),
        }
        for key, name in table1.items()
        if key in paper_rows
    ]
)
recorder.save_table(comparison, "table1_comparison")
comparison

# %%
other = [
    {
        "row": f"Table IV σ = {s}",
        "paper mIoU": paper(f"gdc.t4.sigma{s}.miou")
        if f"gdc.t4.sigma{s}.miou" in reported.index
        else float("nan"),
        "this project mIoU": mean_std(f"gdc_sigma{s}"),
    }
    for s in sigmas
]
other += [
    {
        "row": f"Table VII {k}",
        "paper mIoU": paper(f"gdc.t7.{k}.miou"),
        "this project mIoU": mean_std(n),
    }
    for k, n in table7.items()
]
other += [
    {"row": f"sampling: {k}", "paper mIoU": float("nan"), "this project mIoU": mean_std(n)}
    for k, n in sampling_keys.items()
]
other_table = pd.DataFrame(other)
recorder.save_table(other_table, "table4_table7_sampling")
other_table

# %% [markdown]
# ## Figures

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 4.2), gridspec_kw={"width_ratios": [3, 2, 2]})
bar_names = list(table1.values()) + ["uniform"]
feature_groups = {f"{weights}, {optimizer}": [values(n) for n in bar_names]}
if random_feature_rows:
    feature_groups[f"random, {random_optimizer}"] = [values(f"random/{n}") for n in bar_names]
plot_grouped_mean_std_bars(
    axes[0],
    list(table1) + ["uniform"],
    feature_groups,
    "mIoU (%)",
    "Table I + VII: layer under test, by features",
)
means = [np.mean(values(f"gdc_sigma{s}")) for s in sigmas]
stds = [np.std(values(f"gdc_sigma{s}"), ddof=1) if len(seeds) > 1 else 0 for s in sigmas]
axes[1].errorbar(sigmas, means, yerr=stds, marker="o", capsize=4, label="GDC")
for key, color in [("normal", "tab:gray"), ("dilated6", "tab:green")]:
    axes[1].axhline(np.mean(values(key)), color=color, linestyle="--", label=key)
axes[1].set_xlabel("σ (relative to the feature map's shortest side)")
axes[1].set_ylabel("mIoU (%)")
axes[1].set_title("Table IV: σ sweep")
axes[1].legend(fontsize=8)
plot_mean_std_bars(
    axes[2],
    list(sampling_keys),
    [values(n) for n in sampling_keys.values()],
    "mIoU (%)",
    "GDC sampling choices (σ = 0.2)",
)
fig.tight_layout()
recorder.save_figure(fig, "tables_1_4_7")

# %% [markdown]
# ## Bilinear or integer positions, per-tap or shared offsets?
# The paper's Eq. 3 draws a magnitude per tap (per-tap) and does not say how a fractional
# position is read; the authors' public code draws per tap and truncates positions to integers
# (`results/reported/PAPERS.md`). Per-tap offsets are what both the equation and the code use, so the paper's
# numbers most likely come from per-tap offsets with integer (truncated) positions: the code is
# what produced the numbers, and nothing in the text asks for interpolation. The measured
# difference between the variants is in the table above; where it lies within the seed spread,
# the choice does not matter for this stand-in.
#
# The two readings also differ at the border, which matters at σ = 0.2 of the shortest side
# (a tap lands on average 0.16 L from the centre, so many taps near the border leave the map):
# bilinear sampling reads zeros outside the map (the zero padding of a convolution), while
# the authors' truncation clamps the position to the map and reads the border pixel.

# %%
recorder.note(
    "Offline stand-in: procedural shapes on real textures, frozen MobileNetV2 features "
    f"({describe_weights(weights)}), {len(indices)} validation images, {optimizer} at lr {lr}. "
    "Compare directions, not values."
)
recorder.write()
