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
#     title: "GDC Fig. 10: where a Gaussian dynamic kernel samples"
#     paper: gdc
#     regenerates: [Fig. 10]
#     description: >-
#       The sampling positions of a GDC kernel around one centre, drawn many times for two
#       values of sigma, and the drawn offset magnitudes against the half-Gaussian density.
#     profiles:
#       smoke: {draws: 20, seeds: [0]}
#       cpu: {}
#       full: {}
# ---

# %% [markdown]
# # GDC Fig. 10: where a Gaussian dynamic kernel samples
#
# GDC (Sun et al., TCSVT 2021, Section III) keeps the centre tap of a 3×3 kernel fixed and
# moves every other tap along its direction $d$ by a random amount $r \sim |\mathcal{N}(0, \sigma^2)|$
# (Eq. 3), scaled by the length $L$ of the feature map's shortest side:
# $p = p_0 + d \odot (r L)$. The paper illustrates this in Fig. 10 by drawing a kernel 100 times
# for two values of $\sigma$ and plotting where its taps land: a larger $\sigma$ spreads them
# further, i.e. a larger receptive field. This notebook redraws that figure with
# `repro.modules.gaussian_offsets`, the same code the GDC layer uses, and measures the claim.
#
# The text of the paper lost the two σ values of the figure (see `results/reported/PAPERS.md`);
# the defaults below take the ends of the paper's σ ablation (Table IV: 0.1 and 0.3).

# %%
from typing import Literal  # noqa: F401  (used by the parameter annotations below)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
sigmas: list[float] = [0.1, 0.3]  # two half-Gaussian sigmas, relative to the map side L [> 0, increasing, len 2]
draws: int = 100  # kernel draws per sigma (the paper: 100) [>= 1]
kernel_size: int = 3  # odd kernel size [>= 1, odd]
map_size: int = 64  # L, the shortest side of the feature map, in pixels [>= 1]
offset_mode: Literal["per_tap", "shared"] = "per_tap"  # per tap (paper Eq. 3) or shared (GDPP Eq. 4)
base: float = 0.0  # constant base offset b of the shared variant, in pixels
seeds: list[int] = [0, 1, 2]  # one set of draws per seed [>= 0, unique]
# fmt: on

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from repro.modules.gaussian_offsets import gdc_tap_displacements, tap_directions
from repro.results import Recorder
from repro.viz.sampling import plot_half_gaussian_histogram, plot_sampling_positions

if len(sigmas) != 2 or sigmas[0] >= sigmas[1]:
    raise ValueError(f"sigmas must be two increasing values, got {sigmas}")

recorder = Recorder(
    output_dir,
    setting={
        "what": "GDC offsets drawn directly (no network, no data)",
        "kernel": f"{kernel_size}x{kernel_size}",
        "L (map side)": map_size,
        "offset mode": offset_mode,
        "draws per sigma": draws,
        "seeds": len(seeds),
    },
)

# %% [markdown]
# ## Draw the kernels
# Each seed draws `draws` kernels for each σ. The radius of a draw is the mean distance of its
# moving taps from the centre; the centre tap (direction 0) must never move.

# %%
moving = tap_directions(kernel_size).abs().sum(dim=1) > 0
radius: dict[float, list[float]] = {sigma: [] for sigma in sigmas}
first_draws: dict[float, torch.Tensor] = {}
for seed in seeds:
    generator = torch.Generator().manual_seed(seed)
    for sigma in sigmas:
        taps = gdc_tap_displacements(
            kernel_size,
            sigma,
            scale=map_size,
            mode=offset_mode,
            base=base,
            batch_shape=(draws,),
            generator=generator,
        )
        assert torch.all(taps[:, ~moving] == 0), "the centre tap moved"
        radius[sigma].append(taps[:, moving].norm(dim=-1).mean().item())
        first_draws.setdefault(sigma, taps)

table = pd.DataFrame(
    {
        "sigma": sigmas,
        "radius mean (px)": [pd.Series(radius[s]).mean() for s in sigmas],
        "radius std (px)": [
            pd.Series(radius[s]).std(ddof=1) if len(seeds) > 1 else 0.0 for s in sigmas
        ],
        "n seeds": [len(seeds)] * 2,
    }
)
recorder.save_table(table, "radius")
table

# %% [markdown]
# ## The figure
# Left and middle: the taps of every draw around one centre (the paper's Fig. 10a/b).
# Right: the drawn magnitudes $r L$ against the half-Gaussian density with scale $\sigma L$.

# %%
limit = max(float(first_draws[s].abs().max()) for s in sigmas) * 1.05 + 1
fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
for ax, sigma in zip(axes[:2], sigmas, strict=True):
    plot_sampling_positions(
        ax, first_draws[sigma], f"σ = {sigma} (L = {map_size}, {draws} draws)", limit=limit
    )
axes[0].legend(loc="upper right", fontsize=8)
for sigma in sigmas:
    signed = first_draws[sigma][:, moving]
    directions = tap_directions(kernel_size)[moving]
    magnitudes = (signed / directions.where(directions != 0, torch.ones(()))).abs()
    magnitudes = magnitudes[directions.expand_as(signed) != 0].numpy() - base
    plot_half_gaussian_histogram(axes[2], magnitudes, sigma * map_size, f"σ = {sigma}")
axes[2].legend(fontsize=8)
axes[2].set_title("offset magnitudes")
fig.tight_layout()
recorder.save_figure(fig, "fig10_sampling_positions")

# %% [markdown]
# ## What is measured
# `radius/sigma_small` and `radius/sigma_large` (mean distance of the moving taps from the centre,
# one value per seed) test the claim that a larger σ gives a larger receptive field.

# %%
recorder.add(
    "radius/sigma_small",
    radius[sigmas[0]],
    seeds=seeds,
    unit="px",
    description=f"mean tap distance from the centre, sigma = {sigmas[0]}",
)
recorder.add(
    "radius/sigma_large",
    radius[sigmas[1]],
    seeds=seeds,
    unit="px",
    description=f"mean tap distance from the centre, sigma = {sigmas[1]}",
)
recorder.write()
