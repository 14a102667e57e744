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
#     title: "GDC Fig. 11: feature diversity over the optimisation steps"
#     paper: gdc
#     regenerates: [Fig. 11]
#     description: >-
#       The feature vectors of the layer under test at two pixels over the 50 optimisation steps
#       of the single-image procedure, dilated convolution against GDC, embedded with t-SNE, and
#       a diversity number (within-pixel spread relative to the distance between the pixels).
#     profiles:
#       smoke: {steps: 6, seeds: [0], weights: none}
#       cpu: {}
#       full: {dataset: voc, channels: 64, weights: IMAGENET1K_V1, device: cuda}
# ---

# %% [markdown]
# # GDC Fig. 11: are GDC's features more diverse?
#
# GDC Section VI: "we collect the feature vectors of the two positions, the red and blue
# crosses in the image of Fig. 11, in 50 optimizing steps, and use tSNE to embed these feature
# vectors into two dimensions"; Figs. 11a–b show the dilated convolution, 11c–d GDC, and GDC's
# vectors look more diverse, which the paper reads as feature-space augmentation against
# over-fitting. Here the same is done with the single-image procedure
# (`repro.singleimage.segment_image(..., probe_pixels=...)` records the layer-under-test's output
# at the two pixels at every training step). The paper's figure has four panels; read as
# (dilated, GDC) × (pixel 1, pixel 2) here, each panel one pixel's 50 vectors.
#
# Beyond the picture, `fig11/{gdc,dilated}/feature_spread` measures diversity: the mean
# pairwise distance between one pixel's vectors across steps, averaged over the two pixels,
# divided by the distance between the two pixels' mean vectors (scale-free), one value per seed.
# Training changes the weights at every step, so this spread mixes the (smooth) drift of
# training with the scatter of random sampling; `fig11/{gdc,dilated}/feature_jitter` isolates
# the scatter (distance of each step's vector from the midpoint of its neighbours, same scale).
# Setting: an offline validation image; frozen MobileNetV2 features from this project's stand-in,
# `offline-pretrained` (pretrained on procedurally generated images from package photos, not
# ImageNet); the paper's SGD at lr 0.01, which learns on these features (the check in
# `gdc_single_image`; on random features it does not).

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
dataset: Literal["offline", "voc", "context"] = "offline"  # offline, or a real dataset (full)
image_index: int = 0  # validation image used [>= 0]
image_size: int = 128  # offline image side [>= 16]
steps: int = 50  # optimisation steps (paper: 50) [>= 1]
lr: float = 0.01  # learning rate (paper: 0.01) [> 0]
optimizer: Literal["sgd", "adam"] = "sgd"  # paper: sgd
channels: int = 32  # width of the trainable part [>= 1]
sigma: float = 0.2  # GDC sigma [> 0]
dilation: int = 6  # rate of the dilated convolution [>= 1]
weights: str = "offline-pretrained"  # MobileNetV2 weights: offline-pretrained (stand-in), none (random), a torchvision name or a file
seeds: list[int] = [0, 1, 2]  # one optimisation per seed and layer [>= 0, unique]
device: str = "cpu"  # cpu, cuda, cuda:N or auto (CUDA when available)
num_threads: int = 1  # torch CPU threads [>= 1]
# fmt: on

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from repro.data import build_dataset
from repro.data.transforms import denormalize
from repro.models.pretrained import describe_weights
from repro.results import Recorder
from repro.singleimage import SingleImageConfig, segment_image
from repro.singleimage.diversity import feature_jitter, feature_spread, tsne_embedding
from repro.viz.bars import plot_mean_std_bars

torch.set_num_threads(num_threads)
if dataset == "offline":
    data = build_dataset("offline", "val", with_scribbles=True, image_size=image_size)
else:
    data = build_dataset(dataset, "val", with_scribbles=True)
image_t, label_t, scribbles_t = data[image_index]
image, label = denormalize(image_t), label_t.numpy()
scribbles = scribbles_t.numpy().astype(np.uint8)
# The two pixels: the centre of the largest foreground region and a background pixel far from it.
classes, counts = np.unique(label[(label != 0) & (label != 255)], return_counts=True)
target_class = classes[counts.argmax()] if classes.size else 0
rows, cols = np.nonzero(label == target_class)
first = (int(np.median(rows)), int(np.median(cols)))
rows_b, cols_b = np.nonzero(label == 0)
far = np.argmax((rows_b - first[0]) ** 2 + (cols_b - first[1]) ** 2)
second = (int(rows_b[far]), int(cols_b[far]))
pixels = [first, second]
recorder = Recorder(
    output_dir,
    setting={
        "dataset": f"{dataset} val image {image_index}"
        + (f" ({image_size}x{image_size})" if dataset == "offline" else ""),
        "network": f"GDC lightweight net, frozen MobileNetV2 first layers ({describe_weights(weights)}), {channels} channels",
        "procedure": f"{steps} {optimizer} steps, lr {lr}; dilated rate {dilation} vs GDC sigma {sigma}",
        "pixels": f"{pixels} (row, col)",
        "seeds": len(seeds),
    },
)

# %%
layers = {
    "dilated": SingleImageConfig(conv="dilated", dilation=dilation),
    "gdc": SingleImageConfig(conv="gdc", sigma=sigma),
}
features: dict[str, list[np.ndarray]] = {name: [] for name in layers}
for name, layer in layers.items():
    config = SingleImageConfig(
        **{
            **layer.to_dict(),
            "steps": steps,
            "lr": lr,
            "optimizer": optimizer,
            "channels": channels,
            "num_draws": 1,
            "weights": None if weights == "none" else weights,
            "device": device,
        }
    )
    for seed in seeds:
        result = segment_image(image, scribbles, config, seed=seed, probe_pixels=pixels)
        features[name].append(result.probe_features)
spread = {name: [feature_spread(f) for f in features[name]] for name in layers}
jitter = {name: [feature_jitter(f) for f in features[name]] for name in layers}
table = pd.DataFrame(
    {
        "layer": list(layers),
        "feature spread (mean)": [np.mean(spread[n]) for n in layers],
        "spread std": [np.std(spread[n], ddof=1) if len(seeds) > 1 else 0.0 for n in layers],
        "feature jitter (mean)": [np.mean(jitter[n]) for n in layers],
        "jitter std": [np.std(jitter[n], ddof=1) if len(seeds) > 1 else 0.0 for n in layers],
        "n seeds": len(seeds),
    }
).round(4)
recorder.save_table(table, "feature_spread")
table

# %% [markdown]
# ## The four scatter plots (first seed) and the spread over seeds
# Each layer's vectors (both pixels, all steps) are embedded together; colour = step.

# %%
fig, axes = plt.subplots(1, 5, figsize=(22, 4.2))
axes[0].imshow(image)
for (r, c), color in zip(pixels, ("red", "blue"), strict=True):
    axes[0].plot(c, r, "x", color=color, markersize=12, mew=3)
axes[0].set_title("image and the two pixels")
axes[0].axis("off")
panel = 1
for name in layers:
    embedded = tsne_embedding(features[name][0], seed=0)
    for p, color in enumerate(("Reds", "Blues")):
        ax = axes[panel]
        ax.scatter(
            embedded[:, p, 0], embedded[:, p, 1], c=np.arange(len(embedded)), cmap=color, s=18
        )
        ax.set_title(f"{name}, {'red' if p == 0 else 'blue'} pixel")
        panel += 1
fig.tight_layout()
recorder.save_figure(fig, "fig11_tsne")

fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
plot_mean_std_bars(
    axes[0], list(layers), [spread[n] for n in layers], "feature spread", "spread over steps"
)
plot_mean_std_bars(
    axes[1], list(layers), [jitter[n] for n in layers], "feature jitter", "step-to-step scatter"
)
recorder.save_figure(fig, "fig11_spread")

# %%
for name in layers:
    recorder.add(
        f"fig11/{name}/feature_spread",
        spread[name],
        seeds=seeds,
        description="mean within-pixel pairwise distance over steps / distance between the pixels' means",
    )
    recorder.add(
        f"fig11/{name}/feature_jitter",
        jitter[name],
        seeds=seeds,
        description="mean distance from the neighbours' midpoint / distance between the pixels' means",
    )
recorder.write()
