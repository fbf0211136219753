// The grid codec's encoder (the rules of grid.hpp's file comment), compiled per SIMD target
// (core/simd/foreach_target.hpp; no include guard, includes nothing) and called through
// grid::encode and grid::design_levels. Plain C++ on vectors of 16 lanes (GCC's and clang's
// vector extension) but for the level search, which on AVX2 and AVX-512 looks levels up by
// permutes; its arithmetic is fixed (explicit FMAs, sums in 16 lanes reduced by one tree, a
// search whose count of midpoints below x does not depend on how it is found), so every
// target, and every compiler flag, encodes to the same bytes.

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
  /// The grouped level search (AVX2 and AVX-512): `groups` groups of `group` levels, the
  /// group found by its first midpoints, then the level within it by table lookups (permutes).
#if QCODEC_TARGET_ID == QCODEC_TARGET_ID_AVX2 || QCODEC_TARGET_ID == QCODEC_TARGET_ID_AVX512
  static constexpr bool grouped_search = true;
#else
  static constexpr bool grouped_search = false;
#endif
  static constexpr int group = level_count <= 16 ? 4 : 8, groups = level_count / group, group_shift = group == 4 ? 2 : 3;
  static_assert(groups <= 8 && level_count <= 64);

  /// One block's weights, padded with zeros to the block size (a zero codes to level 0
  /// exactly and adds nothing to any sum).
  using block_values = float[block_size];

  /// A level table and the midpoints between its neighbours, as scalars and as vectors of
  /// lanes (every lane the same value).
  struct table {
    level_table level;
    float midpoint[level_count - 1];
    lane_vector level_lanes[level_count];
    alignas(64) float padded_level[64] = {};  // level, then zeros
    alignas(64) float fine[group - 1][16] = {};  // midpoint_search::fine of the midpoints
    int zero;
    explicit table(const level_table& levels) : level(levels), zero(Codec::zero_code(levels.data())) {
      for (int j = 0; j + 1 < level_count; ++j) midpoint[j] = 0.5f * (level[j] + level[j + 1]);
      for (int j = 0; j < level_count; ++j) padded_level[j] = level[static_cast<std::size_t>(j)];
      for (int j = 0; j + 1 < group; ++j)
        for (int g = 0; g < groups; ++g) fine[j][g] = midpoint[group * g + j];
      for (int j = 0; j < level_count; ++j) level_lanes[j] = level[static_cast<std::size_t>(j)] - lane_vector{};
    }
  };

  /// a * b + c rounded once: one FMA instruction where the target has it, libm's fma else.
  static float fused(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
  static double fused(double a, double b, double c) { return __builtin_fma(a, b, c); }
  /// r = a * b + c in every lane, rounded once: the target's FMA instructions, libm's fma on
  /// the scalar target (x86-64's baseline has no FMA). By reference: 64-byte vectors passed by
  /// value change the ABI between targets.
  static void fused(lane_vector& r, const lane_vector& a, const lane_vector& b, const lane_vector& c) {
#if QCODEC_TARGET_ID == QCODEC_TARGET_ID_SCALAR
    for (index_t k = 0; k < lanes; ++k) r[k] = __builtin_fmaf(a[k], b[k], c[k]);
#else
    float x[lanes], y[lanes], z[lanes], out[lanes];
    std::memcpy(x, &a, sizeof x);
    std::memcpy(y, &b, sizeof y);
    std::memcpy(z, &c, sizeof z);
    for (index_t k = 0; k < lanes; k += backend::width)
      backend::store(out + k, backend::fmadd(backend::load(x + k), backend::load(y + k), backend::load(z + k)));
    std::memcpy(&r, out, sizeof r);
#endif
  }

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

  /// The level search over L - 1 ascending midpoints m (the table's times |scale|, each
  /// fl(midpoint * s), or write_codes' own): the number of them below x, and the level it
  /// indexes, in every lane. Any search gives the same count: the midpoints below x are a
  /// prefix of the ascending midpoints.
  struct midpoint_search {
    lane_vector lanes_of[level_count - 1];  // the linear search's, every lane the same
    alignas(64) float fine[group - 1][16];  // the grouped search's: fine[j][g] = m[group g + j]
    float first[groups];                    // first[k] = m[group k - 1], k >= 1

    /// The table's midpoints times s.
    midpoint_search(const table& t, float s) {
      if constexpr (grouped_search) {
        for (int j = 0; j + 1 < group; ++j)
          for (int g = 0; g < 16; ++g) fine[j][g] = t.fine[j][g] * s;
        for (int k = 1; k < groups; ++k) first[k] = t.midpoint[group * k - 1] * s;
      } else {
        for (int j = 0; j + 1 < level_count; ++j) lanes_of[j] = t.midpoint[j] * s - lane_vector{};
      }
    }

    explicit midpoint_search(const float* m) {
      if constexpr (grouped_search) {
        for (int j = 0; j + 1 < group; ++j)
          for (int g = 0; g < 16; ++g) fine[j][g] = g < groups ? m[group * g + j] : 0.0f;
        for (int k = 1; k < groups; ++k) first[k] = m[group * k - 1];
      } else {
        for (int j = 0; j + 1 < level_count; ++j) lanes_of[j] = m[j] - lane_vector{};
      }
    }

    /// count[i] = the number of midpoints below lane i of x.
    void count_below(const lane_vector& x, std::int32_t* count) const {
      if constexpr (grouped_search) {
        grouped(x, count, nullptr, nullptr);
      } else {
        lane_ints n{};
        for (int m = 0; m + 1 < level_count; ++m) n -= x > lanes_of[m];
        std::memcpy(count, &n, sizeof n);
      }
    }

    /// q = level[number of midpoints below x] in every lane, `padded_level` the table's.
    void nearest_level(const table& t, const lane_vector& x, lane_vector& q) const {
      if constexpr (grouped_search) {
        float qs[lanes];
        grouped(x, nullptr, t.padded_level, qs);
        std::memcpy(&q, qs, sizeof q);
      } else {
        // The linear search on one vector of the lanes (GCC's and clang's vector extension;
        // the compiler's own loops here vectorise across the levels instead), in `chains`
        // independent scans of level_count / chains levels (the highest scan whose first
        // midpoint is below x holds q).
        lane_vector chain[chains];
        for (int c = 0; c < chains; ++c) chain[c] = t.level_lanes[c * chain_levels];
        for (int j = 0; j + 1 < chain_levels; ++j)
          for (int c = 0; c < chains; ++c) {
            const int m = c * chain_levels + j;
            chain[c] = x > lanes_of[m] ? t.level_lanes[m + 1] : chain[c];
          }
        q = chain[0];
        for (int c = 1; c < chains; ++c) q = x > lanes_of[c * chain_levels - 1] ? chain[c] : q;
      }
    }

    /// The grouped search: g = number of first[k] below x (the group), then the count
    /// group * g + (number of fine[j][g] below x), into `count` and/or its level from
    /// `level` (64 entries, zero-padded) into `q`.
    void grouped(const lane_vector& x, std::int32_t* count, const float* level, float* q) const {
      float xs[lanes];
      std::memcpy(xs, &x, sizeof xs);
#if QCODEC_TARGET_ID == QCODEC_TARGET_ID_AVX512
      const __m512 v = _mm512_loadu_ps(xs);
      const __m512i one = _mm512_set1_epi32(1);
      __m512i g = _mm512_setzero_si512();
      for (int k = 1; k < groups; ++k)
        g = _mm512_mask_add_epi32(g, _mm512_cmp_ps_mask(v, _mm512_set1_ps(first[k]), _CMP_GT_OQ), g, one);
      // (The maskz forms: GCC 12's unmasked ones warn of an undefined operand under -Wall.)
      __m512i index = _mm512_maskz_slli_epi32(0xFFFF, g, group_shift);
      for (int j = 0; j + 1 < group; ++j) {
        const __m512 m = _mm512_maskz_permutexvar_ps(0xFFFF, g, _mm512_load_ps(fine[j]));
        index = _mm512_mask_add_epi32(index, _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ), index, one);
      }
      if (count) _mm512_storeu_si512(count, index);
      if (!q) return;
      __m512 r;
      if constexpr (level_count <= 16) {
        r = _mm512_maskz_permutexvar_ps(0xFFFF, index, _mm512_load_ps(level));
      } else {
        r = _mm512_permutex2var_ps(_mm512_load_ps(level), index, _mm512_load_ps(level + 16));
        if constexpr (level_count == 64) {
          const __m512 upper = _mm512_permutex2var_ps(_mm512_load_ps(level + 32), index, _mm512_load_ps(level + 48));
          r = _mm512_mask_blend_ps(_mm512_test_epi32_mask(index, _mm512_set1_epi32(32)), r, upper);
        }
      }
      _mm512_storeu_ps(q, r);
#elif QCODEC_TARGET_ID == QCODEC_TARGET_ID_AVX2
      for (index_t half = 0; half < lanes; half += 8) {
        const __m256 v = _mm256_loadu_ps(xs + half);
        __m256i g = _mm256_setzero_si256();
        for (int k = 1; k < groups; ++k)
          g = _mm256_sub_epi32(g, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_set1_ps(first[k]), _CMP_GT_OQ)));
        __m256i index = _mm256_slli_epi32(g, group_shift);
        for (int j = 0; j + 1 < group; ++j) {
          const __m256 m = _mm256_permutevar8x32_ps(_mm256_load_ps(fine[j]), g);
          index = _mm256_sub_epi32(index, _mm256_castps_si256(_mm256_cmp_ps(v, m, _CMP_GT_OQ)));
        }
        if (count) _mm256_storeu_si256(reinterpret_cast<__m256i*>(count + half), index);
        if (q) _mm256_storeu_ps(q + half, _mm256_i32gather_ps(level, index, 4));
      }
#else
      static_assert(!grouped_search);
      (void)xs, (void)count, (void)level, (void)q;
#endif
    }
  };

  /// Squared error of a block under `scale` with each weight coded by the midpoints times
  /// |scale| (the value-nearest code but for ties within rounding of a midpoint), and the sums
  /// of the least-squares scale, every term weighted by its importance h. A negative scale
  /// codes x as |scale| codes -x (the same level). Per element e = fma(-q, |s|, x),
  /// error += (h e) e, weighted += (h x) q, squares += (h q) q by FMA, element i into lane
  /// i % 16; the lanes are then summed by halves (8, 4, 2, 1).
  template <bool LeastSquaresSums = true>
  static block_fit evaluate(const block_values& w, const block_values& h, float scale, const table& t) {
    const float s = std::abs(scale), sign = scale < 0 ? -1.0f : 1.0f;
    const midpoint_search midpoint(t, s);
    // Scalars spread over the lanes by loops over arrays: GCC lowers scalar-vector operations
    // on vectors wider than the target's through the stack.
    float spread[lanes];
    for (index_t k = 0; k < lanes; ++k) spread[k] = s;
    lane_vector step, error{}, weighted{}, squares{};
    std::memcpy(&step, spread, sizeof step);
    for (index_t i = 0; i < block_size; i += lanes) {
      lane_vector x, hv, q;
      for (index_t k = 0; k < lanes; ++k) spread[k] = sign * w[i + k];
      std::memcpy(&x, spread, sizeof x);
      std::memcpy(&hv, h + i, sizeof hv);
      midpoint.nearest_level(t, x, q);
      lane_vector e;
      fused(e, -q, step, x);
      fused(error, hv * e, e, error);
      if constexpr (LeastSquaresSums) {
        fused(weighted, hv * x, q, weighted);
        fused(squares, hv * q, q, squares);
      }
    }
    if constexpr (!LeastSquaresSums) {
      return {sum_lanes(error), 0, 0};
    } else {
      const auto [e, ws, qq] = sum_lanes(error, weighted, squares);
      return {e, sign * ws, qq};
    }
  }

  /// The lanes summed by halves: lane k += lane k + 8, then k + 4, k + 2, k + 1.
  static float sum_lanes(const lane_vector& v) {
    using eight [[gnu::vector_size(8 * sizeof(float))]] = float;
    using four [[gnu::vector_size(4 * sizeof(float))]] = float;
    const eight a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                    __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    const four b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
  }

  /// Three vectors of lanes summed as sum_lanes sums each (the same additions in the same
  /// order), sharing the vector instructions.
  static std::array<float, 3> sum_lanes(const lane_vector& a, const lane_vector& b, const lane_vector& c) {
    using eight [[gnu::vector_size(8 * sizeof(float))]] = float;
    using four [[gnu::vector_size(4 * sizeof(float))]] = float;
    // [a + 8 | b + 8] and c + 8: lane k of each + its lane k + 8.
    const lane_vector ab = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                           __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const eight c8 = __builtin_shufflevector(c, c, 0, 1, 2, 3, 4, 5, 6, 7) +
                     __builtin_shufflevector(c, c, 8, 9, 10, 11, 12, 13, 14, 15);
    // + 4: [a4 | b4] and c4.
    const eight ab4 = __builtin_shufflevector(ab, ab, 0, 1, 2, 3, 8, 9, 10, 11) +
                      __builtin_shufflevector(ab, ab, 4, 5, 6, 7, 12, 13, 14, 15);
    const four c4 = __builtin_shufflevector(c8, c8, 0, 1, 2, 3) + __builtin_shufflevector(c8, c8, 4, 5, 6, 7);
    // + 2: [a2 | b2 | c2 | c2].
    const eight c4c4 = __builtin_shufflevector(c4, c4, 0, 1, 2, 3, 0, 1, 2, 3);
    const eight abc2 = __builtin_shufflevector(ab4, c4c4, 0, 1, 4, 5, 8, 9, 12, 13) +
                       __builtin_shufflevector(ab4, c4c4, 2, 3, 6, 7, 10, 11, 14, 15);
    return {abc2[0] + abc2[1], abc2[2] + abc2[3], abc2[4] + abc2[5]};
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
    // Every candidate evaluated first, then every refit (independent work for the CPU), then
    // the first of the least squared error in the order candidate, its refit, next candidate.
    constexpr std::size_t fractions = Codec::scale_fractions.size(), count = 2 * fractions;
    float candidate[count], refit[count];
    block_fit fit[count], refit_fit[count];
    const float shorter_end = -t.level.front();  // |l_0| <= l_{L-1} = 1
    const float covers[2] = {std::max(positive, negative / shorter_end), -std::max(negative, positive / shorter_end)};
    for (std::size_t side = 0; side < 2; ++side) {
      const float covering = Codec::two_level_scales ? covers[side] : static_cast<float>(cover_scale(covers[side]));
      for (std::size_t f = 0; f < fractions; ++f) {
        const float fraction = Codec::scale_fractions[f];
        candidate[side * fractions + f] = fraction == 1.0f ? covering : representable(covering * fraction);
      }
    }
    const auto finite = [](float scale) { return std::isfinite(scale); };
    for (std::size_t i = 0; i < count; ++i)
      if (finite(candidate[i])) fit[i] = evaluate(w, h, candidate[i], t);
    for (std::size_t i = 0; i < count; ++i) {
      refit[i] = std::numeric_limits<float>::quiet_NaN();
      if (finite(candidate[i]) && fit[i].level_squares > 0)
        refit[i] = representable(static_cast<float>(fit[i].weighted_sum / fit[i].level_squares));
      if (finite(refit[i])) refit_fit[i] = evaluate<false>(w, h, refit[i], t);
    }
    float best = 0.0f;
    double best_error = std::numeric_limits<double>::infinity();
    const auto consider = [&](float scale, const block_fit& f) {
      if (finite(scale) && f.squared_error < best_error) {
        best_error = f.squared_error;
        best = scale;
      }
    };
    for (std::size_t i = 0; i < count; ++i) {
      consider(candidate[i], fit[i]);
      consider(refit[i], refit_fit[i]);
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
    const midpoint_search search(midpoint);
    std::int32_t below[block_size];
    for (index_t i = 0; i < block_size; i += lanes) {
      lane_vector x;
      std::memcpy(&x, w + i, sizeof x);
      search.count_below(x, below + i);
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
        int sub_scale[2 * per_super];
        const float d = detail::choose_super_scale(
            real, b1 - b0, detail::super_scale_covering(largest, Codec::sub_scale_max, 1.0f, name, r),
            Codec::sub_scale_min, Codec::sub_scale_max, sub_scale, [&](index_t i, float scale, int code) {
              return evaluate<false>(values[i], h[i], scale * static_cast<float>(code),
                                     t[static_cast<std::size_t>(chosen[i])])
                  .squared_error;
            });
        s.super_scales[static_cast<std::size_t>(r * supers + k)] = half(d);
        for (index_t b = b0; b < b1; ++b) {
          const block_values& x = values[b - b0];
          const table& chosen_table = t[static_cast<std::size_t>(chosen[b - b0])];
          const int m = sub_scale[b - b0];
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
