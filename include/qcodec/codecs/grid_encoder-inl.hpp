// The grid codec's encoder (the rules of grid.hpp's file comment), compiled per SIMD target
// (core/simd/foreach_target.hpp; no include guard, includes nothing) and called through
// grid::encode and grid::design_levels. Plain C++ that the compiler vectorises for each
// target; its arithmetic is fixed (explicit FMAs, sums in 16 lanes reduced by one tree), so
// every target, and every compiler flag, encodes to the same bytes.

template <class Codec>
struct grid_encoder {
  static constexpr int level_count = Codec::level_count;
  static constexpr index_t block_size = Codec::block_size;
  using level_table = typename Codec::level_table;
  using table_set = typename Codec::table_set;
  /// Evaluation lanes: block element i sums into lane i % lanes.
  static constexpr index_t lanes = 16;
  static_assert(block_size % lanes == 0);
  using lane_vector [[gnu::vector_size(lanes * sizeof(float))]] = float;
  using lane_ints [[gnu::vector_size(lanes * sizeof(std::int32_t))]] = std::int32_t;
  /// Independent scans of the level search (its latency, not its work, bounds it).
  static constexpr int chains = level_count >= 16 ? level_count / 8 : 1;
  static constexpr int chain_levels = level_count / chains;

  /// One block's weights, padded with zeros to the block size (a zero codes to level 0
  /// exactly and adds nothing to any sum).
  using block_values = float[block_size];

  /// A level table and the midpoints between its neighbours.
  struct table {
    level_table level;
    float midpoint[level_count - 1];
    int zero;
    explicit table(const level_table& levels) : level(levels), zero(Codec::zero_code(levels.data())) {
      for (int j = 0; j + 1 < level_count; ++j) midpoint[j] = 0.5f * (level[j] + level[j + 1]);
    }
  };

  /// a * b + c rounded once: one FMA instruction where the target has it, libm's fma else.
  static float fused(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
  static double fused(double a, double b, double c) { return __builtin_fma(a, b, c); }

  struct block_fit {
    double squared_error = 0, weighted_sum = 0, level_squares = 0;
  };

  struct scale_fit {
    float scale = 0;
    double squared_error = 0;
  };

  /// Loads block b of row r and its columns' importances (0 past the row's end); returns the
  /// block's length.
  static index_t load_block(matrix_view w, const std::vector<float>& importance, index_t r, index_t b,
                            block_values& values, block_values& h) {
    const index_t first = b * block_size, n = std::min(block_size, w.cols() - first);
    for (index_t c = 0; c < block_size; ++c) {
      values[c] = c < n ? w(r, first + c) : 0.0f;
      h[c] = c < n ? importance[static_cast<std::size_t>(first + c)] : 0.0f;
    }
    return n;
  }

  /// Squared error of a block under `scale` with each weight coded by the midpoints times
  /// |scale| (the value-nearest code but for ties within rounding of a midpoint), and the sums
  /// of the least-squares scale, every term weighted by its importance h. A negative scale
  /// codes x as |scale| codes -x (the same level). Per element e = fma(-q, |s|, x),
  /// error += (h e) e, weighted += (h x) q, squares += (h q) q by FMA, element i into lane
  /// i % 16; the lanes are then summed by halves (8, 4, 2, 1).
  static block_fit evaluate(const block_values& w, const block_values& h, float scale, const table& t) {
    const float s = std::abs(scale), sign = scale < 0 ? -1.0f : 1.0f;
    float midpoint[level_count - 1];
    for (int j = 0; j + 1 < level_count; ++j) midpoint[j] = t.midpoint[j] * s;
    float error[lanes] = {}, weighted[lanes] = {}, squares[lanes] = {};
    for (index_t i = 0; i < block_size; i += lanes) {
      float x[lanes], q[lanes];
      for (index_t k = 0; k < lanes; ++k) x[k] = sign * w[i + k];
      // The level search on one vector of the lanes (GCC's and clang's vector extension; the
      // compiler's own loops here vectorise across the levels instead): q = level[number of
      // midpoints below x], in `chains` independent scans of level_count / chains levels
      // (the midpoints ascend, so the highest scan whose first midpoint is below x holds q).
      lane_vector xv;
      std::memcpy(&xv, x, sizeof xv);
      lane_vector chain[chains];
      for (int c = 0; c < chains; ++c) chain[c] = lane_vector{} + t.level[static_cast<std::size_t>(c * chain_levels)];
      for (int j = 0; j + 1 < chain_levels; ++j)
        for (int c = 0; c < chains; ++c) {
          const int m = c * chain_levels + j;
          chain[c] = xv > lane_vector{} + midpoint[m] ? lane_vector{} + t.level[static_cast<std::size_t>(m + 1)] : chain[c];
        }
      lane_vector qv = chain[0];
      for (int c = 1; c < chains; ++c) qv = xv > lane_vector{} + midpoint[c * chain_levels - 1] ? chain[c] : qv;
      std::memcpy(q, &qv, sizeof qv);
      for (index_t k = 0; k < lanes; ++k) {
        const float e = fused(-q[k], s, x[k]), hk = h[i + k];
        error[k] = fused(hk * e, e, error[k]);
        weighted[k] = fused(hk * x[k], q[k], weighted[k]);
        squares[k] = fused(hk * q[k], q[k], squares[k]);
      }
    }
    return {sum_lanes(error), sign * sum_lanes(weighted), sum_lanes(squares)};
  }

  /// The lanes summed by halves: lane k += lane k + 8, then k + 4, k + 2, k + 1.
  static float sum_lanes(float (&lane)[lanes]) {
    for (index_t k = 0; k < 8; ++k) lane[k] += lane[k + 8];
    for (index_t k = 0; k < 4; ++k) lane[k] += lane[k + 4];
    for (index_t k = 0; k < 2; ++k) lane[k] += lane[k + 2];
    return lane[0] + lane[1];
  }

  /// The scale rule of grid.hpp's file comment: candidates rounded to FP16 for one-level
  /// scales, as real numbers (float) for two-level ones, whose quantization follows.
  static scale_fit choose_scale(const block_values& w, const block_values& h, const table& t) {
    float positive = 0, negative = 0;  // m+ and m-
    for (index_t c = 0; c < block_size; ++c) {
      positive = std::max(positive, w[c]);
      negative = std::max(negative, -w[c]);
    }
    if (positive == 0 && negative == 0) return {};
    const auto representable = [](float scale) {
      if constexpr (Codec::two_level_scales) return scale;
      else return static_cast<float>(half(scale));
    };
    float best = 0.0f;
    double best_error = std::numeric_limits<double>::infinity();
    const auto consider = [&](float scale) {
      if (!std::isfinite(scale)) return block_fit{};
      const block_fit fit = evaluate(w, h, scale, t);
      if (fit.squared_error < best_error) {
        best_error = fit.squared_error;
        best = scale;
      }
      return fit;
    };
    const auto consider_refined = [&](float scale) {
      const block_fit fit = consider(scale);
      if (fit.level_squares > 0) consider(representable(static_cast<float>(fit.weighted_sum / fit.level_squares)));
    };
    const float shorter_end = -t.level.front();  // |l_0| <= l_{L-1} = 1
    for (const float cover : {std::max(positive, negative / shorter_end), -std::max(negative, positive / shorter_end)}) {
      const float covering = Codec::two_level_scales ? cover : static_cast<float>(cover_scale(cover));
      consider_refined(covering);
      for (const float fraction : Codec::scale_fractions)
        if (fraction != 1.0f) consider_refined(representable(covering * fraction));
    }
    return {best, best_error};
  }

  /// The table (the first of equals) and scale with the least squared error by the scale rule.
  template <std::size_t Tables>
  static std::pair<int, scale_fit> best_table(const block_values& w, const block_values& h,
                                             const std::array<table, Tables>& tables) {
    std::pair<int, scale_fit> best{0, choose_scale(w, h, tables[0])};
    for (std::size_t t = 1; t < Tables; ++t) {
      const scale_fit fit = choose_scale(w, h, tables[t]);
      if (fit.squared_error < best.second.squared_error) best = {static_cast<int>(t), fit};
    }
    return best;
  }

  /// `scale` rounded to FP16 away from zero (FP16 bits are sign-magnitude), capped at the
  /// largest finite FP16 in magnitude.
  static half cover_scale(float scale) {
    const float capped = std::clamp(scale, -Codec::max_magnitude, Codec::max_magnitude);
    half rounded = half(capped);
    if (std::abs(static_cast<float>(rounded)) < std::abs(capped))
      rounded = Eigen::numext::bit_cast<half>(static_cast<std::uint16_t>(Eigen::numext::bit_cast<std::uint16_t>(rounded) + 1));
    return rounded;
  }

  /// Packs the value-nearest codes of the block's first n weights under `scale`, starting at
  /// column `first` of the row `codes` (whose bits there are zero). A zero scale codes 0.
  static void write_codes(const block_values& w, index_t n, float scale, const table& t, std::uint8_t* codes,
                          index_t first) {
    constexpr int bits = codec_traits<Codec>::bits;
    if (scale == 0) {
      for (index_t c = 0; c < n; ++c) grid_math::pack_code_into_zeros<bits>(codes, first + c, static_cast<unsigned>(t.zero));
      return;
    }
    // The decoded values in increasing order (levels reversed for a negative scale) and the
    // midpoints between neighbours.
    float value[level_count], midpoint[level_count - 1];
    for (int j = 0; j < level_count; ++j)
      value[j] = t.level[static_cast<std::size_t>(scale < 0 ? level_count - 1 - j : j)] * scale;
    for (int j = 0; j + 1 < level_count; ++j) midpoint[j] = 0.5f * (value[j] + value[j + 1]);
    // The number of midpoints below each weight, a vector of lanes at a time.
    std::int32_t below[block_size];
    for (index_t i = 0; i < block_size; i += lanes) {
      lane_vector x;
      std::memcpy(&x, w + i, sizeof x);
      lane_ints count{};
      for (int m = 0; m + 1 < level_count; ++m) count -= x > lane_vector{} + midpoint[m];
      std::memcpy(below + i, &count, sizeof count);
    }
    for (index_t c = 0; c < n; ++c) {
      const float x = w[c];
      int j = below[c];
      // The midpoints are rounded: settle on the nearest decoded value in double (exact).
      const auto distance = [&](int k) { return std::abs(static_cast<double>(x) - value[k]); };
      while (j > 0 && distance(j - 1) <= distance(j)) --j;
      while (j + 1 < level_count && distance(j + 1) < distance(j)) ++j;
      const int code = scale < 0 ? level_count - 1 - j : j;
      grid_math::pack_code_into_zeros<bits>(codes, first + c, static_cast<unsigned>(code));
    }
  }

  /// Every block of `s` (shape and arrays sized, codes zero) under one-level scales.
  static void encode_one_level(matrix_view w, const std::vector<float>& importance, const table& t,
                               typename Codec::storage& s) {
    for (index_t r = 0; r < s.rows; ++r) {
      std::uint8_t* codes = s.codes.data() + r * s.row_bytes();
      for (index_t b = 0; b < s.blocks_per_row(); ++b) {
        block_values values, h;
        const index_t n = load_block(w, importance, r, b, values, h);
        const half scale = half(choose_scale(values, h, t).scale);  // an FP16 value already
        s.scales[static_cast<std::size_t>(r * s.blocks_per_row() + b)] = scale;
        write_codes(values, n, static_cast<float>(scale), t, codes, b * block_size);
      }
    }
  }

  /// Scales, tables and codes of the two-level rule, a super-block at a time (arrays sized,
  /// codes, sub-scales and table bits zero).
  static void encode_two_level(matrix_view w, const std::vector<float>& importance, const table_set& tables,
                               std::string_view name, typename Codec::storage& s) {
    constexpr int table_count = Codec::table_count;
    constexpr index_t per_super = Codec::blocks_per_super;
    const std::array<table, table_count> t = make_tables(tables, std::make_integer_sequence<int, table_count>{});
    const index_t blocks = s.blocks_per_row(), supers = s.super_blocks_per_row();
    // The last super-block of a row holds fewer than 2 * per_super blocks.
    block_values values[2 * per_super], h[2 * per_super];
    float real[2 * per_super];
    int chosen[2 * per_super];
    for (index_t r = 0; r < s.rows; ++r) {
      std::uint8_t* codes = s.codes.data() + r * s.row_bytes();
      std::uint8_t* sub_scales = s.sub_scales.data() + r * s.sub_scale_row_bytes();
      for (index_t k = 0; k < supers; ++k) {
        const detail::block_range range = detail::blocks_of_super_block(k, supers, blocks, per_super);
        const index_t b0 = range.first, b1 = range.last;
        float largest = 0;
        for (index_t b = b0; b < b1; ++b) {
          load_block(w, importance, r, b, values[b - b0], h[b - b0]);
          const auto [table_index, fit] = best_table(values[b - b0], h[b - b0], t);
          chosen[b - b0] = table_index;
          real[b - b0] = fit.scale;
          largest = std::max(largest, std::abs(fit.scale));
        }
        // |w| <= 65504 bounds every real scale by 65504 / |l_0|: d never overflows.
        const float d = detail::super_scale_covering(largest, Codec::sub_scale_max, 1.0f, name, r);
        s.super_scales[static_cast<std::size_t>(r * supers + k)] = half(d);
        for (index_t b = b0; b < b1; ++b) {
          const block_values& x = values[b - b0];
          const table& chosen_table = t[static_cast<std::size_t>(chosen[b - b0])];
          const int m = detail::nearer_sub_scale(real[b - b0], d, Codec::sub_scale_min, Codec::sub_scale_max, [&](int code) {
            return evaluate(x, h[b - b0], d * static_cast<float>(code), chosen_table).squared_error;
          });
          write_bits(sub_scales, b, Codec::scale_bits, static_cast<unsigned>(m - Codec::sub_scale_min));
          if constexpr (table_count > 1)
            write_bits(s.table_bits.data() + r * s.table_row_bytes(), b, 1, static_cast<unsigned>(chosen[b - b0]));
          const index_t n = std::min(block_size, s.cols - b * block_size);
          write_codes(x, n, d * static_cast<float>(m), chosen_table, codes, b * block_size);
        }
      }
    }
  }

  /// One round of the Lloyd-Max design (grid.hpp): over the blocks of the sampled rows, each
  /// level's sums sum(s w h) and sum(s^2 h) (s the block's scale, by FMA in double) of the
  /// weights coded with it.
  static void design_sums(matrix_view w, const std::vector<float>& importance, const table_set& tables,
                          index_t sampled_rows, double* weighted_sum, double* scale_squares) {
    constexpr int table_count = Codec::table_count;
    const std::array<table, table_count> t = make_tables(tables, std::make_integer_sequence<int, table_count>{});
    const index_t rows = w.rows(), blocks = (w.cols() + block_size - 1) / block_size;
    for (index_t i = 0; i < sampled_rows; ++i) {
      const index_t r = (2 * i + 1) * rows / (2 * sampled_rows);
      for (index_t b = 0; b < blocks; ++b) {
        block_values values, h;
        const index_t n = load_block(w, importance, r, b, values, h);
        const auto [table_index, fit] = best_table(values, h, t);
        if (fit.scale == 0) continue;
        std::uint8_t codes[block_size * codec_traits<Codec>::bits / 8 + 1] = {};
        write_codes(values, n, fit.scale, t[static_cast<std::size_t>(table_index)], codes, 0);
        const double scale = fit.scale;
        for (index_t c = 0; c < n; ++c) {
          const auto k = static_cast<std::size_t>(table_index * level_count) +
                         grid_math::unpack_code<codec_traits<Codec>::bits>(codes, c);
          weighted_sum[k] = fused(scale * values[c], static_cast<double>(h[c]), weighted_sum[k]);
          scale_squares[k] = fused(scale * scale, static_cast<double>(h[c]), scale_squares[k]);
        }
      }
    }
  }

  template <int... T>
  static auto make_tables(const table_set& tables, std::integer_sequence<int, T...>) {
    return std::array<table, sizeof...(T)>{table(Codec::table_at(tables, T))...};
  }
};

template <class Codec>
void grid_encode_rows(tag, matrix_view w, const std::vector<float>& importance, const typename Codec::table_set& tables,
                      std::string_view name, typename Codec::storage& s) {
  if constexpr (Codec::two_level_scales) grid_encoder<Codec>::encode_two_level(w, importance, tables, name, s);
  else grid_encoder<Codec>::encode_one_level(w, importance, typename grid_encoder<Codec>::table(tables), s);
}

template <class Codec>
void grid_design_sums(tag, matrix_view w, const std::vector<float>& importance, const typename Codec::table_set& tables,
                      index_t sampled_rows, double* weighted_sum, double* scale_squares) {
  grid_encoder<Codec>::design_sums(w, importance, tables, sampled_rows, weighted_sum, scale_squares);
}
