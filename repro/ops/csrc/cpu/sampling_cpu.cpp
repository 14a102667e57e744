// CPU kernels of the sampling ops (declared in ../ops.cpp).
//
// Per image: a "plan" holds, for every (offset group, tap, position), the four bilinear
// corners and their weights (mask folded in). The forward gathers the plan into a column
// buffer [C*K, L] (bilinear im2col, parallel over rows) and multiplies it with the weight
// in one GEMM per group. The backward computes grad_columns = W^T * grad_output (GEMM),
// scatters it into grad_input in parallel over channels (no two threads write the same
// element, so the result is deterministic), and computes the offset and mask gradients in
// parallel over (group, tap, position). Buffers are per image, never C*K*H*W for the batch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "../sampling_geometry.h"
#include "../sampling_ops.h"

namespace repro {
namespace {

// Grain sizes: enough work per task to amortise the OpenMP fork.
constexpr int64_t kPlanGrain = 4096;

template <typename scalar_t>
struct PlanEntry {
  int64_t index[4];
  scalar_t weight[4];
};

// Corners and mask-modulated weights of every read of one image.
template <typename scalar_t>
void build_plan(const scalar_t* offset, const scalar_t* mask, const SamplingGeometry& g,
                PlanEntry<scalar_t>* plan) {
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  const int64_t total = g.offset_groups * taps * positions;
  at::parallel_for(0, total, kPlanGrain, [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) {
      const int64_t position = e % positions;
      const int64_t tap = (e / positions) % taps;
      const int64_t group = e / (positions * taps);
      scalar_t base_y, base_x;
      tap_base(g, tap, position, base_y, base_x);
      const scalar_t* group_offset = offset + group * 2 * taps * positions;
      const scalar_t y = base_y + group_offset[(2 * tap) * positions + position];
      const scalar_t x = base_x + group_offset[(2 * tap + 1) * positions + position];
      BilinearCorners<scalar_t> corners;
      bilinear_corners(y, x, g.height, g.width, corners);
      const scalar_t modulation = mask == nullptr ? scalar_t(1) : mask[e];
      PlanEntry<scalar_t>& entry = plan[e];
      for (int n = 0; n < 4; ++n) {
        entry.index[n] = corners.index[n];
        entry.weight[n] = corners.weight[n] * modulation;
      }
    }
  });
}

// columns[c * K + k, l] = sum_n plan[g(c), k, l].weight[n] * input[c, plan.index[n]].
template <typename scalar_t>
void gather_columns(const scalar_t* input, const PlanEntry<scalar_t>* plan,
                    const SamplingGeometry& g, scalar_t* columns) {
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  const int64_t plane = g.height * g.width;
  const int64_t per_group = g.channels_per_offset_group();
  const int64_t grain = std::max<int64_t>(1, kPlanGrain / std::max<int64_t>(positions, 1));
  at::parallel_for(0, g.channels * taps, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t channel = row / taps;
      const int64_t tap = row % taps;
      const scalar_t* source = input + channel * plane;
      const PlanEntry<scalar_t>* entries = plan + ((channel / per_group) * taps + tap) * positions;
      scalar_t* destination = columns + row * positions;
      for (int64_t l = 0; l < positions; ++l) {
        const PlanEntry<scalar_t>& entry = entries[l];
        destination[l] = entry.weight[0] * source[entry.index[0]] +
                         entry.weight[1] * source[entry.index[1]] +
                         entry.weight[2] * source[entry.index[2]] +
                         entry.weight[3] * source[entry.index[3]];
      }
    }
  });
}

// grad_input[c, plan.index[n]] += plan.weight[n] * grad_columns[c * K + k, l]; one thread per
// channel, so writes never collide and the sum order is fixed.
template <typename scalar_t>
void scatter_columns(const scalar_t* grad_columns, const PlanEntry<scalar_t>* plan,
                     const SamplingGeometry& g, scalar_t* grad_input) {
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  const int64_t plane = g.height * g.width;
  const int64_t per_group = g.channels_per_offset_group();
  at::parallel_for(0, g.channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t channel = begin; channel < end; ++channel) {
      scalar_t* destination = grad_input + channel * plane;
      for (int64_t tap = 0; tap < taps; ++tap) {
        const scalar_t* source = grad_columns + (channel * taps + tap) * positions;
        const PlanEntry<scalar_t>* entries =
            plan + ((channel / per_group) * taps + tap) * positions;
        for (int64_t l = 0; l < positions; ++l) {
          const scalar_t value = source[l];
          const PlanEntry<scalar_t>& entry = entries[l];
          destination[entry.index[0]] += entry.weight[0] * value;
          destination[entry.index[1]] += entry.weight[1] * value;
          destination[entry.index[2]] += entry.weight[2] * value;
          destination[entry.index[3]] += entry.weight[3] * value;
        }
      }
    }
  });
}

// Gradients of the read coordinates (hence of the offsets) and of the mask, for one image:
//   grad_offset_y[g, k, l] = m * sum_c grad_columns[c, k, l] * d bilinear(input[c]) / dy
//   grad_mask[g, k, l]     = sum_c grad_columns[c, k, l] * bilinear(input[c])
template <typename scalar_t>
void coordinate_gradients(const scalar_t* grad_columns, const scalar_t* input,
                          const scalar_t* offset, const scalar_t* mask, const SamplingGeometry& g,
                          scalar_t* grad_offset, scalar_t* grad_mask) {
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  const int64_t plane = g.height * g.width;
  const int64_t per_group = g.channels_per_offset_group();
  const int64_t total = g.offset_groups * taps * positions;
  const int64_t grain = std::max<int64_t>(1, kPlanGrain / std::max<int64_t>(per_group, 1));
  at::parallel_for(0, total, grain, [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) {
      const int64_t position = e % positions;
      const int64_t tap = (e / positions) % taps;
      const int64_t group = e / (positions * taps);
      scalar_t base_y, base_x;
      tap_base(g, tap, position, base_y, base_x);
      const int64_t offset_y = (group * 2 * taps + 2 * tap) * positions + position;
      const int64_t offset_x = offset_y + positions;
      BilinearCorners<scalar_t> corners;
      const bool inside =
          bilinear_corners(base_y + offset[offset_y], base_x + offset[offset_x], g.height,
                           g.width, corners);
      scalar_t sum_dy = 0, sum_dx = 0, sum_value = 0;
      if (inside) {
        for (int64_t c = group * per_group; c < (group + 1) * per_group; ++c) {
          const scalar_t grad = grad_columns[(c * taps + tap) * positions + position];
          const scalar_t* source = input + c * plane;
          scalar_t dy = 0, dx = 0, value = 0;
          for (int n = 0; n < 4; ++n) {
            const scalar_t v = source[corners.index[n]];
            dy += corners.dweight_dy[n] * v;
            dx += corners.dweight_dx[n] * v;
            value += corners.weight[n] * v;
          }
          sum_dy += grad * dy;
          sum_dx += grad * dx;
          sum_value += grad * value;
        }
      }
      const scalar_t modulation = mask == nullptr ? scalar_t(1) : mask[e];
      grad_offset[offset_y] = modulation * sum_dy;
      grad_offset[offset_x] = modulation * sum_dx;
      if (grad_mask != nullptr) grad_mask[e] = sum_value;
    }
  });
}

void check_cpu_floating(const at::Tensor& input) {
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
              "the CPU sampling ops support float32 and float64, got ", input.scalar_type());
}

at::Tensor conv_forward_cpu(const at::Tensor& input_, const at::Tensor& offset_,
                            const at::Tensor& weight_, const std::optional<at::Tensor>& bias_,
                            const std::optional<at::Tensor>& mask_, int64_t stride_h,
                            int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h,
                            int64_t dilation_w, int64_t groups, int64_t offset_groups) {
  const SamplingGeometry g =
      conv_geometry(input_, offset_, weight_, mask_, stride_h, stride_w, pad_h, pad_w,
                    dilation_h, dilation_w, groups, offset_groups);
  check_cpu_floating(input_);
  const at::Tensor input = input_.contiguous();
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor weight = weight_.contiguous();
  const bool has_mask = mask_.has_value();
  const at::Tensor mask = has_mask ? mask_->contiguous() : at::Tensor();
  const int64_t batch = input.size(0);
  const int64_t out_channels = weight.size(0);
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  at::Tensor output = at::empty({batch, out_channels, g.out_h, g.out_w}, input.options());
  if (batch == 0) return output;

  const int64_t rows_per_group = (g.channels / groups) * taps;
  const int64_t out_per_group = out_channels / groups;
  const at::Tensor kernel = weight.view({groups, out_per_group, rows_per_group});
  at::Tensor columns = at::empty({groups, rows_per_group, positions}, input.options());
  at::Tensor bias_column;
  if (bias_.has_value()) {
    check_same_kind(input, *bias_, "bias");
    TORCH_CHECK(bias_->numel() == out_channels, "bias must have ", out_channels, " elements");
    bias_column = bias_->contiguous().view({groups, out_per_group, 1});
  }
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dynamic_sampling_conv2d_cpu", [&] {
    std::vector<PlanEntry<scalar_t>> plan(g.offset_groups * taps * positions);
    for (int64_t b = 0; b < batch; ++b) {
      build_plan(offset[b].data_ptr<scalar_t>(), has_mask ? mask[b].data_ptr<scalar_t>() : nullptr,
                 g, plan.data());
      gather_columns(input[b].data_ptr<scalar_t>(), plan.data(), g, columns.data_ptr<scalar_t>());
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

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv_backward_cpu(
    const at::Tensor& grad_output_, const at::Tensor& input_, const at::Tensor& offset_,
    const at::Tensor& weight_, const std::optional<at::Tensor>& mask_, int64_t stride_h,
    int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
    int64_t groups, int64_t offset_groups) {
  const SamplingGeometry g =
      conv_geometry(input_, offset_, weight_, mask_, stride_h, stride_w, pad_h, pad_w,
                    dilation_h, dilation_w, groups, offset_groups);
  check_cpu_floating(input_);
  check_same_kind(input_, grad_output_, "grad_output");
  const at::Tensor input = input_.contiguous();
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor weight = weight_.contiguous();
  const at::Tensor grad_output = grad_output_.contiguous();
  const bool has_mask = mask_.has_value();
  const at::Tensor mask = has_mask ? mask_->contiguous() : at::Tensor();
  const int64_t batch = input.size(0);
  const int64_t out_channels = weight.size(0);
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == batch &&
                  grad_output.size(1) == out_channels && grad_output.size(2) == g.out_h &&
                  grad_output.size(3) == g.out_w,
              "grad_output must be [", batch, ", ", out_channels, ", ", g.out_h, ", ", g.out_w,
              "], got ", grad_output.sizes());
  const int64_t taps = g.taps();
  const int64_t positions = g.positions();
  const int64_t rows_per_group = (g.channels / groups) * taps;
  const int64_t out_per_group = out_channels / groups;

  at::Tensor grad_input = at::zeros_like(input);
  at::Tensor grad_offset = at::zeros_like(offset);
  at::Tensor grad_weight = at::zeros_like(weight);
  at::Tensor grad_mask = has_mask ? at::zeros_like(mask) : at::empty({0}, input.options());
  if (batch == 0) return {grad_input, grad_offset, grad_weight, grad_mask};

  const at::Tensor kernel_t = weight.view({groups, out_per_group, rows_per_group}).transpose(1, 2);
  at::Tensor grad_kernel = grad_weight.view({groups, out_per_group, rows_per_group});
  at::Tensor columns = at::empty({groups, rows_per_group, positions}, input.options());
  at::Tensor grad_columns = at::empty({groups, rows_per_group, positions}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dynamic_sampling_conv2d_backward_cpu", [&] {
    std::vector<PlanEntry<scalar_t>> plan(g.offset_groups * taps * positions);
    for (int64_t b = 0; b < batch; ++b) {
      const scalar_t* mask_b = has_mask ? mask[b].data_ptr<scalar_t>() : nullptr;
      build_plan(offset[b].data_ptr<scalar_t>(), mask_b, g, plan.data());
      gather_columns(input[b].data_ptr<scalar_t>(), plan.data(), g, columns.data_ptr<scalar_t>());
      const at::Tensor grad_out_b = grad_output[b].view({groups, out_per_group, positions});
      grad_kernel.baddbmm_(grad_out_b, columns.transpose(1, 2));
      at::bmm_out(grad_columns, kernel_t, grad_out_b);
      scatter_columns(grad_columns.data_ptr<scalar_t>(), plan.data(), g,
                      grad_input[b].data_ptr<scalar_t>());
      coordinate_gradients(grad_columns.data_ptr<scalar_t>(), input[b].data_ptr<scalar_t>(),
                           offset[b].data_ptr<scalar_t>(), mask_b, g, grad_offset[b].data_ptr<scalar_t>(),
                           has_mask ? grad_mask[b].data_ptr<scalar_t>() : nullptr);
    }
  });
  return {grad_input, grad_offset, grad_weight, grad_mask};
}

at::Tensor sample_points_cpu(const at::Tensor& input_, const at::Tensor& offset_,
                             int64_t offset_groups) {
  const SamplingGeometry g = point_geometry(input_, offset_, offset_groups);
  check_cpu_floating(input_);
  const at::Tensor input = input_.contiguous();
  const at::Tensor offset = offset_.contiguous();
  const int64_t batch = input.size(0);
  at::Tensor output =
      at::empty({batch, g.channels, g.taps(), g.height, g.width}, input.options());
  if (batch == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "sample_points_cpu", [&] {
    std::vector<PlanEntry<scalar_t>> plan(g.offset_groups * g.taps() * g.positions());
    for (int64_t b = 0; b < batch; ++b) {
      build_plan(offset[b].data_ptr<scalar_t>(), static_cast<const scalar_t*>(nullptr), g,
                 plan.data());
      gather_columns(input[b].data_ptr<scalar_t>(), plan.data(), g, output[b].data_ptr<scalar_t>());
    }
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor> sample_points_backward_cpu(const at::Tensor& grad_output_,
                                                              const at::Tensor& input_,
                                                              const at::Tensor& offset_,
                                                              int64_t offset_groups) {
  const SamplingGeometry g = point_geometry(input_, offset_, offset_groups);
  check_cpu_floating(input_);
  check_same_kind(input_, grad_output_, "grad_output");
  const at::Tensor input = input_.contiguous();
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor grad_output = grad_output_.contiguous();
  const int64_t batch = input.size(0);
  TORCH_CHECK(grad_output.dim() == 5 && grad_output.size(0) == batch &&
                  grad_output.size(1) == g.channels && grad_output.size(2) == g.taps() &&
                  grad_output.size(3) == g.height && grad_output.size(4) == g.width,
              "grad_output must be [", batch, ", ", g.channels, ", ", g.taps(), ", ", g.height,
              ", ", g.width, "], got ", grad_output.sizes());
  at::Tensor grad_input = at::zeros_like(input);
  at::Tensor grad_offset = at::zeros_like(offset);
  if (batch == 0) return {grad_input, grad_offset};
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "sample_points_backward_cpu", [&] {
    std::vector<PlanEntry<scalar_t>> plan(g.offset_groups * g.taps() * g.positions());
    for (int64_t b = 0; b < batch; ++b) {
      build_plan(offset[b].data_ptr<scalar_t>(), static_cast<const scalar_t*>(nullptr), g,
                 plan.data());
      scatter_columns(grad_output[b].data_ptr<scalar_t>(), plan.data(), g,
                      grad_input[b].data_ptr<scalar_t>());
      coordinate_gradients(grad_output[b].data_ptr<scalar_t>(), input[b].data_ptr<scalar_t>(),
                           offset[b].data_ptr<scalar_t>(), static_cast<const scalar_t*>(nullptr),
                           g, grad_offset[b].data_ptr<scalar_t>(), static_cast<scalar_t*>(nullptr));
    }
  });
  return {grad_input, grad_offset};
}

}  // namespace

TORCH_LIBRARY_IMPL(repro, CPU, m) {
  m.impl("dynamic_sampling_conv2d", &conv_forward_cpu);
  m.impl("dynamic_sampling_conv2d_backward", &conv_backward_cpu);
  m.impl("sample_points", &sample_points_cpu);
  m.impl("sample_points_backward", &sample_points_backward_cpu);
}

}  // namespace repro
