#pragma once
/// Device dual-stream linear op: y = x (B + alpha O)^T + bias on a CUDA stream.
///
/// Batches of 1..max_gemv_batch (8) run the fused decode-GEMV (codes read once, no decoded
/// weight stored).
/// Larger batches decode row tiles of W (+ alpha O) into the caller's workspace and call
/// cublasGemmEx with FP16/BF16 (or FP32) operands and FP32 accumulation. forward() enqueues
/// on the given stream: it neither synchronises nor allocates; the workspace (device memory
/// plus the cuBLAS handle) is sized and reused by the caller, one per concurrent stream.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "qcodec/codecs/codec.hpp"
#include "qcodec/config.hpp"
#include "qcodec/cuda/buffer.cuh"
#include "qcodec/cuda/device_codec.cuh"
#include "qcodec/cuda/element.cuh"
#include "qcodec/cuda/error.cuh"
#include "qcodec/cuda/kernels.cuh"
#include "qcodec/cuda/launch_geometry.cuh"

namespace qcodec::inline QCODEC_ABI::cuda {

/// Scratch of the device op: device memory for decoded tiles and cuBLAS, and a cuBLAS
/// handle. Not shared between streams running at the same time.
class workspace {
 public:
  /// Allocates `bytes` of device memory (0 is enough for batches <= max_gemv_batch) and a
  /// cuBLAS handle.
  explicit workspace(std::size_t bytes = 0) : memory_(bytes) {
    check(cublasCreate(&handle_), "cublasCreate");
  }
  workspace(workspace&& other) noexcept
      : memory_(std::move(other.memory_)), handle_(std::exchange(other.handle_, nullptr)) {}
  workspace& operator=(workspace&& other) noexcept {
    if (this != &other) {
      if (handle_ != nullptr) (void)cublasDestroy(handle_);
      memory_ = std::move(other.memory_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  workspace(const workspace&) = delete;
  workspace& operator=(const workspace&) = delete;
  ~workspace() {
    if (handle_ != nullptr) (void)cublasDestroy(handle_);  // cannot report from a destructor
  }

  /// Grows the device memory to at least `bytes` (reallocates; contents are not kept).
  void reserve(std::size_t bytes) {
    if (bytes > memory_.size()) memory_ = device_buffer<std::byte>(bytes);
  }
  std::size_t bytes() const { return memory_.size(); }
  std::byte* data() { return memory_.data(); }
  cublasHandle_t cublas() const { return handle_; }

 private:
  device_buffer<std::byte> memory_;
  cublasHandle_t handle_ = nullptr;
};

/// The device copy of one dual-stream weight, mirroring the CPU qcodec::dual_stream_linear:
/// the dense stream B (any codec with a device_codec layout), the ortho stream O of an
/// outlier_split codec, an FP32 bias and the ortho weight alpha.
template <codec Codec>
class dual_stream_linear {
 public:
  using codec_type = Codec;
  using layout = device_codec<Codec>;

  /// Uploads `weight` (validated; for an outlier_split codec its base and ortho streams) and
  /// `bias` (empty, or out_features values); synchronous, before any forward().
  explicit dual_stream_linear(const encoded_matrix<Codec>& weight, std::span<const float> bias = {},
                              std::string_view name = "weight")
      : weights_(layout::prepare(weight.storage(), name)) {
    if (!bias.empty() && bias.size() != static_cast<std::size_t>(weight.rows()))
      qcodec::detail::fail("tensor '", name, "': bias holds ", bias.size(), " values, expected ", weight.rows());
    for (std::size_t r = 0; r < bias.size(); ++r)
      if (!std::isfinite(bias[r])) qcodec::detail::fail("tensor '", name, "': bias ", r, " is not finite");
    bias_ = device_buffer<float>(bias);
  }

  index_t in_features() const { return cols(); }
  index_t out_features() const { return rows(); }
  float alpha() const { return alpha_; }
  /// Weight of the ortho stream: 1 = full fidelity, 0 = the base alone.
  void set_alpha(float alpha) {
    if (!std::isfinite(alpha)) qcodec::detail::fail("dual_stream_linear: alpha ", alpha, " is not finite");
    alpha_ = alpha;
  }
  /// Device bytes of the weight: codes (with row padding), scales, ortho stream.
  std::size_t device_bytes() const { return weights_.bytes(); }
  /// True when the weight carries an ortho stream with at least one entry.
  bool has_ortho() const { return !weights_.ortho_view().empty(); }

  /// Workspace bytes forward() needs for `batch` rows of element type T: 0 for the GEMV
  /// path, else cuBLAS's workspace plus a decode tile of up to `max_tile_rows` weight rows
  /// (the whole weight in one tile by default: fastest, largest) and, with a bias, the
  /// tile's FP32 results.
  template <class T>
  std::size_t workspace_bytes(index_t batch, index_t max_tile_rows = 0) const {
    if (batch <= max_gemv_batch) return 0;
    const index_t tile_rows = max_tile_rows > 0 ? std::min(max_tile_rows, rows()) : rows();
    return gemm_workspace_bytes(tile_rows, cols(), sizeof(T), bias_.empty() ? 0 : batch);
  }

  /// Enqueues y = x (B + alpha O)^T + bias on `stream`: x is batch x cols, y batch x rows,
  /// both row-major device arrays of T (float, __half or __nv_bfloat16). No synchronisation,
  /// no allocation; `ws` must hold workspace_bytes<T>(batch, n) for some tile size n >= 64.
  template <class T>
  void forward(const T* x, index_t batch, T* y, workspace& ws, cudaStream_t stream) const {
    if (batch < 1) qcodec::detail::fail("dual_stream_linear::forward: batch ", batch, " (must be >= 1)");
    const auto w = weights_.base_view();
    const csr_view ortho = alpha_ != 0.0f ? weights_.ortho_view() : csr_view{};
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    if (batch <= max_gemv_batch) {
      fused_gemv(w, ortho, alpha_, x, batch, bias, y, stream);
      return;
    }
    if (ws.bytes() < cublas_workspace_bytes)
      qcodec::detail::fail("dual_stream_linear::forward: workspace of ", ws.bytes(), " bytes, batch ", batch,
                           " needs at least ", workspace_bytes<T>(batch, gemm_tile_row_multiple));
    // With a bias, cuBLAS writes FP32 results to the workspace and add_bias rounds each
    // output to T once, as the fused GEMV does; without one, cuBLAS writes y itself.
    const index_t fp32_batch = bias != nullptr ? batch : 0;
    const index_t tile_rows =
        gemm_tile_rows(rows(), cols(), sizeof(T), fp32_batch, ws.bytes() - cublas_workspace_bytes);
    if (tile_rows == 0)
      qcodec::detail::fail("dual_stream_linear::forward: workspace of ", ws.bytes(), " bytes, batch ", batch,
                           " needs at least ", workspace_bytes<T>(batch, gemm_tile_row_multiple));
    std::byte* const tiles = ws.data() + cublas_workspace_bytes;
    float* const results = reinterpret_cast<float*>(tiles);
    T* const tile = reinterpret_cast<T*>(tiles + aligned_region(static_cast<std::size_t>(tile_rows * fp32_batch) *
                                                                sizeof(float)));

    const cublasHandle_t handle = ws.cublas();
    check(cublasSetStream(handle, stream), "cublasSetStream");
    // cublasSetStream resets the workspace to cuBLAS's own pool: hand it ours again.
    check(cublasSetWorkspace(handle, ws.data(), cublas_workspace_bytes), "cublasSetWorkspace");
    const float one = 1.0f, zero = 0.0f;
    constexpr cudaDataType_t type = element<T>::data_type;
    for (index_t first = 0; first < rows(); first += tile_rows) {
      const index_t count = std::min(tile_rows, rows() - first);
      cuda::decode(w, ortho, alpha_, first, count, tile, cols(), stream);
      // Column-major view: Y^T[first.., :] (count x batch, ld rows) = tile (count x cols) * X^T (cols x batch);
      // with a bias the product goes to `results` (count x batch, ld count) first.
      void* const out = bias != nullptr ? static_cast<void*>(results) : static_cast<void*>(y + first);
      check(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(count), static_cast<int>(batch),
                         static_cast<int>(cols()), &one, tile, type, static_cast<int>(cols()), x, type,
                         static_cast<int>(cols()), &zero, out, bias != nullptr ? CUDA_R_32F : type,
                         static_cast<int>(bias != nullptr ? count : rows()), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
      if (bias != nullptr) add_bias(results, bias + first, count, batch, y + first, rows(), stream);
    }
  }

  /// Enqueues the decode of B + alpha O into `out`, rows x cols with leading dimension `ld`.
  template <class T>
  void decode(T* out, index_t ld, cudaStream_t stream) const {
    cuda::decode(weights_.base_view(), weights_.ortho_view(), alpha_, 0, rows(), out, ld, stream);
  }

 private:
  index_t rows() const { return weights_.base_view().rows; }
  index_t cols() const { return weights_.base_view().cols; }

  typename layout::device_arrays weights_;
  device_buffer<float> bias_;
  float alpha_ = 1.0f;
};

}  // namespace qcodec::inline QCODEC_ABI::cuda
