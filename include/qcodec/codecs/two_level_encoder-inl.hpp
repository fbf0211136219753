// The two-level codec's encoder (the rule of two_level.hpp's file comment), compiled per
// SIMD target (core/simd/foreach_target.hpp; no include guard, includes nothing) and called
// through two_level::encode. Plain C++ that the compiler vectorises for each target; its
// arithmetic is fixed (explicit FMAs, sums in 8 lanes reduced by halves), so every target and
// every compiler flag encodes to the same bytes.

template <class Codec>
struct two_level_encoder {
  static constexpr index_t sub_block = Codec::sub_block;
  static constexpr int code_max = Codec::code_max, level_offset = Codec::level_offset;
  static constexpr bool symmetric = Codec::symmetric;
  /// Evaluation lanes: element i of a sub-block sums into lane i % lanes.
  static constexpr index_t lanes = 8;
  static_assert(sub_block % lanes == 0);
  using block = float[sub_block];

  /// a * b + c rounded once: one FMA instruction where the target has it, libm's fma else.
  static float fused(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

  /// Every row of `s` (shape and arrays sized, bit streams zero).
  static void encode_rows(matrix_view w, std::span<const float> column_importance, std::string_view name,
                          typename Codec::storage& s) {
    constexpr index_t per_super = Codec::subs_per_super;
    const index_t subs = s.sub_blocks_per_row(), supers = s.super_blocks_per_row();
    // The last super-block of a row holds fewer than 2 * per_super sub-blocks.
    block x[2 * per_super], h[2 * per_super];
    float steps[2 * per_super];
    for (index_t r = 0; r < s.rows; ++r) {
      const float* row = w.row(r).data();
      std::uint8_t* codes = s.codes.data() + r * s.code_row_bytes();
      std::uint8_t* sub_scales = s.sub_scales.data() + r * s.sub_scale_row_bytes();
      std::uint8_t* zero_points = s.zero_points.data() + r * s.zero_point_row_bytes();
      for (index_t k = 0; k < supers; ++k) {
        const detail::block_range range = detail::blocks_of_super_block(k, supers, subs, per_super);
        const index_t j0 = range.first, j1 = range.last;
        float largest = 0;
        for (index_t j = j0; j < j1; ++j) {
          // A short last sub-block is padded with zeros of weight 0: they add nothing to any
          // error or least-squares sum, and 0 is a level of every step.
          const index_t c0 = j * sub_block, n = std::min(sub_block, s.cols - c0);
          block& xj = x[j - j0];
          block& hj = h[j - j0];
          for (index_t i = 0; i < sub_block; ++i) {
            xj[i] = i < n ? row[c0 + i] : 0.0f;
            hj[i] = i >= n ? 0.0f : column_importance.empty() ? 1.0f : column_importance[static_cast<std::size_t>(c0 + i)];
          }
          steps[j - j0] = best_real_step(xj, hj);
          largest = std::max(largest, std::abs(steps[j - j0]));
        }
        int sub_scale[2 * per_super];
        const float d = detail::choose_super_scale(
            steps, j1 - j0,
            detail::super_scale_covering(largest, Codec::sub_scale_max, static_cast<float>(Codec::level_offset), name, r),
            Codec::sub_scale_min, Codec::sub_scale_max, sub_scale, [&](index_t i, float scale, int code) {
              const float step = two_level_math::sub_block_step(scale, code);
              return evaluate(x[i], h[i], step, zero_point_for(x[i], step)).error;
            });
        s.super_scales[static_cast<std::size_t>(r * supers + k)] = static_cast<half>(d);
        for (index_t j = j0; j < j1; ++j) {
          const block& xj = x[j - j0];
          const int m = sub_scale[j - j0];
          const float step = two_level_math::sub_block_step(d, m);
          const int z = zero_point_for(xj, step);
          write_bits(sub_scales, j, Codec::scale_bits, static_cast<unsigned>(m - Codec::sub_scale_min));
          if constexpr (!Codec::symmetric) write_bits(zero_points, j, codec_traits<Codec>::bits, static_cast<unsigned>(z));
          const index_t c0 = j * sub_block, n = std::min(sub_block, s.cols - c0);
          const float inverse = step != 0 ? 1.0f / step : 0.0f;
          for (index_t i = 0; i < n; ++i)
            write_bits(codes, c0 + i, codec_traits<Codec>::bits, static_cast<unsigned>(level_of(xj[i], inverse, z) + z));
        }
      }
    }
  }

  /// Level of w under a step whose inverse is `inverse` (0 for a zero step): rint, clamped to
  /// the levels of zero point z (symmetric: z = level_offset).
  static int level_of(float w, float inverse, int z) {
    const float q = std::rint(w * inverse);
    const float low = static_cast<float>(-z), high = static_cast<float>(code_max - z);
    return static_cast<int>(q < low ? low : (q > high ? high : q));
  }

  /// Zero point of a sub-block under `step` (symmetric: level_offset): the level window
  /// [-z, code_max - z] centred on the block's range [min(x, 0), max(x, 0)].
  static int zero_point_for(const block& x, float step) {
    if constexpr (symmetric) {
      return level_offset;
    } else {
      if (!(step > 0)) return 0;
      float lo = 0, hi = 0;
      for (index_t i = 0; i < sub_block; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
      }
      const float centred = std::rint((static_cast<float>(code_max) - (hi + lo) / step) * 0.5f);
      return static_cast<int>(std::clamp(centred, 0.0f, static_cast<float>(code_max)));
    }
  }

  /// Squared error sum h (x - step * level)^2 and the least-squares sums of a step: per
  /// element e = fma(-step, q, x), error += (h e) e, xq += (h x) q, qq += (h q) q by FMA,
  /// element i into lane i % 8, the lanes then summed by halves (4, 2, 1).
  struct fit {
    float error = 0, xq = 0, qq = 0;
  };
  static fit evaluate(const block& x, const block& h, float step, int z) {
    const float inverse = step != 0 ? 1.0f / step : 0.0f;
    const float low = static_cast<float>(-z), high = static_cast<float>(code_max - z);
    float error[lanes] = {}, xq[lanes] = {}, qq[lanes] = {};
    for (index_t i = 0; i < sub_block; i += lanes)
      for (index_t k = 0; k < lanes; ++k) {
        float q = std::rint(x[i + k] * inverse);
        q = q < low ? low : (q > high ? high : q);
        const float e = fused(-step, q, x[i + k]), hk = h[i + k];
        error[k] = fused(hk * e, e, error[k]);
        xq[k] = fused(hk * x[i + k], q, xq[k]);
        qq[k] = fused(hk * q, q, qq[k]);
      }
    return {sum_lanes(error), sum_lanes(xq), sum_lanes(qq)};
  }

  static float sum_lanes(float (&lane)[lanes]) {
    for (index_t k = 0; k < 4; ++k) lane[k] += lane[k + 4];
    return (lane[0] + lane[2]) + (lane[1] + lane[3]);
  }

  /// The least-squares step of the header's rule, before the sub-scale is quantized (signed
  /// for symmetric codes). The search runs on the block divided by its largest magnitude and
  /// the importances divided by their largest, so no error sum overflows (|w| near FLT_MAX)
  /// or underflows (denormal w); the step found is scaled back.
  static float best_real_step(const block& w, const block& importance) {
    float magnitude = 0, heaviest = 0;
    for (index_t i = 0; i < sub_block; ++i) {
      magnitude = std::max(magnitude, std::abs(w[i]));
      heaviest = std::max(heaviest, importance[i]);
    }
    if (magnitude == 0) return 0;
    block x, h;
    for (index_t i = 0; i < sub_block; ++i) {
      x[i] = w[i] / magnitude;
      h[i] = heaviest > 0 ? importance[i] / heaviest : 1.0f;
    }
    return best_normalised_step(x, h) * magnitude;
  }

  static float best_normalised_step(const block& x, const block& h) {
    float largest = 0, extreme = 0, lo = 0, hi = 0;
    for (index_t i = 0; i < sub_block; ++i) {
      if (std::abs(x[i]) > largest) {
        largest = std::abs(x[i]);
        extreme = x[i];
      }
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    float best_step = 0, best_error = std::numeric_limits<float>::infinity();
    const auto consider = [&](float step) {
      const int z = zero_point_for(x, step);
      const fit f = evaluate(x, h, step, z);
      float refit = step;
      if (f.qq > 0 && f.xq != 0) refit = f.xq / f.qq;
      const fit g = refit == step ? f : evaluate(x, h, refit, zero_point_for(x, refit));
      const bool refit_wins = g.error <= f.error;
      const float error = refit_wins ? g.error : f.error;
      if (error < best_error) {
        best_error = error;
        best_step = refit_wins ? refit : step;
      }
    };
    for (float delta : Codec::step_candidates) {
      if constexpr (symmetric) {
        // Longer side (-2^(Bits-1)) on the extreme's sign, then the shorter side.
        consider(-extreme / (static_cast<float>(level_offset) + delta));
        consider(extreme / (static_cast<float>(level_offset - 1) + delta));
      } else {
        consider((hi - lo) / (static_cast<float>(code_max) + delta));
      }
    }
    return best_step;
  }
};

template <class Codec>
void two_level_encode_rows(tag, matrix_view w, std::span<const float> column_importance, std::string_view name,
                           typename Codec::storage& s) {
  two_level_encoder<Codec>::encode_rows(w, column_importance, name, s);
}
