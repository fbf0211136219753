#pragma once
/// The dual-stream linear layer y = x · (B + alpha·O)ᵀ + bias on the CPU, for any codec.
///
/// B is the decoded base stream (the whole codec for codecs without an ortho stream), O the
/// sparse ortho stream of an outlier_split codec. A rotated codec (codecs/rotated.hpp) runs its
/// base codec on activations rotated once per forward, x Rᵀ, in FP32 (core/hadamard.hpp's
/// rounding), through every path below. Activations must be finite on every path (a NaN or
/// infinity is a qcodec::error, y untouched). Output rows are cut into tiles of a fixed height
/// that depends only on the shape, never on the thread count; each tile is computed by one
/// thread, with no reduction across threads, so the result is bit-identical for any number of
/// threads.
///
/// Integer domain, the default for integer codecs (linear codecs of 4- or 8-bit codes, and
/// splits and rotations over them): every batch size is served by the SIMD integer kernel of
/// ops/integer_gemv.hpp — activations quantized once per forward to int8 in blocks along K
/// (activation_block_cols: 32 columns against INT8 weights, 128 against INT4, one scale
/// each), integer dot products (vpdpbusd where present) against a copy of the codes
/// repacked at construction (ops/integer_panels.hpp, about as many bytes as the codes
/// again), row tiles sized to the L2 cache — then the sparse product and bias below. Its
/// error is the activation rounding bounded in that header (at most half an activation step
/// of each block times the weights it meets) plus the kernel's FP32 roundings (at most
/// activation blocks + 2, stated at detail::integer_panel). `set_integer_domain(false)`
/// frees the copy and selects the FP32 paths, for callers who need the FP32 accumulation
/// bound.
///
/// FP32 paths (every other codec; integer codecs after set_integer_domain(false)): codes are
/// decoded to FP32 first (codec at rest). Per tile:
///  - batch <= gemv_max_batch (fused decode-GEMV): each row of the tile is decoded in SIMD
///    registers and multiplied with up to 4 activation rows at once (base_codec::dot_row;
///    QINS reads them in the order its decode produces, reordered once per forward); the FP32
///    weight is never materialised;
///  - larger batches (tiled decode-then-GEMM): a taller tile (sized to the L2 cache) is decoded
///    and multiplied with x by the SIMD kernel of ops/slab_products.hpp (x transposed in slabs
///    of 16 rows once per forward; each output one FMA chain in column order, the same bits
///    on every target; no Eigen GEMM, whose kernels are fixed by the flags of the unit that
///    includes qcodec: SSE2 in a baseline build).
/// With the opt-in cache, tiles are read from a decoded copy of B instead of decoding: same
/// tiles, same arithmetic, same bits (QINS's fused decode-dot decodes anyway: its 1-byte codes
/// stream faster than the 4-byte cache, see qins::dot_row).
/// After every path, one pass over all output rows adds alpha · x · Oᵀ and then the bias
/// (ops/slab_products.hpp: each sum an FP32 FMA chain in column order, the same bits on every
/// target; a slab stays in the L2 cache through the pass);
/// without an ortho stream the tiles add the bias.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <Eigen/Core>

#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/ortho_stream.hpp"
#include "qcodec/codecs/outlier_split.hpp"
#include "qcodec/codecs/rotated.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/hadamard.hpp"
#include "qcodec/core/matrix.hpp"
#include "qcodec/ops/aligned_buffer.hpp"
#include "qcodec/ops/integer_gemv.hpp"
#include "qcodec/ops/slab_products.hpp"

#if QCODEC_USE_OPENMP
#  include <omp.h>
#endif

namespace qcodec::inline QCODEC_ABI {

namespace detail {

/// Threads the op uses: OpenMP's current maximum (omp_set_num_threads), else 1.
inline int op_thread_count() {
#if QCODEC_USE_OPENMP
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

inline int op_thread_index() {
#if QCODEC_USE_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace detail

template <codec Codec>
class dual_stream_linear {
 public:
  /// The codec of the dense stream B.
  using base_codec = base_stream_t<Codec>;
  static_assert(fused_dot_codec<base_codec>,
                "qcodec: dual_stream_linear needs a base codec with a fused decode-dot, a fused_dot_codec "
                "(codecs/capabilities.hpp): static dot_row<NB>(target, storage, row, x, out, cached)");

  /// Largest batch the fused decode-GEMV serves by default; larger batches take the tiled
  /// decode-then-GEMM. Measured on the development machine (bench/RESULTS.md, "CPU linear op:
  /// GEMV-GEMM crossover").
  static constexpr index_t default_gemv_max_batch = 8;
  /// FP32 bytes of weight rows one fused-path tile covers (sets the tile height, so the
  /// thread partition; half of a 32 KiB L1d).
  static constexpr index_t gemv_tile_bytes = 16 * 1024;
  /// Bytes of one thread's decoded tile in the GEMM path (half of a 1 MiB L2).
  static constexpr index_t gemm_tile_bytes = 512 * 1024;

  /// Takes ownership of an encoded weight (out_features x in_features) and an optional bias
  /// (empty, or out_features values).
  explicit dual_stream_linear(encoded_matrix<Codec> weight, std::span<const float> bias = {})
      : base_(split_base(weight)), ortho_(split_ortho(weight)), ortho_groups_(group_ortho(ortho_)) {
    if constexpr (is_rotated<Codec>) rotation_signs_ = weight.storage().signs;
    if (!bias.empty() && static_cast<index_t>(bias.size()) != out_features())
      detail::fail("dual_stream_linear: bias holds ", bias.size(), " values, expected ",
                   out_features());
    for (std::size_t i = 0; i < bias.size(); ++i)
      if (!std::isfinite(bias[i])) detail::fail("dual_stream_linear: bias ", i, " is not finite");
    bias_.assign(bias.begin(), bias.end());
    gemv_tile_rows_ = std::max<index_t>(1, gemv_tile_bytes / (4 * in_features()));
    gemm_tile_rows_ = std::clamp<index_t>(gemm_tile_bytes / (4 * in_features()) / 16 * 16, 16, 512);
    reserve_workspaces(detail::op_thread_count());
    if constexpr (integer_codec<base_codec>) set_integer_domain(true);
  }

  index_t in_features() const { return base_.cols(); }
  index_t out_features() const { return base_.rows(); }

  /// Weight of the ortho stream: 1 is full fidelity, 0 the base stream alone.
  float alpha() const { return alpha_; }
  /// Sets alpha (finite); takes effect at the next forward, without re-encoding.
  void set_alpha(float alpha) {
    if (!std::isfinite(alpha)) detail::fail("dual_stream_linear: alpha ", alpha, " is not finite");
    alpha_ = alpha;
  }

  /// Keeps a decoded FP32 copy of B (4 bytes per weight) and reads tiles from it; same results.
  void set_cache_decoded(bool enabled) {
    if (enabled && cache_.size() == 0) cache_ = base_.decode();
    if (!enabled) cache_ = row_matrix();
  }
  bool cache_decoded() const { return cache_.size() != 0; }

  /// Serves every batch with int8 activations and integer dot products (header comment), the
  /// default for integer codecs: enabling repacks the codes once, disabling frees the copy and
  /// selects the FP32 paths. Integer codecs only: QINS, the grids and the two-level codecs
  /// refuse it at compile time.
  void set_integer_domain(bool enabled) {
    static_assert(integer_codec<base_codec>,
                  "qcodec: integer-domain compute needs an integer_codec (codecs/capabilities.hpp): a linear "
                  "codec of 4- or 8-bit codes whose storage is an integer_block_view; QINS, the grids and the "
                  "two-level codecs are served by the FP32 paths: decode first");
    if (enabled && !panels_) panels_.emplace(base_.storage());
    if (!enabled) panels_.reset();
  }
  bool integer_domain() const { return panels_.has_value(); }

  /// Largest batch served by the fused decode-GEMV (0 sends every batch to the GEMM path).
  index_t gemv_max_batch() const { return gemv_max_batch_; }
  void set_gemv_max_batch(index_t batch) { gemv_max_batch_ = std::max<index_t>(0, batch); }

  const encoded_matrix<base_codec>& base() const { return base_; }
  /// The ortho stream (empty for codecs without one).
  const ortho_stream& ortho() const { return ortho_; }
  const std::vector<float>& bias() const { return bias_; }

  /// Writes y = x · (B + alpha·O)ᵀ + bias: x is batch x in_features, y batch x out_features.
  /// Throws qcodec::error, leaving y untouched, when the shapes do not fit or x holds a
  /// non-finite value. Not reentrant on one object (it reuses its workspace).
  void forward(matrix_view x, matrix_ref y) {
    if (x.cols() != in_features() || y.rows() != x.rows() || y.cols() != out_features())
      detail::fail("dual_stream_linear: forward of x ", x.rows(), " x ", x.cols(), " into y ",
                   y.rows(), " x ", y.cols(), " does not fit weight ", out_features(), " x ",
                   in_features());
    const index_t batch = x.rows();
    if (batch == 0) return;
    detail::require_finite_nonempty(x, "activations");
    if constexpr (is_rotated<Codec>) {
      rotated_x_ = x;
      for (index_t b = 0; b < batch; ++b)
        hadamard::rotate(rotated_x_.row(b).data(), in_features(), Codec::block, rotation_signs_.data());
      forward_base(rotated_x_, y);
    } else {
      forward_base(x, y);
    }
  }

 private:
  /// The forward on x (rotated already for rotated codecs): the dense stream B, then the
  /// sparse one.
  void forward_base(matrix_view x, matrix_ref y) {
    // x in slabs (ops/slab_products.hpp), once, for the dense tile product and the sparse one.
    const bool dense_tiles = !integer_domain() && x.rows() > gemv_max_batch_;
    if (dense_tiles || (uses_ortho() && x.rows() > 1)) to_slabs(x, slabs_);
    forward_dense(x, y);
    if (uses_ortho()) add_ortho(x, y);
  }

  /// y = x · Bᵀ (+ bias unless the sparse product follows) on the path the header names.
  void forward_dense(const matrix_view& x, matrix_ref& y) {
    const index_t batch = x.rows();
    if constexpr (integer_codec<base_codec>)
      if (panels_) return forward_integer(x, y);
    reserve_workspaces(detail::op_thread_count());
    if (batch > gemv_max_batch_) {
      for_each_tile(y, gemm_tile_rows_, [&](index_t first, index_t last) {
        float* workspace = workspaces_[detail::op_thread_index()].data();
        const tile_product product{slabs_.data(), in_features(), batch,
                                   tile_weights(first, last, workspace), last - first,
                                   y.data(), y.outerStride(), first,
                                   workspace + (last - first) * in_features()};
        simd::dispatch([&](auto target) { tile_product_rows(target, product); });
      });
      return;
    }
    simd::dispatch([&](auto target) {
      const matrix_view dot_x = dot_activations(target, x);
      for_each_tile(y, gemv_tile_rows_, [&](index_t first, index_t last) {
        fused_decode_dot(target, dot_x, y, first, last);
      });
    });
  }

  /// Bytes of codes in one tile of the integer path (a quarter of a 1 MiB L2: the tile is
  /// re-read once per block of int_batch activation rows).
  static constexpr index_t integer_tile_bytes = 256 * 1024;

  void forward_integer(const matrix_view& x, matrix_ref& y) {
    activations_.quantize(x, panels_->activation_cols());
    // Whole panels per tile (256 is a multiple of every target's panel height).
    const index_t panel = panels_->panel_rows();
    const index_t row_bytes = (in_features() * codec_traits<base_codec>::bits + 7) / 8;
    const index_t rows = integer_tile_bytes / row_bytes / panel * panel;
    for_each_tile(y, std::clamp<index_t>(rows, panel, 256), [&](index_t first, index_t last) {
      integer_rows(*panels_, activations_, first, last, y);
    });
  }

  /// Runs compute(first, last) and then finish_rows on every tile of `tile_rows` output rows,
  /// each tile on one thread.
  template <class Compute>
  void for_each_tile(matrix_ref& y, index_t tile_rows, Compute compute) const {
    const index_t tiles = (out_features() + tile_rows - 1) / tile_rows;
    [[maybe_unused]] const int threads = detail::op_thread_count();
#if QCODEC_USE_OPENMP
#  pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (index_t tile = 0; tile < tiles; ++tile) {
      const index_t first = tile * tile_rows;
      const index_t last = std::min(out_features(), first + tile_rows);
      compute(first, last);
      finish_rows(y, first, last);
    }
  }

  static encoded_matrix<base_codec> split_base(const encoded_matrix<Codec>& weight) {
    if constexpr (wrapping_codec<Codec>) return encoded_matrix<base_codec>(weight.storage().base);
    else return weight;
  }
  static ortho_stream split_ortho(const encoded_matrix<Codec>& weight) {
    if constexpr (is_outlier_split<Codec>) return weight.storage().ortho;
    else {
      ortho_stream empty;
      empty.rows = weight.rows();
      empty.cols = weight.cols();
      return empty;
    }
  }

  void reserve_workspaces(int threads) {
    if (static_cast<int>(workspaces_.size()) < threads) workspaces_.resize(static_cast<std::size_t>(threads));
    // A decoded tile, then the dense tile product's partial sums.
    const index_t rows = std::min(out_features(), std::max(gemv_tile_rows_, gemm_tile_rows_));
    for (auto& buffer : workspaces_)
      buffer.reserve(static_cast<std::size_t>(rows * in_features() + gemm_tile_rows_ * slab_rows));
  }

  /// Rows [first, last) of B, row-major: from the cache, or decoded into `workspace`.
  const float* tile_weights(index_t first, index_t last, float* workspace) const {
    if (cache_decoded()) return cache_.data() + first * in_features();
    base_codec::decode_rows(base_.storage(), first, last, workspace);
    return workspace;
  }

  /// x as base_codec::dot_row with `target` reads it: reordered once per forward for codecs
  /// whose decode-dot produces a step's weights in an order of their own
  /// (qins::order_activations), each row on a 64-byte boundary (Eigen's own alignment is 16
  /// bytes in a baseline build: QINS8's 64-byte loads then split cache lines, 2x slower).
  template <class Target>
  matrix_view dot_activations(Target target, const matrix_view& x) {
    if constexpr (reorders_activations<base_codec>) {
      const index_t stride = (x.cols() + 15) / 16 * 16;
      ordered_x_.reserve(static_cast<std::size_t>(x.rows() * stride));
      for (index_t b = 0; b < x.rows(); ++b)
        base_codec::order_activations(target, x.cols(), x.row(b).data(), ordered_x_.data() + b * stride);
      using strided = Eigen::Map<const row_matrix, Eigen::Aligned64, Eigen::OuterStride<>>;
      return strided(ordered_x_.data(), x.rows(), x.cols(), Eigen::OuterStride<>(stride));
    } else {
      return x;
    }
  }

  /// Rows [first, last) of x · Bᵀ decoded in registers (base_codec::dot_row with `target`, x
  /// as dot_activations leaves it), in blocks of up to fused_batch activation rows.
  static constexpr int fused_batch = 4;
  template <class Target>
  void fused_decode_dot(Target target, const matrix_view& x, matrix_ref& y, index_t first, index_t last) const {
    const auto& s = base_.storage();
    const float* cached = cache_decoded() ? cache_.data() : nullptr;
    for (index_t b0 = 0; b0 < x.rows(); b0 += fused_batch) {
      const int count = static_cast<int>(std::min<index_t>(fused_batch, x.rows() - b0));
      const float* rows[fused_batch];
      for (int i = 0; i < count; ++i) rows[i] = x.row(b0 + i).data();
      float out[fused_batch];
      for (index_t r = first; r < last; ++r) {
        [&]<int... N>(std::integer_sequence<int, N...>) {
          ((count == N + 1 ? base_codec::template dot_row<N + 1>(target, s, r, rows, out, cached) : void()), ...);
        }(std::make_integer_sequence<int, fused_batch>{});
        for (int i = 0; i < count; ++i) y(b0 + i, r) = out[i];
      }
    }
  }

  /// y += alpha · x · Oᵀ, then the bias (ops/slab_products.hpp), after the base stream: each
  /// thread takes a contiguous range of row groups (every sum is computed whole by one
  /// thread, so the bits do not depend on the count).
  void add_ortho(const matrix_view& x, matrix_ref& y) const {
    std::visit([&](const auto& groups) {
      using column = typename std::remove_cvref_t<decltype(groups)>::column_type;
      const ortho_product<column> product{&groups, x.rows() == 1 ? x.row(0).data() : slabs_.data(),
                                  in_features(), x.rows(), alpha_, bias_.empty() ? nullptr : bias_.data(),
                                  y.data(), y.outerStride()};
      const index_t count = groups.groups();
      const int threads = static_cast<int>(std::min<index_t>(detail::op_thread_count(), count));
#if QCODEC_USE_OPENMP
#  pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
      for (int t = 0; t < threads; ++t) {
        const index_t first = count * t / threads, last = count * (t + 1) / threads;
        simd::dispatch([&](auto target) { ortho_product_groups(target, product, first, last); });
      }
    }, ortho_groups_);
  }

  /// The ortho stream as the sparse product reads it, its values decoded once.
  static std::variant<ortho_groups<std::uint16_t>, ortho_groups<std::uint32_t>> group_ortho(const ortho_stream& o) {
    if (o.nnz() == 0) return {};
    const std::vector<float> values = o.decoded_values();
    if (ortho_stream::narrow_columns(o.cols))
      return ortho_groups<std::uint16_t>(o.rows, o.row_offsets.data(), o.columns16.data(), values.data());
    return ortho_groups<std::uint32_t>(o.rows, o.row_offsets.data(), o.columns32.data(), values.data());
  }

  /// Adds the bias to the output columns [first, last) of every path's tiles, unless the
  /// sparse product follows (it adds the bias after its sums).
  void finish_rows(matrix_ref& y, index_t first, index_t last) const {
    if (bias_.empty() || uses_ortho()) return;
    for (index_t b = 0; b < y.rows(); ++b)
      for (index_t r = first; r < last; ++r) y(b, r) += bias_[static_cast<std::size_t>(r)];
  }

  bool uses_ortho() const { return alpha_ != 0 && ortho_.nnz() > 0; }

  encoded_matrix<base_codec> base_;
  ortho_stream ortho_;
  std::variant<ortho_groups<std::uint16_t>, ortho_groups<std::uint32_t>> ortho_groups_;  // group_ortho(ortho_)
  detail::aligned_buffer slabs_;     // x in slabs (forward_base)
  std::vector<std::uint8_t> rotation_signs_;  // rotated codecs: the signs x is rotated by
  row_matrix rotated_x_;
  std::vector<float> bias_;
  float alpha_ = 1;
  row_matrix cache_;
  detail::aligned_buffer ordered_x_;
  index_t gemv_max_batch_ = default_gemv_max_batch;
  index_t gemv_tile_rows_ = 1, gemm_tile_rows_ = 16;
  std::vector<detail::aligned_buffer> workspaces_;
  struct no_panels {};
  std::optional<std::conditional_t<integer_codec<base_codec>, integer_panels<base_codec>, no_panels>>
      panels_;
  int8_activations activations_;
};

}  // namespace qcodec::inline QCODEC_ABI
