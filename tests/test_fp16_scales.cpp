// The FP16 scale rule of the linear codec (linear.hpp, fp16_scale_loses_precision): a scale
// below FP16's normal range (2^-14) is kept only while its rounding moves the block's decoded
// values by at most 2^-11 M (M the tensor's largest magnitude); otherwise encode refuses,
// naming the tensor and the row, as it does for a scale that overflows.
#include <catch2/catch.hpp>

#include <cmath>

#include <qcodec/qcodec.hpp>

using namespace qcodec;

namespace {

using int8_f16 = linear<8, per_row, half>;
using int4_g128_f16 = linear<4, per_group<128>, half>;

/// Two rows: row 0 holds +-big (the tensor's largest magnitude M), row 1 holds +-small.
row_matrix two_rows(float big, float small) {
  row_matrix w(2, 8);
  for (index_t c = 0; c < 8; ++c) {
    const float sign = c % 2 ? -1.0f : 1.0f;
    w(0, c) = sign * big / static_cast<float>(c + 1);
    w(1, c) = sign * small / static_cast<float>(c + 1);
  }
  return w;
}

int8_f16 absmax_int8_f16() {
  int8_f16 codec;
  codec.clip = clip_rule::absmax();
  return codec;
}

}  // namespace

TEST_CASE("FP16 scales: the smallest normal scale 2^-14 is kept exactly", "[linear][fp16]") {
  // Symmetric INT8: scale = max|w| / 127, so max|w| = 127 * 2^-14 gives the scale 2^-14.
  const row_matrix w = two_rows(127 * 0x1p-14f, 127 * 0x1p-14f);
  const auto encoded = absmax_int8_f16().encode(w, "edge");
  CHECK(static_cast<float>(encoded.storage().scales[0]) == 0x1p-14f);
  // Decoded within half a step of every weight.
  CHECK((encoded.decode() - w).cwiseAbs().maxCoeff() <= 0x1p-15f);
}

TEST_CASE("FP16 scales: a subnormal scale is refused exactly where its rounding exceeds 2^-11 M",
          "[linear][fp16]") {
  // Row 1: scale s = 2^-20 + 2^-25, half-way between the subnormal FP16 values 16 * 2^-24 and
  // 17 * 2^-24; it rounds to even, 2^-20, moving the values by 127 * 2^-25 (the largest move a
  // subnormal rounding can make). That is 2^-11 M for M = 127 * 2^-14: kept at that M (row 0's
  // scale then is the smallest normal, 2^-14), refused for the next float below it.
  const float small = 127 * (0x1p-20f + 0x1p-25f);
  const float edge = 127 * 0x1p-14f;
  const auto kept = absmax_int8_f16().encode(two_rows(edge, small), "w");
  CHECK(static_cast<float>(kept.storage().scales[1]) == 0x1p-20f);
  CHECK_THROWS_WITH(absmax_int8_f16().encode(two_rows(std::nextafter(edge, 0.0f), small), "w"),
                    Catch::Contains("tensor 'w'") && Catch::Contains("row 1") &&
                        Catch::Contains("underflows the FP16 scale type") && Catch::Contains("FP32 scales"));
}

TEST_CASE("FP16 scales: a scale that flushes to zero is kept only for a negligible block",
          "[linear][fp16]") {
  // Row 1's scale 1e-30 / 127 flushes to 0: it decodes to 0, an error of 1e-30 <= 2^-11 * 1.
  const auto negligible = absmax_int8_f16().encode(two_rows(1.0f, 1e-30f), "w");
  CHECK(static_cast<float>(negligible.storage().scales[1]) == 0.0f);
  CHECK((negligible.decode().row(1).array() == 0.0f).all());
  // A whole tensor of |w| <= 1e-6 would decode to zeros (rel_err 1): refused, with the default
  // (mse) clip too, and for int4-g128 at 1e-7; FP32 scales keep it.
  const row_matrix tiny = two_rows(1e-6f, 5e-7f);
  CHECK_THROWS_WITH(int8_f16{}.encode(tiny, "tiny"),
                    Catch::Contains("tensor 'tiny'") && Catch::Contains("row 0") && Catch::Contains("underflows"));
  row_matrix tiny_group(3, 128);
  for (index_t r = 0; r < 3; ++r)
    for (index_t c = 0; c < 128; ++c) tiny_group(r, c) = 1e-7f * std::sin(0.1f * static_cast<float>(c + 128 * r + 1));
  CHECK_THROWS_WITH(int4_g128_f16{}.encode(tiny_group, "g"), Catch::Contains("tensor 'g'") && Catch::Contains("underflows"));
  const fidelity_report fp32 = measure_fidelity(tiny, linear<8>{}.encode(tiny).decode());
  CHECK(fp32.rel_err < 0.01);
  // All-zero rows have scale 0 and are never refused.
  CHECK_NOTHROW(int8_f16{}.encode(row_matrix::Zero(2, 8)));
}
