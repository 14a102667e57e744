"""ONNX export of models that use the sampling convolution (``repro.ops.export_onnx``).

``torch.ops.repro.dynamic_sampling_conv2d`` computes what ONNX's ``DeformConv`` (opset 19)
computes, with the same layouts: ``offset`` ``[B, 2*offset_group*kh*kw, Ho, Wo]`` with the y
offset of each tap before its x offset, ``mask`` ``[B, offset_group*kh*kw, Ho, Wo]``, points
outside the map reading 0 (the ONNX operator's definition follows torchvision's
``deform_conv2d``, as this op does). :func:`custom_translation_table` maps the op onto that
operator for ``torch.onnx.export`` (the ``torch.export``-based exporter, ``dynamo=True``);
:func:`export_onnx` calls the exporter with it.

Point sampling (``repro.ops.sample_points``) has no translation: ONNX has no operator of its
own for it.

The exporter needs ``onnx`` and ``onnxscript``; running the exported model needs a runtime
with a ``DeformConv`` kernel (onnxruntime has one on CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

#: The first ONNX opset with ``DeformConv``.
ONNX_OPSET = 19


def _deform_conv(
    input: Any,
    offset: Any,
    weight: Any,
    bias: Any,
    mask: Any,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    groups: int,
    offset_groups: int,
) -> Any:
    """``repro::dynamic_sampling_conv2d`` as ONNX ``DeformConv`` (onnxscript, opset 19).

    The op's arguments in its schema order (``repro/ops/csrc/ops.cpp``); ``DeformConv`` takes
    ``(X, W, offset, B, mask)``, with ``None`` for an absent bias or mask, and symmetric
    padding as ``[top, left, bottom, right]``.
    """
    from onnxscript import opset19 as op

    return op.DeformConv(
        input,
        weight,
        offset,
        bias,
        mask,
        dilations=[dilation_h, dilation_w],
        group=groups,
        offset_group=offset_groups,
        pads=[pad_h, pad_w, pad_h, pad_w],
        strides=[stride_h, stride_w],
    )


def custom_translation_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    """``custom_translation_table`` for ``torch.onnx.export``: the sampling conv → ``DeformConv``.

    Raises:
        ImportError: ``onnxscript`` is not installed (``pip install onnx onnxscript``).
    """
    try:
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "ONNX export needs onnx and onnxscript: pip install onnx onnxscript "
            "(and onnxruntime to run the exported model)"
        ) from error
    from repro.ops.library import compiled_devices

    if not compiled_devices():
        # Without the compiled library the model runs the grid_sample reference, which the
        # exporter translates op by op (GridSample and MatMul) instead of into DeformConv.
        raise RuntimeError(
            "repro._C is not built: torch.ops.repro.dynamic_sampling_conv2d does not exist "
            "to be exported as DeformConv (run pip install -e . --no-build-isolation)"
        )
    return {torch.ops.repro.dynamic_sampling_conv2d.default: _deform_conv}


def export_onnx(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    path: str | Path,
    **export_options: Any,
) -> Any:
    """Export ``model`` called on ``args`` to ONNX at ``path``, the sampling conv as ``DeformConv``.

    ``export_options`` go to ``torch.onnx.export`` (e.g. ``dynamic_shapes``, ``input_names``);
    the opset is :data:`ONNX_OPSET`. Returns the exporter's ``ONNXProgram``.
    """
    program = torch.onnx.export(
        model,
        args,
        dynamo=True,
        opset_version=ONNX_OPSET,
        custom_translation_table=custom_translation_table(),
        **export_options,
    )
    program.save(str(path))
    return program
