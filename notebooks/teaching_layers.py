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
#     title: "Learn (2): deformable, CGDS, GDC and DDSM sampling"
#     paper: teaching
#     regenerates: []
#     description: >-
#       Where the dynamic sampling layers of the three papers read, drawn on a real photo with
#       the project's modules: deformable convolution (DCNv2, self-sampling with a mask), CGDS
#       (positions from another feature), Gaussian dynamic convolution (random positions:
#       per tap or shared, bilinear or integer, the effect of sigma) and DDSM (N sampled points
#       per pixel instead of all pairs), each with a check that the drawn positions are what
#       the layer reads.
#     profiles:
#       smoke: {side: 32, draws: 4, shown_draws: 2, fit_steps: 20}
#       cpu: {}
# ---

# %% [markdown]
# # Learn (2): deformable, CGDS, GDC and DDSM sampling
#
# The [first notebook](teaching_basics.ipynb) ended with the op every layer here is built on:
#
# $$y(p_0) = \sum_{n} w_n\, \Delta m_n\, x(p_0 + p_n + \Delta p_n),$$
#
# a convolution whose taps are moved by offsets $\Delta p_n$ (read bilinearly) and weighted
# by a modulation $\Delta m_n$. The layers of the papers differ in **where the offsets come
# from**:
#
# | layer | offsets $\Delta p$ | paper |
# |---|---|---|
# | deformable (DCNv2) | predicted from the layer's own input $x$ (and a mask $\Delta m$) | baseline of DSNet and GDC |
# | CGDS | predicted from *another* feature, the high-level context | DSNet |
# | GDC | drawn at random, half-Gaussian, not learned | GDC |
# | DDSM | predicted per pixel, for $N$ points that replace the $H W$ of non-local attention | DDSM |
#
# Each section builds the layer from `repro.modules`, draws where it reads at a few pixels of
# a photo (`repro.viz.teaching`, computed with the op's own positions) and checks that the
# kernel applied to the reads at those positions gives the layer's output. The layers are
# untrained: their offset predictors start at zero (the regular grid) in this project, as in
# the papers, so here they get random weights (`offset_std`) to show how the positions
# depend on their inputs. Re-run with another photo or σ, e.g.
# `repro run teaching_layers -p image chelsea -p sigma 0.2`.

# %%
from typing import Literal  # noqa: F401  (used by the parameter annotations below)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
image: Literal["astronaut", "coffee", "chelsea", "camera", "rocket", "motorcycle"] = "astronaut"  # a photo shipped with scikit-image
side: int = 64  # shortest side of the photo after downscaling, in pixels [>= 16]
pixel_rows: list[float] = [0.3, 0.62]  # the pixels looked at: rows as fractions of the height [>= 0, <= 1]
pixel_cols: list[float] = [0.45, 0.62]  # ... and their columns as fractions of the width [>= 0, <= 1]
offset_std: float = 0.5  # std of the random weights given to the offset predictors [>= 0]
fit_steps: int = 150  # Adam steps of the deformable layer that learns a shift [>= 1]
shift: list[float] = [1.5, -2.0]  # the (y, x) shift it learns, in pixels [len 2]
sigma: float = 0.1  # GDC half-Gaussian sigma, relative to the map's shortest side L [>= 0]
base: float = 2.0  # base offset b of GDC's shared mode (GDPP Eq. 4), in pixels [>= 0]
draws: int = 12  # GDC draws drawn and animated [>= 1]
shown_draws: int = 4  # of which shown one by one in the static panel [>= 1]
ddsm_points: int = 16  # N, sampled points per pixel of DDSM [>= 1]
seed: int = 0  # seed of the layers' weights and of the GDC draws [>= 0]
# fmt: on

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Image, display

from repro.modules.cgds import ContextGuidedSampling
from repro.modules.ddsm import SpatialDynamicAffinity, SpatialNonLocalAffinity
from repro.modules.dynamic_baselines import DeformableConv
from repro.modules.gdc import GaussianDynamicConv
from repro.results import Recorder
from repro.viz import teaching

if shown_draws > draws:
    raise ValueError(f"shown_draws ({shown_draws}) cannot exceed draws ({draws})")

torch.manual_seed(seed)
photo = teaching.load_photo(image, side)  # [1, 3, H, W], float64 in [0, 1]
height, width = photo.shape[-2:]
pixels = teaching.pixels_at(pixel_rows, pixel_cols, height, width)
grid = teaching.grid_positions(photo)
checks: dict[str, teaching.Check] = {}

recorder = Recorder(
    output_dir,
    setting={
        "what": "sampling positions of untrained project modules on a scikit-image photo",
        "photo": f"{image} ({height}x{width} px)",
        "pixels (y, x)": str(pixels),
        "offset predictors": f"random weights, std {offset_std} (untrained)",
        "GDC sigma": sigma,
        "GDC draws": draws,
        "DDSM N": ddsm_points,
        "dtype": "float64",
    },
)

# %% [markdown]
# ## 1. Deformable convolution: the layer moves its own taps
#
# DCN (Dai et al. 2017) and DCNv2 (Zhu et al. 2019) predict the offsets, and DCNv2 also the
# mask, from the feature the layer convolves: a 3×3 convolution of $x$ outputs
# $2 \cdot 9$ offsets and $9$ mask logits per pixel,
# $\Delta p, \Delta m = \mathrm{conv}(x)$, $\Delta m = \mathrm{sigmoid}(\cdot)$. This is
# `repro.modules.dynamic_baselines.DeformableConv(modulated=True)`. Marker size below: the
# mask $\Delta m_n$ (0.5 for every tap when the predictor is zero).

# %%
deformable = DeformableConv(3, 4, modulated=True).double()
teaching.randomise_predictor(deformable.offset_predictor, offset_std, seed)
positions, mask = teaching.deformable_sampling(deformable, photo)
assert mask is not None
deformable_taps = teaching.at_pixels(positions, pixels)
fig = teaching.sampling_figure(
    photo,
    pixels,
    {"regular grid": teaching.at_pixels(grid, pixels), "DCNv2 (random predictor)": deformable_taps},
    sizes={"DCNv2 (random predictor)": teaching.at_pixels(mask.unsqueeze(-1), pixels)[..., 0]},
)
recorder.save_figure(fig, "deformable")

rebuilt = teaching.weighted_sum(teaching.read_at(photo, positions), deformable.weight, mask)
checks["deformable"] = teaching.compare(
    "DCNv2: kernel on the drawn positions = layer", rebuilt, deformable(photo)
)
print(checks["deformable"])

# %% [markdown]
# The offsets are a function of the photo around each pixel, so two pixels with different
# surroundings read differently: deformable convolution is **self-sampling**.
#
# ### What a deformable layer learns: a toy
#
# To see the gradient to the position at work, a 3×3 DCNv1 layer whose kernel is frozen to
# copy the centre tap (so only its offsets can learn) is fitted to reproduce the photo shifted
# by `shift` = $(\Delta y, \Delta x)$: the target at $p$ is the photo at $p + \text{shift}$.
# Starting from zero offsets, Adam moves the taps until they read at the shifted position.
# This is a toy on one photo, not a trained segmentation network.

# %%
target = teaching.shifted(photo, (shift[0], shift[1]))
learner = teaching.identity_deformable(3)
losses = teaching.fit(learner, [photo], target, fit_steps)
with torch.no_grad():
    learned, _ = teaching.deformable_sampling(learner, photo)
margin = max(2, int(max(abs(s) for s in shift)) + 2)
moved = (learned - grid)[0, 4, margin:-margin, margin:-margin].reshape(-1, 2)  # centre tap
learned_shift = moved.mean(dim=0)
print(f"loss {losses[0]:.2e} -> {losses[-1]:.2e} in {fit_steps} steps")
print(
    f"centre tap moved by (y, x) = ({learned_shift[0]:.3f}, {learned_shift[1]:.3f}) px; target {tuple(shift)}"
)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
axes[0].semilogy(losses)
axes[0].set_xlabel("Adam step")
axes[0].set_ylabel("MSE to the shifted photo")
axes[1].hist(moved[:, 0].numpy(), bins=40, alpha=0.6, label="Δy")
axes[1].hist(moved[:, 1].numpy(), bins=40, alpha=0.6, label="Δx")
for value in shift:
    axes[1].axvline(value, color="black", lw=0.8)
axes[1].legend()
axes[1].set_title("learned centre-tap offsets (all pixels)", fontsize=9)
teaching.plot_taps(
    axes[2], photo, teaching.at_pixels(learned, pixels[:1])[0], pixels[0], 4.5, title="learned taps"
)
fig.tight_layout()
recorder.save_figure(fig, "deformable_learns_a_shift")

# %% [markdown]
# :::{admonition} Exercise
# Re-run with `-p shift "[0.0, 12.0]"`. Does the layer still learn the shift? Why, or why not?
# :::
#
# :::{dropdown} Answer
# Usually not, or only partly: the gradient to the position only sees the four pixels around
# each tap (first notebook, section 3). A tap 12 pixels from where it should read gets the
# slope of the photo where it *is*, which says nothing about the far-away target, so the fit
# falls into a local minimum. This is why deformable layers start at zero offsets and learn
# moderate ones, and why GDC and DDSM place their points far away by construction (random
# draws, anchors) instead of by gradient descent. Offsets that push a tap off the map are
# worse still: the read and its gradient are both 0 there.
# :::

# %% [markdown]
# ## 2. CGDS: the positions come from another feature
#
# DSNet's context-guided dynamic sampling (Eq. 2–3) predicts the offsets from the
# **high-level context** $X^{(\mathrm{ASPP})}$ and uses them to read the **low-level**
# feature $X^{(M)}$: $\Delta p = \mathrm{conv}(\mathrm{up}(X^{\mathrm{high}}))$,
# $X^{(S)}(p_0) = \sum_n w_n\, X^{(M)}(p_0 + p_n + \Delta p_n)$. Here the low-level map is
# the photo and the "context" a 4× coarser map. To show that the positions follow the
# context and not the map being read, the same photo is read with two contexts: its own,
# and that of the photo flipped upside down.

# %%
cgds = ContextGuidedSampling(3, 3, 4).double().eval()
teaching.randomise_predictor(cgds.offset_predictor, offset_std, seed + 1)
own_context = F.avg_pool2d(photo, 4)
other_context = F.avg_pool2d(photo.flip(-2), 4)
cgds_own = teaching.cgds_sampling(cgds, photo, own_context)
cgds_other = teaching.cgds_sampling(cgds, photo, other_context)
fig = teaching.sampling_figure(
    photo,
    pixels,
    {
        "CGDS, own context": teaching.at_pixels(cgds_own, pixels),
        "CGDS, flipped context": teaching.at_pixels(cgds_other, pixels),
    },
)
recorder.save_figure(fig, "cgds")

for name, context, positions_ in (
    ("own", own_context, cgds_own),
    ("flipped", other_context, cgds_other),
):
    rebuilt = teaching.weighted_sum(teaching.read_at(photo, positions_), cgds.weight)
    checks[f"cgds_{name}"] = teaching.compare(
        f"CGDS ({name} context): kernel on the drawn positions = layer",
        rebuilt,
        cgds.sampled_features(photo, context),
    )
    print(checks[f"cgds_{name}"])

# %% [markdown]
# :::{admonition} Exercise
# DSNet initialises the offset convolution of CGDS at zero. What does a fresh CGDS compute,
# whatever the context? Check it with `ContextGuidedSampling(3, 3, 4).double()` and `F.conv2d`.
# :::
#
# :::{dropdown} Answer
# With zero offsets every tap reads the regular grid: CGDS starts as a plain 3×3 convolution
# of the low-level map (before its BN + ReLU), and the context only starts to matter once
# training has moved the offset predictor. The cell below checks it.
# :::

# %%
fresh = ContextGuidedSampling(3, 3, 4).double()
checks["cgds_fresh"] = teaching.compare(
    "fresh CGDS = 3×3 conv of the low-level map",
    fresh.sampled_features(photo, other_context),
    F.conv2d(photo, fresh.weight, padding=1),
)
print(checks["cgds_fresh"])

# %% [markdown]
# ### Learned sampling points of DSNet
#
# The places a *trained* CGDS reads (the learned counterpart of the figures above, for
# DSNet's chapter) will be drawn here from the DSNet chapter's trained models. **There are
# none yet**: no DSNet model of this project has been trained, so this section shows nothing
# rather than an imitation.

# %% [markdown]
# ## 3. Gaussian dynamic convolution: random positions
#
# GDC (Sun et al. 2021, Eq. 3) learns no offsets at all. The centre tap stays; every other
# tap with direction $d \in \{-1, 0, 1\}^2$ is read at $p = p_0 + d \odot (r\,L)$, with
# $r \sim |\mathcal{N}(0, \sigma^2)|$ drawn anew, independently for $y$ and $x$ and for every
# tap (`per_tap`), at every pixel and every forward pass; $L$ is the map's shortest side.
# GDPP's variant (Eq. 4, `shared`) draws one $r$ per pixel for all taps and adds a base
# $b$: $p = p_0 + d\,(b + r)$, a dilated convolution of random rate. The authors' code reads
# the integer pixel, clamped to the map (`truncate`); the project's default reads
# bilinearly. Below, the taps of `draws` draws at the first pixel for the three variants,
# with `repro.modules.gdc.GaussianDynamicConv.draw_displacements`, the layer's own draws.

# %%
variants = {
    f"per tap, bilinear (σ = {sigma})": GaussianDynamicConv(3, 4, sigma=sigma),
    f"shared, b = {base:g} px": GaussianDynamicConv(
        3, 4, sigma=sigma, mode="shared", base=base / min(height, width)
    ),
    "per tap, truncate (integer)": GaussianDynamicConv(3, 4, sigma=sigma, sampling="truncate"),
}
gdc_taps = {}
radius_rows = []
for index, (name, layer) in enumerate(variants.items()):
    layer.double()
    taps = teaching.gdc_draws(layer, photo, pixels, draws, seed + index)  # [draws, pixels, 9, 2]
    gdc_taps[name] = taps
    centre = torch.tensor(pixels, dtype=taps.dtype).view(1, -1, 1, 2)
    distance = (taps - centre).norm(dim=-1)[:, :, [0, 1, 2, 3, 5, 6, 7, 8]]
    radius_rows.append(
        {"variant": name, "mean tap distance (px)": float(distance.mean()), "draws": draws}
    )
fig = teaching.draws_figure(
    photo, pixels[0], {name: taps[:, 0] for name, taps in gdc_taps.items()}, shown_draws
)
recorder.save_figure(fig, "gdc_draws")
radius_table = pd.DataFrame(radius_rows)
recorder.save_table(radius_table, "gdc_tap_distance")
radius_table

# %% [markdown]
# The same draws as an animation, one frame a draw (per-tap, bilinear):

# %%
first = next(iter(gdc_taps))
gif = teaching.save_draws_animation(
    photo, pixels[0], gdc_taps[first][:, 0], recorder.output_dir / "figures" / "gdc_draws.gif"
)
display(Image(data=gif.read_bytes(), format="gif"))
print(f"{gif.name}: {gif.stat().st_size / 1024:.0f} KiB")

# %% [markdown]
# **Check.** The drawn positions are what the layer reads: one draw's displacements, passed
# to the layer's `convolve`, give the kernel applied to the reads at the drawn positions.

# %%
layer = next(iter(variants.values()))
generator = torch.Generator().manual_seed(seed)
positions, displacements = teaching.gdc_sampling(layer, photo, generator)
rebuilt = teaching.weighted_sum(teaching.read_at(photo, positions), layer.weight, bias=layer.bias)
checks["gdc"] = teaching.compare(
    "GDC: kernel on the drawn positions = layer", rebuilt, layer.convolve(photo, displacements)
)
print(checks["gdc"])

# %% [markdown]
# ### The effect of σ
#
# σ sets how far the taps go: the mean of $|\mathcal{N}(0, \sigma^2)|$ is
# $\sigma\sqrt{2/\pi}$, so a moving tap lands on average about $0.8\,\sigma L$ from the
# centre along each axis it moves on. All draws at the first pixel for three values of σ:

# %%
sigmas = [sigma / 2, sigma, 2 * sigma]
sweep = {}
for value in sigmas:
    layer_s = GaussianDynamicConv(3, 4, sigma=value).double()
    sweep[f"σ = {value:g}"] = teaching.gdc_draws(layer_s, photo, pixels[:1], draws, seed)[:, 0]
half = teaching.window_for([taps.reshape(1, -1, 2) for taps in sweep.values()], pixels[:1])
fig, axes = plt.subplots(1, len(sweep), figsize=(3.2 * len(sweep), 3.4))
for ax, (name, taps) in zip(axes, sweep.items(), strict=True):
    teaching.plot_taps(
        ax, photo, taps.reshape(-1, 2), pixels[0], half, title=name, colour="tab:orange"
    )
fig.tight_layout()
recorder.save_figure(fig, "gdc_sigma")

# %% [markdown]
# :::{admonition} Exercise
# What does GDC compute when σ → 0, in the per-tap mode and in the shared mode with base
# $b$? And what changes between `bilinear` and `truncate` when a draw lands outside the map?
# :::
#
# :::{dropdown} Answer
# Per tap with σ = 0, every tap sits on the centre: the layer is a 1×1 convolution whose
# weights are the 3×3 kernel summed over its taps (the receptive field collapses to one
# pixel). Shared with σ = 0 and an integer base $b$, it is a dilated convolution of rate $b$
# (GDPP's starting point, base 9 in the paper). Outside the map, `bilinear` reads 0 (zero
# padding, as the op does everywhere), while `truncate` clamps the tap to the border pixel:
# large σ then reads the border over and over instead of nothing. Both checks follow.
# :::

# %%
collapsed = GaussianDynamicConv(3, 4, sigma=0.0).double()
checks["gdc_sigma_zero"] = teaching.check_sigma_zero(collapsed, photo)
print(checks["gdc_sigma_zero"])
rate = max(1, round(base))
dilated = GaussianDynamicConv(
    3, 4, sigma=0.0, mode="shared", base=float(rate), offset_unit="pixels"
)
checks["gdc_shared_dilation"] = teaching.check_shared_dilation(dilated.double(), photo)
print(checks["gdc_shared_dilation"])

# %% [markdown]
# ## 4. DDSM: N sampled points instead of all pairs
#
# Non-local attention lets every pixel attend to all $H W$ positions: $(HW)^2$ affinities.
# DDSM's spatial branch (Li and Tong 2021; `repro.modules.ddsm.SpatialDynamicAffinity`)
# lets every pixel attend to only $N$ points: $N$ anchors spread over the map (`global`),
# each moved by an offset predicted from the features, read bilinearly with
# `sample_points`; the affinities are a softmax over those $N$ points of query · key. Low
# level: the photo at half resolution; high level: the 4× coarser map. Marker size: the
# affinity of each point (largest = biggest), for two pixels.

# %%
low = F.avg_pool2d(photo, 2)
high = F.avg_pool2d(photo, 4)
low_pixels = teaching.pixels_at(pixel_rows, pixel_cols, *low.shape[-2:])
ddsm = SpatialDynamicAffinity(
    3, 3, inner_channels=8, num_samples=ddsm_points, position_embedding=False
)
ddsm = ddsm.double().eval()
teaching.randomise_predictor(ddsm.offset_predictor, offset_std, seed + 2)
with torch.no_grad():
    ddsm_positions, affinity = teaching.ddsm_sampling(ddsm, low, high)
affinity_at = teaching.at_pixels(affinity.unsqueeze(-1), low_pixels)[..., 0]
fig = teaching.sampling_figure(
    low,
    low_pixels,
    {f"DDSM, N = {ddsm_points}": teaching.at_pixels(ddsm_positions, low_pixels)},
    sizes={f"DDSM, N = {ddsm_points}": affinity_at / affinity_at.amax(dim=1, keepdim=True)},
    half_window=0.75 * max(low.shape[-2:]),
)
recorder.save_figure(fig, "ddsm")

checks["ddsm"] = teaching.compare(
    "DDSM: affinity-weighted values read at the drawn positions = layer",
    teaching.ddsm_output_from_positions(ddsm, low, high),
    ddsm(low, high),
)
print(checks["ddsm"])
pairs = low.shape[-2] * low.shape[-1]
counts = pd.DataFrame(
    [
        {"attention": "non-local (all pairs)", "affinities": pairs * pairs},
        {"attention": f"DDSM (N = {ddsm_points})", "affinities": pairs * ddsm_points},
    ]
)
recorder.save_table(counts, "ddsm_affinities")
counts

# %% [markdown]
# :::{admonition} Exercise
# For which $N$, anchors and offsets does DDSM compute exactly the non-local block?
# :::
#
# :::{dropdown} Answer
# $N = H W$ with `global` anchors (one on every pixel centre) and zero offsets: every pixel
# then reads every position exactly, and the softmax over the $N$ points is the non-local
# softmax over all pairs. The project's tests check it, and so does the cell below on a
# map of at most 12 × 10 pixels, copying the weights from one module to the other.
# :::

# %%
small_h, small_w = min(12, low.shape[-2]), min(10, low.shape[-1])
small_low, small_high = low[..., :small_h, :small_w], high[..., : small_h // 2, : small_w // 2]
every = SpatialDynamicAffinity(
    3, 3, inner_channels=8, num_samples=small_h * small_w, position_embedding=False
)
full = SpatialNonLocalAffinity(3, 3, inner_channels=8, position_embedding=False)
full.load_state_dict(every.state_dict(), strict=False)
every, full = every.double().eval(), full.double().eval()
checks["ddsm_all_points"] = teaching.compare(
    "DDSM with N = HW, zero offsets = non-local",
    every(small_low, small_high),
    full(small_low, small_high),
)
print(checks["ddsm_all_points"])

# %% [markdown]
# ## All the layers at the same pixels
#
# The sampling positions of every layer of this chapter at the chosen pixels (for DDSM, the
# $N$ points of the same pixel on the half-resolution map, scaled back to the photo).

# %%
ddsm_on_photo = teaching.at_pixels(ddsm_positions, low_pixels) * 2 + 0.5
panels = {
    "regular 3×3": teaching.at_pixels(grid, pixels),
    "dilation 2": teaching.at_pixels(teaching.grid_positions(photo, dilation=2), pixels),
    "DCNv2": deformable_taps,
    "CGDS": teaching.at_pixels(cgds_own, pixels),
    "GDC (1 draw)": gdc_taps[first][0],
    f"DDSM (N = {ddsm_points})": ddsm_on_photo,
}
fig = teaching.sampling_figure(photo, pixels, panels, half_window=max(height, width) / 2)
recorder.save_figure(fig, "all_layers")

# %% [markdown]
# ## What is recorded
#
# The checks: `checks/<name>/passed` (1 when the largest difference is within its
# tolerance) and `checks/<name>/max_abs_diff`, the largest absolute difference, recorded as
# one thousandth of the tolerance when smaller (rounding noise, ~1e-15, whose last digits
# differ between machines; the exact values are printed above and kept in the `checks`
# table). Then the shift the toy deformable layer learned (rounded to 0.01 px) and the mean
# distance of GDC's moving taps from the centre.

# %%
table = pd.DataFrame(
    [
        {
            "check": c.name,
            "max abs difference": c.max_abs_diff,
            "tolerance": c.tolerance,
            "passed": c.passed,
        }
        for c in checks.values()
    ]
)
recorder.save_table(table, "checks")
for key, c in checks.items():
    recorder.add(f"checks/{key}/passed", float(c.passed), description=c.name)
    recorder.add(
        f"checks/{key}/max_abs_diff",
        c.recorded_difference,
        description=f"{c.name}: max |difference| (recorded as "
        f"{teaching.NOISE_FLOOR * c.tolerance:g} when smaller: rounding noise)",
    )
recorder.add(
    "deformable_fit/learned_shift_y",
    round(float(learned_shift[0]), 2),
    unit="px",
    description=f"mean centre-tap y offset after fitting a shift of {shift[0]} px",
)
recorder.add(
    "deformable_fit/learned_shift_x",
    round(float(learned_shift[1]), 2),
    unit="px",
    description=f"mean centre-tap x offset after fitting a shift of {shift[1]} px",
)
for key, row in zip(("per_tap", "shared", "truncate"), radius_rows, strict=True):
    recorder.add(
        f"gdc/{key}/mean_tap_distance",
        round(row["mean tap distance (px)"], 4),
        unit="px",
        description=f"mean distance of the moving taps from the centre, {row['variant']}",
    )
recorder.write()
table
