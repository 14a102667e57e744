// CPU kernels of the sampling ops (declared in ../ops.cpp).
//
// Layout: each image is read channels-last ([H*W, C]; in place when the input is stored
// channels-last), so the C channels at one bilinear corner are contiguous and every read
// (offset group, tap, position) becomes four vector loads and fused multiply-adds over a run
// of channels. Columns exist only for a tile of positions at a time, laid out
// [groups, tile, K, C/groups] (positions outer, channels inner) and sized to stay in L2.
//
// Parallelism: one parallel region per call, over images (see "Work split" below); a task
// runs all passes of its tiles on one thread.
// Forward, per tile: gather the columns, then one GEMM per group with the weight permuted to
// [O, K, C/groups] (point sampling: a transpose into the [C, P, H, W] output instead).
// Backward, per tile: grad_columns = grad_output^T * weight (GEMM; point sampling: a
// transpose); one pass over the reads computes each read's corners once and from them
// gathers the columns again (if the weight gradient is needed), takes the offset and mask
// gradients (if needed) and scatters grad_columns into the task's own grad_input buffer (if
// needed); grad_weight += grad_output * columns (GEMM) into the task's partial. Partials
// are summed in task order, so the gradients are the same on every run (and, from 4 images
// per thread on, whatever the thread count).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <type_traits>
#include <vector>

#include "../sampling_geometry.h"
#include "../sampling_ops.h"

// The channel loops are compiled for AVX-512, AVX2 and a portable baseline; the loader picks
// the best one the CPU has, so the extension stays portable without -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define REPRO_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define REPRO_AVX512_TRANSPOSE 1
#include <immintrin.h>
#else
#define REPRO_VECTOR_CLONES
#define REPRO_AVX512_TRANSPOSE 0
#endif

namespace repro {
namespace {

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
// where value_i = sum_n w_n * corner_n[i]; also writes m * value_i to `columns` if kColumns.
// Without a mask (kMaskGradient false) nothing needs sums[2], and it is not computed.
// Three sums (not one per corner) keep the horizontal reductions per read few, and each is
// kept in kLanes (one 512-bit register) partial sums folded by halves at the end: a compiler
// turns `#pragma omp simd reduction` into a chain of kLanes dependent scalar additions per
// sum, which cost more than the read itself at 16 channels (measured with perf).
template <bool kColumns, bool kMaskGradient, typename scalar_t>
inline void read_gradient_run(const scalar_t* __restrict grad, const scalar_t* __restrict corner0,
                              const scalar_t* __restrict corner1,
                              const scalar_t* __restrict corner2,
                              const scalar_t* __restrict corner3,
                              const BilinearCorners<scalar_t>& c, scalar_t m,
                              scalar_t* __restrict columns, int64_t length, scalar_t* sums) {
  constexpr int64_t kLanes = 64 / sizeof(scalar_t);
  const scalar_t w0 = c.weight[0], w1 = c.weight[1], w2 = c.weight[2], w3 = c.weight[3];
  const scalar_t y0 = c.dweight_dy[0], y1 = c.dweight_dy[1], y2 = c.dweight_dy[2],
                 y3 = c.dweight_dy[3];
  const scalar_t x0 = c.dweight_dx[0], x1 = c.dweight_dx[1], x2 = c.dweight_dx[2],
                 x3 = c.dweight_dx[3];
  scalar_t sum_dy[kLanes] = {}, sum_dx[kLanes] = {}, sum_value[kLanes] = {};
  auto step = [&](int64_t i, int64_t lane) {
    const scalar_t v0 = corner0[i], v1 = corner1[i], v2 = corner2[i], v3 = corner3[i];
    const scalar_t value = w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3;
    if constexpr (kColumns) columns[i] = m * value;
    if constexpr (kMaskGradient) sum_value[lane] += grad[i] * value;
    sum_dy[lane] += grad[i] * (y0 * v0 + y1 * v1 + y2 * v2 + y3 * v3);
    sum_dx[lane] += grad[i] * (x0 * v0 + x1 * v1 + x2 * v2 + x3 * v3);
  };
  int64_t i = 0;
  for (; i + kLanes <= length; i += kLanes) {
    for (int64_t lane = 0; lane < kLanes; ++lane) step(i + lane, lane);
  }
  for (int64_t lane = 0; i + lane < length; ++lane) step(i + lane, lane);
  for (int64_t half = kLanes / 2; half > 0; half /= 2) {
    for (int64_t lane = 0; lane < half; ++lane) {
      sum_dy[lane] += sum_dy[lane + half];
      sum_dx[lane] += sum_dx[lane + half];
      if constexpr (kMaskGradient) sum_value[lane] += sum_value[lane + half];
    }
  }
  sums[0] += sum_dy[0];
  sums[1] += sum_dx[0];
  sums[2] += sum_value[0];
}

// --- Reads ---------------------------------------------------------------------------------

// A run of channels sharing one offset group and one convolution group: within it, the
// channels are contiguous both in the channels-last input and in the column buffer.
struct ChannelRun {
  int64_t begin;         // first input channel
  int64_t end;           // one past the last
  int64_t offset_group;  // whose offsets (and mask) the run reads with
  int64_t conv_group;    // whose block of the column buffer it fills
  // Channels per convolution group, and the run's first channel within its group: kept
  // here so that placing a read in the columns needs no division (an idiv per read showed
  // in perf).
  int64_t group_channels;
  int64_t group_begin;
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
    runs.push_back({begin, end, offset_group, conv_group, per_conv_group,
                    begin - conv_group * per_conv_group});
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

  // Where run `run` of read (tap, local) sits in a tile of `length` positions laid out
  // [groups, length, K, C/groups] (`local` counts from the tile's first position).
  int64_t column_offset(const ChannelRun& run, int64_t tap, int64_t local, int64_t length) const {
    return ((run.conv_group * length + local) * g.taps() + tap) * run.group_channels +
           run.group_begin;
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

// Outputs of one pass over the reads of one tile of positions; null pointers are skipped.
// `columns` and `grad_columns` are tiles ([groups, length, K, C/groups]), the offset, mask and
// input gradients whole images. `grad_columns` feeds the offset, mask and input gradients.
template <typename scalar_t>
struct ReadPassOutputs {
  scalar_t* columns;             // the bilinear columns (DCNv2 Eq. 3 before the weight)
  const scalar_t* grad_columns;  // input of the offset and mask gradients
  scalar_t* grad_offset;         // [G, 2K, L]
  scalar_t* grad_mask;           // [G, K, L]
  scalar_t* grad_input;          // [H*W, C] (channels-last), accumulated into
};

// The forward gather and the offset, mask and input gradients of positions [begin, end),
// from one computation of each read's corners (and one load of its grad_columns):
//   columns[gr, l, k, c']  = m * sum_n w_n * input_cl[index_n, c]
//   grad_offset_y[g, k, l] = m * sum_c grad_columns[c, k, l] * d bilinear(input[c]) / dy
//   grad_mask[g, k, l]     = sum_c grad_columns[c, k, l] * bilinear(input[c])
//   grad_input_cl[index_n, c] += m * w_n * grad_columns[c, k, l]
// A task owns its grad_input buffer and walks its reads in a fixed order, so the input
// gradient's sums are deterministic. kBackward = false compiles the forward gather alone
// (only `columns`): without the gradient branches its loop keeps its values in registers.
template <bool kBackward, typename scalar_t>
REPRO_VECTOR_CLONES void read_positions(const ImageReads<scalar_t>& reads,
                                        const scalar_t* input_cl,
                                        const ReadPassOutputs<scalar_t>& out, int64_t begin,
                                        int64_t end) {
  const SamplingGeometry& g = reads.g;
  const int64_t positions = g.positions();
  const int64_t length = end - begin;
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
            const int64_t at = reads.column_offset(run, tap, position - begin, length);
            const int64_t channels = run.end - run.begin;
            if (!inside) {
              if (out.columns != nullptr) zero_run(out.columns + at, channels);
              continue;
            }
            const scalar_t* corner[4];
            for (int n = 0; n < 4; ++n) {
              corner[n] = input_cl + c.index[n] * g.channels + run.begin;
            }
            if constexpr (!kBackward) {
              bilinear_run(out.columns + at, corner[0], corner[1], corner[2], corner[3],
                           m * c.weight[0], m * c.weight[1], m * c.weight[2], m * c.weight[3],
                           channels);
              continue;
            }
            if (out.grad_offset != nullptr) {
              const scalar_t* grad = out.grad_columns + at;
              scalar_t* columns = out.columns == nullptr ? nullptr : out.columns + at;
              // The four cases compiled apart: the channel loop stays free of branches.
              if (columns != nullptr && out.grad_mask != nullptr) {
                read_gradient_run<true, true>(grad, corner[0], corner[1], corner[2], corner[3],
                                              c, m, columns, channels, sums);
              } else if (columns != nullptr) {
                read_gradient_run<true, false>(grad, corner[0], corner[1], corner[2], corner[3],
                                               c, m, columns, channels, sums);
              } else if (out.grad_mask != nullptr) {
                read_gradient_run<false, true>(grad, corner[0], corner[1], corner[2], corner[3],
                                               c, m, columns, channels, sums);
              } else {
                read_gradient_run<false, false>(grad, corner[0], corner[1], corner[2], corner[3],
                                                c, m, columns, channels, sums);
              }
            } else if (out.columns != nullptr) {
              bilinear_run(out.columns + at, corner[0], corner[1], corner[2], corner[3],
                           m * c.weight[0], m * c.weight[1], m * c.weight[2], m * c.weight[3],
                           channels);
            }
            if (out.grad_input == nullptr) continue;
            for (int n = 0; n < 4; ++n) {
              // Corners outside the map have weight 0 and receive nothing.
              if (c.weight[n] == scalar_t(0)) continue;
              axpy_run(out.grad_input + c.index[n] * g.channels + run.begin,
                       out.grad_columns + at, m * c.weight[n], channels);
            }
          }
          if (!kBackward || out.grad_offset == nullptr) continue;
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

#if REPRO_AVX512_TRANSPOSE
// GCC 12's avx512fintrin.h warns of its own _mm512_undefined_ps (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The 16 x 16 float block at `source` (row stride source_stride) transposed into
// `destination`: 16 row loads, four rounds of in-register shuffles, 16 row stores. A compiler
// turns the element-wise loop into scalar moves; this is several times faster, and the
// transposes are most of point sampling's time (measured with perf: 27% of its forward,
// against 11% for the bilinear reads).
__attribute__((target("avx512f"))) inline void transpose_16x16(const float* source,
                                                                int64_t source_stride,
                                                                float* destination,
                                                                int64_t destination_stride) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(source + i * source_stride);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int half = 0; half < 16; half += 8) {
    for (int i = 0; i < 4; ++i) {
      t[half + i] = _mm512_shuffle_f32x4(r[half + i], r[half + i + 4], 0x88);
      t[half + i + 4] = _mm512_shuffle_f32x4(r[half + i], r[half + i + 4], 0xdd);
    }
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(destination + i * destination_stride, r[i]);
}

__attribute__((target("avx512f"))) void transpose_avx512(const float* source,
                                                          int64_t source_stride,
                                                          float* destination,
                                                          int64_t destination_stride,
                                                          int64_t rows, int64_t cols) {
  const int64_t full_rows = rows - rows % 16, full_cols = cols - cols % 16;
  // Destination rows outer: each of the 16 destination rows a block writes then grows
  // sequentially, where point sampling's output rows lie a megabyte apart.
  for (int64_t j = 0; j < full_cols; j += 16) {
    for (int64_t i = 0; i < full_rows; i += 16) {
      transpose_16x16(source + i * source_stride + j, source_stride,
                      destination + j * destination_stride + i, destination_stride);
    }
  }
  // The edges (fewer than 16 rows or columns) element by element.
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = full_cols; j < cols; ++j) {
      destination[j * destination_stride + i] = source[i * source_stride + j];
    }
  }
  for (int64_t i = full_rows; i < rows; ++i) {
    for (int64_t j = 0; j < full_cols; ++j) {
      destination[j * destination_stride + i] = source[i * source_stride + j];
    }
  }
}
#pragma GCC diagnostic pop
#endif

// destination[j * destination_stride + i] = source[i * source_stride + j] for i < rows,
// j < cols: in 16 x 16 register blocks for float32 on CPUs with AVX-512, else in 16 x 64
// blocks so both sides stay in cache (ATen's permuted copy is several times slower for these
// [L, C] <-> [C, L] transposes). Sequential: callers run it inside their own parallel task.
template <typename scalar_t>
void blocked_transpose(const scalar_t* source, int64_t source_stride, scalar_t* destination,
                       int64_t destination_stride, int64_t rows, int64_t cols) {
#if REPRO_AVX512_TRANSPOSE
  if constexpr (std::is_same_v<scalar_t, float>) {
    // The same CPU (and OS state) check that target_clones' resolvers make.
    static const bool has_avx512 = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
    if (has_avx512) {
      transpose_avx512(source, source_stride, destination, destination_stride, rows, cols);
      return;
    }
  }
#endif
  constexpr int64_t kRowBlock = 64;
  constexpr int64_t kColBlock = 16;
  for (int64_t j_begin = 0; j_begin < cols; j_begin += kColBlock) {
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
}

// --- Work split --------------------------------------------------------------------------
//
// Every op runs ONE parallel region whose tasks are whole images (or, with fewer images than
// threads, a few position ranges of each image), taken one at a time by whichever thread is
// free (run_tasks): a task gathers, multiplies and scatters its positions tile by tile on one
// thread. Compared with a parallel region per pass and image,
// this keeps each tile's columns in that core's L2 cache between the gather and the GEMMs,
// and leaves one fork/join per call instead of several per image, which matters on a loaded
// machine, where every join waits for the slowest thread.

struct WorkSplit {
  int64_t chunks;     // position ranges per image
  int64_t items;      // batch * chunks tasks
  int64_t positions;  // per image

  int64_t image(int64_t item) const { return item / chunks; }
  int64_t begin(int64_t item) const { return (item % chunks) * positions / chunks; }
  int64_t end(int64_t item) const { return (item % chunks + 1) * positions / chunks; }
};

int64_t gcd(int64_t a, int64_t b) { return b == 0 ? a : gcd(b, a % b); }

WorkSplit split_work(int64_t batch, int64_t positions) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  // Split images only while the batch is short (e.g. 1 image on 2 threads, 3 on 2): then the
  // tasks come in a multiple of the thread count. With many images the imbalance is small.
  int64_t chunks = batch >= 4 * threads ? 1 : threads / gcd(batch, threads);
  chunks = std::max<int64_t>(1, std::min(chunks, positions));
  return {chunks, batch * chunks, positions};
}

// Positions per tile: at most 256 Ki column elements (1 MiB of float32), so that a tile of
// columns stays in L2 between its gather and its GEMMs while the GEMMs keep enough columns
// to run at full speed. Measured (one thread, fwd+bwd ratio to F.conv2d, interleaved): tiles
// of 256 KiB / 512 KiB / 1 MiB gave 1.52 / 1.41 / 1.24-1.32 at 256 channels and no difference
// beyond the noise (+-0.15) at 64 channels; one GEMM per image was slower than tiles.
int64_t tile_positions(int64_t width, int64_t positions) {
  const int64_t tile = std::clamp<int64_t>((256 * 1024) / std::max<int64_t>(width, 1), 16, 512);
  return std::min(tile, positions);
}

// Calls body(begin, end) on consecutive tiles covering [first, last), as few as hold at most
// `tile` positions each and of equal lengths (to one position): no short last tile to run a
// GEMM of a few columns.
template <typename Body>
void for_each_tile(int64_t first, int64_t last, int64_t tile, const Body& body) {
  const int64_t count = (last - first + tile - 1) / tile;
  for (int64_t t = 0; t < count; ++t) {
    body(first + t * (last - first) / count, first + (t + 1) * (last - first) / count);
  }
}

// The image `image` of `input` channels-last ([H*W, C]): a pointer into `input` itself when
// it is stored channels-last, else transposed once into `scratch` (reused while the task's
// items stay on the same image).
template <typename scalar_t>
const scalar_t* image_channels_last(const at::Tensor& input, bool input_is_channels_last,
                                    int64_t image, at::Tensor& scratch, int64_t& cached) {
  const int64_t channels = input.size(1);
  const int64_t plane = input.size(2) * input.size(3);
  const scalar_t* source = input.const_data_ptr<scalar_t>() + image * channels * plane;
  if (input_is_channels_last) return source;
  if (cached != image) {
    if (!scratch.defined()) scratch = at::empty({plane * channels}, input.options());
    blocked_transpose(source, plane, scratch.data_ptr<scalar_t>(), channels, channels, plane);
    cached = image;
  }
  return scratch.const_data_ptr<scalar_t>();
}

bool is_channels_last(const at::Tensor& input) {
  return input.is_contiguous(at::MemoryFormat::ChannelsLast) && !input.is_contiguous();
}

// at::parallel_for's worker threads start with the default dispatch state, autograd
// included: the ATen calls of a task (GEMMs on views of the op's arguments) must skip it, as
// the op's own thread does.
using BelowAutograd = at::AutoDispatchBelowADInplaceOrView;

// Runs worker(take) once on each intra-op thread; take() hands out the tasks 0 .. items - 1,
// the next one to whichever thread asks first, and -1 when none is left. On a shared machine
// the OS preempts threads for milliseconds: with a static split the call then waits for the
// preempted thread's whole share, with tasks taken one at a time only for the task it holds.
// Nothing a task computes depends on which thread runs it, so the results do not either.
template <typename Worker>
void run_tasks(int64_t items, const Worker& worker) {
  std::atomic<int64_t> next{0};
  auto take = [&next, items]() -> int64_t {
    const int64_t item = next.fetch_add(1, std::memory_order_relaxed);
    return item < items ? item : -1;
  };
  const int64_t threads = std::min<int64_t>(items, std::max<int64_t>(1, at::get_num_threads()));
  // One index per thread; run inline (one call, all tasks) inside another parallel region.
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    const BelowAutograd below_autograd;
    worker(take);
  });
}

// A [rows, cols] matrix at `data` with row stride `stride`, as a tensor (no copy).
template <typename scalar_t>
at::Tensor matrix(scalar_t* data, int64_t rows, int64_t cols, int64_t stride,
                  const at::TensorOptions& options) {
  return at::from_blob(data, {rows, cols}, {stride, 1}, options);
}

// --- Ops -----------------------------------------------------------------------------------

void check_cpu_floating(const at::Tensor& input) {
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
              "the CPU sampling ops support float32 and float64, got ", input.scalar_type());
}

// The input as the kernels read it: NCHW-contiguous, or channels-last (read in place).
at::Tensor readable_input(const at::Tensor& input) {
  return is_channels_last(input) ? input : input.contiguous();
}

// Weight [O, C/groups, kh, kw] as [groups, O/groups, K * C/groups] in the column order.
at::Tensor weight_as_matrix(const at::Tensor& weight, int64_t groups) {
  const int64_t out_per_group = weight.size(0) / groups;
  return weight.permute({0, 2, 3, 1}).contiguous().view({groups, out_per_group, -1});
}

// The forward of both ops: each task gathers its tiles' columns (`width` = K * C/groups
// per position and group) and hands each tile to `consume(image, begin, end, columns)`: the
// GEMMs for the convolution, a transpose into the output for point sampling.
template <typename scalar_t, typename Consume>
void forward_passes(const at::Tensor& input, const SamplingGeometry& g, int64_t groups,
                    const at::Tensor& offset, const at::Tensor& mask, int64_t width,
                    const Consume& consume) {
  const bool input_cl = is_channels_last(input);
  const int64_t tile = tile_positions(groups * width, g.positions());
  const WorkSplit split = split_work(input.size(0), g.positions());
  const std::vector<ChannelRun> runs = channel_runs(g, groups);
  run_tasks(split.items, [&](const auto& take) {
    at::Tensor image_scratch;
    int64_t cached = -1;
    at::Tensor columns = at::empty({groups * tile * width}, input.options());
    scalar_t* columns_data = columns.data_ptr<scalar_t>();
    for (int64_t item = take(); item >= 0; item = take()) {
      const int64_t b = split.image(item);
      const scalar_t* image =
          image_channels_last<scalar_t>(input, input_cl, b, image_scratch, cached);
      const ImageReads<scalar_t> reads{g, groups, runs, offset[b].data_ptr<scalar_t>(),
                                       mask.defined() ? mask[b].data_ptr<scalar_t>() : nullptr};
      for_each_tile(split.begin(item), split.end(item), tile, [&](int64_t begin, int64_t end) {
        read_positions<false>(reads, image, {columns_data, nullptr, nullptr, nullptr, nullptr},
                              begin, end);
        consume(b, begin, end, columns_data);
      });
    }
  });
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
  const at::Tensor input = readable_input(input_);
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor mask = mask_.has_value() ? mask_->contiguous() : at::Tensor();
  const int64_t batch = input.size(0);
  const int64_t out_channels = weight_.size(0);
  const int64_t positions = g.positions();
  at::Tensor output = at::empty({batch, out_channels, g.out_h, g.out_w}, input.options());
  if (batch == 0) return output;
  at::Tensor bias;
  if (bias_.has_value()) {
    check_same_kind(input_, *bias_, "bias");
    TORCH_CHECK(bias_->numel() == out_channels, "bias must have ", out_channels, " elements");
    bias = bias_->contiguous().view({out_channels, 1});
  }

  const int64_t out_per_group = out_channels / groups;
  const at::Tensor kernel = weight_as_matrix(weight_, groups);
  const int64_t width = kernel.size(2);  // K * C/groups
  const at::TensorOptions options = input.options();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dynamic_sampling_conv2d_cpu", [&] {
    // out[o, l] = sum_j kernel[o, j] * columns[l, j] over the tile's positions.
    auto multiply = [&](int64_t b, int64_t begin, int64_t end, scalar_t* columns) {
      const int64_t length = end - begin;
      scalar_t* out_b = output.data_ptr<scalar_t>() + b * out_channels * positions;
      for (int64_t gr = 0; gr < groups; ++gr) {
        at::Tensor out = matrix(out_b + (gr * out_per_group) * positions + begin, out_per_group,
                                length, positions, options);
        const at::Tensor cols = matrix(columns + gr * length * width, length, width, width, options);
        if (bias.defined()) {
          at::addmm_out(out, bias.narrow(0, gr * out_per_group, out_per_group), kernel[gr],
                        cols.t());
        } else {
          at::mm_out(out, kernel[gr], cols.t());
        }
      }
    };
    forward_passes<scalar_t>(input, g, groups, offset, mask, width, multiply);
  });
  return output;
}

// The backward of both ops: for each task's tiles, fill `grad_columns` (`columns_gradient`:
// a GEMM for the convolution, a transpose for point sampling), then the read pass (offset and
// mask gradients, and the columns if `columns_done` wants them) and the scatter into the
// input gradient. `columns_done(item, image, begin, end, columns, first)` consumes the
// columns (the weight gradient's GEMM into the task's partial; `first`: the task's first tile). Returns grad_input in input's memory format, or `nothing`.
template <typename scalar_t, typename ColumnsGradient, typename ColumnsDone>
at::Tensor backward_passes(const at::Tensor& input, const SamplingGeometry& g, int64_t groups,
                           const at::Tensor& offset, const at::Tensor& mask, bool need_input,
                           bool need_offset, bool need_columns, const at::Tensor& grad_offset,
                           const at::Tensor& grad_mask, int64_t width,
                           const ColumnsGradient& columns_gradient,
                           const ColumnsDone& columns_done, const at::Tensor& nothing) {
  const int64_t batch = input.size(0);
  const int64_t positions = g.positions();
  const int64_t plane = g.height * g.width;
  const bool input_cl = is_channels_last(input);
  const bool has_mask = mask.defined();
  const bool need_grad_columns = need_input || need_offset;
  const int64_t tile = tile_positions(groups * width, positions);
  const WorkSplit split = split_work(batch, positions);
  const std::vector<ChannelRun> runs = channel_runs(g, groups);
  // grad_input, channels-last: written in place when input is channels-last and images are
  // not split; else one buffer per task, transposed (and summed over a split image's tasks).
  at::Tensor grad_input =
      need_input ? at::empty_like(input, input_cl ? at::MemoryFormat::ChannelsLast
                                                  : at::MemoryFormat::Contiguous)
                 : nothing;
  const bool in_place = need_input && input_cl && split.chunks == 1;
  at::Tensor task_grads =
      need_input && !in_place && split.chunks > 1
          ? at::zeros({split.items, plane * g.channels}, input.options())
          : nothing;
  run_tasks(split.items, [&](const auto& take) {
    at::Tensor image_scratch;
    int64_t cached = -1;
    const int64_t tile_size = groups * tile * width;
    at::Tensor columns = need_columns ? at::empty({tile_size}, input.options()) : nothing;
    at::Tensor grad_columns =
        need_grad_columns ? at::empty({tile_size}, input.options()) : nothing;
    at::Tensor grad_scratch = need_input && !in_place && split.chunks == 1
                                  ? at::empty({plane * g.channels}, input.options())
                                  : nothing;
    for (int64_t item = take(); item >= 0; item = take()) {
      const int64_t b = split.image(item);
      const scalar_t* image =
          image_channels_last<scalar_t>(input, input_cl, b, image_scratch, cached);
      const ImageReads<scalar_t> reads{g, groups, runs, offset[b].data_ptr<scalar_t>(),
                                       has_mask ? mask[b].data_ptr<scalar_t>() : nullptr};
      scalar_t* grad_image = nullptr;
      if (need_input) {
        grad_image = in_place           ? grad_input[b].data_ptr<scalar_t>()
                     : split.chunks > 1 ? task_grads[item].data_ptr<scalar_t>()
                                        : grad_scratch.data_ptr<scalar_t>();
        if (split.chunks == 1) zero_run(grad_image, plane * g.channels);
      }
      for_each_tile(split.begin(item), split.end(item), tile, [&](int64_t begin, int64_t end) {
        if (need_grad_columns) columns_gradient(b, begin, end, grad_columns.data_ptr<scalar_t>());
        read_positions<true>(reads, image,
                       {need_columns ? columns.data_ptr<scalar_t>() : nullptr,
                        need_grad_columns ? grad_columns.data_ptr<scalar_t>() : nullptr,
                        need_offset ? grad_offset[b].data_ptr<scalar_t>() : nullptr,
                        has_mask && need_offset ? grad_mask[b].data_ptr<scalar_t>() : nullptr,
                        grad_image},
                       begin, end);
        if (need_columns) {
          columns_done(item, b, begin, end, columns.data_ptr<scalar_t>(),
                       begin == split.begin(item));
        }
      });
      if (need_input && !in_place && split.chunks == 1) {
        blocked_transpose(grad_image, g.channels, grad_input[b].data_ptr<scalar_t>(), plane,
                          plane, g.channels);
      }
    }
  });
  if (task_grads.defined() && task_grads.numel() > 0) {
    // A split image's tasks each scattered into their own buffer: add them in task order.
    const at::Tensor summed =
        task_grads.view({batch, split.chunks, g.height, g.width, g.channels}).sum(1);
    grad_input.copy_(summed.permute({0, 3, 1, 2}));
  }
  return grad_input;
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
  const at::Tensor input = readable_input(input_);
  const at::Tensor offset = offset_.contiguous();
  const at::Tensor grad_output = grad_output_.contiguous();
  const bool has_mask = mask_.has_value();
  const at::Tensor mask = has_mask ? mask_->contiguous() : at::Tensor();
  const int64_t batch = input.size(0);
  const int64_t out_channels = weight_.size(0);
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == batch &&
                  grad_output.size(1) == out_channels && grad_output.size(2) == g.out_h &&
                  grad_output.size(3) == g.out_w,
              "grad_output must be [", batch, ", ", out_channels, ", ", g.out_h, ", ", g.out_w,
              "], got ", grad_output.sizes());
  const int64_t positions = g.positions();
  const int64_t out_per_group = out_channels / groups;

  const at::Tensor nothing = at::empty({0}, input.options());
  // Every position writes its own offset and mask gradients: no zero fill needed.
  at::Tensor grad_offset = need_offset ? at::empty_like(offset) : nothing;
  at::Tensor grad_mask = has_mask && need_offset ? at::empty_like(mask) : nothing;
  if (batch == 0) {
    return {need_input ? at::zeros_like(input_) : nothing, grad_offset,
            need_weight ? at::zeros_like(weight_) : nothing, grad_mask};
  }
  const at::Tensor kernel = weight_as_matrix(weight_, groups);
  const int64_t width = kernel.size(2);
  // One weight-gradient partial per task, written by its first tile (no zero fill) and summed
  // in task order: the same gradient whatever thread ran which task (the tasks themselves
  // depend on the batch and, for short batches, on the thread count: split_work).
  const WorkSplit split = split_work(batch, positions);
  at::Tensor task_grad_kernel =
      need_weight ? at::empty({split.items, groups, out_per_group, width}, input.options())
                  : nothing;
  const at::TensorOptions options = input.options();
  at::Tensor grad_input;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dynamic_sampling_conv2d_backward_cpu", [&] {
    const scalar_t* grad_output_data = grad_output.const_data_ptr<scalar_t>();
    // grad_output rows [gr * O/groups, ...) at positions [begin, end) of image b.
    auto grad_out = [&](int64_t b, int64_t gr, int64_t begin, int64_t end) {
      return matrix(const_cast<scalar_t*>(grad_output_data) +
                        (b * out_channels + gr * out_per_group) * positions + begin,
                    out_per_group, end - begin, positions, options);
    };
    // grad_columns[l, j] = sum_o grad_out[o, l] * kernel[o, j].
    auto columns_gradient = [&](int64_t b, int64_t begin, int64_t end, scalar_t* grad_columns) {
      const int64_t length = end - begin;
      for (int64_t gr = 0; gr < groups; ++gr) {
        at::Tensor out = matrix(grad_columns + gr * length * width, length, width, width, options);
        at::mm_out(out, grad_out(b, gr, begin, end).t(), kernel[gr]);
      }
    };
    // grad_kernel[o, j] (+)= sum_l grad_out[o, l] * columns[l, j].
    auto columns_done = [&](int64_t item, int64_t b, int64_t begin, int64_t end,
                            scalar_t* columns, bool first) {
      const int64_t length = end - begin;
      const at::Tensor partial = task_grad_kernel[item];
      for (int64_t gr = 0; gr < groups; ++gr) {
        const at::Tensor cols =
            matrix(columns + gr * length * width, length, width, width, options);
        at::Tensor out = partial[gr];
        if (first) {
          at::mm_out(out, grad_out(b, gr, begin, end), cols);
        } else {
          out.addmm_(grad_out(b, gr, begin, end), cols);
        }
      }
    };
    grad_input = backward_passes<scalar_t>(input, g, groups, offset, mask, need_input,
                                           need_offset, need_weight, grad_offset, grad_mask,
                                           width, columns_gradient, columns_done, nothing);
  });
  const at::Tensor grad_weight =
      need_weight ? task_grad_kernel.sum(0)
                        .view({out_channels, g.kernel_h, g.kernel_w, -1})
                        .permute({0, 3, 1, 2})
                        .contiguous()
                  : nothing;
  return {grad_input, grad_offset, grad_weight, grad_mask};
}

at::Tensor sample_points_cpu(const at::Tensor& input_, const at::Tensor& offset_,
                             int64_t offset_groups) {
  const SamplingGeometry g = point_geometry(input_, offset_, offset_groups);
  check_cpu_floating(input_);
  const at::Tensor input = readable_input(input_);
  const at::Tensor offset = offset_.contiguous();
  const int64_t batch = input.size(0);
  const int64_t points = g.taps(), positions = g.positions(), channels = g.channels;
  at::Tensor output = at::empty({batch, channels, points, g.height, g.width}, input.options());
  if (batch == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "sample_points_cpu", [&] {
    // A tile [length, P, C], transposed into the [C, P, H*W] output point by point.
    auto transpose = [&](int64_t b, int64_t begin, int64_t end, scalar_t* columns) {
      scalar_t* out_b = output[b].data_ptr<scalar_t>();
      for (int64_t point = 0; point < points; ++point) {
        blocked_transpose(columns + point * channels, points * channels,
                          out_b + point * positions + begin, points * positions, end - begin,
                          channels);
      }
    };
    forward_passes<scalar_t>(input, g, 1, offset, at::Tensor(), points * channels, transpose);
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
  const at::Tensor input = readable_input(input_);
  const at::Tensor offset = offset_.contiguous();
  const int64_t batch = input.size(0);
  TORCH_CHECK(grad_output_.dim() == 5 && grad_output_.size(0) == batch &&
                  grad_output_.size(1) == g.channels && grad_output_.size(2) == g.taps() &&
                  grad_output_.size(3) == g.height && grad_output_.size(4) == g.width,
              "grad_output must be [", batch, ", ", g.channels, ", ", g.taps(), ", ", g.height,
              ", ", g.width, "], got ", grad_output_.sizes());
  const at::Tensor grad_output = grad_output_.contiguous();
  const at::Tensor nothing = at::empty({0}, input.options());
  at::Tensor grad_offset = need_offset ? at::empty_like(offset) : nothing;
  if (batch == 0) return {need_input ? at::zeros_like(input_) : nothing, grad_offset};
  if (!need_input && !need_offset) return {nothing, nothing};
  const int64_t points = g.taps(), positions = g.positions(), channels = g.channels;
  at::Tensor grad_input;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "sample_points_backward_cpu", [&] {
    const scalar_t* grad_output_data = grad_output.const_data_ptr<scalar_t>();
    // grad_columns [length, P, C] <- grad_output[b] [C, P, H*W] at positions [begin, end).
    auto columns_gradient = [&](int64_t b, int64_t begin, int64_t end, scalar_t* grad_columns) {
      const scalar_t* grad_b = grad_output_data + b * channels * points * positions;
      for (int64_t point = 0; point < points; ++point) {
        blocked_transpose(grad_b + point * positions + begin, points * positions,
                          grad_columns + point * channels, points * channels, channels,
                          end - begin);
      }
    };
    auto no_columns = [](int64_t, int64_t, int64_t, int64_t, scalar_t*, bool) {};
    grad_input = backward_passes<scalar_t>(input, g, 1, offset, at::Tensor(), need_input,
                                           need_offset, false, grad_offset, nothing,
                                           points * channels, columns_gradient, no_columns,
                                           nothing);
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
