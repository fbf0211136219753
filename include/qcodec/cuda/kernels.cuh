#pragma once
/// Kernels over any device_codec view: decode to FP32/FP16/BF16, the fused decode-GEMV with
/// the ortho stream, and the GEMM tiles' bias epilogue, each with a
/// checked host launcher that enqueues on the caller's stream and never synchronises.
///
/// Shapes: x is batch x cols, y is batch x rows (row-major, like the CPU op), W is rows x cols.

#include <cstdint>
#include <cstring>

#include <cuda_runtime.h>

#include "qcodec/config.hpp"
#include "qcodec/cuda/device_codec.cuh"
#include "qcodec/cuda/element.cuh"
#include "qcodec/cuda/error.cuh"
#include "qcodec/cuda/launch_geometry.cuh"

namespace qcodec::inline QCODEC_ABI::cuda {
namespace kernels {

/// out[j] = p[j] as float, j < N: 16-byte vector loads when `p` is 16-byte aligned (rows of x
/// whose byte length is a multiple of 16), else element loads.
template <class T, int N>
__device__ void load_floats(const T* p, float (&out)[N]) {
  constexpr int per_vector = 16 / static_cast<int>(sizeof(T));
  static_assert(N % per_vector == 0, "a chunk is a whole number of 16-byte vectors");
  if (reinterpret_cast<std::uintptr_t>(p) % 16 == 0) {
#pragma unroll
    for (int v = 0; v < N / per_vector; ++v) {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p) + v);
      T items[per_vector];
      std::memcpy(items, &raw, sizeof raw);
#pragma unroll
      for (int i = 0; i < per_vector; ++i) out[v * per_vector + i] = element<T>::to_float(items[i]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = element<T>::to_float(p[j]);
  }
}

/// p[j] = T(values[j]) for j < min(N, valid): 16-byte vector stores when the whole chunk is
/// valid and `p` is 16-byte aligned (leading dimensions whose byte length is a multiple of
/// 16), else element stores. Neighbouring threads store neighbouring chunks.
template <class T, int N>
__device__ void store_floats(const float (&values)[N], index_t valid, T* p) {
  constexpr int per_vector = 16 / static_cast<int>(sizeof(T));
  static_assert(N % per_vector == 0, "a chunk is a whole number of 16-byte vectors");
  if (valid >= N && reinterpret_cast<std::uintptr_t>(p) % 16 == 0) {
#pragma unroll
    for (int v = 0; v < N / per_vector; ++v) {
      T items[per_vector];
#pragma unroll
      for (int i = 0; i < per_vector; ++i) items[i] = element<T>::from_float(values[v * per_vector + i]);
      uint4 raw;
      std::memcpy(&raw, items, sizeof raw);
      reinterpret_cast<uint4*>(p)[v] = raw;
    }
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j)
      if (j < valid) p[j] = element<T>::from_float(values[j]);
  }
}

/// out[(r - first_row) * ld + c] = B[r, c] + alpha * O[r, c] for rows
/// [first_row, first_row + row_count), summed in FP32 and rounded to T once.
template <class View, class T>
__global__ void __launch_bounds__(elementwise_threads)
decode(View w, csr_view ortho, float alpha, index_t first_row, index_t row_count, T* out, index_t ld) {
  constexpr index_t chunk_cols = View::chunk_cols;
  const index_t chunks = w.chunks_per_row();
  for (index_t item = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; item < row_count * chunks;
       item += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = item / chunks, chunk = item % chunks;
    float values[chunk_cols];
    decode_chunk(w, first_row + r, chunk, values);
    if (alpha != 0.0f) add_ortho(ortho, alpha, first_row + r, chunk * chunk_cols, values);
    store_floats(values, w.cols - chunk * chunk_cols, out + r * ld + chunk * chunk_cols);
  }
}

/// y[b, r] = sum_c x[b, c] * (W[r, c] + alpha * O[r, c]) + bias[r] for b < batch <= Batch.
/// One warp per weight row: each lane decodes 16-byte chunks of codes straight into FP32
/// dot products (no decoded weight is ever stored), lanes then share the row's ortho
/// nonzeros and the warp reduces by shuffles. FP32 accumulation.
template <int Batch, class View, class T>
__global__ void __launch_bounds__(gemv_threads)
fused_gemv(View w, csr_view ortho, float alpha, const T* __restrict__ x, index_t batch,
           const float* __restrict__ bias, T* __restrict__ y) {
  constexpr index_t chunk_cols = View::chunk_cols;
  const int lane = threadIdx.x % 32;
  const index_t row = blockIdx.x * static_cast<index_t>(gemv_rows_per_block) + threadIdx.x / 32;
  if (row >= w.rows) return;
  const index_t cols = w.cols;
  float acc[Batch];
#pragma unroll
  for (int b = 0; b < Batch; ++b) acc[b] = 0.0f;

  const index_t chunks = w.chunks_per_row();
  for (index_t chunk = lane; chunk < chunks; chunk += 32) {
    const auto codes = w.load(row, chunk);
    const index_t first = chunk * chunk_cols;
    const index_t valid = cols - first;
    // Batch 1 on layouts that ask for it: decode one x vector's worth of columns at a time
    // (8 for FP16) instead of the whole chunk before the dot product.
    if constexpr (Batch == 1 && View::gemv_decodes_in_pieces) {
      if (valid >= chunk_cols) {
        constexpr int piece = 16 / static_cast<int>(sizeof(T));
#pragma unroll
        for (int p = 0; p < chunk_cols; p += piece) {
          float xs[piece];
          load_floats(x + first + p, xs);
#pragma unroll
          for (int i = 0; i < piece; ++i) acc[0] += codes[p + i] * xs[i];
        }
        continue;
      }
    }
    float values[chunk_cols];
#pragma unroll
    for (int j = 0; j < chunk_cols; ++j) values[j] = codes[j];
#pragma unroll
    for (int b = 0; b < Batch; ++b) {
      if (b >= batch) break;
      const T* xb = x + b * cols + first;
      float sum = 0.0f;
      if (valid >= chunk_cols) {
        float xs[chunk_cols];
        load_floats(xb, xs);
#pragma unroll
        for (int j = 0; j < chunk_cols; ++j) sum += values[j] * xs[j];
      } else {
#pragma unroll
        for (int j = 0; j < chunk_cols; ++j)
          if (j < valid) sum += values[j] * element<T>::to_float(xb[j]);
      }
      acc[b] += sum;
    }
  }

  if (!ortho.empty() && alpha != 0.0f) {
    for (std::uint32_t k = ortho.row_ptr[row] + lane; k < ortho.row_ptr[row + 1]; k += 32) {
      const float o = alpha * ortho.value(k);
      const index_t c = ortho.col_index[k];
#pragma unroll
      for (int b = 0; b < Batch; ++b)
        if (b < batch) acc[b] += o * element<T>::to_float(x[b * cols + c]);
    }
  }

#pragma unroll
  for (int b = 0; b < Batch; ++b)
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], offset);

  if (lane == 0) {
    const float add = bias != nullptr ? bias[row] : 0.0f;
#pragma unroll
    for (int b = 0; b < Batch; ++b)
      if (b < batch) y[b * w.rows + row] = element<T>::from_float(acc[b] + add);
  }
}

/// y[b * ld + r] = results[b * rows + r] + bias[r] for r < rows, b < batch, rounded to T once:
/// the epilogue of a GEMM tile whose FP32 results cuBLAS wrote to the workspace.
template <class T>
__global__ void __launch_bounds__(elementwise_threads)
add_bias(const float* results, const float* bias, index_t rows, index_t batch, T* y, index_t ld) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < rows * batch;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t b = i / rows, r = i % rows;
    y[b * ld + r] = element<T>::from_float(results[i] + bias[r]);
  }
}

}  // namespace kernels

/// Enqueues the decode of rows [first_row, first_row + row_count) of B + alpha O into `out`
/// (leading dimension `ld` >= w.cols elements) on `stream`; alpha = 1 is the codec's decode.
template <class View, class T>
void decode(const View& w, csr_view ortho, float alpha, index_t first_row, index_t row_count, T* out, index_t ld,
            cudaStream_t stream) {
  if (first_row < 0 || row_count < 0 || first_row + row_count > w.rows || ld < w.cols)
    qcodec::detail::fail("cuda::decode: rows [", first_row, ", ", first_row + row_count, ") of ", w.rows,
                         " with ld ", ld, " for ", w.cols, " columns");
  if (row_count == 0) return;
  kernels::decode<View, T><<<static_cast<unsigned>(elementwise_blocks(row_count * w.chunks_per_row())),
                             elementwise_threads, 0, stream>>>(w, ortho, alpha, first_row, row_count, out, ld);
  check_launch("decode kernel");
}

/// Enqueues y = x (W + alpha O)^T + bias with the fused decode-GEMV (1 <= batch <= max_gemv_batch).
template <class View, class T>
void fused_gemv(const View& w, csr_view ortho, float alpha, const T* x, index_t batch, const float* bias, T* y,
                cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(gemv_blocks(w.rows));
  switch (gemv_batch_bucket(batch)) {
    case 1: kernels::fused_gemv<1, View, T><<<blocks, gemv_threads, 0, stream>>>(w, ortho, alpha, x, batch, bias, y); break;
    case 4: kernels::fused_gemv<4, View, T><<<blocks, gemv_threads, 0, stream>>>(w, ortho, alpha, x, batch, bias, y); break;
    case 8: kernels::fused_gemv<8, View, T><<<blocks, gemv_threads, 0, stream>>>(w, ortho, alpha, x, batch, bias, y); break;
    default: qcodec::detail::fail("cuda::fused_gemv: batch ", batch, " outside 1..", max_gemv_batch);
  }
  check_launch("fused_gemv kernel");
}

/// Enqueues y[b * ld + r] = results[b * rows + r] + bias[r] (rows x batch FP32 results,
/// column-major as cuBLAS wrote them), rounded to T once.
template <class T>
void add_bias(const float* results, const float* bias, index_t rows, index_t batch, T* y, index_t ld,
              cudaStream_t stream) {
  kernels::add_bias<T><<<static_cast<unsigned>(elementwise_blocks(rows * batch)), elementwise_threads, 0, stream>>>(
      results, bias, rows, batch, y, ld);
  check_launch("add_bias kernel");
}

}  // namespace qcodec::inline QCODEC_ABI::cuda
