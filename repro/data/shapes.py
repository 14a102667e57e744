"""The object classes of the offline dataset: binary masks defined by shape alone.

Each shape is drawn from its centre, its extent (the diameter of the circle it is inscribed in,
in pixels) and a rotation; the mask is evaluated on the whole pixel grid with numpy, so drawing
costs the same at every scale. Several shapes have thin parts (ring, cross, bar, star spikes,
crescent tips) that a coarse output stride tends to lose.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ShapeFunction = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def _disc(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return u**2 + v**2 <= 1.0


def _ring(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    squared = u**2 + v**2
    # At least ~2 px of ring thickness at the smallest scale.
    inner = min(0.6, 1.0 - 2.0 / max(radius, 1e-6))
    return (squared <= 1.0) & (squared >= inner**2)


def _square(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.72


def _regular_polygon(u: np.ndarray, v: np.ndarray, sides: int) -> np.ndarray:
    inside = np.ones(u.shape, dtype=bool)
    apothem = np.cos(np.pi / sides)
    for k in range(sides):
        angle = np.pi / 2 + 2 * np.pi * k / sides + np.pi / sides
        inside &= u * np.cos(angle) + v * np.sin(angle) <= apothem
    return inside


def _triangle(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return _regular_polygon(u, v, 3)


def _half_width(radius: float, fraction: float) -> float:
    # Thin parts stay at least ~2 px wide so that they survive JPEG and nearest resizing.
    return max(fraction, 1.0 / max(radius, 1e-6))


def _cross(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    arm = _half_width(radius, 0.2)
    return ((np.abs(u) <= arm) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= arm) & (np.abs(u) <= 1.0))


def _bar(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return (np.abs(u) <= 1.0) & (np.abs(v) <= _half_width(radius, 0.07))


def _star(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    # A five-pointed star: the union of five thin triangles (spikes) around a pentagon core.
    angle = np.arctan2(v, u)
    distance = np.sqrt(u**2 + v**2)
    sector = np.mod(angle + np.pi / 2, 2 * np.pi / 5) - np.pi / 5
    inner = 0.38
    # Boundary of a star in polar form: linear between tip (r=1, sector=0) and notch (r=inner).
    notch_angle = np.pi / 5
    tip = np.array([1.0, 0.0])
    notch = np.array([inner * np.cos(notch_angle), inner * np.sin(notch_angle)])
    x = distance * np.cos(np.abs(sector))
    y = distance * np.sin(np.abs(sector))
    edge = notch - tip
    cross = (x - tip[0]) * edge[1] - (y - tip[1]) * edge[0]
    return cross <= 0.0


def _crescent(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return (u**2 + v**2 <= 1.0) & ((u - 0.45) ** 2 + v**2 > 0.8**2)


SHAPES: dict[str, ShapeFunction] = {
    "disc": _disc,
    "ring": _ring,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "bar": _bar,
    "star": _star,
    "crescent": _crescent,
}
"""Shape name → mask function of normalised coordinates ``(u, v)`` (unit circle) and radius (px)."""


def draw_shape(
    name: str,
    grid_rows: np.ndarray,
    grid_cols: np.ndarray,
    center: tuple[float, float],
    extent: float,
    angle: float,
) -> np.ndarray:
    """Boolean mask of shape ``name`` centred at ``center`` (row, col), ``extent`` px wide, rotated."""
    if name not in SHAPES:
        raise ValueError(f"name: expected one of {list(SHAPES)}, got {name!r}")
    if extent <= 0:
        raise ValueError(f"extent: expected > 0 pixels, got {extent}")
    radius = extent / 2.0
    dy, dx = grid_rows - center[0], grid_cols - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u = (dx * cos + dy * sin) / radius
    v = (-dx * sin + dy * cos) / radius
    return SHAPES[name](u, v, radius)
