"""Figures of sampling positions (GDC Fig. 10) and of offset distributions."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.axes import Axes


def plot_sampling_positions(
    ax: Axes, displacements: torch.Tensor, title: str, limit: float | None = None
) -> None:
    """Scatter the taps of many kernel draws around one centre (GDC Fig. 10).

    Args:
        displacements: ``[draws, k*k, 2]`` tap displacements ``(dy, dx)`` from the centre.
    """
    points = displacements.reshape(-1, 2).numpy()
    ax.scatter(points[:, 1], points[:, 0], s=6, alpha=0.35, color="tab:blue", label="sampled taps")
    ax.scatter([0], [0], s=60, marker="*", color="tab:red", label="centre (fixed)", zorder=3)
    if limit is None:
        limit = float(np.abs(points).max()) * 1.05 + 1e-6
    ax.set_xlim(-limit, limit)
    ax.set_ylim(limit, -limit)  # image convention: y grows downwards
    ax.set_aspect("equal")
    ax.set_xlabel("x offset (pixels)")
    ax.set_ylabel("y offset (pixels)")
    ax.set_title(title)
    ax.grid(alpha=0.3)


def plot_half_gaussian_histogram(
    ax: Axes, magnitudes: np.ndarray, sigma: float, label: str
) -> None:
    """Histogram of drawn magnitudes against the half-Gaussian density (GDC Eq. 3)."""
    ax.hist(magnitudes, bins=40, density=True, alpha=0.5, label=f"{label}: drawn")
    grid = np.linspace(0.0, max(float(magnitudes.max()), 4 * sigma), 200)
    density = math.sqrt(2.0 / math.pi) / sigma * np.exp(-(grid**2) / (2 * sigma**2))
    ax.plot(grid, density, lw=2, label=f"{label}: half-Gaussian density")
    ax.set_xlabel("offset magnitude r (pixels)")
    ax.set_ylabel("density")
