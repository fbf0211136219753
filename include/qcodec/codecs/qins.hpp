#pragma once
/// QINS codec (log-inverse): a sign bit and an inverse-logarithmic magnitude code per weight,
/// decoded by one signed LUT per tensor times a per-row scale. A codec at rest only: it is not
/// linear, so compute happens after decoding (codec_traits<qins<B>>::is_linear is false).
///
/// Layout of `storage`:
///  - codes: rows x row_bytes; a code is sign bit (bit Bits-1) | magnitude code m
///    (qins_math.hpp); 4-bit codes pack two per byte (core/bit_packing.hpp), a row is padded
///    to whole bytes and a padding nibble holds code 0;
///  - scales: one FP32 per row, the row's largest |w| (0 for a zero row);
///  - lut: 2^Bits FP32 entries, lut[m] = rho^(m-1) = 2^-((m-1) * span / (2^(Bits-1) - 2)),
///    lut[0] = 0, lut[sign | m] = -lut[m]. The span (octaves from the largest level, 1, to
///    the smallest, rho^(max-1)) is the tensor's one parameter.
/// Encoding (the specification): each code is the value-nearest level of its row, as stated
/// in qins_math.hpp. The span is the one that minimises the squared reconstruction error
/// (decoded exactly as stored) of the whole tensor when it has at most 2^16 elements, else of
/// floor(2^16 / cols) (at least 1) evenly spaced rows; it is searched on log2(span) over the grid
/// 0, 1/4, ..., 6 (spans of 1 to 64 octaves: 64 keeps every LUT entry a normal float), then
/// refined by golden-section search on the grid neighbours of the best point until the
/// bracket is narrower than 1/64 (8 steps); the best span evaluated wins.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "qcodec/codecs/array_visiting.hpp"
#include "qcodec/codecs/capabilities.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/qins_math.hpp"
#include "qcodec/codecs/storage_checks.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/core/simd.hpp"

namespace qcodec::inline QCODEC_ABI {

template <int Bits>
class qins {
  static_assert(Bits == 8 || Bits == 4, "qcodec: QINS codes are 8 or 4 bits");

 public:
  static constexpr int max_magnitude = (1 << (Bits - 1)) - 1;
  static constexpr int sign_bit = 1 << (Bits - 1);
  static constexpr int lut_size = 1 << Bits;
  static constexpr double min_span_octaves = 1;
  static constexpr double max_span_octaves = 64;

  struct storage : detail::array_visiting<storage> {
    index_t rows = 0, cols = 0;
    std::vector<std::uint8_t> codes;
    std::vector<float> scales;
    std::vector<float> lut;

    index_t row_bytes() const { return packed_bytes<Bits>(cols); }

    template <class Self, class Visitor>
    static void visit_arrays_of(Self& self, Visitor& visit) {
      visit("codes", self.codes);
      visit("scales", self.scales);
      visit("lut", self.lut);
    }
  };

  /// Encodes `w` with the span that minimises the reconstruction error (see the file comment).
  encoded_matrix<qins> encode(matrix_view w, std::string_view name = "weight") const {
    detail::require_finite_nonempty(w, name);
    const std::vector<float> scales = row_scales(w);
    return encode_rows(w, scales, lut_for(choose_span(w, scales)));
  }

  /// Encodes `w` with a given span in octaves, in (0, max_span_octaves], whose smallest level
  /// is below 1 as a float (spans under about 2^-24 octaves are not).
  encoded_matrix<qins> encode_with_span(matrix_view w, double span_octaves,
                                        std::string_view name = "weight") const {
    detail::require_finite_nonempty(w, name);
    if (!(span_octaves > 0 && span_octaves <= max_span_octaves))
      detail::fail("tensor '", name, "': QINS span ", span_octaves, " octaves is not in (0, ",
                   max_span_octaves, "]");
    std::vector<float> lut = lut_for(span_octaves);
    if (!(lut[max_magnitude] < 1.0f))
      detail::fail("tensor '", name, "': QINS span ", span_octaves,
                   " octaves is too small: its smallest level rounds to 1");
    return encode_rows(w, row_scales(w), std::move(lut));
  }

  /// Encodes `w` with the LUT of `shared` (validated), for rows joining an encoded tensor such
  /// as a cache appended row by row: the codes are nearest to the levels `shared` decodes.
  encoded_matrix<qins> encode_with_lut_of(matrix_view w, const storage& shared,
                                          std::string_view name = "weight") const {
    detail::require_finite_nonempty(w, name);
    validate_lut(shared.lut, name);
    return encode_rows(w, row_scales(w), shared.lut);
  }

  /// Octaves from the largest level to the smallest, as stored in the LUT.
  static double span_octaves(const storage& s) { return -std::log2(static_cast<double>(s.lut[max_magnitude])); }

  /// Ratio rho of adjacent levels, as stored in the LUT.
  static double rho(const storage& s) { return std::exp2(-span_octaves(s) / (max_magnitude - 1)); }

  /// Decodes rows [first, last) with the kernel of the active SIMD target
  /// (codecs/qins_kernels-inl.hpp); bit-exact with decode_rows_ref.
  static void decode_rows(const storage& s, index_t first, index_t last, float* out) {
    simd::dispatch([&](auto target) { qins_decode_rows<qins>(target, s, first, last, out); });
  }

  /// The scalar reference decode: the specification every faster path is tested against.
  static void decode_rows_ref(const storage& s, index_t first, index_t last, float* out) {
    for (index_t r = first; r < last; ++r, out += s.cols) {
      const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
      for (index_t c = 0; c < s.cols; ++c)
        out[c] = qins_math::decode(unpack_code<Bits>(row, c), s.lut.data(), s.scales[static_cast<std::size_t>(r)]);
    }
  }

  /// An activation row x (cols values) in the order dot_row with `target` reads it
  /// (qins_order_activations).
  template <class Target>
  static void order_activations(Target target, index_t cols, const float* x, float* out) {
    qins_order_activations<qins>(target, cols, x, out);
  }

  /// out[b] = sum_c Ŵ(r, c) x_b(c) for b < NB with the kernel of `target` (qins_dot_row), x[b]
  /// as order_activations leaves it. The decoded cache is not read (the parameter keeps the
  /// op's one call): its 4-byte values are slower to stream than the 1-byte codes are to
  /// decode here, and the same bits come either way.
  template <int NB, class Target>
  static void dot_row(Target target, const storage& s, index_t r, const float* const* x, float* out,
                      const float* /*cached*/ = nullptr) {
    qins_dot_row<qins, NB>(target, s, r, x, out);
  }

  static void validate(const storage& s, std::string_view name) {
    detail::require_shape(name, s.rows, s.cols);
    const auto expect = [&](std::string_view array, std::size_t size, index_t expected) {
      detail::require_array_size(name, array, size, static_cast<std::size_t>(expected), s.rows, s.cols);
    };
    expect("codes", s.codes.size(), s.rows * s.row_bytes());
    expect("scales", s.scales.size(), s.rows);
    detail::require_scales(name, s.scales);
    validate_lut(s.lut, name);
  }

  /// Throws qcodec::error naming `name` unless `lut` is a signed LUT of this codec.
  static void validate_lut(const std::vector<float>& lut, std::string_view name) {
    if (lut.size() != lut_size)
      detail::fail("tensor '", name, "': lut has ", lut.size(), " entries, expected ", lut_size);
    const auto bad_lut = [&](int entry, auto... why) {
      detail::fail("tensor '", name, "': lut[", entry, "] = ", lut[static_cast<std::size_t>(entry)],
                   ": ", why...);
    };
    if (lut[0] != 0.0f) bad_lut(0, "must be 0");
    if (lut[1] != 1.0f) bad_lut(1, "must be 1");
    const float smallest = lut[max_magnitude];
    if (!(smallest >= std::exp2(-max_span_octaves) && smallest < 1.0f))
      bad_lut(max_magnitude, "the span must be in (0, ", max_span_octaves, "] octaves");
    // Each entry was rounded once from the exact geometric level, relative error <= 2^-24, so
    // the step recovered from the smallest entry predicts every entry within 2^-24 (its own
    // rounding, spread over the steps) and an entry differs from its prediction by at most
    // 2^-23 (plus the double arithmetic, far below); 2^-22 leaves a factor 2.
    const double step = step_of(-std::log2(static_cast<double>(smallest)));
    for (int m = 1; m <= max_magnitude; ++m) {
      const double expected = std::exp2(-(m - 1) * step);
      if (!(std::abs(lut[static_cast<std::size_t>(m)] / expected - 1) <= 0x1p-22))
        bad_lut(m, "not the geometric level ", expected);
    }
    // Bit patterns: the vector backends decode sign | m as -|lut[m]|, so lut[sign | 0] must be
    // -0.0 exactly, not +0.0 (which compares equal).
    for (int m = 0; m <= max_magnitude; ++m)
      if (std::bit_cast<std::uint32_t>(lut[static_cast<std::size_t>(sign_bit | m)]) !=
          std::bit_cast<std::uint32_t>(-lut[static_cast<std::size_t>(m)]))
        bad_lut(sign_bit | m, "must be -lut[", m, "]");
  }

  static std::size_t byte_size(const storage& s) {
    return s.codes.size() + (s.scales.size() + s.lut.size()) * sizeof(float);
  }

 private:
  static constexpr index_t search_elements = index_t{1} << 16;

  using level_array = std::array<float, max_magnitude + 1>;

  static std::vector<float> row_scales(matrix_view w) {
    std::vector<float> scales(static_cast<std::size_t>(w.rows()));
    for (index_t r = 0; r < w.rows(); ++r) scales[static_cast<std::size_t>(r)] = w.row(r).cwiseAbs().maxCoeff();
    return scales;
  }

  /// Decoded magnitudes of a row: levels[m] = lut[m] * scale, the products decode computes.
  static level_array row_levels(const float* lut, float scale) {
    level_array levels;
    for (int m = 0; m <= max_magnitude; ++m) levels[static_cast<std::size_t>(m)] = lut[m] * scale;
    return levels;
  }

  static double step_of(double span_octaves) { return span_octaves / (max_magnitude - 1); }

  static std::vector<float> lut_for(double span_octaves) {
    std::vector<float> lut(lut_size);
    qins_math::build_lut(lut.data(), Bits, step_of(span_octaves));
    return lut;
  }

  static encoded_matrix<qins> encode_rows(matrix_view w, const std::vector<float>& scales,
                                          std::vector<float> lut) {
    storage s;
    s.rows = w.rows();
    s.cols = w.cols();
    s.codes.assign(static_cast<std::size_t>(s.rows * s.row_bytes()), 0);
    s.scales = scales;
    s.lut = std::move(lut);
    // The step only seeds each code's search (magnitude_code_guess); the LUT decides the code.
    const float inverse_step = static_cast<float>(1 / step_of(span_octaves(s)));
    for (index_t r = 0; r < s.rows; ++r) {
      const float scale = s.scales[static_cast<std::size_t>(r)];
      if (scale == 0) continue;  // a zero row keeps code 0 everywhere
      const level_array levels = row_levels(s.lut.data(), scale);
      const float log2_scale = std::log2(scale);
      std::uint8_t* codes = s.codes.data() + r * s.row_bytes();
      const float* row = w.row(r).data();
      for (index_t c = 0; c < s.cols; ++c)
        pack_code<Bits>(codes, c, qins_math::encode(row[c], levels.data(), max_magnitude,
                                                    log2_scale, inverse_step));
    }
    return encoded_matrix<qins>(std::move(s));
  }

  /// The span rule of the file comment. The sampled non-zero magnitudes and their
  /// log2(scale / |w|) are gathered once; each candidate span then costs one O(1) nearest-level
  /// search per sampled element, with the same levels and code choice as encode_rows.
  static double choose_span(matrix_view w, const std::vector<float>& scales) {
    const index_t rows = w.rows(), cols = w.cols();
    const index_t sampled_rows =
        rows * cols <= search_elements ? rows : std::clamp<index_t>(search_elements / cols, 1, rows);
    std::vector<index_t> row_of_run;
    std::vector<std::size_t> run_end;
    std::vector<float> magnitudes, log2_ratios;
    for (index_t i = 0; i < sampled_rows; ++i) {
      const index_t r = (2 * i + 1) * rows / (2 * sampled_rows);
      const float scale = scales[static_cast<std::size_t>(r)];
      if (scale == 0) continue;
      const float log2_scale = std::log2(scale);
      for (index_t c = 0; c < cols; ++c) {
        const float magnitude = std::abs(w(r, c));
        if (magnitude == 0) continue;
        magnitudes.push_back(magnitude);
        log2_ratios.push_back(log2_scale - std::log2(magnitude));
      }
      row_of_run.push_back(r);
      run_end.push_back(magnitudes.size());
    }

    const auto squared_error = [&](double log2_span) {
      const double step = step_of(std::exp2(log2_span));
      std::array<float, lut_size> lut;
      qins_math::build_lut(lut.data(), Bits, step);
      const float inverse_step = static_cast<float>(1 / step);
      double sum = 0;
      std::size_t k = 0;
      for (std::size_t run = 0; run < row_of_run.size(); ++run) {
        const level_array levels = row_levels(lut.data(), scales[static_cast<std::size_t>(row_of_run[run])]);
        for (; k < run_end[run]; ++k) {
          const int guess = qins_math::magnitude_code_guess(log2_ratios[k], inverse_step, max_magnitude);
          const unsigned m = qins_math::nearest_magnitude_code(magnitudes[k], levels.data(), max_magnitude, guess);
          const double error = static_cast<double>(magnitudes[k]) - levels[m];
          sum += error * error;
        }
      }
      return sum;
    };

    constexpr double grid_step = 0.25;
    const double lowest = std::log2(min_span_octaves), highest = std::log2(max_span_octaves);
    double best_x = lowest, best_error = squared_error(lowest);
    const auto consider = [&](double x) {
      const double error = squared_error(x);
      if (error < best_error) {
        best_error = error;
        best_x = x;
      }
      return error;
    };
    for (int j = 1; lowest + j * grid_step <= highest; ++j) consider(lowest + j * grid_step);

    const double inverse_phi = (std::sqrt(5.0) - 1) / 2;
    double lo = std::max(lowest, best_x - grid_step), hi = std::min(highest, best_x + grid_step);
    double a = hi - inverse_phi * (hi - lo), b = lo + inverse_phi * (hi - lo);
    double error_a = consider(a), error_b = consider(b);
    for (int iteration = 0; iteration < 8; ++iteration) {
      if (error_a <= error_b) {
        hi = b;
        b = a;
        error_b = error_a;
        a = hi - inverse_phi * (hi - lo);
        error_a = consider(a);
      } else {
        lo = a;
        a = b;
        error_a = error_b;
        b = lo + inverse_phi * (hi - lo);
        error_b = consider(b);
      }
    }
    return std::exp2(best_x);
  }
};

template <int Bits>
struct codec_traits<qins<Bits>> {
  static constexpr int bits = Bits;
  static constexpr bool is_linear = false;
  static constexpr index_t block_size = 0;
  static constexpr index_t bytes_per_block = 0;
  static constexpr auto name_text = [] {
    detail::fixed_name<8> n;
    n.append("qins");
    n.append_number(Bits);
    return n;
  }();
  static constexpr std::string_view name = name_text;
  /// Rows encode independently given the tensor's LUT (qins::encode_with_lut_of).
  static constexpr bool row_wise = true;
  static constexpr std::array<std::string_view, 1> shared_arrays{"lut"};
};

static_assert(reference_codec<qins<8>> && reorders_activations<qins<8>> && row_codec<qins<8>>);
static_assert(!integer_codec<qins<8>>);
static_assert(codec<qins<4>>);

}  // namespace qcodec::inline QCODEC_ABI

#define QCODEC_KERNELS "qcodec/codecs/qins_kernels-inl.hpp"
#include "qcodec/core/simd/foreach_target.hpp"
