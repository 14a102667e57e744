"""Loading of the compiled sampling ops (``repro._C``) and the backend report.

The extension registers ``torch.ops.repro.*`` with ``TORCH_LIBRARY`` when imported; the
fake (meta) and autograd kernels are then registered from Python
(``repro.ops.registration``) so that ``torch.compile`` traces the ops.
"""

from __future__ import annotations

import logging
import warnings

import torch

logger = logging.getLogger(__name__)

OP_NAMES: tuple[str, ...] = ("dynamic_sampling_conv2d", "sample_points")


_compiled_devices: tuple[str, ...] | None = None


def load_compiled() -> bool:
    """Import ``repro._C`` and register the Python-side kernels; ``False`` if absent."""
    try:
        from repro import _C  # noqa: F401  (importing registers the ops)
    except ImportError as error:
        logger.info("compiled sampling ops not available: %s", error)
        return False
    from repro.ops import registration

    registration.register_python_kernels()
    return True


def compiled_devices() -> tuple[str, ...]:
    """Device types that have a compiled kernel for every op, e.g. ``("cpu", "cuda")``.

    Probed once per process and then read from a module constant, which ``torch.compile``
    traces without graph breaks (``repro.ops.functional`` probes at import).
    """
    global _compiled_devices
    if _compiled_devices is None:
        _compiled_devices = _probe_compiled_devices()
    return _compiled_devices


def _probe_compiled_devices() -> tuple[str, ...]:
    if not load_compiled():
        return ()
    devices = []
    for device_type, key in (("cpu", "CPU"), ("cuda", "CUDA")):
        if all(
            torch._C._dispatch_has_kernel_for_dispatch_key(f"repro::{name}", key)
            for name in OP_NAMES
        ):
            devices.append(device_type)
    return tuple(devices)


def has_compiled_kernel(device: torch.device) -> bool:
    """Whether the compiled ops can run on tensors of ``device``."""
    return device.type in compiled_devices()


def backend() -> str:
    """Active backend: ``"compiled (cpu, cuda)"``, ``"compiled (cpu)"`` or ``"reference"``.

    ``repro doctor`` prints this.
    """
    devices = compiled_devices()
    return f"compiled ({', '.join(devices)})" if devices else "reference"


_warned_fallback = False


def warn_fallback(device: torch.device) -> None:
    """Warn, once per process, that the ``grid_sample`` reference runs instead of kernels."""
    global _warned_fallback
    if _warned_fallback:
        return
    _warned_fallback = True
    reason = (
        f"has no kernel for device '{device.type}'"
        if compiled_devices()
        else "is not built (run `pip install -e . --no-build-isolation`)"
    )
    warnings.warn(
        f"repro: the compiled sampling ops library {reason}; using the slower grid_sample "
        "reference (repro.ops.reference)",
        RuntimeWarning,
        stacklevel=3,
    )
