"""Explicit seeding and RNG-state capture, so that a seed decides a CPU run exactly."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

_SEED_MODULUS = 2**31 - 1


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and all CUDA devices)."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}: {seed!r}")
    seed = seed % _SEED_MODULUS
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def derive_seed(seed: int, *parts: int) -> int:
    """A seed for a sub-stream (e.g. ``(epoch, rank)``) that depends only on its inputs.

    Mixing with distinct odd multipliers keeps streams of neighbouring parts apart
    (``derive_seed(s, 1, 0) != derive_seed(s, 0, 1)``).
    """
    value = seed % _SEED_MODULUS
    for index, part in enumerate(parts):
        value = (value * 1_000_003 + (index + 1) * 7919 * (part + 1)) % _SEED_MODULUS
    return value


def capture_rng_states() -> dict[str, Any]:
    """All global RNG states this process uses (for checkpoints)."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
