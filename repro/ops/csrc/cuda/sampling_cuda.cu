// CUDA kernels of the sampling ops (declared in ../ops.cpp).
//
// Same algorithm as the CPU kernels (cpu/sampling_cpu.cpp), per image: bilinear im2col into
// a column buffer [C*K, L], one batched GEMM per group (cuBLAS), and in the backward
// grad_columns = W^T * grad_output, a col2im scatter with atomic adds and a coordinate-gradient
// kernel with one thread per (offset group, tap, position). float32/float64/float16/bfloat16;
// the reads, the scatter and the reductions accumulate in float (at::opmath_type).
#include <array>
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../sampling_geometry.h"
#include "../sampling_ops.h"

namespace repro {
namespace {

constexpr int kThreads = 256;

inline unsigned int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535 * 8));
}

template <typename scalar_t, typename acc_t>
__device__ inline bool read_corners(const SamplingGeometry& g, const scalar_t* offset,
                                    int64_t group, int64_t tap, int64_t position,
                                    BilinearCorners<acc_t>& corners) {
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  acc_t base_y, base_x;
  tap_base(g, tap, position, base_y, base_x);
  const int64_t offset_y = (group * 2 * taps + 2 * tap) * positions + position;
  const acc_t y = base_y + static_cast<acc_t>(offset[offset_y]);
  const acc_t x = base_x + static_cast<acc_t>(offset[offset_y + positions]);
  return bilinear_corners(y, x, g.height, g.width, corners);
}

// columns[c * K + k, l] = m[g, k, l] * bilinear(input[c], read position of (k, l)).
template <typename scalar_t>
__global__ void gather_columns_kernel(const scalar_t* input, const scalar_t* offset,
                                      const scalar_t* mask, SamplingGeometry g,
                                      scalar_t* columns) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  const int64_t total = g.channels * taps * positions;
  const int64_t plane = g.height * g.width;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t position = e % positions;
    const int64_t tap = (e / positions) % taps;
    const int64_t channel = e / (positions * taps);
    const int64_t group = channel / g.channels_per_offset_group();
    BilinearCorners<acc_t> corners;
    acc_t value = 0;
    if (read_corners<scalar_t, acc_t>(g, offset, group, tap, position, corners)) {
      const scalar_t* source = input + channel * plane;
      for (int n = 0; n < 4; ++n) {
        value += corners.weight[n] * static_cast<acc_t>(source[corners.index[n]]);
      }
      if (mask != nullptr) {
        value *= static_cast<acc_t>(mask[(group * taps + tap) * positions + position]);
      }
    }
    columns[e] = static_cast<scalar_t>(value);
  }
}

// grad_input[c, corner] += m * weight * grad_columns[c * K + k, l] (atomic: reads overlap).
template <typename scalar_t, typename acc_t>
__global__ void scatter_columns_kernel(const scalar_t* grad_columns, const scalar_t* offset,
                                       const scalar_t* mask, SamplingGeometry g,
                                       acc_t* grad_input) {
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  const int64_t total = g.channels * taps * positions;
  const int64_t plane = g.height * g.width;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t position = e % positions;
    const int64_t tap = (e / positions) % taps;
    const int64_t channel = e / (positions * taps);
    const int64_t group = channel / g.channels_per_offset_group();
    BilinearCorners<acc_t> corners;
    if (!read_corners<scalar_t, acc_t>(g, offset, group, tap, position, corners)) continue;
    acc_t value = static_cast<acc_t>(grad_columns[e]);
    if (mask != nullptr) {
      value *= static_cast<acc_t>(mask[(group * taps + tap) * positions + position]);
    }
    acc_t* destination = grad_input + channel * plane;
    for (int n = 0; n < 4; ++n) {
      if (corners.weight[n] != acc_t(0)) {
        gpuAtomicAdd(destination + corners.index[n], corners.weight[n] * value);
      }
    }
  }
}

// Offset and mask gradients, one thread per (offset group, tap, position).
template <typename scalar_t>
__global__ void coordinate_gradients_kernel(const scalar_t* grad_columns, const scalar_t* input,
                                            const scalar_t* offset, const scalar_t* mask,
                                            SamplingGeometry g, scalar_t* grad_offset,
                                            scalar_t* grad_mask) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  const int64_t total = g.offset_groups * taps * positions;
  const int64_t plane = g.height * g.width;
  const int64_t per_group = g.channels_per_offset_group();
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t position = e % positions;
    const int64_t tap = (e / positions) % taps;
    const int64_t group = e / (positions * taps);
    BilinearCorners<acc_t> corners;
    acc_t sum_dy = 0, sum_dx = 0, sum_value = 0;
    if (read_corners<scalar_t, acc_t>(g, offset, group, tap, position, corners)) {
      for (int64_t c = group * per_group; c < (group + 1) * per_group; ++c) {
        const acc_t grad =
            static_cast<acc_t>(grad_columns[(c * taps + tap) * positions + position]);
        const scalar_t* source = input + c * plane;
        acc_t dy = 0, dx = 0, value = 0;
        for (int n = 0; n < 4; ++n) {
          const acc_t v = static_cast<acc_t>(source[corners.index[n]]);
          dy += corners.dweight_dy[n] * v;
          dx += corners.dweight_dx[n] * v;
          value += corners.weight[n] * v;
        }
        sum_dy += grad * dy;
        sum_dx += grad * dx;
        sum_value += grad * value;
      }
    }
    const acc_t modulation = mask == nullptr ? acc_t(1) : static_cast<acc_t>(mask[e]);
    const int64_t offset_y = (group * 2 * taps + 2 * tap) * positions + position;
    grad_offset[offset_y] = static_cast<scalar_t>(modulation * sum_dy);
    grad_offset[offset_y + positions] = static_cast<scalar_t>(modulation * sum_dx);
    if (grad_mask != nullptr) grad_mask[e] = static_cast<scalar_t>(sum_value);
  }
}

template <typename scalar_t>
void launch_gather(const at::Tensor& input_b, const at::Tensor& offset_b, const scalar_t* mask_b,
                   const SamplingGeometry& g, scalar_t* columns) {
  const int64_t total = g.channels * g.taps() * g.positions();
  gather_columns_kernel<scalar_t>
      <<<blocks_for(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          input_b.data_ptr<scalar_t>(), offset_b.data_ptr<scalar_t>(), mask_b, g, columns);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_input_and_coordinate_gradients(const scalar_t* grad_columns, const at::Tensor& input_b,
                                           const at::Tensor& offset_b, const scalar_t* mask_b,
                                           const SamplingGeometry& g, at::Tensor grad_input_acc_b,
                                           at::Tensor grad_offset_b, scalar_t* grad_mask_b) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t total = g.channels * g.taps() * g.positions();
  scatter_columns_kernel<scalar_t, acc_t><<<blocks_for(total), kThreads, 0, stream>>>(
      grad_columns, offset_b.data_ptr<scalar_t>(), mask_b, g, grad_input_acc_b.data_ptr<acc_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t reads = g.offset_groups * g.taps() * g.positions();
  coordinate_gradients_kernel<scalar_t><<<blocks_for(reads), kThreads, 0, stream>>>(
      grad_columns, input_b.data_ptr<scalar_t>(), offset_b.data_ptr<scalar_t>(), mask_b, g,
      grad_offset_b.data_ptr<scalar_t>(), grad_mask_b);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor conv_forward_cuda(const at::Tensor& input_, const at::Tensor& offset_,
                             const at::Tensor& weight_, const std::optional<at::Tensor>& bias_,
                             const std::optional<at::Tensor>& mask_, int64_t stride_h,
                             int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h,
                             int64_t dilation_w, int64_t groups, int64_t offset_groups) {
  const SamplingGeometry g =
      conv_geometry(input_, offset_, weight_, mask_, stride_h, stride_w, pad_h, pad_w,
                    dilation_h, dilation_w, groups, offset_groups);
  const c10::cuda::CUDAGuard guard(input_.device());
  const at::Tensor input = input_.contiguous();
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor weight = weight_.contiguous();
  const bool has_mask = mask_.has_value();
  const at::Tensor mask = has_mask ? mask_->contiguous() : at::Tensor();
  const int64_t batch = input.size(0);
  const int64_t out_channels = weight.size(0);
  const int64_t positions = g.positions();
  const int64_t rows_per_group = (g.channels / groups) * g.taps();
  const int64_t out_per_group = out_channels / groups;
  at::Tensor output = at::empty({batch, out_channels, g.out_h, g.out_w}, input.options());
  if (batch == 0) return output;
  const at::Tensor kernel = weight.view({groups, out_per_group, rows_per_group});
  at::Tensor columns = at::empty({groups, rows_per_group, positions}, input.options());
  at::Tensor bias_column;
  if (bias_.has_value()) {
    check_same_kind(input, *bias_, "bias");
    bias_column = bias_->contiguous().view({groups, out_per_group, 1});
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "dynamic_sampling_conv2d_cuda", [&] {
    for (int64_t b = 0; b < batch; ++b) {
      launch_gather<scalar_t>(input[b], offset[b],
                              has_mask ? mask[b].data_ptr<scalar_t>() : nullptr, g,
                              columns.data_ptr<scalar_t>());
      at::Tensor out_b = output[b].view({groups, out_per_group, positions});
      if (bias_column.defined()) {
        at::baddbmm_out(out_b, bias_column.expand({groups, out_per_group, positions}), kernel,
                        columns);
      } else {
        at::bmm_out(out_b, kernel, columns);
      }
    }
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv_backward_cuda(
    const at::Tensor& grad_output_, const at::Tensor& input_, const at::Tensor& offset_,
    const at::Tensor& weight_, const std::optional<at::Tensor>& mask_, int64_t stride_h,
    int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
    int64_t groups, int64_t offset_groups, std::array<bool, 3> output_mask) {
  const SamplingGeometry g =
      conv_geometry(input_, offset_, weight_, mask_, stride_h, stride_w, pad_h, pad_w,
                    dilation_h, dilation_w, groups, offset_groups);
  check_same_kind(input_, grad_output_, "grad_output");
  // One fused kernel gives the input and coordinate gradients, so either asks for both here;
  // the weight gradient (gather + GEMM) is skipped when not asked for.
  const bool need_weight = output_mask[2];
  const bool need_columns_gradient = output_mask[0] || output_mask[1];
  const c10::cuda::CUDAGuard guard(input_.device());
  const at::Tensor input = input_.contiguous();
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor weight = weight_.contiguous();
  const at::Tensor grad_output = grad_output_.contiguous();
  const bool has_mask = mask_.has_value();
  const at::Tensor mask = has_mask ? mask_->contiguous() : at::Tensor();
  const int64_t batch = input.size(0);
  const int64_t out_channels = weight.size(0);
  const int64_t positions = g.positions();
  const int64_t rows_per_group = (g.channels / groups) * g.taps();
  const int64_t out_per_group = out_channels / groups;
  const auto acc_type = at::toOpMathType(input.scalar_type());

  at::Tensor grad_input_acc = at::zeros(input.sizes(), input.options().dtype(acc_type));
  at::Tensor grad_offset = at::zeros_like(offset);
  at::Tensor grad_weight_acc = at::zeros(weight.sizes(), weight.options().dtype(acc_type));
  at::Tensor grad_mask = has_mask ? at::zeros_like(mask) : at::empty({0}, input.options());
  if (batch == 0) {
    return {grad_input_acc.to(input.scalar_type()), grad_offset,
            grad_weight_acc.to(input.scalar_type()), grad_mask};
  }
  const at::Tensor kernel_t = weight.view({groups, out_per_group, rows_per_group}).transpose(1, 2);
  at::Tensor grad_kernel_acc = grad_weight_acc.view({groups, out_per_group, rows_per_group});
  at::Tensor columns = at::empty({groups, rows_per_group, positions}, input.options());
  at::Tensor grad_columns = at::empty({groups, rows_per_group, positions}, input.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "dynamic_sampling_conv2d_backward_cuda", [&] {
    for (int64_t b = 0; b < batch; ++b) {
      const scalar_t* mask_b = has_mask ? mask[b].data_ptr<scalar_t>() : nullptr;
      const at::Tensor grad_out_b = grad_output[b].view({groups, out_per_group, positions});
      if (need_weight) {
        launch_gather<scalar_t>(input[b], offset[b], mask_b, g, columns.data_ptr<scalar_t>());
        grad_kernel_acc.add_(at::bmm(grad_out_b, columns.transpose(1, 2)));
      }
      if (need_columns_gradient) {
        at::bmm_out(grad_columns, kernel_t, grad_out_b);
        launch_input_and_coordinate_gradients<scalar_t>(
            grad_columns.data_ptr<scalar_t>(), input[b], offset[b], mask_b, g,
            grad_input_acc[b], grad_offset[b],
            has_mask ? grad_mask[b].data_ptr<scalar_t>() : nullptr);
      }
    }
  });
  return {grad_input_acc.to(input.scalar_type()), grad_offset,
          grad_weight_acc.to(input.scalar_type()), grad_mask};
}

at::Tensor sample_points_cuda(const at::Tensor& input_, const at::Tensor& offset_,
                              int64_t offset_groups) {
  const SamplingGeometry g = point_geometry(input_, offset_, offset_groups);
  const c10::cuda::CUDAGuard guard(input_.device());
  const at::Tensor input = input_.contiguous();
  const at::Tensor offset = offset_.contiguous();
  const int64_t batch = input.size(0);
  at::Tensor output =
      at::empty({batch, g.channels, g.taps(), g.height, g.width}, input.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "sample_points_cuda", [&] {
    for (int64_t b = 0; b < batch; ++b) {
      launch_gather<scalar_t>(input[b], offset[b], static_cast<const scalar_t*>(nullptr), g,
                              output[b].data_ptr<scalar_t>());
    }
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor> sample_points_backward_cuda(const at::Tensor& grad_output_,
                                                               const at::Tensor& input_,
                                                               const at::Tensor& offset_,
                                                               int64_t offset_groups,
                                                               std::array<bool, 2> output_mask) {
  const SamplingGeometry g = point_geometry(input_, offset_, offset_groups);
  check_same_kind(input_, grad_output_, "grad_output");
  if (!output_mask[0] && !output_mask[1]) {
    const at::Tensor nothing = at::empty({0}, input_.options());
    return {nothing, nothing};
  }
  const c10::cuda::CUDAGuard guard(input_.device());
  const at::Tensor input = input_.contiguous();
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor grad_output = grad_output_.contiguous();
  const int64_t batch = input.size(0);
  TORCH_CHECK(grad_output.dim() == 5 && grad_output.size(0) == batch &&
                  grad_output.size(1) == g.channels && grad_output.size(2) == g.taps(),
              "grad_output must be [", batch, ", ", g.channels, ", ", g.taps(), ", H, W], got ",
              grad_output.sizes());
  const auto acc_type = at::toOpMathType(input.scalar_type());
  at::Tensor grad_input_acc = at::zeros(input.sizes(), input.options().dtype(acc_type));
  at::Tensor grad_offset = at::zeros_like(offset);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "sample_points_backward_cuda", [&] {
    for (int64_t b = 0; b < batch; ++b) {
      launch_input_and_coordinate_gradients<scalar_t>(
          grad_output[b].data_ptr<scalar_t>(), input[b], offset[b],
          static_cast<const scalar_t*>(nullptr), g, grad_input_acc[b], grad_offset[b],
          static_cast<scalar_t*>(nullptr));
    }
  });
  return {grad_input_acc.to(input.scalar_type()), grad_offset};
}

}  // namespace

TORCH_LIBRARY_IMPL(repro, CUDA, m) {
  m.impl("dynamic_sampling_conv2d", &conv_forward_cuda);
  m.impl("dynamic_sampling_conv2d_backward", &conv_backward_cuda);
  m.impl("sample_points", &sample_points_cuda);
  m.impl("sample_points_backward", &sample_points_backward_cuda);
}

}  // namespace repro
