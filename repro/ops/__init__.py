"""The sampling ops of ``repro``: dynamic sampling convolution and point sampling.

Every method of the project reads features off the regular grid: CGDS at points predicted
from context (DSNet Eq. 2), GDC at half-Gaussian points (GDC Eq. 1-4), DDSM at N sampled
positions per pixel, DCNv2 at self-predicted points with a modulation mask (DCNv2 Eq. 3).

* ``dynamic_sampling_conv2d``: drop-in for ``torchvision.ops.deform_conv2d`` (same
  arguments, offset and mask layout; float16/bfloat16 on CPU computed in float32, zero
  channels or an empty ``H x W`` refused: see ``repro.ops.functional``).
* ``sample_points``: P bilinear reads per position, output ``[B, C, P, H, W]``.
* ``export_onnx``: ``torch.onnx.export`` with the sampling conv as ONNX ``DeformConv``
  (opset 19; ``repro.ops.export``).
* ``backend``: which implementation is active (``"compiled (cpu[, cuda])"`` or
  ``"reference"``).

The compiled library (``repro._C``, custom ops ``torch.ops.repro.*``) is used where it is
built and has a kernel for the tensor's device; otherwise the ``grid_sample`` reference
(``repro.ops.reference``) runs, with one warning.
"""

from repro.ops.export import export_onnx
from repro.ops.functional import backend, dynamic_sampling_conv2d, sample_points

__all__ = ["backend", "dynamic_sampling_conv2d", "export_onnx", "sample_points"]
