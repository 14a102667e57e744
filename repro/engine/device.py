"""Where training, evaluation and inference run: the one resolver of device strings.

``"auto"`` (the :class:`~repro.engine.config.TrainConfig` default) is the first CUDA GPU when
one is visible and the CPU otherwise; ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` are taken
literally, and asking for a GPU that is not there is an error rather than a silent fall-back
to the CPU (a run meant for a GPU should not quietly take days on a CPU).
"""

from __future__ import annotations

import torch

AUTO = "auto"


def is_device_name(value: object) -> bool:
    """Whether ``value`` names a device (``"auto"`` or anything :class:`torch.device` parses),
    whether or not this machine has it: a configuration may be written for another machine."""
    if not isinstance(value, str):
        return False
    if value.strip().lower() == AUTO:
        return True
    try:
        torch.device(value)
    except (RuntimeError, TypeError):
        return False
    return True


def resolve_device(requested: str | torch.device) -> torch.device:
    """The :class:`torch.device` that ``requested`` names (``"auto"``, ``"cpu"``, ``"cuda[:N]"``).

    Raises:
        ValueError: ``requested`` is not a device name torch knows.
        RuntimeError: a CUDA device is asked for and CUDA is not available, or its index is
            beyond the visible GPUs.
    """
    if isinstance(requested, str) and requested.strip().lower() == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {requested!r} ({error})"
        ) from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {str(requested)!r} needs a CUDA GPU, but CUDA is not available "
                "(torch.cuda.is_available() is False); use device='cpu' or 'auto'"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise RuntimeError(
                f"device {str(requested)!r} asks for GPU {device.index}, but only {count} "
                f"GPU(s) are visible"
            )
    return device
