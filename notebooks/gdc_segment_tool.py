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
#     title: "repro segment: GDC single-image segmentation as a tool"
#     paper: gdc
#     regenerates: ["repro segment"]
#     description: >-
#       Runs the `repro segment` tool's function on photos that ship with scikit-image with
#       scribble files kept in the project; shows the overlays and times the tool from reading
#       the files to writing the mask; scores the tool's defaults against the paper's procedure
#       on the evaluation set of photo composites, whose photos the defaults were not tuned on.
#     profiles:
#       smoke: {repeats: 1, steps: 5, draws: 2, images: [astronaut], evaluation_images: 2, evaluation_size: 48, seeds: [0], paper_weights: none, tool_weights: none, parallel_runs: 1}
#       cpu: {}
#       full: {}
# ---

# %% [markdown]
# # `repro segment`: the single-image procedure as a tool
#
# ```
# repro segment IMAGE --scribbles SCRIBBLES.png [--out MASK.png] [--overlay OVERLAY.png]
#               [--conv gdc|dilated|normal|deformable] [--sigma 0.2] [--steps 50] [--draws 50] [--seed N]
# ```
#
# SCRIBBLES is a palette (or greyscale) PNG of the image's size whose values are class indices,
# 255 = unlabelled (the VOC label format); at least two classes must be scribbled. The mask is
# written in the same format. Bad input (sizes that differ, no scribbles, a single class, an
# unreadable file) exits with code 2 and a message naming the problem, and writes nothing.
#
# **Defaults and the paper.** Steps (50), draws (50), σ (0.2) and the SLIC expansion of the
# scribbles are the paper's (GDC Sec. V-A). The other defaults are the choice of a
# time-bounded search on the tuning set ([the tuning page](gdc_segment_tuning.ipynb)): the frozen
# MobileNetV2 has this project's `offline-pretrained` weights (pretrained on procedurally
# generated images from package photos, not ImageNet; `--weights PATH` takes ImageNet weights a
# user has on disk), Adam at lr 0.01 instead of the paper's SGD, 16 channels and a working
# resolution of 96 pixels on the shortest side (probabilities are resized back to the image),
# which keep it within its speed target (≤ 1.5 s per 256-px image on this 2-core machine, reading
# to writing). The demo photos are scikit-image's, resized to a
# shortest side of 256; their scribbles are drawn by `examples/make_scribbles.py`.

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
images: list[str] = ["astronaut", "coffee", "chelsea"]  # examples/scribbles/<name>.png [unique]
steps: int = 50  # the tool's --steps [>= 1]
draws: int = 50  # the tool's --draws [>= 1]
repeats: int = 5  # timed runs per image (seeds 0..repeats-1) [>= 1]
evaluation_images: int = 32  # composites of the evaluation set scored per procedure and seed [>= 1]
evaluation_size: int = 256  # their side [>= 32]
paper_weights: str = "offline-pretrained"  # the paper's procedure's features here (paper: ImageNet)
tool_weights: str = "tool"  # the tool's features: tool (TOOL_CONFIG's), none (random) or a weights name
seeds: list[int] = [0, 1, 2]  # evaluation seeds [>= 0, unique]
parallel_runs: int = 2  # evaluations side by side [>= 1]
num_threads: int = 1  # torch CPU threads [>= 1]
# fmt: on

# %%
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from repro.paths import repo_root
from repro.results import Recorder
from repro.singleimage import ImageSet, SingleImageConfig, evaluate_grid
from repro.singleimage.tool import TOOL_CONFIG, overlay, run_tool

torch.set_num_threads(num_threads)
examples = repo_root() / "examples" / "scribbles"
config = replace(TOOL_CONFIG, steps=steps, num_draws=draws)
if tool_weights != "tool":
    config = replace(config, weights=None if tool_weights == "none" else tool_weights)
recorder = Recorder(
    output_dir,
    setting={
        "images": f"scikit-image photos {images}, shortest side 256",
        "tool": f"{config}",
        "threads": num_threads,
        "repeats": repeats,
        "evaluation": f"photo composites, evaluation set, {evaluation_images} images "
        f"({evaluation_size}x{evaluation_size}); paper's procedure on {paper_weights} features",
        "seeds": len(seeds),
    },
)

# %%
runs: dict[str, list] = {}
with tempfile.TemporaryDirectory() as scratch:
    for name in images:
        runs[name] = []
        for seed in range(repeats):
            run = run_tool(
                examples / f"{name}.png",
                examples / f"{name}_scribbles.png",
                config,
                seed=seed,
                out_path=Path(scratch) / f"{name}_mask.png",
            )
            runs[name].append(run)
timing = pd.DataFrame(
    [
        {
            "image": name,
            "size": f"{r.image.shape[1]}x{r.image.shape[0]}",
            "seed": i,
            **{k: round(v, 3) for k, v in r.seconds.items()},
        }
        for name, rs in runs.items()
        for i, r in enumerate(rs)
    ]
)
recorder.save_table(timing, "timing_per_run")
timing.groupby(["image", "size"])[["total", "cpu_total", "segment/train", "segment/predict"]].agg(
    ["mean", "std"]
).round(2)

# %%
# Small figure: photo overlays compress poorly and results must stay small.
fig, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), 3.2), squeeze=False, dpi=72)
for ax, name in zip(axes[0], images, strict=True):
    run = runs[name][0]
    ax.imshow(overlay(run.image, run.result.prediction, run.scribbles))
    ax.set_title(f"{name}: classes {run.result.classes}, {run.seconds['total']:.1f} s")
    ax.axis("off")
fig.tight_layout()
recorder.save_figure(fig, "overlays", dpi=72)

# %% [markdown]
# ## Timing
# `tool/<image>/seconds`: wall time from reading the files to writing the mask, one value per
# repeat (interpreter start-up and imports excluded). The machine's two cores were shared with
# other jobs while this ran (load average below), so wall times are upper bounds for a quiet
# machine; `tool/<image>/cpu_seconds` is the CPU time the tool's process used (one thread), i.e.
# its wall time on an idle core.

# %%
seeds_list = list(range(repeats))
for name in images:
    recorder.add(
        f"tool/{name}/seconds",
        [r.seconds["total"] for r in runs[name]],
        seeds=seeds_list,
        unit="s",
        description=f"repro segment on {name} ({runs[name][0].image.shape[1]}x{runs[name][0].image.shape[0]})",
    )
    recorder.add(
        f"tool/{name}/cpu_seconds",
        [r.seconds["cpu_total"] for r in runs[name]],
        seeds=seeds_list,
        unit="s",
        description=f"CPU time of the tool's process on {name}",
    )
load = os.getloadavg()
recorder.note(
    f"Load average while timing (1, 5, 15 min): {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} "
    f"on {os.cpu_count()} cores."
)
print(f"load average: {load}")

# %% [markdown]
# ## Quality on images the defaults were not tuned on
# The evaluation set of photo composites (`repro.data.photo_composites`: objects cut out of
# package photos, with synthetic outlines, pasted on other package photos; exact labels,
# synthetic scribbles) uses photos disjoint from the tuning set the defaults were chosen on
# ([tuning](gdc_segment_tuning.ipynb)). `evaluation/<procedure>/image_miou`: the mean over
# images of each image's own mIoU, per seed, for the tool's defaults and for the paper's
# procedure (SGD at lr 0.01, 50 steps, 50 draws, full resolution, 64 channels; here on
# `paper_weights` features instead of ImageNet's).

# %%
evaluation = ImageSet.first(
    "photo_composites",
    evaluation_images,
    {"count": evaluation_images, "image_size": evaluation_size},
    "evaluation",
)
procedures = {
    "tool_defaults": config,
    "paper_procedure": SingleImageConfig(
        steps=steps,
        num_draws=draws,
        weights=None if paper_weights == "none" else paper_weights,
    ),
}
scores = evaluate_grid(evaluation, procedures, seeds, processes=parallel_runs, threads=num_threads)
recorder.save_table(scores.round(3), "evaluation_per_seed")
for name in procedures:
    rows = scores[scores["config"] == name]
    recorder.add(
        f"evaluation/{name}/image_miou",
        rows["image mIoU (%)"].tolist(),
        seeds=rows["seed"].tolist(),
        unit="%",
        description=f"{name.replace('_', ' ')}, evaluation set ({len(evaluation.indices)} images)",
    )
scores.groupby("config", sort=False)[["image mIoU (%)", "s/image"]].agg(["mean", "std"]).round(2)

# %% [markdown]
# Are the defaults the tuning's choice? The committed tuning result's table `chosen` against
# `TOOL_CONFIG` (the working-size-independent settings; steps and draws as this run's).

# %%
tuned_path = repo_root() / "results" / "gdc_segment_tuning" / "cpu" / "tables" / "chosen.csv"
if tuned_path.exists():
    tuned = pd.read_csv(tuned_path, dtype=str).set_index("setting")["value"]
    differences = {
        key: (
            tuned[key],
            "none" if getattr(TOOL_CONFIG, key) is None else str(getattr(TOOL_CONFIG, key)),
        )
        for key in tuned.index
        if key not in ("device",)
        and tuned[key]
        != ("none" if getattr(TOOL_CONFIG, key) is None else str(getattr(TOOL_CONFIG, key)))
    }
    message = (
        "TOOL_CONFIG equals the committed tuning choice."
        if not differences
        else f"TOOL_CONFIG differs from the committed tuning choice (tuned, tool): {differences}"
    )
else:
    message = (
        "No committed tuning result (results/gdc_segment_tuning/cpu) to compare TOOL_CONFIG with."
    )
recorder.note(message)
print(message)
recorder.write()
