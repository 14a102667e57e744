// CPU kernels of the sampling ops (declared in ../ops.cpp).
//
// Layout: each image is read channels-last ([H*W, C]), so the C channels at one bilinear
// corner are contiguous and every read (offset group, tap, position) becomes four vector
// loads and fused multiply-adds over a run of channels. The column buffer is likewise
// [groups, L, K, C/groups] (positions outer, channels inner), one image at a time, never the
// C*K*H*W buffer of the whole batch.
//
// Forward, per image: gather the columns, then one GEMM per group with the weight permuted to
// [O, K, C/groups]. Backward, per image: grad_columns = grad_output^T * weight (GEMM); one pass
// over the reads (parallel over positions) gathers the columns again and takes the offset and
// mask gradients from the same corners; grad_weight += grad_output * columns (GEMM); a last
// pass scatters grad_columns into grad_input in parallel over runs of channels, so no two
// threads write the same element and the sum order is fixed (deterministic gradients).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <vector>

#include "../sampling_geometry.h"
#include "../sampling_ops.h"

// The channel loops are compiled for AVX-512, AVX2 and a portable baseline; the loader picks
// the best one the CPU has, so the extension stays portable without -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define REPRO_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define REPRO_VECTOR_CLONES
#endif

namespace repro {
namespace {

// Positions per parallel task: enough work to amortise the OpenMP fork.
constexpr int64_t kPositionGrain = 64;

// --- Channel-run primitives --------------------------------------------------------------
// Plain inline loops: they are inlined into each clone of the passes below and vectorised
// for that clone's instruction set.

template <typename scalar_t>
inline void bilinear_run(scalar_t* __restrict destination, const scalar_t* __restrict corner0,
                         const scalar_t* __restrict corner1, const scalar_t* __restrict corner2,
                         const scalar_t* __restrict corner3, scalar_t w0, scalar_t w1,
                         scalar_t w2, scalar_t w3, int64_t length) {
  for (int64_t i = 0; i < length; ++i) {
    destination[i] = w0 * corner0[i] + w1 * corner1[i] + w2 * corner2[i] + w3 * corner3[i];
  }
}

template <typename scalar_t>
inline void zero_run(scalar_t* __restrict destination, int64_t length) {
  for (int64_t i = 0; i < length; ++i) destination[i] = scalar_t(0);
}

template <typename scalar_t>
inline void axpy_run(scalar_t* __restrict destination, const scalar_t* __restrict source,
                     scalar_t weight, int64_t length) {
  for (int64_t i = 0; i < length; ++i) destination[i] += weight * source[i];
}

// One read's contribution to the offset and mask gradients, over a run of channels:
// sums[0] += sum_i grad[i] * d value_i / dy, sums[1] += ... / dx, sums[2] += grad[i] * value_i,
// where value_i = sum_n w_n * corner_n[i]; also writes m * value_i to `columns` if given.
// Three sums (not one per corner) keep the horizontal reductions per read few.
template <typename scalar_t>
inline void read_gradient_run(const scalar_t* __restrict grad, const scalar_t* __restrict corner0,
                              const scalar_t* __restrict corner1,
                              const scalar_t* __restrict corner2,
                              const scalar_t* __restrict corner3,
                              const BilinearCorners<scalar_t>& c, scalar_t m,
                              scalar_t* __restrict columns, int64_t length, scalar_t* sums) {
  const scalar_t w0 = c.weight[0], w1 = c.weight[1], w2 = c.weight[2], w3 = c.weight[3];
  const scalar_t y0 = c.dweight_dy[0], y1 = c.dweight_dy[1], y2 = c.dweight_dy[2],
                 y3 = c.dweight_dy[3];
  const scalar_t x0 = c.dweight_dx[0], x1 = c.dweight_dx[1], x2 = c.dweight_dx[2],
                 x3 = c.dweight_dx[3];
  scalar_t sum_dy = 0, sum_dx = 0, sum_value = 0;
  if (columns != nullptr) {
#pragma omp simd reduction(+ : sum_dy, sum_dx, sum_value)
    for (int64_t i = 0; i < length; ++i) {
      const scalar_t v0 = corner0[i], v1 = corner1[i], v2 = corner2[i], v3 = corner3[i];
      const scalar_t value = w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3;
      columns[i] = m * value;
      sum_value += grad[i] * value;
      sum_dy += grad[i] * (y0 * v0 + y1 * v1 + y2 * v2 + y3 * v3);
      sum_dx += grad[i] * (x0 * v0 + x1 * v1 + x2 * v2 + x3 * v3);
    }
  } else {
#pragma omp simd reduction(+ : sum_dy, sum_dx, sum_value)
    for (int64_t i = 0; i < length; ++i) {
      const scalar_t v0 = corner0[i], v1 = corner1[i], v2 = corner2[i], v3 = corner3[i];
      sum_value += grad[i] * (w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3);
      sum_dy += grad[i] * (y0 * v0 + y1 * v1 + y2 * v2 + y3 * v3);
      sum_dx += grad[i] * (x0 * v0 + x1 * v1 + x2 * v2 + x3 * v3);
    }
  }
  sums[0] += sum_dy;
  sums[1] += sum_dx;
  sums[2] += sum_value;
}

// --- Reads -------------------------------------------------------------------------------

// A run of channels sharing one offset group and one convolution group: within it, the
// channels are contiguous both in the channels-last input and in the column buffer.
struct ChannelRun {
  int64_t begin;         // first input channel
  int64_t end;           // one past the last
  int64_t offset_group;  // whose offsets (and mask) the run reads with
  int64_t conv_group;    // whose block of the column buffer it fills
};

std::vector<ChannelRun> channel_runs(const SamplingGeometry& g, int64_t groups) {
  const int64_t per_offset_group = g.channels_per_offset_group();
  const int64_t per_conv_group = g.channels / groups;
  std::vector<ChannelRun> runs;
  int64_t begin = 0;
  while (begin < g.channels) {
    const int64_t offset_group = begin / per_offset_group;
    const int64_t conv_group = begin / per_conv_group;
    const int64_t end =
        std::min((offset_group + 1) * per_offset_group, (conv_group + 1) * per_conv_group);
    runs.push_back({begin, end, offset_group, conv_group});
    begin = end;
  }
  return runs;
}

// One image's reads: geometry, offsets, mask and the channel runs, shared by the passes.
template <typename scalar_t>
struct ImageReads {
  const SamplingGeometry& g;
  int64_t groups;
  const std::vector<ChannelRun>& runs;
  const scalar_t* offset;  // [G, 2K, L]
  const scalar_t* mask;    // [G, K, L] or nullptr

  // Where run `run` of read (tap, position) sits in the [groups, L, K, C/groups] columns.
  int64_t column_offset(const ChannelRun& run, int64_t tap, int64_t position) const {
    const int64_t per_conv_group = g.channels / groups;
    return ((run.conv_group * g.positions() + position) * g.taps() + tap) * per_conv_group +
           (run.begin - run.conv_group * per_conv_group);
  }

  // Corners of read (group, tap, position) whose position before the offset is (y, x);
  // false when the whole read is 0.
  bool corners(int64_t group, int64_t tap, int64_t position, int64_t y, int64_t x,
               BilinearCorners<scalar_t>& result) const {
    const int64_t positions = g.positions();
    const scalar_t* group_offset = offset + group * 2 * g.taps() * positions;
    return bilinear_corners(scalar_t(y) + group_offset[(2 * tap) * positions + position],
                            scalar_t(x) + group_offset[(2 * tap + 1) * positions + position],
                            g.height, g.width, result);
  }

  scalar_t modulation(int64_t group, int64_t tap, int64_t position) const {
    return mask == nullptr ? scalar_t(1)
                           : mask[(group * g.taps() + tap) * g.positions() + position];
  }
};

// Outputs of one pass over the reads of positions [begin, end); null pointers are skipped.
template <typename scalar_t>
struct ReadPassOutputs {
  scalar_t* columns;             // the bilinear columns (DCNv2 Eq. 3 before the weight)
  const scalar_t* grad_columns;  // input of the offset and mask gradients
  scalar_t* grad_offset;         // [G, 2K, L]
  scalar_t* grad_mask;           // [G, K, L]
};

// The forward gather and the offset/mask gradients, from one computation of each read's
// corners (`read_pass` below runs it in parallel over positions):
//   columns[gr, l, k, c']  = m * sum_n w_n * input_cl[index_n, c]
//   grad_offset_y[g, k, l] = m * sum_c grad_columns[c, k, l] * d bilinear(input[c]) / dy
//   grad_mask[g, k, l]     = sum_c grad_columns[c, k, l] * bilinear(input[c])
template <typename scalar_t>
REPRO_VECTOR_CLONES void read_positions(const ImageReads<scalar_t>& reads,
                                        const scalar_t* input_cl,
                                        const ReadPassOutputs<scalar_t>& out, int64_t begin,
                                        int64_t end) {
  const SamplingGeometry& g = reads.g;
  const int64_t positions = g.positions();
  for (int64_t position = begin; position < end; ++position) {
    const int64_t row = (position / g.out_w) * g.stride_h - g.pad_h;
    const int64_t col = (position % g.out_w) * g.stride_w - g.pad_w;
    for (int64_t tap_i = 0, tap = 0; tap_i < g.kernel_h; ++tap_i) {
      for (int64_t tap_j = 0; tap_j < g.kernel_w; ++tap_j, ++tap) {
        const int64_t y = row + tap_i * g.dilation_h;
        const int64_t x = col + tap_j * g.dilation_w;
        for (int64_t group = 0; group < g.offset_groups; ++group) {
          BilinearCorners<scalar_t> c;
          const bool inside = reads.corners(group, tap, position, y, x, c);
          const scalar_t m = reads.modulation(group, tap, position);
          scalar_t sums[3] = {0, 0, 0};  // d/dy, d/dx, value
          for (const ChannelRun& run : reads.runs) {
            if (run.offset_group != group) continue;
            const int64_t at = reads.column_offset(run, tap, position);
            const int64_t length = run.end - run.begin;
            if (!inside) {
              if (out.columns != nullptr) zero_run(out.columns + at, length);
              continue;
            }
            const scalar_t* corner[4];
            for (int n = 0; n < 4; ++n) {
              corner[n] = input_cl + c.index[n] * g.channels + run.begin;
            }
            if (out.grad_columns != nullptr) {
              read_gradient_run(out.grad_columns + at, corner[0], corner[1], corner[2],
                                corner[3], c, m, out.columns == nullptr ? nullptr : out.columns + at,
                                length, sums);
            } else {
              bilinear_run(out.columns + at, corner[0], corner[1], corner[2], corner[3],
                           m * c.weight[0], m * c.weight[1], m * c.weight[2], m * c.weight[3],
                           length);
            }
          }
          if (out.grad_offset == nullptr) continue;
          const int64_t offset_y = (group * 2 * g.taps() + 2 * tap) * positions + position;
          out.grad_offset[offset_y] = m * sums[0];
          out.grad_offset[offset_y + positions] = m * sums[1];
          if (out.grad_mask != nullptr) {
            out.grad_mask[(group * g.taps() + tap) * positions + position] = sums[2];
          }
        }
      }
    }
  }
}

template <typename scalar_t>
void read_pass(const ImageReads<scalar_t>& reads, const scalar_t* input_cl,
               const ReadPassOutputs<scalar_t>& out) {
  at::parallel_for(0, reads.g.positions(), kPositionGrain, [&](int64_t begin, int64_t end) {
    read_positions(reads, input_cl, out, begin, end);
  });
}

// grad_input_cl[index_n, c] += m * w_n * grad_columns[c, k, l] for channels [first, last),
// walking every read in a fixed order.
template <typename scalar_t>
REPRO_VECTOR_CLONES void scatter_channels(const ImageReads<scalar_t>& reads,
                                          const scalar_t* grad_columns,
                                          scalar_t* grad_input_cl, int64_t first, int64_t last) {
  const SamplingGeometry& g = reads.g;
  for (int64_t position = 0; position < g.positions(); ++position) {
    const int64_t row = (position / g.out_w) * g.stride_h - g.pad_h;
    const int64_t col = (position % g.out_w) * g.stride_w - g.pad_w;
    for (int64_t tap_i = 0, tap = 0; tap_i < g.kernel_h; ++tap_i) {
      for (int64_t tap_j = 0; tap_j < g.kernel_w; ++tap_j, ++tap) {
        const int64_t y = row + tap_i * g.dilation_h;
        const int64_t x = col + tap_j * g.dilation_w;
        for (int64_t group = 0; group < g.offset_groups; ++group) {
          BilinearCorners<scalar_t> c;
          if (!reads.corners(group, tap, position, y, x, c)) continue;
          const scalar_t m = reads.modulation(group, tap, position);
          for (const ChannelRun& run : reads.runs) {
            if (run.offset_group != group) continue;
            const int64_t begin = std::max(run.begin, first);
            const int64_t end = std::min(run.end, last);
            if (begin >= end) continue;
            const scalar_t* source =
                grad_columns + reads.column_offset(run, tap, position) + (begin - run.begin);
            for (int n = 0; n < 4; ++n) {
              // Corners outside the map have weight 0 and receive nothing.
              if (c.weight[n] == scalar_t(0)) continue;
              axpy_run(grad_input_cl + c.index[n] * g.channels + begin, source,
                       m * c.weight[n], end - begin);
            }
          }
        }
      }
    }
  }
}

// Each task owns a slice of channels, so no write collides; every element's sum runs over
// the reads in the same order whatever the slicing, so the gradient is deterministic.
template <typename scalar_t>
void scatter_pass(const ImageReads<scalar_t>& reads, const scalar_t* grad_columns,
                  scalar_t* grad_input_cl) {
  const int64_t channels = reads.g.channels;
  // At least 16 channels (whole vectors) per slice, and no more slices than threads.
  const int64_t slices = std::max<int64_t>(
      1, std::min<int64_t>(at::get_num_threads(), channels / 16));
  const int64_t per_slice = (channels + slices - 1) / slices;
  at::parallel_for(0, slices, 1, [&](int64_t slice_begin, int64_t slice_end) {
    for (int64_t slice = slice_begin; slice < slice_end; ++slice) {
      scatter_channels(reads, grad_columns, grad_input_cl, slice * per_slice,
                       std::min(channels, (slice + 1) * per_slice));
    }
  });
}

// destination[j * destination_stride + i] = source[i * source_stride + j] for i < rows,
// j < cols, in 16 x 64 blocks so both sides stay in cache (ATen's permuted copy is several
// times slower for the [L, P, C] <-> [C, P, L] transposes of point sampling).
template <typename scalar_t>
void blocked_transpose(const scalar_t* source, int64_t source_stride, scalar_t* destination,
                       int64_t destination_stride, int64_t rows, int64_t cols) {
  constexpr int64_t kRowBlock = 64;
  constexpr int64_t kColBlock = 16;
  const int64_t col_blocks = (cols + kColBlock - 1) / kColBlock;
  at::parallel_for(0, col_blocks, 1, [&](int64_t block_begin, int64_t block_end) {
    for (int64_t block = block_begin; block < block_end; ++block) {
      const int64_t j_begin = block * kColBlock;
      const int64_t j_end = std::min(cols, j_begin + kColBlock);
      for (int64_t i_begin = 0; i_begin < rows; i_begin += kRowBlock) {
        const int64_t i_end = std::min(rows, i_begin + kRowBlock);
        for (int64_t j = j_begin; j < j_end; ++j) {
          for (int64_t i = i_begin; i < i_end; ++i) {
            destination[j * destination_stride + i] = source[i * source_stride + j];
          }
        }
      }
    }
  });
}

// [L, P, C] <-> [C, P, L] (point sampling's columns and its output), one point at a time.
template <typename scalar_t>
void points_to_planes(const scalar_t* columns, scalar_t* planes, const SamplingGeometry& g) {
  const int64_t points = g.taps(), positions = g.positions(), channels = g.channels;
  for (int64_t point = 0; point < points; ++point) {
    blocked_transpose(columns + point * channels, points * channels, planes + point * positions,
                      points * positions, positions, channels);
  }
}

template <typename scalar_t>
void planes_to_points(const scalar_t* planes, scalar_t* columns, const SamplingGeometry& g) {
  const int64_t points = g.taps(), positions = g.positions(), channels = g.channels;
  for (int64_t point = 0; point < points; ++point) {
    blocked_transpose(planes + point * positions, points * positions, columns + point * channels,
                      points * channels, channels, positions);
  }
}

// --- Ops -----------------------------------------------------------------------------------

void check_cpu_floating(const at::Tensor& input) {
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
              "the CPU sampling ops support float32 and float64, got ", input.scalar_type());
}

// [B, C, H, W] -> [B, H*W, C] contiguous.
at::Tensor channels_last(const at::Tensor& input) {
  return input.permute({0, 2, 3, 1}).contiguous().view({input.size(0), -1, input.size(1)});
}

// Weight [O, C/groups, kh, kw] as [groups, O/groups, K * C/groups] in the column order.
at::Tensor weight_as_matrix(const at::Tensor& weight, int64_t groups) {
  const int64_t out_per_group = weight.size(0) / groups;
  return weight.permute({0, 2, 3, 1})
      .contiguous()
      .view({groups, out_per_group, -1});
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
  const at::Tensor offset = offset_.contiguous();
  const bool has_mask = mask_.has_value();
  const at::Tensor mask = has_mask ? mask_->contiguous() : at::Tensor();
  const int64_t batch = input_.size(0);
  const int64_t out_channels = weight_.size(0);
  const int64_t positions = g.positions();
  at::Tensor output = at::empty({batch, out_channels, g.out_h, g.out_w}, input_.options());
  if (batch == 0) return output;

  const int64_t out_per_group = out_channels / groups;
  const at::Tensor input_cl = channels_last(input_);
  const at::Tensor kernel = weight_as_matrix(weight_, groups);
  at::Tensor columns = at::empty({groups, positions, kernel.size(2)}, input_.options());
  at::Tensor bias_column;
  if (bias_.has_value()) {
    check_same_kind(input_, *bias_, "bias");
    TORCH_CHECK(bias_->numel() == out_channels, "bias must have ", out_channels, " elements");
    bias_column = bias_->contiguous().view({groups, out_per_group, 1});
  }
  const std::vector<ChannelRun> runs = channel_runs(g, groups);
  AT_DISPATCH_FLOATING_TYPES(input_.scalar_type(), "dynamic_sampling_conv2d_cpu", [&] {
    for (int64_t b = 0; b < batch; ++b) {
      const ImageReads<scalar_t> reads{g, groups, runs, offset[b].data_ptr<scalar_t>(),
                                       has_mask ? mask[b].data_ptr<scalar_t>() : nullptr};
      read_pass(reads, input_cl[b].data_ptr<scalar_t>(),
                {columns.data_ptr<scalar_t>(), nullptr, nullptr, nullptr});
      at::Tensor out_b = output[b].view({groups, out_per_group, positions});
      if (bias_column.defined()) {
        at::baddbmm_out(out_b, bias_column.expand({groups, out_per_group, positions}), kernel,
                        columns.transpose(1, 2));
      } else {
        at::bmm_out(out_b, kernel, columns.transpose(1, 2));
      }
    }
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv_backward_cpu(
    const at::Tensor& grad_output_, const at::Tensor& input_, const at::Tensor& offset_,
    const at::Tensor& weight_, const std::optional<at::Tensor>& mask_, int64_t stride_h,
    int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
    int64_t groups, int64_t offset_groups, std::array<bool, 3> output_mask) {
  const SamplingGeometry g =
      conv_geometry(input_, offset_, weight_, mask_, stride_h, stride_w, pad_h, pad_w,
                    dilation_h, dilation_w, groups, offset_groups);
  check_cpu_floating(input_);
  check_same_kind(input_, grad_output_, "grad_output");
  const auto [need_input, need_offset, need_weight] = output_mask;
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor grad_output = grad_output_.contiguous();
  const bool has_mask = mask_.has_value();
  const at::Tensor mask = has_mask ? mask_->contiguous() : at::Tensor();
  const int64_t batch = input_.size(0);
  const int64_t out_channels = weight_.size(0);
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == batch &&
                  grad_output.size(1) == out_channels && grad_output.size(2) == g.out_h &&
                  grad_output.size(3) == g.out_w,
              "grad_output must be [", batch, ", ", out_channels, ", ", g.out_h, ", ", g.out_w,
              "], got ", grad_output.sizes());
  const int64_t positions = g.positions();
  const int64_t out_per_group = out_channels / groups;

  const at::Tensor nothing = at::empty({0}, input_.options());
  at::Tensor grad_offset = need_offset ? at::zeros_like(offset) : nothing;
  at::Tensor grad_mask = has_mask && need_offset ? at::zeros_like(mask) : nothing;
  if (batch == 0) {
    return {need_input ? at::zeros_like(input_) : nothing, grad_offset,
            need_weight ? at::zeros_like(weight_) : nothing, grad_mask};
  }
  const at::Tensor input_cl = channels_last(input_);
  at::Tensor grad_input_cl = need_input ? at::zeros_like(input_cl) : nothing;
  const at::Tensor kernel = weight_as_matrix(weight_, groups);
  at::Tensor grad_kernel = need_weight ? at::zeros_like(kernel) : nothing;
  at::Tensor columns = need_weight
                           ? at::empty({groups, positions, kernel.size(2)}, input_.options())
                           : nothing;
  // The column gradient feeds the input, offset and mask gradients only.
  const bool need_grad_columns = need_input || need_offset;
  at::Tensor grad_columns = need_grad_columns
                                ? at::empty({groups, positions, kernel.size(2)}, input_.options())
                                : nothing;
  const std::vector<ChannelRun> runs = channel_runs(g, groups);
  AT_DISPATCH_FLOATING_TYPES(input_.scalar_type(), "dynamic_sampling_conv2d_backward_cpu", [&] {
    for (int64_t b = 0; b < batch; ++b) {
      const ImageReads<scalar_t> reads{g, groups, runs, offset[b].data_ptr<scalar_t>(),
                                       has_mask ? mask[b].data_ptr<scalar_t>() : nullptr};
      const at::Tensor grad_out_b = grad_output[b].view({groups, out_per_group, positions});
      if (need_grad_columns) at::bmm_out(grad_columns, grad_out_b.transpose(1, 2), kernel);
      if (need_offset || need_weight) {
        // Without the offset gradient, the pass is the forward gather of the columns alone.
        read_pass(reads, input_cl[b].data_ptr<scalar_t>(),
                  {need_weight ? columns.data_ptr<scalar_t>() : nullptr,
                   need_offset ? grad_columns.data_ptr<scalar_t>() : nullptr,
                   need_offset ? grad_offset[b].data_ptr<scalar_t>() : nullptr,
                   has_mask && need_offset ? grad_mask[b].data_ptr<scalar_t>() : nullptr});
      }
      if (need_weight) grad_kernel.baddbmm_(grad_out_b, columns);
      if (need_input) {
        scatter_pass(reads, grad_columns.data_ptr<scalar_t>(),
                     grad_input_cl[b].data_ptr<scalar_t>());
      }
    }
  });
  const at::Tensor grad_input =
      need_input ? grad_input_cl.view({batch, g.height, g.width, g.channels})
                       .permute({0, 3, 1, 2})
                       .contiguous()
                 : nothing;
  const at::Tensor grad_weight = need_weight
                                     ? grad_kernel.view({out_channels, g.kernel_h, g.kernel_w, -1})
                                           .permute({0, 3, 1, 2})
                                           .contiguous()
                                     : nothing;
  return {grad_input, grad_offset, grad_weight, grad_mask};
}

at::Tensor sample_points_cpu(const at::Tensor& input_, const at::Tensor& offset_,
                             int64_t offset_groups) {
  const SamplingGeometry g = point_geometry(input_, offset_, offset_groups);
  check_cpu_floating(input_);
  const at::Tensor offset = offset_.contiguous();
  const int64_t batch = input_.size(0);
  at::Tensor output =
      at::empty({batch, g.channels, g.taps(), g.height, g.width}, input_.options());
  if (batch == 0) return output;
  const at::Tensor input_cl = channels_last(input_);
  // [L, P, C] per image, transposed into the [C, P, H, W] output.
  at::Tensor columns = at::empty({g.positions(), g.taps(), g.channels}, input_.options());
  const std::vector<ChannelRun> runs = channel_runs(g, 1);
  AT_DISPATCH_FLOATING_TYPES(input_.scalar_type(), "sample_points_cpu", [&] {
    for (int64_t b = 0; b < batch; ++b) {
      const ImageReads<scalar_t> reads{g, 1, runs, offset[b].data_ptr<scalar_t>(), nullptr};
      read_pass(reads, input_cl[b].data_ptr<scalar_t>(),
                {columns.data_ptr<scalar_t>(), nullptr, nullptr, nullptr});
      points_to_planes(columns.data_ptr<scalar_t>(), output[b].data_ptr<scalar_t>(), g);
    }
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor> sample_points_backward_cpu(const at::Tensor& grad_output_,
                                                              const at::Tensor& input_,
                                                              const at::Tensor& offset_,
                                                              int64_t offset_groups,
                                                              std::array<bool, 2> output_mask) {
  const SamplingGeometry g = point_geometry(input_, offset_, offset_groups);
  const auto [need_input, need_offset] = output_mask;
  check_cpu_floating(input_);
  check_same_kind(input_, grad_output_, "grad_output");
  const at::Tensor offset = offset_.contiguous();
  const int64_t batch = input_.size(0);
  TORCH_CHECK(grad_output_.dim() == 5 && grad_output_.size(0) == batch &&
                  grad_output_.size(1) == g.channels && grad_output_.size(2) == g.taps() &&
                  grad_output_.size(3) == g.height && grad_output_.size(4) == g.width,
              "grad_output must be [", batch, ", ", g.channels, ", ", g.taps(), ", ", g.height,
              ", ", g.width, "], got ", grad_output_.sizes());
  const at::Tensor grad_output = grad_output_.contiguous();
  const at::Tensor nothing = at::empty({0}, input_.options());
  at::Tensor grad_offset = need_offset ? at::zeros_like(offset) : nothing;
  if (batch == 0) return {need_input ? at::zeros_like(input_) : nothing, grad_offset};
  if (!need_input && !need_offset) return {nothing, nothing};
  const at::Tensor input_cl = channels_last(input_);
  at::Tensor grad_input_cl = need_input ? at::zeros_like(input_cl) : nothing;
  at::Tensor grad_columns = at::empty({g.positions(), g.taps(), g.channels}, input_.options());
  const std::vector<ChannelRun> runs = channel_runs(g, 1);
  AT_DISPATCH_FLOATING_TYPES(input_.scalar_type(), "sample_points_backward_cpu", [&] {
    for (int64_t b = 0; b < batch; ++b) {
      const ImageReads<scalar_t> reads{g, 1, runs, offset[b].data_ptr<scalar_t>(), nullptr};
      planes_to_points(grad_output[b].data_ptr<scalar_t>(), grad_columns.data_ptr<scalar_t>(), g);
      if (need_offset) {
        read_pass(reads, input_cl[b].data_ptr<scalar_t>(),
                  {nullptr, grad_columns.data_ptr<scalar_t>(), grad_offset[b].data_ptr<scalar_t>(),
                   nullptr});
      }
      if (need_input) {
        scatter_pass(reads, grad_columns.data_ptr<scalar_t>(),
                     grad_input_cl[b].data_ptr<scalar_t>());
      }
    }
  });
  const at::Tensor grad_input =
      need_input ? grad_input_cl.view({batch, g.height, g.width, g.channels})
                       .permute({0, 3, 1, 2})
                       .contiguous()
                 : nothing;
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
