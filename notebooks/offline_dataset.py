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
#     title: "The offline dataset: shapes on real photographs, with scribbles"
#     paper: project
#     regenerates: [offline dataset]
#     description: >-
#       Generates the offline dataset every cpu-profile experiment uses, shows a gallery of
#       images, labels and scribbles, and measures its class balance and scale range.
#     profiles:
#       smoke: {num_train: 16, num_val: 8, gallery_images: 3}
#       cpu: {}
#       full: {}
# ---

# %% [markdown]
# # The offline dataset
#
# No dataset of the papers can be downloaded here, so every `cpu`-profile experiment runs on a
# dataset generated from images that ship inside scikit-image and scikit-learn. What it is, why it
# is a fair stand-in for each claim and what it cannot show is the documentation of its generator,
# `repro.data.offline`, printed below so that there is one text to maintain.

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
num_classes: int = 9  # background + shape classes [>= 2]
image_size: int = 128  # square image side, pixels [>= 16]
num_train: int = 1000  # training images [>= 1]
num_val: int = 200  # validation images [>= 1]
data_seed: int = 0  # generation seed [>= 0]
gallery_images: int = 6  # images shown in the gallery [>= 1]
# fmt: on

# %%
import shutil
import time

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from repro.data import build_dataset
from repro.data import offline as offline_module
from repro.data.gallery import plot_gallery
from repro.results import Recorder

display(Markdown(offline_module.__doc__.split("\n", 2)[2]))

# %% [markdown]
# ## Generate it
# Into a fresh folder, to measure the generation time (experiments reuse the cache, keyed by
# the parameters).

# %%
import tempfile

fresh_root = tempfile.mkdtemp(prefix="offline-generation-")
started = time.perf_counter()
root = offline_module.build_offline_dataset(
    fresh_root,
    num_classes=num_classes,
    image_size=image_size,
    num_train=num_train,
    num_val=num_val,
    seed=data_seed,
)
elapsed = time.perf_counter() - started
meta = offline_module.read_offline_meta(root)
recorder = Recorder(
    output_dir,
    setting={
        "dataset": "offline",
        "classes": num_classes,
        "image size": image_size,
        "train/val images": f"{num_train}/{num_val}",
        "generation seed": data_seed,
    },
)
print(f"generated {num_train} + {num_val} images in {elapsed:.1f} s")
print("classes:", ", ".join(meta["class_names"]))

# %% [markdown]
# ## Gallery: image, label, scribbles
# Scribbles are drawn over the dimmed image; white strokes are background scribbles, every
# other colour is the class of the label row.

# %%
figure = plot_gallery(root, n=gallery_images, seed=data_seed)
recorder.save_figure(figure, "gallery")

# %% [markdown]
# ## Class balance and scribble coverage
# Share of pixels of each class in the labels, and share of each class's pixels that its
# scribbles cover, over the training split.

# %%
train = build_dataset(
    "offline",
    "train",
    fresh_root,
    num_classes=num_classes,
    image_size=image_size,
    num_train=num_train,
    num_val=num_val,
    data_seed=data_seed,
    with_scribbles=True,
)
label_counts = np.zeros(num_classes)
scribble_counts = np.zeros(num_classes)
for index in range(len(train)):
    _, label, scribbles = train[index]
    label_np, scribbles_np = label.numpy(), scribbles.numpy()
    label_counts += np.bincount(label_np[label_np != 255], minlength=num_classes)[:num_classes]
    scribble_counts += np.bincount(scribbles_np[scribbles_np != 255], minlength=num_classes)[
        :num_classes
    ]
balance = pd.DataFrame(
    {
        "class": meta["class_names"],
        "pixel share (%)": 100 * label_counts / label_counts.sum(),
        "scribbled share of its pixels (%)": 100 * scribble_counts / np.maximum(label_counts, 1),
    }
).round(2)
recorder.save_table(balance, "class_balance")
balance

# %%
recorder.add(
    "generation_seconds", elapsed, unit="s", description="time to generate the dataset from nothing"
)
recorder.add(
    "scribbled_pixels_percent",
    100 * scribble_counts.sum() / label_counts.sum(),
    unit="%",
    description="share of labelled pixels covered by scribbles",
)
recorder.write()
shutil.rmtree(fresh_root)
