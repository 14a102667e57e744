// Declaration of the sampling ops of the `repro` package (namespace `repro`).
//
// The CPU kernels are registered in cpu/sampling_cpu.cpp, the CUDA kernels in
// cuda/sampling_cuda.cu; the fake (meta) and autograd kernels are registered from Python
// (repro/ops/registration.py) so that torch.compile can trace the ops.
#include <Python.h>
#include <torch/library.h>

// Importing `repro._C` from Python loads this library, which runs the registrations below.
extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "Compiled sampling ops of repro (torch.ops.repro.*)", -1,
      nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(repro, m) {
  // DCNv2 (Zhu et al. 2019) Eq. 3, with torchvision.ops.deform_conv2d's offset layout.
  m.def(
      "dynamic_sampling_conv2d(Tensor input, Tensor offset, Tensor weight, Tensor? bias, "
      "Tensor? mask, int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, "
      "int dilation_w, int groups, int offset_groups) -> Tensor");
  // output_mask says which of (grad_input, grad_offset and grad_mask, grad_weight) to compute
  // (as aten::convolution_backward); a gradient not asked for, and grad_mask when mask is None,
  // is a 0-element tensor. grad_bias is grad_output.sum((0, 2, 3)).
  m.def(
      "dynamic_sampling_conv2d_backward(Tensor grad_output, Tensor input, Tensor offset, "
      "Tensor weight, Tensor? mask, int stride_h, int stride_w, int pad_h, int pad_w, "
      "int dilation_h, int dilation_w, int groups, int offset_groups, bool[3] output_mask) "
      "-> (Tensor grad_input, Tensor grad_offset, Tensor grad_weight, Tensor grad_mask)");
  // P bilinear reads per position: [B, C, H, W] x [B, 2*P*G, H, W] -> [B, C, P, H, W].
  m.def("sample_points(Tensor input, Tensor offset, int offset_groups) -> Tensor");
  // output_mask: which of (grad_input, grad_offset) to compute; the others are 0-element.
  m.def(
      "sample_points_backward(Tensor grad_output, Tensor input, Tensor offset, "
      "int offset_groups, bool[2] output_mask) -> (Tensor grad_input, Tensor grad_offset)");
}
