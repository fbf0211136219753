// The Hadamard-rotated codecs: the rotation against its definition (an O(n^2) sum in double)
// within its stated rounding bound, the signs from their seed, encode = the base codec on the
// rotated rows, decode = the exact inverse rotation of the base's decode within the bound, the
// op = the base op on rotated activations bit for bit on every path (the integer domain
// included) and within the FP32 accumulation bound of x Ŵᵀ, refused seeds and signs, and the
// measured gain on weights with outlier input columns.
#include <catch2/catch.hpp>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <qcodec/qcodec.hpp>

#include "synthetic_weights.hpp"

using namespace qcodec;
using examples::synthetic_weights;
using examples::weight_family;

namespace {

/// The blocks of a row as the rotation's definition states them (written out, not the
/// library's for_each_block): whole blocks, then the tail's binary expansion, largest first.
std::vector<std::pair<index_t, index_t>> blocks_of(index_t cols, index_t block) {
  std::vector<std::pair<index_t, index_t>> blocks;
  index_t c = 0;
  while (cols - c >= block) blocks.emplace_back(c, block), c += block;
  for (index_t n = block; n >= 1; n /= 2)
    if (n < block && cols - c >= n) blocks.emplace_back(c, n), c += n;
  return blocks;
}

std::vector<int> signs_of(std::uint32_t seed, index_t cols) {
  std::mt19937 generator(seed);
  std::vector<int> signs(static_cast<std::size_t>(cols));
  std::uint32_t word = 0;
  for (index_t c = 0; c < cols; ++c) {
    if (c % 32 == 0) word = generator();
    signs[static_cast<std::size_t>(c)] = (word >> (c % 32)) & 1u ? -1 : 1;
  }
  return signs;
}

/// Exact rotation (forward: H D v / sqrt(n); inverse: D H v / sqrt(n)) in double, and per
/// element the bound gamma_{log2 n + 1} sum |v| / sqrt(n) of the FP32 transform.
struct exact_rotation {
  std::vector<double> value, bound;
};
exact_rotation rotate_exactly(const float* v, index_t cols, index_t block, const std::vector<int>& signs, bool inverse) {
  exact_rotation out{std::vector<double>(static_cast<std::size_t>(cols)), std::vector<double>(static_cast<std::size_t>(cols))};
  for (const auto& [first, n] : blocks_of(cols, block)) {
    const double k = std::log2(static_cast<double>(n)) + 1, gamma = k * 0x1p-24 / (1 - k * 0x1p-24);
    double magnitude = 0;
    for (index_t j = 0; j < n; ++j) magnitude += std::abs(static_cast<double>(v[first + j]));
    for (index_t i = 0; i < n; ++i) {
      double sum = 0;
      for (index_t j = 0; j < n; ++j) {
        const double h = std::popcount(static_cast<unsigned>(i & j)) % 2 ? -1.0 : 1.0;
        sum += h * (inverse ? 1 : signs[static_cast<std::size_t>(first + j)]) * v[first + j];
      }
      if (inverse) sum *= signs[static_cast<std::size_t>(first + i)];
      out.value[static_cast<std::size_t>(first + i)] = sum / std::sqrt(static_cast<double>(n));
      out.bound[static_cast<std::size_t>(first + i)] = gamma * magnitude / std::sqrt(static_cast<double>(n));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("hadamard rotation and its inverse are the stated transform within the rounding bound",
          "[rotated]") {
  const auto cols = GENERATE(as<index_t>{}, 1, 2, 3, 7, 16, 64, 65, 100, 129, 300);
  const auto block = GENERATE(as<index_t>{}, 16, 64);
  const std::uint32_t seed = 12345;
  const std::vector<int> signs = signs_of(seed, cols);
  const std::vector<std::uint8_t> packed = hadamard::signs_for(seed, cols);
  REQUIRE(packed.size() == static_cast<std::size_t>((cols + 7) / 8));
  for (index_t c = 0; c < cols; ++c) CHECK(hadamard::negative(packed.data(), c) == (signs[static_cast<std::size_t>(c)] < 0));
  const row_matrix v = synthetic_weights(1, cols, weight_family::heavy_tailed, 7 + cols);
  for (const bool inverse : {false, true}) {
    std::vector<float> row(v.data(), v.data() + cols);
    if (inverse) hadamard::unrotate(row.data(), cols, block, packed.data());
    else hadamard::rotate(row.data(), cols, block, packed.data());
    const exact_rotation exact = rotate_exactly(v.data(), cols, block, signs, inverse);
    for (index_t c = 0; c < cols; ++c) {
      CAPTURE(cols, block, inverse, c);
      CHECK(std::abs(row[static_cast<std::size_t>(c)] - exact.value[static_cast<std::size_t>(c)]) <= exact.bound[static_cast<std::size_t>(c)]);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("rotated encode is the base on rotated rows, decode inverts it within the bound",
                        "[rotated]", rotated_codecs) {
  using base = typename TestType::base_codec;
  const auto cols = GENERATE(as<index_t>{}, 5, 64, 100, 257);
  const row_matrix w = synthetic_weights(6, cols, weight_family::outlier_columns, 3 + cols);
  const auto encoded = TestType{}.encode(w);
  const auto& s = encoded.storage();
  REQUIRE(s.seed.size() == 1);
  const std::vector<int> signs = signs_of(s.seed[0], cols);
  row_matrix turned(w.rows(), cols);
  for (index_t r = 0; r < w.rows(); ++r) {
    const exact_rotation exact = rotate_exactly(w.row(r).data(), cols, TestType::block, signs, false);
    std::vector<float> row(w.row(r).data(), w.row(r).data() + cols);
    hadamard::rotate(row.data(), cols, TestType::block, s.signs.data());
    for (index_t c = 0; c < cols; ++c) turned(r, c) = row[static_cast<std::size_t>(c)];
    for (index_t c = 0; c < cols; ++c)
      CHECK(std::abs(turned(r, c) - exact.value[static_cast<std::size_t>(c)]) <= exact.bound[static_cast<std::size_t>(c)]);
  }
  // The stored base is the base codec's encoding of the rotated rows, bit for bit.
  const auto base_alone = base{}.encode(turned);
  std::vector<std::string> ours, theirs;
  s.base.visit_arrays([&](std::string_view, const auto& a) { ours.emplace_back(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(a[0])); });
  base_alone.storage().visit_arrays([&](std::string_view, const auto& a) { theirs.emplace_back(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(a[0])); });
  CHECK(ours == theirs);
  // Decode: the exact inverse rotation of the base's decode, within the transform's bound.
  const row_matrix base_decoded = base_alone.decode(), decoded = encoded.decode();
  double error = 0, base_error = 0;
  for (index_t r = 0; r < w.rows(); ++r) {
    const exact_rotation exact = rotate_exactly(base_decoded.row(r).data(), cols, TestType::block, signs, true);
    for (index_t c = 0; c < cols; ++c) {
      CAPTURE(codec_traits<TestType>::name, cols, r, c);
      CHECK(std::abs(decoded(r, c) - exact.value[static_cast<std::size_t>(c)]) <= exact.bound[static_cast<std::size_t>(c)]);
      error += std::pow(static_cast<double>(decoded(r, c)) - w(r, c), 2);
      base_error += std::pow(static_cast<double>(base_decoded(r, c)) - turned(r, c), 2);
    }
  }
  // R is orthogonal: the error is the base's on the rotated rows (up to those roundings).
  CHECK(std::sqrt(error) == Approx(std::sqrt(base_error)).epsilon(1e-4));
}

namespace {

template <class Codec>
void check_op_against_base(const row_matrix& w, bool integer) {
  using base = typename Codec::base_codec;
  const auto encoded = Codec{}.encode(w);
  const auto& s = encoded.storage();
  dual_stream_linear<Codec> op(encoded);
  dual_stream_linear<base> base_op{encoded_matrix<base>(s.base)};
  if constexpr (integer_codec<base>) {
    op.set_integer_domain(integer);
    base_op.set_integer_domain(integer);
  }
  const std::vector<int> signs = signs_of(s.seed[0], w.cols());
  for (const index_t batch : {index_t{1}, index_t{3}, index_t{20}}) {
    const row_matrix x = synthetic_weights(batch, w.cols(), weight_family::gaussian, 31 + batch);
    row_matrix turned = x;
    for (index_t b = 0; b < batch; ++b) hadamard::rotate(turned.row(b).data(), w.cols(), Codec::block, s.signs.data());
    row_matrix y(batch, w.rows()), expected(batch, w.rows());
    op.forward(x, y);
    base_op.forward(turned, expected);
    CAPTURE(codec_traits<Codec>::name, batch, integer);
    CHECK(std::memcmp(y.data(), expected.data(), sizeof(float) * static_cast<std::size_t>(y.size())) == 0);
    if (integer) continue;
    // FP32 paths: y = fl(x') . ŵ' with x' = R x rounded (hadamard.hpp's bound delta per
    // element); exactly, x . (Rᵀ ŵ') = (R x)* . ŵ'. So |y - x Ŵ*ᵀ| <= gamma_K sum |x'| |ŵ'| +
    // sum delta |ŵ'|, Ŵ* the exact inverse rotation of the base's decode.
    const row_matrix base_decoded = encoded_matrix<base>(s.base).decode();
    const double k = static_cast<double>(w.cols()), gamma = k * 0x1p-24 / (1 - k * 0x1p-24);
    for (index_t b = 0; b < batch; ++b) {
      const exact_rotation exact_x = rotate_exactly(x.row(b).data(), w.cols(), Codec::block, signs, false);
      for (index_t r = 0; r < w.rows(); ++r) {
        double reference = 0, bound = 0;
        for (index_t c = 0; c < w.cols(); ++c) {
          const double wc = base_decoded(r, c);
          reference += exact_x.value[static_cast<std::size_t>(c)] * wc;
          bound += gamma * std::abs(turned(b, c) * wc) + exact_x.bound[static_cast<std::size_t>(c)] * std::abs(wc);
        }
        CHECK(std::abs(y(b, r) - reference) <= bound);
      }
    }
  }
}

}  // namespace

TEST_CASE("the rotated op is the base op on rotated activations, every path, within the FP32 bound",
          "[rotated][op]") {
  const row_matrix w = synthetic_weights(37, 300, weight_family::outlier_columns, 5);
  check_op_against_base<rotated<linear<4, per_group<32>, half>>>(w, false);
  check_op_against_base<rotated<linear<4, per_group<32>, half>>>(w, true);
  check_op_against_base<rotated<two_level<4, 16>>>(w, false);
  check_op_against_base<rotated<grid<3, 16, grid_levels::fixed, 6>, 16>>(w, false);
}

TEST_CASE("rotated validate refuses a wrong seed, corrupted signs and a missing seed", "[rotated][errors]") {
  using codec = rotated<two_level<4, 16>>;
  const auto encoded = codec{}.encode(synthetic_weights(4, 90, weight_family::gaussian, 2));
  const auto rejects = [&](auto corrupt, const char* what) {
    auto s = encoded.storage();
    corrupt(s);
    CHECK_THROWS_WITH(codec::validate(s, "t"), Catch::Contains("'t'") && Catch::Contains(what));
    CHECK_THROWS_AS(encoded_matrix<codec>(s), qcodec::error);
  };
  rejects([](auto& s) { s.seed[0] ^= 1u; }, "seed");
  rejects([](auto& s) { s.signs[3] ^= 0x10; }, "signs");
  rejects([](auto& s) { s.signs.pop_back(); }, "signs");
  rejects([](auto& s) { s.seed.clear(); }, "seed");
  rejects([](auto& s) { s.base.cols += 16; }, "shapes");
  // Another seed encodes, validates and decodes to about the same fidelity.
  codec other;
  other.seed = 7;
  const row_matrix w = synthetic_weights(4, 90, weight_family::gaussian, 2);
  const auto again = other.encode(w);
  CHECK(again.storage().seed[0] == 7u);
  CHECK(again.storage().signs != encoded.storage().signs);
  CHECK_NOTHROW(codec::validate(again.storage(), "t"));
}

TEST_CASE("rotated encode refuses rows that overflow when rotated, input untouched", "[rotated][errors]") {
  row_matrix w = row_matrix::Constant(3, 64, 1.0f);
  w.row(1).setConstant(FLT_MAX / 2);
  const row_matrix before = w;
  using codec = rotated<two_level<4, 16>>;
  CHECK_THROWS_WITH(codec{}.encode(w, "big"), Catch::Contains("'big'") && Catch::Contains("row 1"));
  CHECK(std::memcmp(w.data(), before.data(), sizeof(float) * static_cast<std::size_t>(w.size())) == 0);
}

TEST_CASE("rotation spreads outlier input columns: a large measured gain", "[rotated]") {
  const row_matrix w = synthetic_weights(64, 1024, weight_family::outlier_columns, 11);
  const double plain = measure_fidelity(w, two_level<4, 16>{}.encode(w).decode()).snr_db;
  const double turned = measure_fidelity(w, rotated<two_level<4, 16>>{}.encode(w).decode()).snr_db;
  CAPTURE(plain, turned);
  CHECK(turned > plain + 3);  // measured +6.8 dB on 256 x 4096
}

TEST_CASE("rotated traits and names", "[rotated][traits]") {
  CHECK(codec_traits<rotated<two_level<4, 16>>>::name == "hadamard64+int4-2level-g16-q6-s256");
  CHECK(codec_traits<rotated<linear<4, per_group<32>, half>, 256>>::name == "hadamard256+int4-g32-f16");
  STATIC_REQUIRE(!is_linear_codec<rotated<linear<4, per_group<32>, half>>>);
  STATIC_REQUIRE(is_rotated<rotated<grid<4, 16, grid_levels::fixed, 6>>>);
  const auto encoded = rotated<two_level<4, 16>>{}.encode(synthetic_weights(3, 40, weight_family::gaussian, 1));
  CHECK(encoded.byte_size() == two_level<4, 16>::byte_size(encoded.storage().base) + 4 + 5);
}
