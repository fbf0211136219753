#pragma once
/// Index math of the CUDA backend: upload layout, launch geometry and workspace sizing.
/// Plain host/device functions, tested on the host.

#include <cstddef>

#include "qcodec/config.hpp"
#include "qcodec/core/matrix.hpp"

/// Unrolls the next loop in device code; nothing in the host pass of QCODEC_HD functions.
#if defined(__CUDA_ARCH__)
#  define QCODEC_CUDA_UNROLL _Pragma("unroll")
#else
#  define QCODEC_CUDA_UNROLL
#endif

namespace qcodec::inline QCODEC_ABI::cuda {

/// Bytes of packed codes one thread loads at once (one 16-byte vector load).
inline constexpr index_t chunk_bytes = 16;

/// Columns decoded from one chunk: 16 INT8 codes or 32 INT4 codes.
template <int Bits>
inline constexpr index_t chunk_cols = chunk_bytes * 8 / Bits;

QCODEC_HD constexpr index_t ceil_div(index_t n, index_t d) { return (n + d - 1) / d; }
QCODEC_HD constexpr index_t round_up(index_t n, index_t m) { return ceil_div(n, m) * m; }

/// Row pitch of uploaded codes: the row's bytes rounded up to whole chunks, so every chunk
/// load is 16-byte aligned and in bounds; columns past `cols` in the last chunk are ignored.
QCODEC_HD constexpr index_t padded_row_bytes(index_t row_bytes) { return round_up(row_bytes, chunk_bytes); }

/// Largest batch served by the fused decode-GEMV; larger batches decode tiles and call cuBLAS.
/// The crossover measured on an H100 (bench/history/cuda-first-runs.md, "GEMV/GEMM crossover
/// at batch 8"; the current table: bench/RESULTS.md, "CUDA backend"): each warp re-reads x for
/// its row, so the GEMV's time grows with the batch while the decode plus cuBLAS stays flat.
inline constexpr index_t max_gemv_batch = 8;

/// Threads of a GEMV block: one warp per weight row.
inline constexpr int gemv_threads = 256;
inline constexpr int gemv_rows_per_block = gemv_threads / 32;

/// Blocks of the GEMV launch for `rows` weight rows.
constexpr index_t gemv_blocks(index_t rows) { return ceil_div(rows, gemv_rows_per_block); }

/// Compiled GEMV batch width serving `batch` (1, 4 or 8 accumulators per thread); 0 when
/// the batch goes to the GEMM path.
constexpr int gemv_batch_bucket(index_t batch) {
  if (batch < 1 || batch > max_gemv_batch) return 0;
  return batch == 1 ? 1 : batch <= 4 ? 4 : 8;
}

/// Threads of the element-wise kernels (decode, bias, ortho scatter).
inline constexpr int elementwise_threads = 256;

/// Blocks of a grid-stride launch over `items` work items (capped: each thread loops).
constexpr index_t elementwise_blocks(index_t items) {
  const index_t blocks = ceil_div(items, elementwise_threads);
  return blocks < 1 ? 1 : blocks > (index_t{1} << 20) ? (index_t{1} << 20) : blocks;
}

/// Bytes handed to cuBLAS as its workspace (cublasSetWorkspace), so it never allocates.
inline constexpr std::size_t cublas_workspace_bytes = std::size_t{4} << 20;

/// Alignment of the decode tile inside the workspace (cuBLAS prefers 256-byte operands).
inline constexpr std::size_t workspace_alignment = 256;

/// Row granularity of GEMM tiles: keeps each tile's output offset 128-byte aligned for FP16.
inline constexpr index_t gemm_tile_row_multiple = 64;

/// Bytes of one workspace region of `bytes`, rounded up to workspace_alignment.
constexpr std::size_t aligned_region(std::size_t bytes) {
  return (bytes + workspace_alignment - 1) / workspace_alignment * workspace_alignment;
}

/// Workspace bytes of one GEMM tile of `tile_rows` weight rows, after cuBLAS's share: the
/// FP32 results of `fp32_batch` activation rows (0 when cuBLAS writes y itself), then the
/// decoded rows of `element_bytes` each.
constexpr std::size_t gemm_tile_bytes(index_t tile_rows, index_t cols, std::size_t element_bytes,
                                      index_t fp32_batch) {
  return aligned_region(static_cast<std::size_t>(tile_rows * fp32_batch) * sizeof(float)) +
         aligned_region(static_cast<std::size_t>(tile_rows * cols) * element_bytes);
}

/// Weight rows per GEMM tile when `tile_bytes` hold the tile (see gemm_tile_bytes): all rows
/// when they fit, else the largest multiple of gemm_tile_row_multiple that fits; 0 when none.
constexpr index_t gemm_tile_rows(index_t rows, index_t cols, std::size_t element_bytes, index_t fp32_batch,
                                 std::size_t tile_bytes) {
  if (gemm_tile_bytes(rows, cols, element_bytes, fp32_batch) <= tile_bytes) return rows;
  const std::size_t row_bytes = static_cast<std::size_t>(cols) * element_bytes +
                                static_cast<std::size_t>(fp32_batch) * sizeof(float);
  index_t tile = static_cast<index_t>(tile_bytes / row_bytes) / gemm_tile_row_multiple * gemm_tile_row_multiple;
  while (tile > 0 && gemm_tile_bytes(tile, cols, element_bytes, fp32_batch) > tile_bytes)
    tile -= gemm_tile_row_multiple;
  return tile;
}

/// Workspace bytes of the GEMM path with tiles of `tile_rows` rows.
constexpr std::size_t gemm_workspace_bytes(index_t tile_rows, index_t cols, std::size_t element_bytes,
                                           index_t fp32_batch) {
  return cublas_workspace_bytes + gemm_tile_bytes(tile_rows, cols, element_bytes, fp32_batch);
}

}  // namespace qcodec::inline QCODEC_ABI::cuda
