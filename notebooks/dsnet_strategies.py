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
#     title: "DSNet Table 2: deep supervision, flip, multi-scale and fine-tuning"
#     paper: dsnet
#     regenerates: [Table 2]
#     description: >-
#       DeepLabv3+ and DSNet with deep supervision trained on paired seeds, then the same DSNet
#       models evaluated with flip and with flip + multi-scale, and fine-tuned on an "original"
#       subset with exact labels after training on coarse ones: Table 2's five rows at reduced
#       scale, beside the paper's ResNet-101 numbers.
#     profiles:
#       smoke: {num_train: 8, num_val: 4, image_size: 64, epochs: 1, batch_size: 4, width: 16, weights: none, seeds: [0], parallel_runs: 1, ft_num_train: 4, ft_epochs: 1, ms_scales: [0.75, 1.0, 1.5]}
#       cpu: {}
#       full: {dataset: voc_aug, image_size: 512, train_scale_range: [0.5, 2.0], num_train: 10582, num_val: 1449, backbone: resnet101, width: 256, epochs: 80, batch_size: 32, optimizer: sgd, lr: 0.01, head_lr_mult: 0.1, weights: IMAGENET1K_V1, train_labels: full, ft_dataset: voc, ft_epochs: 20, ft_lr: 0.001, device: cuda, parallel_runs: 1, num_threads: 8}
# ---

# %% [markdown]
# # DSNet Table 2: deep supervision, flip, multi-scale and fine-tuning
#
# Table 2 of DSNet (ResNet-101, VOC 2012 val) adds one strategy per row: DeepLabv3+ with deep
# supervision (80.06), DSNet with deep supervision (80.98), then DSNet evaluated with
# horizontal flip (81.63), with flip and six scales (82.53), and fine-tuned on VOC's original
# training set after the augmented one (83.74). Four claims of the audit rest on it:
# `dsnet.cgds-beats-deeplabv3plus`, `dsnet.flip-helps`, `dsnet.multiscale-helps` and
# `dsnet.finetune-helps`.
#
# **How the rows are run.** Only two rows train from the backbone's weights: DeepLabv3+ and
# DSNet, both with the auxiliary FCN loss on X(4) (deep supervision, weight 0.4). The flip
# and multi-scale rows evaluate *the same trained DSNet models* again (one model per seed,
# `Row.evaluated`), so their differences from the DSNet row are the evaluation's alone. The
# fine-tuning row starts from each seed's trained DSNet (`Row.init_from`) and trains on a
# smaller "original" set. Seeds pair every row: the same seed gives the same data order and
# initialisation.
#
# **The stand-in of VOC aug vs VOC train.** The paper explains the fine-tuning gain by "the
# different distributions between the original dataset and augmented training set": most of
# VOC aug's labels come from SBD, drawn more coarsely than VOC's own. The offline dataset has
# exact labels, so at the `cpu` profile the main training uses **coarse labels**
# (`train_labels: coarse`: every 4×4 block takes its centre pixel's class, blocky boundaries,
# `repro.experiments.pseudo_labels.coarse_label`) and the fine-tuning uses the first
# `ft_num_train` training images **with exact labels** (about the paper's 1,464 / 10,582
# share). Validation labels are exact throughout. This makes the FT row test what the paper
# says causes it, a label-distribution gap, at this scale; without the gap (`train_labels:
# full`) the FT row would only test training a little longer on a subset.
#
# **What differs from the paper** at the `cpu` profile: the offline dataset at 128 px
# instead of VOC at 512 (the multi-scale row evaluates at 96 to 256 px: the paper's scales
# relative to the image); a dilated ResNet-18 from `offline-pretrained` weights instead of an
# ImageNet ResNet-101; narrower branches; AdamW and 4 epochs instead of SGD and 80; the
# fine-tuning recipe (epochs, learning rate) is not stated in the paper and is chosen here.
# The `full` profile is the paper's setting on VOC aug, fine-tuning on VOC train.

# %%
from typing import Literal  # noqa: F401  (parameter annotations)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
dataset: str = "offline"  # offline, or a real dataset name (full profile: voc_aug)
train_labels: Literal["full", "coarse"] = "coarse"  # main training labels: coarse = the offline stand-in of SBD's (full profile: the dataset's own)
backbone: str = "resnet18"  # torchvision ResNet, dilated (paper: ResNet-101)
weights: str = "offline-pretrained"  # offline-pretrained (this project's stand-in), none (random init), a torchvision name or a file
output_stride: int = 16  # backbone output stride (paper: 16) [>= 1]
width: int = 64  # channels of ASPP and the DSNet branches (paper: 256) [>= 1]
image_size: int = 128  # offline image side = training crop (paper: 512 crops) [>= 16]
train_scale_range: list[float] = [1.0, 1.0]  # random rescaling of training crops (paper: 0.5-2.0) [> 0, len 2]
num_train: int = 1000  # training images (offline dataset) [>= 1]
num_val: int = 100  # validation images (offline dataset) [>= 1]
epochs: int = 4  # training epochs (paper: 80; 4 = what the cpu setting probe affords at 128 px) [>= 1]
batch_size: int = 8  # images per optimiser step (paper: 32) [>= 1]
optimizer: Literal["sgd", "adamw"] = "adamw"  # paper: sgd
lr: float = 0.001  # backbone learning rate (paper: 0.01 with SGD) [> 0]
head_lr_mult: float = 0.1  # the rest of the network relative to lr (the DSNet text's 0.1) [> 0]
deep_supervision: bool = True  # auxiliary FCN loss on X(4): every row of Table 2 has it
ms_scales: list[float] = [0.75, 1.0, 1.25, 1.5, 1.75, 2.0]  # the MS row's evaluation scales (paper's) [> 0]
ft_dataset: str = "voc"  # real data only: the dataset whose train split FT uses (VOC 2012 train)
ft_num_train: int = 140  # offline only: the "original" set = the first N training images (paper: 1464 of 10582) [>= 1]
ft_epochs: int = 4  # fine-tuning epochs (not stated in the paper) [>= 1]
ft_lr: float = 0.0001  # fine-tuning backbone learning rate (not stated in the paper) [> 0]
seeds: list[int] = [0, 1, 2]  # one run per seed and row, paired across rows [>= 0, unique]
device: str = "auto"  # auto (CUDA when available, else CPU), cpu, cuda or cuda:N
parallel_runs: int = 2  # training runs side by side [>= 1]
num_threads: int = 1  # torch CPU threads per run [>= 1]
# fmt: on

# %%
import torch

from repro.audit.reported import load_reported
from repro.experiments.dsnet import DSNetTableSetting, fine_tune_data, table2_rows
from repro.experiments.table import run_table
from repro.results import Recorder

torch.set_num_threads(num_threads)
# Table 2's rows set their own evaluation (flip, scales); the trained rows use neither.
setting = DSNetTableSetting.from_parameters({**globals(), "eval_flip": False, "eval_scales": [1.0]})
rows = table2_rows(
    width,
    setting.model_options(),
    ms_scales,
    fine_tune_data(setting.data(), ft_dataset, ft_num_train),
    {"epochs": ft_epochs, "lr": ft_lr},
)
spec = setting.table_spec("table2", rows)
recorder = Recorder(
    output_dir,
    setting={
        **setting.recorded(),
        "multi-scale evaluation": ", ".join(f"{s:g}" for s in ms_scales) + " x image size",
        "fine-tuning": f"{ft_epochs} epoch(s) at lr {ft_lr:g} on "
        + (
            f"the first {ft_num_train} training images with exact labels"
            if dataset == "offline"
            else f"{ft_dataset} train"
        ),
    },
)

# %% [markdown]
# ## Train, evaluate again, fine-tune

# %%
table = run_table(spec, recorder, processes=parallel_runs, threads_per_process=num_threads)
table.summary()

# %% [markdown]
# ## Each strategy against the row before it, on the same seeds
# The claims compare consecutive rows: DSNet minus DeepLabv3+, flip minus none, MS minus flip,
# FT minus MS. The flip and MS differences are between evaluations of the *same* models, so
# their seed-to-seed spread is the evaluation's alone.

# %%
steps = [
    ("dsnet", "baseline", "DSNet minus DeepLabv3+ (both DS)"),
    ("dsnet_flip", "dsnet", "flip minus no flip"),
    ("dsnet_flip_ms", "dsnet_flip", "flip + MS minus flip"),
    ("dsnet_flip_ms_ft", "dsnet_flip_ms", "fine-tuned minus not (flip + MS)"),
]
for row, before, words in steps:
    table.record_difference(f"table2/{row}_minus_{before}/miou", row, before, description=words)
table.per_seed.pivot_table(index="seed", columns="row", values="mIoU (%)", sort=False).round(2)

# %% [markdown]
# ## Beside the paper's Table 2
# The paper's numbers are one run each (ResNet-101, VOC 2012 val, 512-px crops, 80 epochs);
# this project's are mean ± std over seeds at the setting above: a test of each step's
# direction, not of its size.

# %%
comparison = table.versus_paper(load_reported())
recorder.save_table(comparison, "table2_vs_paper")
comparison

# %%
fig, axes = table.figure(metrics=("miou", "boundary_f"), extra_panels=1)
ax = axes[-1]
by_seed = table.per_seed.pivot_table(index="seed", columns="row", values="mIoU (%)")
for seed, line in by_seed.iterrows():
    ax.plot(
        [r.title for r in spec.rows],
        [line[r.key] for r in spec.rows],
        marker="o",
        label=f"seed {seed}",
    )
ax.set_ylabel("mIoU (%)")
ax.set_title("each seed through the strategies")
ax.legend(fontsize="small")
recorder.save_figure(fig, "table2")
recorder.write()
