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
#     title: "repro segment: choosing the tool's defaults on a tuning set"
#     paper: gdc
#     regenerates: ["repro segment defaults"]
#     description: >-
#       A coordinate search over the single-image procedure's settings (features, optimiser,
#       working size, steps, scribble expansion, width) on 256-px photo composites of the tuning
#       set; the choice becomes `repro segment`'s defaults, judged on the evaluation set's other
#       photos in `gdc_segment_tool`.
#     profiles:
#       smoke: {tuning_images: 2, image_size: 48, seeds: [0], steps: 3, draws: 2, working_sizes: [32, 48], features: [none], parallel_runs: 1}
#       cpu: {}
#       full: {}
# ---

# %% [markdown]
# # Choosing `repro segment`'s defaults
#
# `repro segment` runs GDC's single-image procedure (Sec. V-A) on a user's photo. Its defaults
# are chosen here, by measurement on the **tuning set** of photo composites
# (`repro.data.photo_composites`: objects cut out of package photos with synthetic outlines and
# pasted on other package photos, 256 px, exact labels, synthetic scribbles), and judged in
# [the tool's page](gdc_segment_tool.ipynb) on the **evaluation set**, whose photos are
# disjoint from these. The score is the mean over images of each image's own mIoU (a class
# index means something different in every image).
#
# The search starts from the paper's procedure at the tool's working size (SGD at lr 0.01,
# 50 steps, 50 draws, SLIC-expanded scribbles, GDC σ = 0.2) on this project's pretrained
# stand-in features (`offline-pretrained`: pretrained on procedurally generated images from
# package photos, not ImageNet) and improves one stage at a time
# (`repro.singleimage.tuning.coordinate_search`): each stage scores its options over every
# image and seed and keeps the best mean for the stages after it.
#
# The tool has a time target (1.5 s per 256-px image on two cores, from reading the files to
# writing the mask, timed in the tool's page), and the most accurate settings miss it: a search
# without it chose a working size of 128 px and 64 channels, at about 6 s per image. So the
# target is a constraint of the search: an option whose mean time per image, measured in the
# same evaluations, exceeds `time_budget_s` cannot be chosen. The budget is below 1.5 s because
# the search runs two evaluations side by side and times the procedure alone (no file reading
# or writing). The start uses 16 channels, which keeps it within the budget.

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
tuning_images: int = 32  # composites of the tuning set scored per option and seed [>= 1]
image_size: int = 256  # composite side (the tool is timed at 256 px) [>= 32]
steps: int = 50  # the starting point's steps (paper: 50) [>= 1]
draws: int = 50  # averaged passes (paper: 50) [>= 1]
features: list[str] = ["offline-pretrained", "none"]  # frozen MobileNetV2 weights on offer, the first is the start: offline-pretrained, none, a torchvision name or a file [unique]
working_sizes: list[int] = [64, 96, 128]  # shortest sides the tool may work at [>= 16, unique]
time_budget_s: float = 1.3  # the most seconds per image an option may take in the search [> 0]
seeds: list[int] = [0, 1, 2]  # one pass over the images per seed [>= 0, unique]
parallel_runs: int = 2  # evaluations side by side [>= 1]
num_threads: int = 1  # torch CPU threads per evaluation [>= 1]
# fmt: on

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from repro.models.pretrained import describe_weights
from repro.results import Recorder
from repro.singleimage import ImageSet, SingleImageConfig
from repro.singleimage.tuning import coordinate_search

torch.set_num_threads(num_threads)
images = ImageSet.first(
    "photo_composites",
    tuning_images,
    {"count": tuning_images, "image_size": image_size},
    "tuning",
)
start = SingleImageConfig(
    conv="gdc",
    sigma=0.2,
    steps=steps,
    num_draws=draws,
    optimizer="sgd",
    lr=0.01,
    channels=16,
    working_size=working_sizes[len(working_sizes) // 2],
    weights=None if features[0] == "none" else features[0],
)
stages = [
    ("features", [{"weights": None if w == "none" else w} for w in features]),
    (
        "optimiser",
        [
            {"optimizer": "sgd", "lr": 0.01},
            {"optimizer": "sgd", "lr": 0.03},
            {"optimizer": "adam", "lr": 0.003},
            {"optimizer": "adam", "lr": 0.01},
        ],
    ),
    ("working size", [{"working_size": size} for size in working_sizes]),
    ("width", [{"channels": 16}, {"channels": 32}, {"channels": 64}]),
    ("steps", [{"steps": steps}, {"steps": max(1, steps // 2)}]),
    ("scribble expansion", [{"expand_superpixels": True}, {"expand_superpixels": False}]),
]
recorder = Recorder(
    output_dir,
    setting={
        "dataset": f"photo composites, tuning set, first {len(images.indices)} images "
        f"({image_size}x{image_size})",
        "network": f"GDC lightweight net, frozen MobileNetV2 first layers "
        f"(start: {describe_weights(features[0])})",
        "procedure": f"start: {steps} sgd steps, lr 0.01, {draws} draws, GDC sigma 0.2, "
        f"working size {start.working_size}",
        "score": "mean of the images' own mIoU",
        "time budget": f"{time_budget_s} s per image in the search "
        f"({parallel_runs} evaluation(s) side by side, {num_threads} thread(s) each)",
        "seeds": len(seeds),
    },
)

# %% [markdown]
# ## The search

# %%
search = coordinate_search(
    images,
    start,
    stages,
    seeds,
    max_seconds=time_budget_s,
    processes=parallel_runs,
    threads=num_threads,
)
recorder.save_table(search.scores.round(3), "search")
summary = (
    search.scores.groupby(["stage", "option", "chosen", "within budget"], sort=False)
    .agg(
        mean=("image mIoU (%)", "mean"),
        std=("image mIoU (%)", "std"),
        count=("image mIoU (%)", "count"),
        seconds_per_image=("s/image", "mean"),
    )
    .round(2)
    .reset_index()
)
recorder.save_table(summary, "search_summary")
summary

# %% [markdown]
# ## The choice
# `tuning/start/image_miou` is the starting point, `tuning/chosen/image_miou` the chosen
# configuration, per seed, on the tuning set (a score the choice was made on, so optimistic; the
# evaluation set judges it). The chosen settings are saved as the table `chosen`;
# `repro.singleimage.tool.TOOL_CONFIG` is meant to equal them, which the tool's page checks.

# %%
first_stage = search.scores[search.scores["stage"] == stages[0][0]]
start_rows = first_stage[first_stage["option"] == first_stage["option"].iloc[0]]
final_stage = search.scores[(search.scores["stage"] == stages[-1][0]) & search.scores["chosen"]]
recorder.add(
    "tuning/start/image_miou",
    start_rows["image mIoU (%)"].tolist(),
    seeds=start_rows["seed"].tolist(),
    unit="%",
    description="the paper's procedure at the middle working size, tuning set",
)
recorder.add(
    "tuning/chosen/image_miou",
    final_stage["image mIoU (%)"].tolist(),
    seeds=final_stage["seed"].tolist(),
    unit="%",
    description="the chosen configuration, tuning set",
)
chosen = pd.DataFrame(
    [
        {"setting": k, "value": "none" if v is None else str(v)}
        for k, v in vars(search.chosen).items()
    ]
)
recorder.save_table(chosen, "chosen")
print(search.choices)
chosen

# %% [markdown]
# Top: the score of each option (orange: chosen); bottom: its time per image, with the budget
# as a dashed line. Hatched options were over the budget and could not be chosen.

# %%
fig, axes = plt.subplots(
    2, len(stages), figsize=(3.2 * len(stages), 5.6), sharey="row", sharex="col", squeeze=False
)
for column, (name, _) in enumerate(stages):
    part = summary[summary["stage"] == name]
    colours = ["tab:orange" if c else "tab:blue" for c in part["chosen"]]
    hatches = ["" if w else "//" for w in part["within budget"]]
    positions = range(len(part))
    score_ax, time_ax = axes[0, column], axes[1, column]
    bars = score_ax.bar(
        positions, part["mean"], yerr=part["std"].fillna(0), color=colours, capsize=3
    )
    times = time_ax.bar(positions, part["seconds_per_image"], color=colours)
    for bar, time_bar, hatch in zip(bars, times, hatches, strict=True):
        bar.set_hatch(hatch)
        time_bar.set_hatch(hatch)
    time_ax.axhline(time_budget_s, color="k", linestyle="--", linewidth=1)
    time_ax.set_xticks(list(positions), part["option"], rotation=35, ha="right", fontsize=7)
    score_ax.set_title(name, fontsize=9)
    for ax in (score_ax, time_ax):
        ax.grid(axis="y", alpha=0.3)
axes[0, 0].set_ylabel("image mIoU (%), tuning set")
axes[1, 0].set_ylabel("s / image in the search")
fig.tight_layout()
recorder.save_figure(fig, "search")
recorder.write()
