// Geometry and bilinear weights shared by the CPU and CUDA kernels of the sampling ops.
//
// Both ops read an input plane at `base + offset` (DCNv2, Zhu et al. 2019, Eq. 3):
//   base_y = out_row * stride_h - pad_h + tap_i * dilation_h
//   base_x = out_col * stride_w - pad_w + tap_j * dilation_w
// Point sampling is the special case kernel 1 x P, stride 1, padding 0, dilation 0.
// Offsets are laid out as in torchvision.ops.deform_conv2d: [G, 2K, L] per image, channel
// 2k = y offset of tap k, 2k + 1 = x offset; the mask is [G, K, L].
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>

namespace repro {

struct SamplingGeometry {
  int64_t channels;  // input channels C
  int64_t height;    // input H
  int64_t width;     // input W
  int64_t out_h;     // positions per column
  int64_t out_w;     // positions per row
  int64_t kernel_h;
  int64_t kernel_w;
  int64_t stride_h;
  int64_t stride_w;
  int64_t pad_h;
  int64_t pad_w;
  int64_t dilation_h;
  int64_t dilation_w;
  int64_t offset_groups;

  C10_HOST_DEVICE int64_t taps() const { return kernel_h * kernel_w; }
  C10_HOST_DEVICE int64_t positions() const { return out_h * out_w; }
  C10_HOST_DEVICE int64_t channels_per_offset_group() const { return channels / offset_groups; }
};

// Bilinear corners of one read at (y, x): flat indices into the H*W plane, interpolation
// weights and their derivatives along y and x. Corners outside the map get weight 0 and
// index 0 (the torchvision convention: they read 0). Returns false when the whole read is 0
// (the point is at or beyond one pixel outside the map, or a coordinate is not finite),
// then all weights are 0.
template <typename acc_t>
struct BilinearCorners {
  int64_t index[4];
  acc_t weight[4];
  acc_t dweight_dy[4];
  acc_t dweight_dx[4];
};

template <typename acc_t>
C10_HOST_DEVICE inline bool bilinear_corners(acc_t y, acc_t x, int64_t height, int64_t width,
                                             BilinearCorners<acc_t>& corners) {
  for (int n = 0; n < 4; ++n) {
    corners.index[n] = 0;
    corners.weight[n] = 0;
    corners.dweight_dy[n] = 0;
    corners.dweight_dx[n] = 0;
  }
  // Written so that NaN fails every comparison and reads 0.
  if (!(y > acc_t(-1) && y < acc_t(height) && x > acc_t(-1) && x < acc_t(width))) {
    return false;
  }
  const acc_t y_floor = floor(y);
  const acc_t x_floor = floor(x);
  const int64_t y0 = static_cast<int64_t>(y_floor);
  const int64_t x0 = static_cast<int64_t>(x_floor);
  const acc_t ly = y - y_floor;
  const acc_t lx = x - x_floor;
  const acc_t hy = acc_t(1) - ly;
  const acc_t hx = acc_t(1) - lx;
  const int64_t rows[4] = {y0, y0, y0 + 1, y0 + 1};
  const int64_t cols[4] = {x0, x0 + 1, x0, x0 + 1};
  const acc_t weights[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
  const acc_t dy[4] = {-hx, -lx, hx, lx};
  const acc_t dx[4] = {-hy, hy, -ly, ly};
  for (int n = 0; n < 4; ++n) {
    if (rows[n] >= 0 && rows[n] < height && cols[n] >= 0 && cols[n] < width) {
      corners.index[n] = rows[n] * width + cols[n];
      corners.weight[n] = weights[n];
      corners.dweight_dy[n] = dy[n];
      corners.dweight_dx[n] = dx[n];
    }
  }
  return true;
}

// Read position of tap `tap` at flat output position `position`, before the offset.
template <typename acc_t>
C10_HOST_DEVICE inline void tap_base(const SamplingGeometry& g, int64_t tap, int64_t position,
                                     acc_t& base_y, acc_t& base_x) {
  const int64_t out_row = position / g.out_w;
  const int64_t out_col = position % g.out_w;
  const int64_t tap_i = tap / g.kernel_w;
  const int64_t tap_j = tap % g.kernel_w;
  base_y = acc_t(out_row * g.stride_h - g.pad_h + tap_i * g.dilation_h);
  base_x = acc_t(out_col * g.stride_w - g.pad_w + tap_j * g.dilation_w);
}

}  // namespace repro
