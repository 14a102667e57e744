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
#     title: "DSNet at cpu scale: which image size and budget the tables can afford"
#     paper: dsnet
#     regenerates: [DSNet cpu setting]
#     description: >-
#       Times one short training run of each DSNet Table 1 variant and of DeepLabv3+ on the
#       pretrained stand-in ResNet-18 at several image sizes, side by side as the tables run,
#       and turns the measured throughput into the epochs a table of k rows x n seeds can
#       afford in its time budget.
#     profiles:
#       smoke: {image_sizes: [64, 96], probe_images: 8, num_val: 4, batch_size: 4, width: 16, weights: none, rows: [x3-aspp, deeplabv3plus], parallel_runs: 1}
#       cpu: {}
#       full: {}
# ---

# %% [markdown]
# # DSNet at cpu scale: which image size and budget the tables can afford
#
# DSNet's Table 1 asks where CGDS should sample: a low-level feature at a finer stride (X(3),
# output stride 8) or a coarser one (X(4), X(5), stride 16), guided by X(5) or X(ASPP). The
# contrast needs X(3) to be finer than X(4) by enough pixels to matter: at 128 px X(3) is
# 16x16 against 8x8, at 256 px 32x32 against 16x16. Larger images cost time, and each DSNet
# table must train k rows x n seeds within its budget on this 2-core machine. This probe
# measures the throughput of every Table 1 row and of the DeepLabv3+ baseline at each image
# size (one short run each, side by side as the tables train), and turns it into the epochs a
# table can afford. The DSNet notebooks' `cpu` profiles take their size and budget from this
# result.

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
image_sizes: list[int] = [128, 192, 256]  # offline image side = training crop [>= 32, unique]
rows: list[str] = ["x3-x5", "x3-aspp", "x4-aspp", "x5-aspp", "deeplabv3plus"]  # Table 1 pairs and the baseline [unique]
backbone: str = "resnet18"  # dilated torchvision ResNet
weights: str = "offline-pretrained"  # offline-pretrained (this project's stand-in), none, a torchvision name or a file
width: int = 64  # channels of ASPP, decoder and DSNet branches (paper: 256) [>= 1]
probe_images: int = 48  # training images of each timing run (one epoch) [>= 1]
num_val: int = 16  # validation images of each timing run [>= 1]
batch_size: int = 8  # images per optimiser step [>= 1]
planned_rows: int = 4  # rows of the table being planned (Table 1: 4) [>= 1]
planned_seeds: int = 3  # seeds of the table being planned [>= 1]
planned_train_images: int = 1000  # training images of the planned table [>= 1]
budget_minutes: float = 90.0  # wall-clock budget of the planned table [> 0]
min_epochs: int = 6  # fewest epochs a planned table should train [>= 1]
device: str = "auto"  # auto (CUDA when available, else CPU), cpu, cuda or cuda:N
parallel_runs: int = 2  # training runs side by side, as the tables run [>= 1]
num_threads: int = 1  # torch CPU threads per run [>= 1]
# fmt: on

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from repro.engine import TrainConfig
from repro.experiments.dsnet import FEATURE_PAIRS, family_rows, table1_rows
from repro.experiments.supervised import DataSpec
from repro.experiments.table import Row, TableSpec, run_table
from repro.models.pretrained import describe_weights
from repro.results import Recorder

torch.set_num_threads(num_threads)
common = {
    "backbone": backbone,
    "output_stride": 16,
    "weights": None if weights == "none" else weights,
}


def data_at(size: int) -> DataSpec:
    return DataSpec(
        crop_size=size,
        scale_range=(1.0, 1.0),
        offline={"image_size": size, "num_train": probe_images, "num_val": num_val},
    )


pairs = [r for r in rows if r in FEATURE_PAIRS]
others = [r for r in rows if r not in FEATURE_PAIRS]
probe_rows = [
    Row(
        key=f"{size}px/{row.key}",
        model=row.model,
        config=row.config,
        data=data_at(size),
        columns={"image size": size, "variant": row.key},
    )
    for size in image_sizes
    for row in table1_rows(pairs, width, common) + family_rows(others, width, common)
]
spec = TableSpec(
    prefix="probe",
    rows=probe_rows,
    seeds=[0],
    data=data_at(image_sizes[0]),
    train=TrainConfig(epochs=1, batch_size=batch_size, optimizer="adamw", lr=0.001, device=device),
)
recorder = Recorder(
    output_dir,
    setting={
        "what": f"one epoch of {probe_images} images per (size, variant), timed; not a result",
        "backbone": f"{backbone} (OS 16, {describe_weights(weights)})",
        "width": f"{width} channels",
        "plan": f"{planned_rows} rows x {planned_seeds} seeds x {planned_train_images} images "
        f"in {budget_minutes:g} min, {parallel_runs} run(s) side by side",
    },
)

# %% [markdown]
# ## Time every variant at every size

# %%
table = run_table(
    spec, recorder, processes=parallel_runs, threads_per_process=num_threads, floor=False
)
speeds = table.per_seed.pivot_table(
    index="image size", columns="variant", values="train img/s", sort=False
)
recorder.save_table(speeds.round(2).reset_index(), "train_images_per_s")
speeds.round(2)

# %% [markdown]
# ## What a table can afford
# A table of `planned_rows` rows x `planned_seeds` seeds trains `parallel_runs` runs at a time;
# at the slowest Table 1 variant's throughput, its budget buys this many epochs of
# `planned_train_images` images (evaluation not counted, a few percent of a run). The feature
# maps' sides at output stride 8 (X(3)) and 16 (X(4), X(5), X(ASPP)) say how much finer X(3) is.

# %%
slowest = speeds[[p for p in pairs if p in speeds.columns] or list(speeds.columns)].min(axis=1)
presentations = budget_minutes * 60 * slowest * parallel_runs / (planned_rows * planned_seeds)
plan = pd.DataFrame(
    {
        "image size": speeds.index,
        "X(3) side": [s // 8 for s in speeds.index],
        "X(4)/X(5) side": [s // 16 for s in speeds.index],
        "slowest train img/s": slowest.to_numpy().round(2),
        "affordable epochs": (presentations / planned_train_images).to_numpy().round(1),
    }
)
for line in plan.itertuples():
    recorder.add(
        f"plan/{line[1]}px/epochs_at_measured_speed",
        float(line[5]),
        unit="epochs",
        description=f"epochs of {planned_train_images} images a {planned_rows}x{planned_seeds} "
        f"table affords in {budget_minutes:g} min at the slowest variant's throughput",
    )
recorder.save_table(plan, "plan")
feasible = plan[plan["affordable epochs"] >= min_epochs]
if feasible.empty:
    recorder.note(f"No probed size affords {min_epochs} epochs; the smallest is the choice.")
    chosen = plan.iloc[0]
else:
    chosen = feasible.iloc[-1]
    recorder.note(
        f"The largest probed size affording at least {min_epochs} epochs is "
        f"{int(chosen['image size'])} px ({chosen['affordable epochs']:.1f} epochs; X(3) "
        f"{int(chosen['X(3) side'])}x{int(chosen['X(3) side'])} against "
        f"{int(chosen['X(4)/X(5) side'])}x{int(chosen['X(4)/X(5) side'])})."
    )
print(recorder.notes[-1])
plan

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for variant in speeds.columns:
    ax.plot(speeds.index, speeds[variant], marker="o", label=variant)
ax.set_xlabel("image side (px)")
ax.set_ylabel("training images/s per run")
ax.set_title(f"{backbone}, {parallel_runs} run(s) side by side, {num_threads} thread(s) each")
ax.legend(fontsize="small")
fig.tight_layout()
recorder.save_figure(fig, "throughput")
recorder.write()
