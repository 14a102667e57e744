"""Fake (meta) and autograd kernels of ``torch.ops.repro.*``, registered from Python.

Filled in with the compiled library; until it exists nothing is registered.
"""

from __future__ import annotations


def register_python_kernels() -> None:
    """Register fake and autograd kernels for the compiled ops (idempotent)."""
