// Argument checks and geometry construction shared by the CPU and CUDA implementations of
// the ops declared in ops.cpp. The Python wrappers (repro/ops/validation.py) give the
// user-facing errors; these checks guard direct calls of torch.ops.repro.*.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "sampling_geometry.h"

namespace repro {

inline void check_same_kind(const at::Tensor& input, const at::Tensor& other, const char* name) {
  TORCH_CHECK(other.dtype() == input.dtype(), name, " must have the dtype of input (",
              input.dtype(), "), got ", other.dtype());
  TORCH_CHECK(other.device() == input.device(), name, " must be on the device of input (",
              input.device(), "), got ", other.device());
}

inline SamplingGeometry conv_geometry(const at::Tensor& input, const at::Tensor& offset,
                                      const at::Tensor& weight,
                                      const std::optional<at::Tensor>& mask, int64_t stride_h,
                                      int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                      int64_t dilation_h, int64_t dilation_w, int64_t groups,
                                      int64_t offset_groups) {
  TORCH_CHECK(input.dim() == 4, "input must be [B, C, H, W], got ", input.sizes());
  TORCH_CHECK(offset.dim() == 4, "offset must be [B, 2*G*kh*kw, Ho, Wo], got ", offset.sizes());
  TORCH_CHECK(weight.dim() == 4, "weight must be [O, C/groups, kh, kw], got ", weight.sizes());
  check_same_kind(input, offset, "offset");
  check_same_kind(input, weight, "weight");
  TORCH_CHECK(stride_h >= 1 && stride_w >= 1 && dilation_h >= 1 && dilation_w >= 1 &&
                  pad_h >= 0 && pad_w >= 0,
              "stride and dilation must be >= 1 and padding >= 0");
  TORCH_CHECK(groups >= 1 && offset_groups >= 1, "groups and offset_groups must be >= 1");
  SamplingGeometry g{};
  g.channels = input.size(1);
  g.height = input.size(2);
  g.width = input.size(3);
  g.kernel_h = weight.size(2);
  g.kernel_w = weight.size(3);
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_h = pad_h;
  g.pad_w = pad_w;
  g.dilation_h = dilation_h;
  g.dilation_w = dilation_w;
  g.offset_groups = offset_groups;
  g.out_h = (g.height + 2 * pad_h - dilation_h * (g.kernel_h - 1) - 1) / stride_h + 1;
  g.out_w = (g.width + 2 * pad_w - dilation_w * (g.kernel_w - 1) - 1) / stride_w + 1;
  TORCH_CHECK(g.out_h >= 1 && g.out_w >= 1, "output would be empty: ", g.out_h, "x", g.out_w);
  TORCH_CHECK(g.channels % groups == 0 && weight.size(1) * groups == g.channels,
              "weight.size(1) * groups must equal the input channels, got weight ",
              weight.sizes(), " and groups ", groups);
  TORCH_CHECK(weight.size(0) % groups == 0, "weight.size(0) must be a multiple of groups");
  TORCH_CHECK(g.channels % offset_groups == 0, "offset_groups must divide the input channels");
  TORCH_CHECK(offset.size(0) == input.size(0) && offset.size(1) == 2 * offset_groups * g.taps() &&
                  offset.size(2) == g.out_h && offset.size(3) == g.out_w,
              "offset must be [", input.size(0), ", ", 2 * offset_groups * g.taps(), ", ",
              g.out_h, ", ", g.out_w, "], got ", offset.sizes());
  if (mask.has_value()) {
    check_same_kind(input, *mask, "mask");
    TORCH_CHECK(mask->dim() == 4 && mask->size(0) == input.size(0) &&
                    mask->size(1) == offset_groups * g.taps() && mask->size(2) == g.out_h &&
                    mask->size(3) == g.out_w,
                "mask must be [", input.size(0), ", ", offset_groups * g.taps(), ", ", g.out_h,
                ", ", g.out_w, "], got ", mask->sizes());
  }
  return g;
}

inline SamplingGeometry point_geometry(const at::Tensor& input, const at::Tensor& offset,
                                       int64_t offset_groups) {
  TORCH_CHECK(input.dim() == 4, "input must be [B, C, H, W], got ", input.sizes());
  TORCH_CHECK(offset.dim() == 4, "offset must be [B, 2*P*G, H, W], got ", offset.sizes());
  check_same_kind(input, offset, "offset");
  TORCH_CHECK(offset_groups >= 1 && input.size(1) % offset_groups == 0,
              "offset_groups must divide the input channels, got ", offset_groups);
  TORCH_CHECK(offset.size(1) > 0 && offset.size(1) % (2 * offset_groups) == 0,
              "offset must have 2*P*offset_groups channels, got ", offset.sizes());
  TORCH_CHECK(offset.size(0) == input.size(0) && offset.size(2) == input.size(2) &&
                  offset.size(3) == input.size(3),
              "offset must match input's batch and spatial size, got ", offset.sizes(),
              " for input ", input.sizes());
  SamplingGeometry g{};
  g.channels = input.size(1);
  g.height = input.size(2);
  g.width = input.size(3);
  g.out_h = g.height;
  g.out_w = g.width;
  // P points are the taps of a 1 x P kernel with zero dilation: all based at the pixel itself.
  g.kernel_h = 1;
  g.kernel_w = offset.size(1) / (2 * offset_groups);
  g.stride_h = 1;
  g.stride_w = 1;
  g.pad_h = 0;
  g.pad_w = 0;
  g.dilation_h = 0;
  g.dilation_w = 0;
  g.offset_groups = offset_groups;
  return g;
}

}  // namespace repro
