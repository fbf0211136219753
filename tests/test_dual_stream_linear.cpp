// The dual-stream linear op against an FP64 reference, for every representative codec and
// outlier splits, on both paths, with and without the cache, for alpha 0 / 0.5 / 1 and 1 or 2
// threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include <qcodec/qcodec.hpp>
#include <qcodec/ops/dual_stream_linear.hpp>

#include "quantized_activations.hpp"
#include "random_matrix.hpp"
#include "targets.hpp"
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

row_matrix random_activations(index_t batch, index_t k, unsigned seed) { return test::random_normal(batch, k, seed); }

/// Checks y against x · (B + alpha O)ᵀ + bias computed in FP64 from the op's own streams.
/// Every FP32 output is a sum of at most K + nnz_r + 2 rounded terms (dot products in any
/// order, the alpha product, the bias add), so |y - ref| <= gamma_n · (Σ|x||B| + |alpha|Σ|x||O|
/// + |bias|) with gamma_n = n u / (1 - n u), u = 2^-24, n = K + 3 bounding the dense chain
/// (the sparse chain is shorter and the two meet in one add): Higham, Accuracy and Stability,
/// eq. 3.5. The bound is relative to Σ|x||w|, never an absolute tolerance.
template <class Op>
void check_fp32_forward(const Op& op, const row_matrix& x, const row_matrix& y) {
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

/// Checks the integer-domain forward against x · (B + alpha O)ᵀ + bias in FP64. Per output:
/// the activation rounding |x_c - s_c q_c| <= s_c (1/2 + 2^-17) (ops/integer_gemv.hpp, s_c the
/// step of column c's block) times |ŵ_c|, summed, plus FP32 roundings: the integer kernel's
/// at most blocks + 2 (with blocks <= K / 32 + 1, one per activation block) and the rounding
/// of ŵ, each relative to sum|x^ ŵ|, then the sparse chain and the bias add (nnz + 2
/// roundings) relative to everything summed so far; gamma_n with n = K / 32 + nnz + 6 covers
/// them all (Higham, eq. 3.5).
template <class Op>
void check_integer_forward(const Op& op, const row_matrix& x, const row_matrix& y) {
  const row_matrix b = op.base().decode();
  const index_t k = op.in_features();
  const double alpha = op.alpha();
  const index_t block_cols = integer_activation_cols<typename Op::base_codec>(op.base().storage());
  index_t violations = 0;
  for (index_t i = 0; i < x.rows(); ++i) {
    const test::quantized_row q = test::quantized_activations(x.row(i).data(), k, block_cols);
    for (index_t r = 0; r < op.out_features(); ++r) {
      double ref = op.bias().empty() ? 0.0 : op.bias()[static_cast<std::size_t>(r)];
      double magnitude = std::abs(ref), step_sum = 0;
      for (index_t c = 0; c < k; ++c) {
        const auto at = static_cast<std::size_t>(c);
        const double w = b(r, c), xc = x(i, c), xq = q.value[at];
        ref += xc * w;
        step_sum += q.step[at] * std::abs(w);
        magnitude += std::abs(xc * w) + std::abs(xq * w);
      }
      index_t nnz = 0;
      op.ortho().for_each_in_row(r, [&](index_t c, float v) {
        ref += alpha * x(i, c) * v;
        magnitude += std::abs(alpha * x(i, c) * v);
        ++nnz;
      });
      const double n = static_cast<double>(k / 32 + nnz + 6), gamma = n * 0x1p-24 / (1 - n * 0x1p-24);
      const double bound = (0.5 + 0x1p-17) * step_sum + gamma * magnitude;
      if (!(std::abs(y(i, r) - ref) <= bound) && violations++ < 3)
        FAIL_CHECK("batch row " << i << " output " << r << ": y=" << y(i, r) << " ref=" << ref
                                << " bound=" << bound);
    }
  }
  CHECK(violations == 0);
}


/// Checks y with the bound of the op's current path.
template <class Op>
void check_forward(const Op& op, const row_matrix& x, const row_matrix& y) {
  if constexpr (integer_codec<typename Op::base_codec>)
    if (op.integer_domain()) return check_integer_forward(op, x, y);
  check_fp32_forward(op, x, y);
}

/// The op on its FP32 paths: integer codecs leave their default integer domain.
template <class Op>
void use_fp32_paths(Op& op) {
  if constexpr (integer_codec<typename Op::base_codec>) op.set_integer_domain(false);
}

using integer_op_codecs = std::tuple<linear<8>, linear<8, per_group<64>, float, symmetry::asymmetric>,
                                     linear<4, per_group<128>>, linear<4, per_group<32>>,
                                     outlier_split<linear<4, per_group<128>>>>;

void set_threads([[maybe_unused]] int threads) {
#if QCODEC_USE_OPENMP
  omp_set_num_threads(threads);
#endif
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("forward matches the FP64 reference on every path", "[op]", op_codecs) {
  index_t out, in;  // std::tie: clang 14 cannot capture a structured binding
  std::tie(out, in) = GENERATE(table<index_t, index_t>({{37, 91}, {130, 300}}));
  const index_t batch = GENERATE(1, 2, 7, 64, 300);
  CAPTURE(codec_traits<TestType>::name, out, in, batch);
  const row_matrix w = synthetic_weights(out, in, weight_family::outlier_columns, 17 + out);
  const row_matrix x = random_activations(batch, in, 3 + static_cast<unsigned>(batch));
  std::vector<float> bias(static_cast<std::size_t>(out));
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
  dual_stream_linear<TestType> op(TestType{}.encode(w), bias);

  row_matrix y_default(batch, out), y_fused(batch, out), y_gemm(batch, out), y_cached(batch, out);
  // The default: the integer domain for integer codecs (fast by default), FP32 for the rest.
  CHECK(op.integer_domain() == integer_codec<typename decltype(op)::base_codec>);
  op.forward(x, y_default);
  check_forward(op, x, y_default);
  use_fp32_paths(op);
  op.set_gemv_max_batch(batch);
  op.forward(x, y_fused);
  check_fp32_forward(op, x, y_fused);
  op.set_gemv_max_batch(0);
  op.forward(x, y_gemm);
  check_fp32_forward(op, x, y_gemm);
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
    op.forward(x, y);  // the default path
    check_forward(op, x, y);
    use_fp32_paths(op);
    for (index_t gemv_max : {index_t{0}, index_t{7}}) {
      op.set_gemv_max_batch(gemv_max);
      op.forward(x, y);
      check_fp32_forward(op, x, y);
    }
    if constexpr (integer_codec<typename decltype(op)::base_codec>) op.set_integer_domain(true);
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

namespace {

/// The specification of the sparse product's sum for (x, r), restated: row r's entries in
/// increasing column order, sum = fma(value, x[column], sum) from 0.
float column_order_fma_sum(const ortho_stream& o, index_t r, const float* x) {
  float sum = 0;
  index_t previous = -1;
  o.for_each_in_row(r, [&](index_t c, float v) {
    REQUIRE(c > previous);
    previous = c;
    sum = std::fma(v, x[c], sum);
  });
  return sum;
}

/// Counts the outputs of `op` (alpha, bias) that differ from y_base + the stated sparse product.
template <class Op>
index_t ortho_mismatches(const Op& op, const row_matrix& x, const row_matrix& y, const row_matrix& y_base) {
  index_t mismatches = 0;
  for (index_t b = 0; b < x.rows(); ++b)
    for (index_t r = 0; r < y.cols(); ++r) {
      float expected = std::fma(op.alpha(), column_order_fma_sum(op.ortho(), r, x.row(b).data()), y_base(b, r));
      if (!op.bias().empty()) expected += op.bias()[static_cast<std::size_t>(r)];
      mismatches += y(b, r) != expected;
    }
  return mismatches;
}

}  // namespace

TEMPLATE_TEST_CASE("the ortho stream adds exactly its stated sums: fma(alpha, column-order FMA chain, y) + bias",
                   "[op][outlier_split]", (outlier_split<linear<4, per_group<128>>>), outlier_split<linear<8>>) {
  // 37 rows (not a multiple of the 4 rows summed together), batch 1 (one lane), 8, 19 and 40
  // (ragged vectors of 4, 8 and 16 lanes, several passes), every path, every target. The base
  // alone comes from the same op at alpha = 0 without bias.
  const row_matrix w = synthetic_weights(37, 300, weight_family::outlier_columns, 31);
  const auto encoded = TestType{}.encode(w);
  std::vector<float> bias(37);
  for (std::size_t r = 0; r < bias.size(); ++r) bias[r] = 0.01f * static_cast<float>(r) - 0.1f;
  dual_stream_linear<TestType> op(encoded, bias), base(encoded);
  REQUIRE(op.ortho().nnz() > 37);
  // A power of two, large enough that alpha * sum outweighs the base: a sum rounded in any
  // other order (or not fused) moves y.
  op.set_alpha(65536.0f);
  base.set_alpha(0);
  test::for_each_target([&](simd::target) {
    for (index_t batch : {1, 8, 19, 40}) {
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
          CAPTURE(batch, integer, gemv_max);
          CHECK(ortho_mismatches(op, x, y, y_base) == 0);
        }
      }
    }
  });
}

TEST_CASE("the ortho stream's sums with 32-bit column indices (more than 65536 columns)", "[op][outlier_split]") {
  using split = outlier_split<linear<8>>;
  const row_matrix w = synthetic_weights(6, 65600, weight_family::outlier_columns, 37);
  const auto encoded = split{}.encode(w);
  REQUIRE(encoded.storage().ortho.columns16.empty());
  REQUIRE(encoded.storage().ortho.columns32.size() > 6);
  dual_stream_linear<split> op(encoded, std::vector<float>(6, 0.5f)), base(encoded);
  op.set_alpha(65536.0f);
  base.set_alpha(0);
  test::for_each_target([&](simd::target) {
    for (index_t batch : {1, 19}) {
      const row_matrix x = random_activations(batch, 65600, 41);
      row_matrix y(batch, 6), y_base(batch, 6);
      op.forward(x, y);
      base.forward(x, y_base);
      CAPTURE(batch);
      CHECK(ortho_mismatches(op, x, y, y_base) == 0);
    }
  });
}

TEMPLATE_LIST_TEST_CASE("the decode-then-GEMM path is one FMA chain per output in column order, on every target",
                        "[op]", op_codecs) {
  // Its stated sums (ops/slab_products.hpp), restated over the decoded base: y(b, r) = the
  // chain sum = fma(w(r, k), x(b, k), sum) over k = 0 .. cols - 1, plus the bias. 45 rows
  // (not a multiple of 6 or 12 rows together), 300 columns (past one 256-column block),
  // batch 1, 17 and 33 (ragged slabs); alpha 0 (the sparse product has its own test).
  const row_matrix w = synthetic_weights(45, 300, weight_family::heavy_tailed, 43);
  std::vector<float> bias(45);
  for (std::size_t r = 0; r < bias.size(); ++r) bias[r] = 0.02f * static_cast<float>(r) - 0.3f;
  dual_stream_linear<TestType> op(TestType{}.encode(w), bias);
  use_fp32_paths(op);
  op.set_alpha(0);
  op.set_gemv_max_batch(0);
  const row_matrix decoded = op.base().decode();
  test::for_each_target([&](simd::target) {
    for (index_t batch : {1, 17, 33}) {
      const row_matrix x = random_activations(batch, 300, 45 + static_cast<unsigned>(batch));
      row_matrix y(batch, 45);
      op.forward(x, y);
      index_t mismatches = 0;
      for (index_t b = 0; b < batch; ++b)
        for (index_t r = 0; r < 45; ++r) {
          float sum = 0;
          for (index_t k = 0; k < 300; ++k) sum = std::fma(decoded(r, k), x(b, k), sum);
          mismatches += y(b, r) != sum + bias[static_cast<std::size_t>(r)];
        }
      CAPTURE(codec_traits<TestType>::name, batch);
      CHECK(mismatches == 0);
    }
  });
}

TEMPLATE_LIST_TEST_CASE("forward is bit-identical for 1 and 2 threads", "[op]", op_codecs) {
  const row_matrix w = synthetic_weights(150, 130, weight_family::heavy_tailed, 21);
  dual_stream_linear<TestType> op(TestType{}.encode(w), std::vector<float>(150, 0.25f));
  op.set_alpha(0.5f);
  for (int pass = 0; pass < 2; ++pass) {  // the default path, then the FP32 paths
    if (pass == 1) use_fp32_paths(op);
    for (index_t batch : {1, 7, 64}) {
      const row_matrix x = random_activations(batch, 130, 5);
      row_matrix y1(batch, 150), y2(batch, 150);
      for (index_t gemv_max : {index_t{0}, batch}) {
        op.set_gemv_max_batch(gemv_max);
        set_threads(1);
        op.forward(x, y1);
        set_threads(2);
        op.forward(x, y2);
        CAPTURE(codec_traits<TestType>::name, op.integer_domain(), batch, gemv_max);
        CHECK(y1 == y2);
      }
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
  use_fp32_paths(op);
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

}

TEST_CASE("forward refuses non-finite activations on every path and leaves the output untouched",
          "[op][errors]") {
  const row_matrix w = synthetic_weights(20, 50, weight_family::heavy_tailed, 2);
  dual_stream_linear<linear<8>> integer_op(linear<8>{}.encode(w));
  dual_stream_linear<qins<8>> qins_op(qins<8>{}.encode(w));
  const row_matrix y_before = row_matrix::Constant(3, 20, 7.0f);
  for (const float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    row_matrix x = random_activations(3, 50, 1);
    x(1, 7) = bad;
    for (bool integer : {true, false}) {
      integer_op.set_integer_domain(integer);
      for (index_t gemv_max : {index_t{0}, index_t{3}}) {
        integer_op.set_gemv_max_batch(gemv_max);
        qins_op.set_gemv_max_batch(gemv_max);
        CAPTURE(bad, integer, gemv_max);
        row_matrix y = y_before;
        CHECK_THROWS_WITH(integer_op.forward(x, y), Catch::Contains("activations") && Catch::Contains("row 1, col 7"));
        CHECK(y == y_before);
        CHECK_THROWS_WITH(qins_op.forward(x, y), Catch::Contains("activations"));
        CHECK(y == y_before);
      }
    }
  }
}

TEMPLATE_TEST_CASE("an outlier activation channel coarsens only its own block on the integer path", "[op][integer]",
                   linear<8>, (linear<4, per_group<32>>), (outlier_split<linear<4, per_group<128>>>)) {
  // LLM activations carry channels 20-100x the rest. One channel at 100 among N(0, 1): with
  // one scale per row every column is rounded to the step 100 / 127; per block of B columns
  // only the channel's block is, the others to at most about 4 / 127 (the largest of B
  // normals), so the error energy falls to at most (B * 100^2 + K * 4^2) / (K * 100^2) of the
  // per-row one: an RMS ratio of sqrt(B / K + 0.0016) (0.18 for B = 32, 0.36 for 128),
  // asserted with 20% to spare for the randomness of the roundings. Checked against per-row
  // quantization of the same x in FP64, and against the derived bound.
  constexpr index_t out = 96, in = 1024, batch = 4;
  const row_matrix w = synthetic_weights(out, in, weight_family::gaussian, 5);
  dual_stream_linear<TestType> op(TestType{}.encode(w));
  REQUIRE(op.integer_domain());
  op.set_alpha(0);
  row_matrix x = random_activations(batch, in, 8);
  x.col(300).setConstant(100.0f);
  row_matrix y(batch, out);
  op.forward(x, y);
  check_integer_forward(op, x, y);
  const row_matrix b = op.base().decode();
  double blocked = 0, per_row = 0;
  for (index_t i = 0; i < batch; ++i) {
    const test::quantized_row row_q = test::quantized_activations(x.row(i).data(), in, in);
    for (index_t r = 0; r < out; ++r) {
      double exact = 0, row_rounded = 0;
      for (index_t c = 0; c < in; ++c) {
        exact += double{x(i, c)} * b(r, c);
        row_rounded += row_q.value[static_cast<std::size_t>(c)] * b(r, c);
      }
      blocked += std::pow(y(i, r) - exact, 2);
      per_row += std::pow(row_rounded - exact, 2);
    }
  }
  using base = typename decltype(op)::base_codec;
  // The blocks ops/integer_panels.hpp states: 32 columns against INT8 weights, 128 against INT4.
  const index_t block = codec_traits<base>::bits == 8 ? 32 : (std::min<index_t>)(128, op.base().storage().group_size());
  CHECK(integer_activation_cols<base>(op.base().storage()) == block);
  const double expected = std::sqrt(static_cast<double>(block) / in + 0.0016);
  CAPTURE(codec_traits<TestType>::name, block, std::sqrt(blocked / per_row), expected);
  CHECK(std::sqrt(blocked) < 1.2 * expected * std::sqrt(per_row));
}


TEMPLATE_LIST_TEST_CASE("integer-domain forward matches the FP64 reference within the activation step",
                        "[op][integer]", integer_op_codecs) {
  // 300 rows: two tiles of the integer path, the second ending in a partial panel.
  index_t rows, cols;  // std::tie: clang 14 cannot capture a structured binding
  std::tie(rows, cols) = GENERATE(table<index_t, index_t>({{37, 129}, {70, 300}, {9, 2200}, {300, 70}}));
  const row_matrix w = synthetic_weights(rows, cols, weight_family::outlier_columns, 3 + rows);
  dual_stream_linear<TestType> op(TestType{}.encode(w), std::vector<float>(static_cast<std::size_t>(rows), -0.5f));
  REQUIRE(op.integer_domain());  // the default
  op.set_integer_domain(false);
  REQUIRE(!op.integer_domain());
  op.set_integer_domain(true);
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
