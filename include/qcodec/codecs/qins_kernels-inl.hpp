// The QINS codec's kernels, compiled per SIMD target (core/simd/foreach_target.hpp; no
// include guard, includes nothing). Called through qins::decode_rows, qins::dot_row and
// qins::order_activations.
//
// Only the lookup differs per target (`qins_lookup<Bits>`):
//  - `table`, built from a tensor's signed LUT; `levels(table, row, c)`: lut[code(c + i)] for
//    i < width (c even when Bits == 4), the signed levels the decode multiplies by the row
//    scale (qins_math::decode);
//  - `step` columns (a multiple of width) at once by `levels_step<ColumnOrder>(table, row, c,
//    out)` into out[0 .. step / width). In column order out[v] holds columns c + v * width ..;
//    otherwise position p (element p % width of out[p / width]) holds column c +
//    `dot_column(p)`, an order cheaper to produce; dot products read their activations in it.
// The vector lookups find |lut| of the magnitude code in registers (permutes) and set the
// sign bit from the code's, which is exact because lut[sign | m] = -lut[m]. Targets without
// a lookup of their own (scalar, NEON) read the LUT lane by lane.

#if QCODEC_TARGET_ID == QCODEC_TARGET_ID_AVX2

/// QINS4: the 8 magnitudes in one register; QINS8: the LUT itself (read by vgatherdps).
template <int Bits>
struct qins_lookup {
  struct table {
    explicit table(const float* lut) : lut(lut), low(_mm256_loadu_ps(lut)) {}
    const float* lut;
    __m256 low;
  };
  static __m256 levels(const table& t, const std::uint8_t* row, index_t c) {
    const __m256i codes = _mm256_cvtepu8_epi32(load_8_codes<Bits>(row, c));
    constexpr int sign_shift = 32 - Bits;  // the code's sign bit to bit 31
    const __m256i magnitude = _mm256_and_si256(codes, _mm256_set1_epi32((1 << (Bits - 1)) - 1));
    const __m256 level = Bits == 4 ? _mm256_permutevar8x32_ps(t.low, magnitude)
                                   : _mm256_i32gather_ps(t.lut, magnitude, 4);
    const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(codes, sign_shift), _mm256_set1_epi32(INT32_MIN));
    return _mm256_xor_ps(level, _mm256_castsi256_ps(sign));
  }
  static constexpr index_t step = 2 * backend::width;
  static constexpr index_t dot_column(index_t p) { return p; }
  template <bool ColumnOrder = true>
  static void levels_step(const table& t, const std::uint8_t* row, index_t c, __m256* out) {
    for (index_t i = 0; i < 2; ++i) out[i] = levels(t, row, c + i * backend::width);
  }
};

#elif QCODEC_TARGET_ID == QCODEC_TARGET_ID_AVX512

/// The magnitudes lut[0 .. 2^(Bits-1) - 1] in registers: 8 (QINS4) or 128 (QINS8) floats.
/// QINS8 looks up 64 magnitudes at once in levels_step, one byte of the FP32 value per
/// vpermi2b (a 7-bit index into 128 bytes, the code's sign bit ignored): plane[k][h] = byte k
/// of lut[64 h .. 64 h + 63].
template <int Bits>
struct qins_lookup {
  static constexpr bool byte_planes = Bits == 8;
  struct table {
    explicit table(const float* lut) {
      for (int i = 0; i < parts; ++i)
        part[i] = Bits == 4 ? _mm512_castps256_ps512(_mm256_loadu_ps(lut)) : _mm512_loadu_ps(lut + 16 * i);
      if constexpr (byte_planes) {
        alignas(64) static constexpr std::array<std::uint8_t, 64> first_bytes = [] {
          std::array<std::uint8_t, 64> t{};  // byte 0 of float p mod 32 of a 32-float pair
          for (int p = 0; p < 64; ++p) t[p] = static_cast<std::uint8_t>(4 * (p % 32));
          return t;
        }();
        for (int k = 0; k < 4; ++k) {
          const __m512i pick = _mm512_add_epi8(_mm512_load_si512(first_bytes.data()), _mm512_set1_epi8(static_cast<char>(k)));
          for (int h = 0; h < 2; ++h) {
            const auto bytes_of = [&](int i) {
              return _mm512_permutex2var_epi8(_mm512_castps_si512(part[4 * h + i]), pick,
                                              _mm512_castps_si512(part[4 * h + i + 1]));
            };
            plane[k][h] = _mm512_mask_blend_epi8(0xFFFFFFFF00000000, bytes_of(0), bytes_of(2));
          }
        }
      }
    }
    static constexpr int parts = Bits == 4 ? 1 : 8;
    __m512 part[parts];
    __m512i plane[4][2];  // set only with byte_planes
  };
  static __m512 levels(const table& t, const std::uint8_t* row, index_t c) {
    const __m512i codes = _mm512_cvtepu8_epi32(load_16_codes<Bits>(row, c));
    __m512 level;
    if constexpr (Bits == 4) {
      level = _mm512_permutexvar_ps(_mm512_and_si512(codes, _mm512_set1_epi32(7)), t.part[0]);
    } else {
      // Bits 0-4 of the magnitude pick within 32 entries (vpermt2ps), bits 5 and 6 pick the
      // 32-entry quarter.
      __m512 quarter[4];
      for (int i = 0; i < 4; ++i) quarter[i] = _mm512_permutex2var_ps(t.part[2 * i], codes, t.part[2 * i + 1]);
      const __mmask16 bit5 = _mm512_test_epi32_mask(codes, _mm512_set1_epi32(32));
      const __mmask16 bit6 = _mm512_test_epi32_mask(codes, _mm512_set1_epi32(64));
      level = _mm512_mask_blend_ps(bit6, _mm512_mask_blend_ps(bit5, quarter[0], quarter[1]),
                                   _mm512_mask_blend_ps(bit5, quarter[2], quarter[3]));
    }
    const __m512i sign = _mm512_and_si512(_mm512_slli_epi32(codes, 32 - Bits), _mm512_set1_epi32(INT32_MIN));
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(level), sign));
  }
  static constexpr index_t step = byte_planes ? 4 * backend::width : 2 * backend::width;
  /// With byte_planes, the byte->dword unpacks of levels_step leave, in 128-bit lane L of
  /// out[v], the bytes at positions 16 L + 4 v + i (i < 4) of the code vector: position
  /// 16 v + 4 L + i holds column 16 L + 4 v + i (a 4x4 transpose of 4-byte groups, its own
  /// inverse).
  static constexpr index_t dot_column(index_t p) { return byte_planes ? 16 * (p / 4 % 4) + 4 * (p / 16) + p % 4 : p; }
  template <bool ColumnOrder = true>
  static void levels_step(const table& t, const std::uint8_t* row, index_t c, __m512* out) {
    if constexpr (byte_planes) {
      // In column order the codes are transposed first, so that out[v] holds columns
      // 16 v .. 16 v + 15 in order.
      alignas(64) static constexpr std::array<std::uint8_t, 64> transpose = [] {
        std::array<std::uint8_t, 64> order{};
        for (int p = 0; p < 64; ++p) order[p] = static_cast<std::uint8_t>(dot_column(p));
        return order;
      }();
      __m512i codes = _mm512_loadu_si512(row + c);
      if constexpr (ColumnOrder) codes = _mm512_permutexvar_epi8(_mm512_load_si512(transpose.data()), codes);
      __m512i byte[4];
      for (int k = 0; k < 4; ++k) byte[k] = _mm512_permutex2var_epi8(t.plane[k][0], codes, t.plane[k][1]);
      // The sign: the code's bit 7 into bit 7 of the top byte (byte[3] ^ (codes & 0x80)).
      byte[3] = _mm512_ternarylogic_epi32(byte[3], codes, _mm512_set1_epi8(static_cast<char>(0x80)), 0x78);
      const __m512i low01 = _mm512_unpacklo_epi8(byte[0], byte[1]), high01 = _mm512_unpackhi_epi8(byte[0], byte[1]);
      const __m512i low23 = _mm512_unpacklo_epi8(byte[2], byte[3]), high23 = _mm512_unpackhi_epi8(byte[2], byte[3]);
      out[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(low01, low23));
      out[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(low01, low23));
      out[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(high01, high23));
      out[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(high01, high23));
    } else {
      for (index_t i = 0; i < 2; ++i) out[i] = levels(t, row, c + i * backend::width);
    }
  }
};

#else

/// Lane by lane from the LUT in memory.
template <int Bits>
struct qins_lookup {
  struct table {
    explicit table(const float* lut) : lut(lut) {}
    const float* lut;
  };
  static typename backend::float_vector levels(const table& t, const std::uint8_t* row, index_t c) {
    float lanes[backend::width];
    for (index_t i = 0; i < backend::width; ++i) lanes[i] = t.lut[unpack_code<Bits>(row, c + i)];
    return backend::load(lanes);
  }
  static constexpr index_t step = 2 * backend::width;
  static constexpr index_t dot_column(index_t p) { return p; }
  template <bool ColumnOrder = true>
  static void levels_step(const table& t, const std::uint8_t* row, index_t c, typename backend::float_vector* out) {
    for (index_t i = 0; i < 2; ++i) out[i] = levels(t, row, c + i * backend::width);
  }
};

#endif

/// Rows [first, last) as FP32: signed levels times the row scale, as qins::decode_rows_ref
/// (widths are even, so INT4 steps start on a byte).
template <class Codec>
void qins_decode_rows(tag, const typename Codec::storage& s, index_t first, index_t last, float* out) {
  constexpr int bits = codec_traits<Codec>::bits;
  using lookup = qins_lookup<bits>;
  constexpr index_t w = backend::width, step = lookup::step;
  if (first == last) return;  // an empty storage (e.g. a cleared cache) has no LUT to load
  const typename lookup::table table(s.lut.data());
  for (index_t r = first; r < last; ++r, out += s.cols) {
    const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
    const float scale = s.scales[static_cast<std::size_t>(r)];
    index_t c = 0;
    for (; c + step <= s.cols; c += step) {
      typename backend::float_vector levels[step / w];
      lookup::levels_step(table, row, c, levels);
      for (index_t v = 0; v < step / w; ++v) backend::store(out + c + v * w, backend::multiply(levels[v], scale));
    }
    for (; c + w <= s.cols; c += w) backend::store(out + c, backend::multiply(lookup::levels(table, row, c), scale));
    for (; c < s.cols; ++c) out[c] = qins_math::decode(unpack_code<bits>(row, c), s.lut.data(), scale);
  }
}

/// An activation row x (cols values) in the order qins_dot_row reads it: within each whole
/// step, position p holds column dot_column(p) of the step; the ragged tail stays in column
/// order.
template <class Codec>
void qins_order_activations(tag, index_t cols, const float* x, float* out) {
  using lookup = qins_lookup<codec_traits<Codec>::bits>;
  index_t c = 0;
  for (; c + lookup::step <= cols; c += lookup::step)
    for (index_t p = 0; p < lookup::step; ++p) out[c + p] = x[c + lookup::dot_column(p)];
  for (; c < cols; ++c) out[c] = x[c];
}

/// out[b] = sum_c Ŵ(r, c) x_b(c) for b < NB, where x[b] holds x_b as qins_order_activations
/// leaves it. Computed as scale_r * sum_c lut[code(r, c)] x_b(c): the signed levels looked up
/// in registers and summed in another order than a plain loop (independent accumulators per
/// lane, then the lanes, then the ragged tail), the row scale applied once to the sum.
/// Against sum_c Ŵ(r, c) x_b(c) that is K + 2 FP32 roundings (the K-term sum, the product
/// with the scale, the rounding of each Ŵ = lut * scale).
template <class Codec, int NB>
void qins_dot_row(tag, const typename Codec::storage& s, index_t r, const float* const* x, float* out) {
  constexpr int bits = codec_traits<Codec>::bits;
  using lookup = qins_lookup<bits>;
  using vector = typename backend::float_vector;
  constexpr index_t w = backend::width, step = lookup::step, vectors = step / w;
  // Independent FMA chains per activation row: one per vector of a step for a lone row.
  constexpr index_t chains = NB == 1 ? vectors : 2;
  const typename lookup::table table(s.lut.data());
  const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
  vector acc[chains][NB];
  for (auto& chain : acc)
    for (auto& a : chain) a = backend::float_zero();
  index_t c = 0;
  for (; c + step <= s.cols; c += step) {
    simd::prefetch_ahead<simd::pace::slow>(row + packed_bytes<bits>(c));
    vector levels[vectors];
    lookup::template levels_step<false>(table, row, c, levels);
    // Unrolled early: otherwise GCC 12 keeps acc in memory and stores every accumulator on
    // every step.
#pragma GCC unroll 16
    for (index_t v = 0; v < vectors; ++v)
#pragma GCC unroll 16
      for (int b = 0; b < NB; ++b)
        acc[v % chains][b] = backend::fmadd(levels[v], backend::load(x[b] + c + v * w), acc[v % chains][b]);
  }
  vector total[NB];
  for (int b = 0; b < NB; ++b) {
    total[b] = acc[0][b];
    for (index_t i = 1; i < chains; ++i) total[b] = backend::add(total[b], acc[i][b]);
  }
  for (; c + w <= s.cols; c += w) {
    const auto levels = lookup::levels(table, row, c);
    for (int b = 0; b < NB; ++b) total[b] = backend::fmadd(levels, backend::load(x[b] + c), total[b]);
  }
  float tail[NB] = {};
  for (; c < s.cols; ++c) {
    const float level = s.lut[unpack_code<bits>(row, c)];
    for (int b = 0; b < NB; ++b) tail[b] = std::fma(level, x[b][c], tail[b]);
  }
  const float scale = s.scales[static_cast<std::size_t>(r)];
  for (int b = 0; b < NB; ++b) out[b] = scale * (backend::reduce(total[b]) + tail[b]);
}
