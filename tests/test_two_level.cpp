// The two-level-scale codecs: layout sizes, derived error bounds per bit width, every level
// reachable, edge rows, importance weights, hostile storage, fast decode against the reference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <qcodec/qcodec.hpp>

#include "importance_checks.hpp"
#include "same_bytes_on_every_target.hpp"
#include "synthetic_weights.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

/// Bytes of the layout computed from the header's description, independently of the codec.
template <class C>
std::size_t expected_bytes(index_t rows, index_t cols) {
  const index_t subs = (cols + C::sub_block - 1) / C::sub_block;
  const index_t supers = std::max<index_t>(1, cols / C::super_block);  // the last takes the row's tail
  const index_t per_row = (cols * C::bits + 7) / 8 + (subs * C::scale_bits + 7) / 8 +
                          (C::symmetric ? 0 : (subs * C::bits + 7) / 8) + 2 * supers;
  return static_cast<std::size_t>(rows * per_row);
}

/// Step and zero level of every element, read from the storage (the decode's step).
template <class C>
void for_each_element(const typename C::storage& s, auto&& f) {
  for (index_t r = 0; r < s.rows; ++r)
    for (index_t c = 0; c < s.cols; ++c) f(r, c, s.step(r, c / C::sub_block), s.offset(r, c / C::sub_block));
}

template <class C>
unsigned code_at(const typename C::storage& s, index_t r, index_t c) {
  return read_bits(s.codes.data() + r * s.code_row_bytes(), c, C::bits);
}

const std::vector<std::pair<index_t, index_t>> ragged_shapes{{1, 1}, {3, 17}, {5, 100}, {4, 257}, {2, 515}, {33, 64}};

}  // namespace

TEMPLATE_LIST_TEST_CASE("two-level layout: bytes, traits and name", "[two_level]", two_level_codecs) {
  using traits = codec_traits<TestType>;
  for (const auto& [rows, cols] : ragged_shapes) {
    const auto encoded = TestType{}.encode(synthetic_weights(rows, cols, weight_family::gaussian, 5 + cols));
    CAPTURE(traits::name, rows, cols);
    CHECK(encoded.byte_size() == expected_bytes<TestType>(rows, cols));
  }
  // One full super-block: codes, sub-scales (and zero points), one FP16 scale.
  CHECK(traits::bytes_per_block * 8 ==
        TestType::super_block * TestType::bits +
            TestType::super_block / TestType::sub_block * (TestType::scale_bits + (TestType::symmetric ? 0 : TestType::bits)) + 16);
  STATIC_REQUIRE(traits::is_linear);
  STATIC_REQUIRE(!integer_codec<TestType>);
}

TEST_CASE("two-level names and sizes of two variants, by hand", "[two_level]") {
  CHECK(codec_traits<two_level<3, 16>>::name == "int3-2level-g16-q6-s256");
  CHECK(codec_traits<two_level<5, 32, symmetry::asymmetric>>::name == "int5-2level-g32-q6-s256-asym");
  // 256 * 3 / 8 = 96 code bytes, 16 sub-scales of 6 bits = 12 bytes, 2 bytes of FP16: 3.4375 bpw.
  CHECK(codec_traits<two_level<3, 16>>::bytes_per_block == 110);
  // 256 * 5 / 8 = 160, 8 sub-blocks of 6 + 5 bits = 11 bytes, 2: 5.40625 bpw.
  CHECK(codec_traits<two_level<5, 32, symmetry::asymmetric>>::bytes_per_block == 173);
}

// Worst case: rounding to the nearest level leaves |w - ŵ| <= |step| / 2 for every element
// inside the sub-block's level range; an element outside it is clipped to the extreme level on
// its own side (|ŵ| <= |w|, same sign). Nothing else may happen.
TEMPLATE_LIST_TEST_CASE("two-level round trip: step/2 per element unless clipped, never a sign flip",
                        "[two_level]", two_level_codecs) {
  const auto family = GENERATE(weight_family::gaussian, weight_family::heavy_tailed, weight_family::outlier_columns);
  for (const auto& [rows, cols] : ragged_shapes) {
    const row_matrix w = synthetic_weights(rows, cols, family, 7 + rows * cols);
    const auto encoded = TestType{}.encode(w);
    const row_matrix d = encoded.decode();
    CAPTURE(codec_traits<TestType>::name, rows, cols, examples::family_name(family));
    index_t violations = 0;
    for_each_element<TestType>(encoded.storage(), [&](index_t r, index_t c, float step, int zero) {
      const int level = static_cast<int>(code_at<TestType>(encoded.storage(), r, c)) - zero;
      const bool extreme = level == -zero || level == TestType::code_max - zero;
      const double err = std::abs(double{w(r, c)} - d(r, c));
      const bool rounded = err <= 0.5 * std::abs(double{step}) * (1 + 0x1p-22);
      const bool clipped = extreme && std::abs(d(r, c)) <= std::abs(w(r, c)) && d(r, c) * w(r, c) >= 0;
      if (!(rounded || clipped) && violations++ < 3)
        FAIL_CHECK("row " << r << " col " << c << ": w " << w(r, c) << " decoded " << d(r, c) << " step " << step);
    });
    CHECK(violations == 0);
    CHECK(measure_fidelity(w, d).sign_flips == 0);
  }
}

// RMS: an element inside its level range is rounded to the nearest of levels |step| apart; for
// weights whose density is smooth on the scale of a step, the rounding error is close to
// uniform on [-step/2, step/2] (variance step^2 / 12), and the least-squares step search only
// lowers it. Over N = 64 x 1024 Gaussian elements the mean of e^2 for uniform e has relative
// standard deviation sqrt(4/5 / N) < 0.4%, so a 5% slack is over 10 standard deviations.
TEMPLATE_LIST_TEST_CASE("two-level RMS error of unclipped elements is at most step / sqrt(12)",
                        "[two_level]", two_level_codecs) {
  const row_matrix w = synthetic_weights(64, 1024, weight_family::gaussian, 99);
  const auto encoded = TestType{}.encode(w);
  const row_matrix d = encoded.decode();
  double error = 0, bound = 0;
  index_t clipped = 0;
  for_each_element<TestType>(encoded.storage(), [&](index_t r, index_t c, float step, int zero) {
    const int level = static_cast<int>(code_at<TestType>(encoded.storage(), r, c)) - zero;
    const double e = double{w(r, c)} - d(r, c);
    if ((level == -zero || level == TestType::code_max - zero) && std::abs(e) > 0.5 * std::abs(step)) {
      ++clipped;
      return;
    }
    error += e * e;
    bound += double{step} * step / 12;
  });
  CAPTURE(codec_traits<TestType>::name, clipped, std::sqrt(error / bound));
  CHECK(error <= 1.05 * 1.05 * bound);
  // The search clips on purpose (most at 2 bits: 5% of Gaussian elements); the bound above
  // must still cover the great majority of elements.
  CHECK(clipped < w.size() / 10);
}

TEMPLATE_LIST_TEST_CASE("two-level codes reach all 2^b levels, the symmetric -2^(b-1) included",
                        "[two_level]", two_level_codecs) {
  const row_matrix w = synthetic_weights(64, 1024, weight_family::heavy_tailed, 3);
  const auto encoded = TestType{}.encode(w);
  std::vector<index_t> seen(static_cast<std::size_t>(TestType::code_max + 1), 0);
  for (index_t r = 0; r < w.rows(); ++r)
    for (index_t c = 0; c < w.cols(); ++c) ++seen[code_at<TestType>(encoded.storage(), r, c)];
  CAPTURE(codec_traits<TestType>::name);
  for (std::size_t code = 0; code < seen.size(); ++code) CHECK(seen[code] > 0);
}

TEMPLATE_LIST_TEST_CASE("two-level edge rows: zero, constant, denormal, large", "[two_level]", two_level_codecs) {
  row_matrix w(5, 70);
  for (index_t c = 0; c < w.cols(); ++c) {
    w(0, c) = 0.0f;
    w(1, c) = -0.37f;
    w(2, c) = (c % 2 ? -1.0f : 1.0f) * 1e-40f * static_cast<float>(c + 1);
    w(3, c) = (c % 3 ? 1.0f : -1.0f) * 1e3f * static_cast<float>(c + 1);  // up to 7e4
    w(4, c) = c == 0 ? 1.0f : 1e-6f;  // one large element beside tiny ones
  }
  const auto encoded = TestType{}.encode(w);
  const row_matrix d = encoded.decode();
  CAPTURE(codec_traits<TestType>::name);
  CHECK(d.allFinite());
  CHECK((d.row(0).array() == 0.0f).all());
  // A constant sub-block is exact up to the FP16 x sub-scale x level representation: the
  // least-squares step of equal values is |w| / level, within 1/2^ScaleBits of the grid.
  CHECK(((d.row(1).array() + 0.37f).abs() <= 0.37f * 0.05f).all());
  // Denormals are below FP16's range: they decode to 0 (error <= |w| < 1e-37), never flipped.
  CHECK(((d.row(2) - w.row(2)).array().abs() <= w.row(2).array().abs()).all());
  // Large values: relative error of the row within the step bound of the widest level count.
  const double rel = (d.row(3) - w.row(3)).norm() / w.row(3).norm();
  CHECK(rel < 1.0 / (1 << (TestType::bits - 1)));
  CHECK(measure_fidelity(w, d).sign_flips == 0);
}

TEMPLATE_LIST_TEST_CASE("two-level refuses weights beyond the FP16 super-scale range by name and row",
                        "[two_level][errors]", two_level_codecs) {
  row_matrix w = row_matrix::Constant(3, 40, 0.5f);
  w(2, 5) = 1e30f;
  const row_matrix before = w;
  CHECK_THROWS_WITH(TestType{}.encode(w, "layer3.up"),
                    Catch::Contains("'layer3.up'") && Catch::Contains("row 2") && Catch::Contains("FP16"));
  CHECK(w == before);
}

TEMPLATE_LIST_TEST_CASE("two-level importance weights: checked, and uniform ones change nothing",
                        "[two_level]", two_level_codecs) {
  const row_matrix w = synthetic_weights(7, 300, weight_family::heavy_tailed, 12);
  const TestType codec;
  const auto plain = codec.encode(w, "w");
  std::vector<float> ones(300, 1.0f), fours(300, 4.0f);
  // Weights 1 are the unweighted sums; a power-of-two factor scales every sum exactly.
  CHECK(codec.encode(w, "w", ones).storage().codes == plain.storage().codes);
  const auto scaled = codec.encode(w, "w", fours).storage();
  CHECK(scaled.codes == plain.storage().codes);
  CHECK(scaled.sub_scales == plain.storage().sub_scales);
  CHECK(scaled.super_scales == plain.storage().super_scales);
  check_column_importance<TestType>(w);
}

TEMPLATE_LIST_TEST_CASE("two-level validate rejects hostile storage by array", "[two_level][errors]",
                        two_level_codecs) {
  const auto good = TestType{}.encode(synthetic_weights(3, 70, weight_family::gaussian, 4)).storage();
  CHECK_NOTHROW(TestType::validate(good, "w"));
  const auto rejects = [&](auto corrupt, const char* what) {
    auto s = good;
    corrupt(s);
    CHECK_THROWS_WITH(TestType::validate(s, "layer9"), Catch::Contains("'layer9'") && Catch::Contains(what));
    CHECK_THROWS_AS(encoded_matrix<TestType>(s), qcodec::error);
  };
  rejects([](auto& s) { s.codes.pop_back(); }, "codes");
  rejects([](auto& s) { s.sub_scales.push_back(0); }, "sub_scales");
  rejects([](auto& s) { s.super_scales.pop_back(); }, "super_scales");
  if constexpr (!TestType::symmetric) rejects([](auto& s) { s.zero_points.clear(); }, "zero_points");
  rejects([](auto& s) { s.super_scales[1] = half(std::numeric_limits<float>::quiet_NaN()); }, "scale 1");
  rejects([](auto& s) { s.super_scales[0] = half(std::numeric_limits<float>::infinity()); }, "scale 0");
  rejects([](auto& s) { s.super_scales[0] = half(-1.0f); }, "scale 0");
  // 70 columns: the last code byte of a row holds padding bits unless 70 * bits is a multiple of 8.
  if ((70 * TestType::bits) % 8 != 0)
    rejects([](auto& s) { s.codes[static_cast<std::size_t>(s.code_row_bytes() - 1)] |= 0x80; }, "padding");
  // 5 sub-blocks of 16 or 3 of 32: the sub-scale stream's last byte has padding bits.
  if ((good.sub_blocks_per_row() * TestType::scale_bits) % 8 != 0)
    rejects([](auto& s) { s.sub_scales[static_cast<std::size_t>(2 * s.sub_scale_row_bytes() - 1)] |= 0x80; }, "padding");
  auto misshapen = good;
  misshapen.cols = 78;  // 8 more columns: Bits more code bytes per row
  CHECK_THROWS_AS(TestType::validate(misshapen, "w"), qcodec::error);
}

TEMPLATE_LIST_TEST_CASE("two-level encodes to the same bytes on every SIMD target", "[two_level][simd]",
                        two_level_codecs) {
  test::check_same_bytes_on_every_target<TestType>(GENERATE(as<index_t>{}, 17, 100, 515));
}

TEMPLATE_LIST_TEST_CASE("two-level fast decode equals the reference bit for bit on ragged shapes",
                        "[two_level]", two_level_codecs) {
  std::mt19937 rng(123);
  std::uniform_int_distribution<index_t> dim(1, 600);
  for (int trial = 0; trial < 6; ++trial) {
    const index_t rows = 1 + dim(rng) % 5, cols = dim(rng);
    row_matrix w = synthetic_weights(rows, cols, weight_family::outlier_columns, 50 + trial);
    for (index_t c = 0; c < cols; c += 3) w(0, c) = 0;
    const auto encoded = TestType{}.encode(w);
    std::vector<float> reference(static_cast<std::size_t>(rows * cols));
    TestType::decode_rows_ref(encoded.storage(), 0, rows, reference.data());
    std::vector<float> fast(reference.size() + 2, -7.0f);  // output one float off alignment
    TestType::decode_rows(encoded.storage(), 0, rows, fast.data() + 1);
    CAPTURE(codec_traits<TestType>::name, rows, cols);
    CHECK(std::memcmp(fast.data() + 1, reference.data(), reference.size() * sizeof(float)) == 0);
    CHECK(fast.front() == -7.0f);
    CHECK(fast.back() == -7.0f);
  }
}

TEST_CASE("two-level super-block scale: the least-squares candidate at or below the covering one", "[two_level]") {
  constexpr int m_min = -32, m_max = 31;
  const float delta = 1.0f / 64;  // exact in FP16
  const auto covering = [&](const std::vector<float>& scales) {
    float largest = 0;
    for (const float v : scales) largest = std::max(largest, std::abs(v));
    return detail::super_scale_covering(largest, m_max, 1.0f, "w", 0);
  };
  const auto miss = [&](const std::vector<float>& scales, float d) {
    double sum = 0;
    for (const float v : scales) {
      const double m = std::clamp(std::nearbyint(v / d), static_cast<float>(m_min), static_cast<float>(m_max));
      sum += (v - d * m) * (v - d * m);
    }
    return sum;
  };
  const auto chosen = [&](const std::vector<float>& scales) {
    return detail::super_scale_by_least_squares(scales.data(), static_cast<index_t>(scales.size()), covering(scales),
                                                m_min, m_max);
  };
  SECTION("scales on the covering grid keep it") {
    const std::vector<float> scales{31 * delta, 7 * delta, -12 * delta, 0, 20 * delta};
    CHECK(covering(scales) == delta);
    CHECK(chosen(scales) == delta);
  }
  SECTION("one scale off the grid of the others: a smaller d clips it and wins") {
    const std::vector<float> scales{31.6f * delta, 10 * delta, 20 * delta, -5 * delta, 15 * delta, 29 * delta};
    const float d0 = covering(scales), d = chosen(scales);
    // The candidates d0 (1 - k / 100), k = 0..10, in FP16; the first of the least miss.
    float expected = d0;
    for (int k = 1; k <= 10; ++k) {
      const float candidate = static_cast<float>(static_cast<half>(d0 * (1.0f - 0.01f * static_cast<float>(k))));
      if (miss(scales, candidate) < miss(scales, expected)) expected = candidate;
    }
    CHECK(d == expected);
    CHECK(d < d0);
    CHECK(miss(scales, d) < miss(scales, d0));
  }
  SECTION("the proposal replaces d0 only where the blocks' own errors say so") {
    const std::vector<float> scales{31.6f * delta, 10 * delta, 20 * delta, -5 * delta, 15 * delta, 29 * delta};
    const float d0 = covering(scales), d1 = chosen(scales);
    REQUIRE(d1 < d0);
    std::vector<int> m(scales.size());
    // Errors as the proposal counts them: d1 wins.
    const auto miss_error = [&](index_t b, float d, int code) {
      const double e = scales[static_cast<std::size_t>(b)] - d * static_cast<float>(code);
      return e * e;
    };
    CHECK(detail::choose_super_scale(scales.data(), 6, d0, m_min, m_max, m.data(), miss_error) == d1);
    CHECK(m[0] == m_max);  // the largest block clipped
    // Clipping the largest block costs more than every miss (as for 8-bit codes): d0 stays,
    // with its own sub-scales.
    const auto clipping_error = [&](index_t b, float d, int code) {
      return miss_error(b, d, code) + (b == 0 && d * static_cast<float>(code) < scales[0] ? 1.0 : 0.0);
    };
    CHECK(detail::choose_super_scale(scales.data(), 6, d0, m_min, m_max, m.data(), clipping_error) == d0);
    for (std::size_t b = 0; b < scales.size(); ++b)
      CHECK(m[b] == detail::nearer_sub_scale(scales[b], d0, m_min, m_max, [&](int code) {
                      return clipping_error(static_cast<index_t>(b), d0, code);
                    }).code);
  }
  SECTION("an all-zero super-block keeps d = 0") {
    const std::vector<float> scales(4, 0.0f);
    CHECK(chosen(scales) == 0.0f);
  }
}

TEST_CASE("two-level layout by hand: a 3-bit stream across bytes", "[two_level]") {
  // Codes 0..7 at 3 bits, little-endian: field i at bits [3i, 3i + 3).
  std::vector<std::uint8_t> stream(3, 0);
  for (index_t i = 0; i < 8; ++i) write_bits(stream.data(), i, 3, static_cast<unsigned>(i));
  // 0b000 001 010 011 100 101 110 111 read from bit 0: bytes 0x88, 0xC6, 0xFA.
  CHECK(stream == std::vector<std::uint8_t>{0x88, 0xC6, 0xFA});
  for (index_t i = 0; i < 8; ++i) CHECK(read_bits(stream.data(), i, 3) == static_cast<unsigned>(i));
}
