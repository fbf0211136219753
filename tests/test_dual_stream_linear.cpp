// The dual-stream linear op against an FP64 reference, for every representative codec and
// outlier splits, on both paths, with and without the cache, for alpha 0 / 0.5 / 1 and 1 or 2
// threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <random>
#include <tuple>
#include <vector>

#include <qcodec/qcodec.hpp>
#include <qcodec/ops/dual_stream_linear.hpp>

#include "synthetic_weights.hpp"

#if QCODEC_USE_OPENMP
#  include <omp.h>
#endif

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

using op_codecs = decltype(std::tuple_cat(
    representative_codecs{},
    std::tuple<outlier_split<linear<4, per_group<128>>>, outlier_split<linear<8>>,
               outlier_split<qins<8>>>{}));

row_matrix random_activations(index_t batch, index_t k, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  row_matrix x(batch, k);
  for (index_t i = 0; i < x.size(); ++i) x.data()[i] = normal(rng);
  return x;
}

/// Checks y against x · (B + alpha O)ᵀ + bias computed in FP64 from the op's own streams.
/// Every FP32 output is a sum of at most K + nnz_r + 2 rounded terms (dot products in any
/// order, the alpha product, the bias add), so |y - ref| <= gamma_n · (Σ|x||B| + |alpha|Σ|x||O|
/// + |bias|) with gamma_n = n u / (1 - n u), u = 2^-24, n = K + 3 bounding the dense chain
/// (the sparse chain is shorter and the two meet in one add): Higham, Accuracy and Stability,
/// eq. 3.5. The bound is relative to Σ|x||w|, never an absolute tolerance.
template <class Op>
void check_forward(const Op& op, const row_matrix& x, const row_matrix& y) {
  const row_matrix b = op.base().decode();
  const index_t k = op.in_features();
  const double n = static_cast<double>(k + 3), gamma = n * 0x1p-24 / (1 - n * 0x1p-24);
  const double alpha = op.alpha();
  index_t violations = 0;
  for (index_t r = 0; r < op.out_features(); ++r) {
    Eigen::VectorXd w = b.row(r).transpose().cast<double>();
    Eigen::VectorXd o = Eigen::VectorXd::Zero(k);
    op.ortho().for_each_in_row(r, [&](index_t c, float v) { o(c) = v; });
    const double bias = op.bias().empty() ? 0.0 : op.bias()[static_cast<std::size_t>(r)];
    for (index_t i = 0; i < x.rows(); ++i) {
      const Eigen::VectorXd xi = x.row(i).transpose().cast<double>();
      const double ref = xi.dot(w + alpha * o) + bias;
      const double magnitude = xi.cwiseAbs().dot(w.cwiseAbs() + std::abs(alpha) * o.cwiseAbs()) + std::abs(bias);
      if (!(std::abs(y(i, r) - ref) <= gamma * magnitude) && violations++ < 3)
        FAIL_CHECK("batch row " << i << " output " << r << ": y=" << y(i, r) << " ref=" << ref
                                << " bound=" << gamma * magnitude);
    }
  }
  CHECK(violations == 0);
}

void set_threads([[maybe_unused]] int threads) {
#if QCODEC_USE_OPENMP
  omp_set_num_threads(threads);
#endif
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("forward matches the FP64 reference on every path", "[op]", op_codecs) {
  const auto [out, in] = GENERATE(table<index_t, index_t>({{37, 91}, {130, 300}}));
  const index_t batch = GENERATE(1, 2, 7, 64, 300);
  CAPTURE(codec_traits<TestType>::name, out, in, batch);
  const row_matrix w = synthetic_weights(out, in, weight_family::outlier_columns, 17 + out);
  const row_matrix x = random_activations(batch, in, 3 + static_cast<unsigned>(batch));
  std::vector<float> bias(static_cast<std::size_t>(out));
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
  dual_stream_linear<TestType> op(TestType{}.encode(w), bias);

  row_matrix y_default(batch, out), y_fused(batch, out), y_gemm(batch, out), y_cached(batch, out);
  op.forward(x, y_default);
  check_forward(op, x, y_default);
  op.set_gemv_max_batch(batch);
  op.forward(x, y_fused);
  check_forward(op, x, y_fused);
  op.set_gemv_max_batch(0);
  op.forward(x, y_gemm);
  check_forward(op, x, y_gemm);
  // The cache reads the same tiles from memory instead of decoding them: identical bits.
  op.set_cache_decoded(true);
  op.forward(x, y_cached);
  CHECK(y_cached == y_gemm);
  op.set_gemv_max_batch(batch);
  op.forward(x, y_cached);
  CHECK(y_cached == y_fused);
}

TEMPLATE_LIST_TEST_CASE("alpha switches streams without re-encoding", "[op]", op_codecs) {
  const row_matrix w = synthetic_weights(45, 200, weight_family::outlier_columns, 8);
  const row_matrix x = random_activations(7, 200, 9);
  dual_stream_linear<TestType> op(TestType{}.encode(w));
  row_matrix y(7, 45), y_previous(7, 45);
  for (float alpha : {1.0f, 0.5f, 0.0f, 1.0f}) {
    CAPTURE(codec_traits<TestType>::name, alpha);
    op.set_alpha(alpha);
    for (index_t gemv_max : {index_t{0}, index_t{7}}) {
      op.set_gemv_max_batch(gemv_max);
      op.forward(x, y);
      check_forward(op, x, y);
    }
  }
  if constexpr (is_outlier_split<TestType>) {  // the ortho stream makes alpha matter
    REQUIRE(op.ortho().nnz() > 0);
    op.set_alpha(0);
    op.forward(x, y_previous);
    op.set_alpha(1);
    op.forward(x, y);
    CHECK(y != y_previous);
  }
  CHECK_THROWS_AS(op.set_alpha(std::nanf("")), qcodec::error);
}

TEMPLATE_TEST_CASE("the ortho stream adds exactly its stated sums: y + alpha * (column-order FP32 sum) + bias",
                   "[op][outlier_split]", (outlier_split<linear<4, per_group<128>>>), outlier_split<linear<8>>) {
  // 37 rows (not a multiple of any interleave), batch 1 (its own loop) and 19 (past one chunk
  // of 16), every path. The base alone comes from the same op at alpha = 0 without bias.
  const row_matrix w = synthetic_weights(37, 300, weight_family::outlier_columns, 31);
  const auto encoded = TestType{}.encode(w);
  std::vector<float> bias(37);
  for (std::size_t r = 0; r < bias.size(); ++r) bias[r] = 0.01f * static_cast<float>(r) - 0.1f;
  dual_stream_linear<TestType> op(encoded, bias), base(encoded);
  REQUIRE(op.ortho().nnz() > 37);
  // A power of two, large enough that alpha * sum outweighs the base: a sum rounded in any
  // other order (or fused) moves y.
  const float alpha = 65536.0f;
  op.set_alpha(alpha);
  base.set_alpha(0);
  for (index_t batch : {1, 19}) {
    const row_matrix x = random_activations(batch, 300, 33 + static_cast<unsigned>(batch));
    for (bool integer : {false, true}) {
      for (index_t gemv_max : {index_t{0}, batch}) {
        op.set_integer_domain(integer);
        base.set_integer_domain(integer);
        op.set_gemv_max_batch(gemv_max);
        base.set_gemv_max_batch(gemv_max);
        row_matrix y(batch, 37), y_base(batch, 37);
        op.forward(x, y);
        base.forward(x, y_base);
        index_t mismatches = 0;
        for (index_t b = 0; b < batch; ++b)
          for (index_t r = 0; r < 37; ++r) {
            const float expected = y_base(b, r) + alpha * op.ortho().dot_row(r, x.row(b).data()) +
                                   bias[static_cast<std::size_t>(r)];
            mismatches += y(b, r) != expected;
          }
        CAPTURE(batch, integer, gemv_max);
        CHECK(mismatches == 0);
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("forward is bit-identical for 1 and 2 threads", "[op]", op_codecs) {
  const row_matrix w = synthetic_weights(150, 130, weight_family::heavy_tailed, 21);
  dual_stream_linear<TestType> op(TestType{}.encode(w), std::vector<float>(150, 0.25f));
  op.set_alpha(0.5f);
  for (index_t batch : {1, 7, 64}) {
    const row_matrix x = random_activations(batch, 130, 5);
    row_matrix y1(batch, 150), y2(batch, 150);
    for (index_t gemv_max : {index_t{0}, batch}) {
      op.set_gemv_max_batch(gemv_max);
      set_threads(1);
      op.forward(x, y1);
      set_threads(2);
      op.forward(x, y2);
      CAPTURE(codec_traits<TestType>::name, batch, gemv_max);
      CHECK(y1 == y2);
    }
  }
  set_threads(detail::op_thread_count());
}

TEMPLATE_LIST_TEST_CASE("the GEMM path over several tiles, the last one ragged", "[op]", op_codecs) {
  // 1100 columns: GEMM tiles of 512 KiB / (4 * 1100) rounded down to 16 = 112 rows, so 250 rows
  // are 112 + 112 + 26, and tiles past row 0 read the cache, a workspace per thread and y's
  // columns at an offset.
  constexpr index_t out = 250, in = 1100, batch = 9;
  const row_matrix w = synthetic_weights(out, in, weight_family::heavy_tailed, 6);
  dual_stream_linear<TestType> op(TestType{}.encode(w), std::vector<float>(out, -0.125f));
  op.set_gemv_max_batch(0);
  const row_matrix x = random_activations(batch, in, 12);
  row_matrix y1(batch, out), y2(batch, out), y_cached(batch, out);
  CAPTURE(codec_traits<TestType>::name);
  set_threads(1);
  op.forward(x, y1);
  check_forward(op, x, y1);
  set_threads(2);
  op.forward(x, y2);
  CHECK(y1 == y2);
  op.set_cache_decoded(true);
  op.forward(x, y_cached);
  CHECK(y_cached == y2);
  set_threads(detail::op_thread_count());
}

TEST_CASE("forward rejects mismatched shapes and leaves the output untouched", "[op]") {
  using codec_type = outlier_split<linear<4, per_group<32>>>;
  const row_matrix w = synthetic_weights(20, 50, weight_family::heavy_tailed, 2);
  dual_stream_linear<codec_type> op(codec_type{}.encode(w));
  const row_matrix y_before = row_matrix::Constant(3, 20, 7.0f);
  row_matrix y = y_before;
  CHECK_THROWS_AS(op.forward(random_activations(3, 49, 1), y), qcodec::error);
  CHECK(y == y_before);
  row_matrix y_short = row_matrix::Constant(2, 20, 7.0f);
  CHECK_THROWS_AS(op.forward(random_activations(3, 50, 1), y_short), qcodec::error);
  CHECK((y_short.array() == 7.0f).all());
  row_matrix y_narrow = row_matrix::Constant(3, 19, 7.0f);
  CHECK_THROWS_AS(op.forward(random_activations(3, 50, 1), y_narrow), qcodec::error);
  CHECK((y_narrow.array() == 7.0f).all());
  CHECK_THROWS_AS(dual_stream_linear<codec_type>(codec_type{}.encode(w), std::vector<float>(19)),
                  qcodec::error);
  CHECK_NOTHROW(op.forward(random_activations(3, 50, 1), y));

  // The integer path quantizes the activations before it writes: a NaN leaves y as it was.
  dual_stream_linear<linear<8>> integer_op(linear<8>{}.encode(w));
  integer_op.set_integer_domain(true);
  row_matrix x_nan = random_activations(3, 50, 1);
  x_nan(1, 7) = std::nanf("");
  row_matrix y_integer = y_before;
  CHECK_THROWS_WITH(integer_op.forward(x_nan, y_integer), Catch::Contains("activations"));
  CHECK(y_integer == y_before);
  CHECK_THROWS_AS(integer_op.forward(random_activations(3, 49, 1), y_integer), qcodec::error);
  CHECK(y_integer == y_before);
}

namespace {

using integer_op_codecs = std::tuple<linear<8>, linear<8, per_group<64>, float, symmetry::asymmetric>,
                                     linear<4, per_group<128>>, linear<4, per_group<32>>,
                                     outlier_split<linear<4, per_group<128>>>>;

/// Checks the integer-domain forward against x · (B + alpha O)ᵀ + bias in FP64. Per output:
/// the activation rounding |x_c - s_x q_c| <= s_x (1/2 + 2^-17) (ops/integer_gemv.hpp) times
/// sum|ŵ|, plus FP32 roundings: the integer kernel's at most blocks + 2 (with blocks <= K / 32
/// + 1) and the rounding of ŵ, each relative to sum|x^ ŵ|, then the sparse chain and the
/// bias add (nnz + 2 roundings) relative to everything summed so far; gamma_n with
/// n = K / 32 + nnz + 6 covers them all (Higham, eq. 3.5).
template <class Op>
void check_integer_forward(const Op& op, const row_matrix& x, const row_matrix& y) {
  const row_matrix b = op.base().decode();
  const index_t k = op.in_features();
  const double alpha = op.alpha();
  std::vector<std::int8_t> codes(static_cast<std::size_t>(k));
  index_t violations = 0;
  for (index_t i = 0; i < x.rows(); ++i) {
    const double x_scale = quantize_activation_row(
        std::span<const float>(x.row(i).data(), static_cast<std::size_t>(k)), codes);
    for (index_t r = 0; r < op.out_features(); ++r) {
      double ref = op.bias().empty() ? 0.0 : op.bias()[static_cast<std::size_t>(r)];
      double magnitude = std::abs(ref), weight_sum = 0;
      for (index_t c = 0; c < k; ++c) {
        const double w = b(r, c), xc = x(i, c), xq = x_scale * codes[static_cast<std::size_t>(c)];
        ref += xc * w;
        weight_sum += std::abs(w);
        magnitude += std::abs(xc * w) + std::abs(xq * w);
      }
      index_t nnz = 0;
      op.ortho().for_each_in_row(r, [&](index_t c, float v) {
        ref += alpha * x(i, c) * v;
        magnitude += std::abs(alpha * x(i, c) * v);
        ++nnz;
      });
      const double n = static_cast<double>(k / 32 + nnz + 6), gamma = n * 0x1p-24 / (1 - n * 0x1p-24);
      const double bound = x_scale * (0.5 + 0x1p-17) * weight_sum + gamma * magnitude;
      if (!(std::abs(y(i, r) - ref) <= bound) && violations++ < 3)
        FAIL_CHECK("batch row " << i << " output " << r << ": y=" << y(i, r) << " ref=" << ref
                                << " bound=" << bound);
    }
  }
  CHECK(violations == 0);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("integer-domain forward matches the FP64 reference within the activation step",
                        "[op][integer]", integer_op_codecs) {
  // 300 rows: two tiles of the integer path, the second ending in a partial panel.
  const auto [rows, cols] = GENERATE(table<index_t, index_t>({{37, 129}, {70, 300}, {9, 2200}, {300, 70}}));
  const row_matrix w = synthetic_weights(rows, cols, weight_family::outlier_columns, 3 + rows);
  dual_stream_linear<TestType> op(TestType{}.encode(w), std::vector<float>(static_cast<std::size_t>(rows), -0.5f));
  op.set_integer_domain(true);
  REQUIRE(op.integer_domain());
  for (index_t batch : {1, 2, 7, 9, 64, 300}) {
    const row_matrix x = random_activations(batch, cols, 17 + static_cast<unsigned>(batch));
    row_matrix y1(batch, rows), y2(batch, rows);
    set_threads(1);
    op.forward(x, y1);
    set_threads(2);
    op.forward(x, y2);
    CAPTURE(codec_traits<TestType>::name, rows, cols, batch);
    CHECK(y1 == y2);  // thread-count independence
    op.set_alpha(batch % 2 == 0 ? 1.0f : 0.5f);
    op.forward(x, y1);
    check_integer_forward(op, x, y1);
  }
  set_threads(detail::op_thread_count());
}
