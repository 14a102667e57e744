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
#     title: "Learn (1): the regular grid, dilation and bilinear sampling"
#     paper: teaching
#     regenerates: []
#     description: >-
#       Where a convolution reads, drawn on a real photo: the regular 3x3 grid (DSNet Eq. 1),
#       dilation and the growth of the receptive field, reads at fractional positions by
#       bilinear interpolation and their gradient to the position, with checks a reader can
#       run (zero offsets = F.conv2d, the op = torchvision's deform_conv2d, integer reads =
#       indexing, gradient = finite differences).
#     profiles:
#       smoke: {side: 32, layers: 2}
#       cpu: {}
# ---

# %% [markdown]
# # Learn (1): the regular grid, dilation and bilinear sampling
#
# Every layer of the three papers (DSNet's CGDS, GDC, DDSM) is a convolution, or a weighted
# sum, that **reads its input somewhere else than on the regular grid**. This first notebook
# builds the vocabulary on a real photo: where a plain convolution reads, how dilation moves
# those reads, and how one reads *between* pixels (bilinear interpolation), including the
# gradient of such a read to the position, which is what lets a network learn where to read.
# The [second notebook](teaching_layers.ipynb) uses it for deformable convolution, CGDS, GDC
# and DDSM.
#
# Everything is computed with the project's own op, `repro.ops.dynamic_sampling_conv2d`
# (the arguments of `torchvision.ops.deform_conv2d`) and `repro.ops.sample_points`; the
# positions drawn are those the op reads (`repro.viz.teaching`), and each section checks it.
# Re-run it with another photo, other pixels or another dilation, e.g.
# `repro run teaching_basics -p image coffee -p dilation 2`.

# %%
from typing import Literal  # noqa: F401  (used by the parameter annotations below)

# %% tags=["parameters"]
# fmt: off
profile: str = "cpu"  # set by `repro run`
output_dir: str = "."  # set by `repro run`
image: Literal["astronaut", "coffee", "chelsea", "camera", "rocket", "motorcycle"] = "astronaut"  # a photo shipped with scikit-image
side: int = 96  # shortest side of the photo after downscaling, in pixels [>= 16]
pixel_rows: list[float] = [0.3, 0.62]  # the pixels looked at: rows as fractions of the height [>= 0, <= 1]
pixel_cols: list[float] = [0.45, 0.62]  # ... and their columns as fractions of the width [>= 0, <= 1]
dilation: int = 3  # dilation of the dilated convolution [>= 1]
layers: int = 3  # stacked 3x3 convolutions of the receptive-field figure [>= 1]
subpixel: list[float] = [0.3, 0.65]  # fractional part (y, x) of the point read between pixels [> 0, < 1, len 2]
seed: int = 0  # seed of the random kernels and offsets [>= 0]
# fmt: on

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from repro.ops import dynamic_sampling_conv2d
from repro.results import Recorder
from repro.viz import teaching

torch.manual_seed(seed)
photo = teaching.load_photo(image, side)  # [1, 3, H, W], float64 in [0, 1]
height, width = photo.shape[-2:]
pixels = teaching.pixels_at(pixel_rows, pixel_cols, height, width)
checks: list[teaching.Check] = []

recorder = Recorder(
    output_dir,
    setting={
        "what": "sampling positions of the project's op on a scikit-image photo (no training)",
        "photo": f"{image} ({height}x{width} px)",
        "pixels (y, x)": str(pixels),
        "dilation": dilation,
        "dtype": "float64",
    },
)

fig, ax = plt.subplots(figsize=(4, 4 * height / width))
teaching.show_photo(ax, photo, f"{image}, {height}×{width} pixels")
for y, x in pixels:
    ax.scatter([x], [y], marker="*", s=120, color="red", edgecolors="white")
fig.tight_layout()
recorder.save_figure(fig, "photo_and_pixels")

# %% [markdown]
# ## 1. The regular grid
#
# A 3×3 convolution computes, at every output pixel $p_0$ (DSNet Eq. 1),
#
# $$y(p_0) = \sum_{p_n \in \mathcal{R}} w(p_n)\, x(p_0 + p_n), \qquad
#   \mathcal{R} = \{(-1,-1), (-1,0), \dots, (1,1)\}.$$
#
# The nine positions $p_0 + p_n$ are the **taps**. Below, the taps of the chosen pixels,
# computed with `conv_tap_positions`: the base grid of the op itself plus zero offsets (the
# offsets are what later layers will change). Colours give the tap index $n = 3i + j$, the
# order of the op's offset channels; the red star is $p_0$.

# %%
grid = teaching.grid_positions(photo)  # [1, 9, H, W, 2]: (y, x) of every tap of every pixel
print("taps of pixel", pixels[0], "(y, x):")
print(teaching.at_pixels(grid, pixels[:1])[0].int().tolist())
fig = teaching.sampling_figure(photo, pixels, {"3×3 grid": teaching.at_pixels(grid, pixels)})
recorder.save_figure(fig, "regular_grid")

# %% [markdown]
# **Check.** With every offset zero, the dynamic sampling op is an ordinary convolution: its
# output must equal `torch.nn.functional.conv2d` with the same kernel (up to float64
# rounding, ~1e-15).

# %%
weight = torch.randn(4, 3, 3, 3, dtype=photo.dtype)
check = teaching.check_zero_offsets(photo, weight, dilation=1)
checks.append(check)
print(check)

# %% [markdown]
# :::{admonition} Exercise
# Where are the taps of the corner pixel $(0, 0)$, and what do they read? Compute
# `teaching.at_pixels(grid, [(0, 0)])`.
# :::
#
# :::{dropdown} Answer
# Five of its nine taps fall outside the photo, at $y = -1$ or $x = -1$. The op reads
# **zero** there (zero padding, like `F.conv2d(..., padding=1)`; that is why the check above
# holds at the border too). Only taps 4, 5, 7 and 8 ($p_n \in \{0, 1\}^2$) read the photo.
# :::

# %% [markdown]
# ## 2. Dilation
#
# A dilated convolution of rate $d$ reads at $p_0 + d\,p_n$: the same nine taps, spread
# $d$ pixels apart. Same weights, same cost, a larger window.

# %%
dilated = teaching.grid_positions(photo, dilation=dilation)
fig = teaching.sampling_figure(
    photo,
    pixels,
    {
        "dilation 1": teaching.at_pixels(grid, pixels),
        f"dilation {dilation}": teaching.at_pixels(dilated, pixels),
    },
)
recorder.save_figure(fig, "dilation")

check = teaching.check_zero_offsets(photo, weight, dilation=dilation)
checks.append(check)
print(check)

# %% [markdown]
# ### The receptive field grows
#
# Stacking layers grows the region an output pixel depends on, its **receptive field**.
# `receptive_field` measures it without a formula: the gradient of one output pixel to the
# input is non-zero exactly where the input matters. With $L$ layers of 3×3 convolutions the
# field reaches $L$ pixels from the centre; with dilation $d$ it reaches $L\,d$, but it is
# full of holes (the *gridding* of dilated convolutions): the dilated layers never read the
# pixels in between.

# %%
centre = pixels[0]
rows = []
fig, axes = plt.subplots(2, layers, figsize=(2.6 * layers, 5.4), squeeze=False)
half = layers * dilation + 1.5
for depth in range(1, layers + 1):
    for row, rate in enumerate((1, dilation)):
        stack = teaching.conv_stack(3, depth, rate, seed)
        field = teaching.receptive_field(stack, photo, centre)
        radius = teaching.support_radius(field, centre)
        read = int((field > 1e-9 * field.max()).sum())
        rows.append(
            {
                "layers": depth,
                "dilation": rate,
                "radius (px)": radius,
                "expected L·d": depth * rate,
                "pixels read": read,
            }
        )
        teaching.field_panel(axes[row, depth - 1], photo, field, centre, half)
        axes[row, depth - 1].set_title(f"{depth} layer(s), dilation {rate}", fontsize=9)
fig.tight_layout()
recorder.save_figure(fig, "receptive_field")
fields = pd.DataFrame(rows)
recorder.save_table(fields, "receptive_field")
fields

# %% [markdown]
# :::{admonition} Exercise
# How many 3×3 layers does it take to see 12 pixels away, with dilation 1 and with
# dilation 4? How many of the $25 \times 25$ pixels of that window does each stack read?
# :::
#
# :::{dropdown} Answer
# Twelve layers with dilation 1 (the field grows by one pixel a layer) and three with
# dilation 4. The plain stack reads all $25^2 = 625$ pixels of the window; the dilated one
# only those whose offsets are multiples of 4, $7^2 = 49$ of them (the table's "pixels read"
# column shows the same effect for this notebook's parameters). Mixing rates, or sampling
# positions at random (GDC, next notebook), fills the holes.
# :::

# %% [markdown]
# ## 3. Reading between pixels: bilinear interpolation
#
# Dynamic sampling moves taps by fractional amounts, $p = p_0 + p_n + \Delta p_n$ with
# $\Delta p_n \in \mathbb{R}^2$. The op reads such a point by bilinear interpolation
# (DCNv2 Eq. 4):
#
# $$x(p) = \sum_q G(q, p)\, x(q), \qquad G(q, p) = g(q_y, p_y)\, g(q_x, p_x), \quad
#   g(a, b) = \max(0, 1 - |a - b|),$$
#
# a weighted mean of the four pixels around $p$. Below, $G(\cdot, p)$ for a point between
# pixels, obtained from the op itself: the read is linear in the image, so its gradient to
# the image *is* the weight of every pixel.

# %%
point = (pixels[0][0] + subpixel[0], pixels[0][1] + subpixel[1])
fig = teaching.interpolation_figure(photo, point)
recorder.save_figure(fig, "bilinear_weights")
weights = teaching.interpolation_weights(height, width, point)
print(
    f"p = {point}: {int((weights > 0).sum())} pixels weigh, weights sum to {float(weights.sum()):.6f}"
)

# %% [markdown]
# **Check.** At an integer position, bilinear interpolation must give the pixel itself: all
# the weight on one pixel.

# %%
check = teaching.check_integer_reads(photo, pixels)
checks.append(check)
print(check)

# %% [markdown]
# ### The gradient to the position
#
# Between pixel centres the read is linear in each coordinate, so its derivative to the
# position exists: along $x$ it is the difference of the two neighbouring columns (weighted
# by the distance in $y$). That derivative is what the offsets of a deformable layer, of CGDS
# or of DDSM are trained with. It is piecewise constant: it jumps at every integer
# coordinate, where the four neighbours change. Below: the grey value read along the row of
# the point (red channel of the op's read, every 1/40 pixel) and its derivative from
# autograd.

# %%
xs, values, slopes = teaching.line_profile(photo, point[0], point[1] - 3, point[1] + 3, 241)
fig, axes = plt.subplots(2, 1, figsize=(7, 4.5), sharex=True)
axes[0].plot(xs, values, color="tab:red")
axes[0].set_ylabel("x(p) (red channel)")
axes[1].step(xs, slopes, where="mid", color="tab:blue")
axes[1].set_ylabel("∂x(p)/∂p_x")
axes[1].set_xlabel(f"p_x (row p_y = {point[0]:g})")
for ax in axes:
    for column in range(int(xs[0]) + 1, int(xs[-1]) + 1):
        ax.axvline(column, color="grey", lw=0.5, alpha=0.6)
axes[0].set_title("a read between pixels: linear between centres (grey lines), kinks at them")
fig.tight_layout()
recorder.save_figure(fig, "gradient_to_position")

# %% [markdown]
# **Check.** Autograd's gradient to the position against central finite differences
# $(x(p + \varepsilon e) - x(p - \varepsilon e)) / 2\varepsilon$ at points away from the
# kinks, for every channel and both coordinates.

# %%
generator = torch.Generator().manual_seed(seed)
points = torch.rand(8, 2, generator=generator, dtype=photo.dtype) * torch.tensor(
    [height - 2.0, width - 2.0], dtype=photo.dtype
)
points = points.floor() + 0.05 + 0.9 * torch.rand(8, 2, generator=generator, dtype=photo.dtype)
check = teaching.check_position_gradient(photo, points)
checks.append(check)
print(check)

# %% [markdown]
# :::{admonition} Exercise
# What does the op read, and what gradient does it give, when an offset takes a tap beyond
# the map, e.g. to $x = -0.5$, or to $x = -3$? Try `teaching.read_with_gradient(photo,
# torch.tensor([[10.0, -0.5], [10.0, -3.0]], dtype=photo.dtype))`.
# :::
#
# :::{dropdown} Answer
# Outside the map the image is taken to be zero. At $x = -0.5$ the read is half the first
# column's value (the other half of the weight falls on the zero outside), and the gradient
# along $x$ is the first column's value: the tap is pulled back towards the map if that
# helps the loss. At $x \le -1$ all four neighbours are outside: the read is 0 **and the
# gradient is 0**. A tap that has left the map gets no signal to return; this is why
# deformable layers start their offsets at zero and why GDC's authors clamp their random taps
# to the map (the `truncate` sampling of the next notebook). The cell below prints it.
# :::

# %%
outside = torch.tensor([[10.0, -0.5], [10.0, -3.0]], dtype=photo.dtype)
values_out, gradients_out = teaching.read_with_gradient(photo, outside)
print("first column, row 10:", photo[0, :, 10, 0].tolist())
print("read at x = -0.5, -3:", values_out.T.tolist())
print("d read / d p_x      :", gradients_out[:, :, 1].T.tolist())

# %% [markdown]
# ## 4. The op, checked against torchvision
#
# Put together, the op reads every tap at $p_0 + p_n + \Delta p_n$ bilinearly, multiplies it
# by a modulation $\Delta m_n$ (DCNv2 Eq. 3) and sums with the weights:
#
# $$y(p_0) = \sum_{n} w_n\, \Delta m_n\, x(p_0 + p_n + \Delta p_n).$$
#
# **Check.** With random offsets (a few pixels, many taps off the map) and a random mask, the
# project's op equals `torchvision.ops.deform_conv2d`, the implementation the papers' code
# builds on.

# %%
generator = torch.Generator().manual_seed(seed)
offset = 3.0 * torch.randn(1, 18, height, width, generator=generator, dtype=photo.dtype)
mask = torch.rand(1, 9, height, width, generator=generator, dtype=photo.dtype)
check = teaching.check_torchvision(photo, offset, weight, mask, dilation=1)
checks.append(check)
print(check)

# %% [markdown]
# And the taps drawn in this chapter are what the op reads: applying the kernel to the reads
# at `conv_tap_positions` (`read_at` + `weighted_sum`) gives the op's output.

# %%
positions = teaching.conv_tap_positions(photo, offset, 3, padding=1)[:, 0]
rebuilt = teaching.weighted_sum(teaching.read_at(photo, positions), weight, mask)
check = teaching.compare(
    "kernel applied to the drawn positions = op",
    rebuilt,
    dynamic_sampling_conv2d(photo, offset, weight, padding=1, mask=mask),
)
checks.append(check)
print(check)
fig = teaching.sampling_figure(
    photo,
    pixels,
    {"random offsets (σ = 3 px)": teaching.at_pixels(positions, pixels)},
    sizes={"random offsets (σ = 3 px)": teaching.at_pixels(mask.unsqueeze(-1), pixels)[..., 0]},
)
recorder.save_figure(fig, "random_offsets")

# %% [markdown]
# (Marker size: the mask $\Delta m_n$.) The [next notebook](teaching_layers.ipynb) replaces
# the random offsets by offsets a layer computes: from its own input (deformable), from
# another feature (CGDS), drawn at random (GDC), or per sampled point (DDSM).
#
# ## What is recorded
#
# The checks: `checks/<name>/passed` (1 when the largest difference is within the
# tolerance) and `checks/<name>/max_abs_diff`, the largest absolute difference itself. The
# differences are rounding noise (~1e-15; ~1e-12 for finite differences) whose last digits
# differ between machines, so the metric records one thousandth of the tolerance when the
# difference is smaller; the exact values are printed above and kept in the `checks` table.
# And the receptive-field radii, which must equal $L \cdot d$.

# %%
table = pd.DataFrame(
    [
        {
            "check": c.name,
            "max abs difference": c.max_abs_diff,
            "tolerance": c.tolerance,
            "passed": c.passed,
        }
        for c in checks
    ]
)
recorder.save_table(table, "checks")
keys = ["zero_offsets", "zero_offsets_dilated", "integer_reads", "position_gradient"]
keys += ["torchvision", "drawn_positions"]
for key, c in zip(keys, checks, strict=True):
    recorder.add(f"checks/{key}/passed", float(c.passed), description=c.name)
    recorder.add(
        f"checks/{key}/max_abs_diff",
        c.recorded_difference,
        description=f"{c.name}: max |difference| (recorded as "
        f"{teaching.NOISE_FLOOR * c.tolerance:g} when smaller: rounding noise)",
    )
deepest = fields[fields["layers"] == layers]["radius (px)"].tolist()  # [dilation 1, dilated]
recorder.add(
    "receptive_field/radius_dilation_1",
    float(deepest[0]),
    unit="px",
    description=f"half-width of the receptive field of {layers} 3x3 layers, dilation 1",
)
recorder.add(
    "receptive_field/radius_dilated",
    float(deepest[1]),
    unit="px",
    description=f"half-width of the receptive field of {layers} 3x3 layers, dilation {dilation}",
)
recorder.write()
table
