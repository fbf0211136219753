// The integer-domain GEMV kernel (ops/integer_gemv.hpp), compiled per SIMD target
// (core/simd/foreach_target.hpp; no include guard, includes nothing). It runs on weights
// repacked in panels of backend::width rows, one int32 lane per row (ops/integer_panels.hpp).
//
// Only the quad product differs per target (`integer_quads`): a step of a panel holds 4 bytes
// per row, the row's codes of 4 consecutive columns (INT8) or of 8 columns as nibbles,
// columns k and k + 4 in the low and high nibble of byte k (INT4). A "quad" is 4 columns of
// every row of the panel.
//  - `int_batch`: activation rows a kernel pass serves at once (bounded by the registers);
//  - `code_bias<Bits>`: the constant b the target subtracts from every code inside dot_quad;
//  - `load_quad<Bits>(step, part)`: the codes of quad `part` of a step (INT8: 0; INT4: 0 for
//    the low nibbles, 1 for the high ones);
//  - `dot_quad<Bits>(acc, codes, q)`: per lane acc + sum_j (code_j - b) * q[j] over the 4
//    activation codes q[0 .. 3], exact in int32.
// Saturation: AVX2 multiplies with vpmaddubsw (u8 x s8, pairs summed with int16 saturation).
// INT4 codes (<= 15) stay far below it (2 * 15 * 127); INT8 codes (<= 255) would not
// (2 * 255 * 127 > 32767), so AVX2 recentres INT8 codes to s8 = code - 128 (b = 128) and
// multiplies |s8| by q with s8's sign: 2 * 128 * 127 < 32767. AVX-512 has VNNI (vpdpbusd:
// u8 x s8 summed in int32 without saturation), so b = 0.

#if QCODEC_TARGET_ID == QCODEC_TARGET_ID_AVX2

struct integer_quads {
  static constexpr int int_batch = 4;
  template <int Bits>
  static constexpr int code_bias = Bits == 8 ? 128 : 0;
  using code_quad = __m256i;
  template <int Bits>
  static code_quad load_quad(const std::uint8_t* step, int part) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(step));
    if constexpr (Bits == 8)  // code ^ 0x80 is the s8 value code - 128
      return _mm256_xor_si256(bytes, _mm256_set1_epi8(static_cast<char>(0x80)));
    else
      return _mm256_and_si256(part == 0 ? bytes : _mm256_srli_epi16(bytes, 4), _mm256_set1_epi8(0x0F));
  }
  template <int Bits>
  static __m256i dot_quad(__m256i acc, code_quad codes, const std::int8_t* q) {
    std::int32_t word;
    __builtin_memcpy(&word, q, sizeof word);
    const __m256i qv = _mm256_set1_epi32(word);
    // |code - 128| times q with the sign of code - 128 (INT8); codes times q (INT4).
    const __m256i u = Bits == 8 ? _mm256_abs_epi8(codes) : codes;
    const __m256i s = Bits == 8 ? _mm256_sign_epi8(qv, codes) : qv;
    const __m256i pairs = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

#elif QCODEC_TARGET_ID == QCODEC_TARGET_ID_AVX512

struct integer_quads {
  static constexpr int int_batch = 8;
  template <int Bits>
  static constexpr int code_bias = 0;
  using code_quad = __m512i;
  template <int Bits>
  static code_quad load_quad(const std::uint8_t* step, int part) {
    const __m512i bytes = _mm512_loadu_si512(step);
    if constexpr (Bits == 4)
      return _mm512_and_si512(part == 0 ? bytes : _mm512_srli_epi16(bytes, 4), _mm512_set1_epi8(0x0F));
    else
      return bytes;
  }
  template <int Bits>
  static __m512i dot_quad(__m512i acc, code_quad codes, const std::int8_t* q) {
#  if defined(__GNUC__)
    // u8 x s8, four products per int32 lane, q broadcast from memory. As asm: GCC 12 copies
    // the accumulator of the intrinsic to a fresh register and back on every call.
    __asm__("vpdpbusd %2%{1to16%}, %1, %0"
            : "+v"(acc)
            : "v"(codes), "m"(*reinterpret_cast<const std::int32_t*>(q)));
    return acc;
#  else
    std::int32_t word;
    __builtin_memcpy(&word, q, sizeof word);
    return _mm512_dpbusd_epi32(acc, codes, _mm512_set1_epi32(word));
#  endif
  }
};

#else

/// Lane by lane in plain integers (the scalar target, and NEON until it has its own).
struct integer_quads {
  static constexpr int int_batch = backend::width == 1 ? 8 : 4;
  template <int Bits>
  static constexpr int code_bias = 0;
  struct code_quad {
    std::uint8_t codes[4 * backend::width];
  };
  template <int Bits>
  static code_quad load_quad(const std::uint8_t* step, int part) {
    code_quad quad;
    for (index_t k = 0; k < 4 * backend::width; ++k)
      quad.codes[k] = static_cast<std::uint8_t>(Bits == 8 ? step[k] : (step[k] >> (4 * part)) & 0x0F);
    return quad;
  }
  template <int Bits>
  static typename backend::int_vector dot_quad(typename backend::int_vector acc, const code_quad& quad,
                                               const std::int8_t* q) {
    std::int32_t lanes[backend::width];
    for (index_t l = 0; l < backend::width; ++l) {
      lanes[l] = 0;
      for (index_t j = 0; j < 4; ++j) lanes[l] += std::int32_t{quad.codes[4 * l + j]} * q[j];
    }
    return backend::int_add(acc, backend::load_ints(lanes));
  }
};

#endif

/// The panel layout of this target for `Bits`-bit codes.
inline integer_layout integer_layout_of(tag, int bits) {
  return {tag::id, backend::width, bits == 8 ? integer_quads::code_bias<8> : integer_quads::code_bias<4>};
}

/// Integer dot products of panel p's rows (those in [first, last)) with activation rows
/// [b0, b0 + NB), written to y(b, r). Per lane (weight row) and activation block k (inside
/// one weight block: a group, or the row) with weight scale s_w and offset z, and activation
/// scale s_k: acc = sum (code - bias) q over block k, exact in int32 (integer_panels);
/// acc - (z - bias) * sum q = sum (code - z) q is the block's exact integer dot product,
/// converted to float (exact for blocks of up to 518 columns: 518 * 127 * 255 < 2^24; one
/// rounding beyond) and accumulated as y += value * (s_w * s_k) (the scale product rounded
/// once, one FMA). Padding columns add 0 (their activation codes are 0).
/// Rounding: at most blocks + 2 FP32 roundings on any output (a block's conversion and scale
/// product, then its FMA compounded through the later FMAs), each relative to a partial sum
/// bounded by sum |x^ w^|, where x^ = s_k q.
template <class Codec, int NB>
void integer_panel(const integer_panels<Codec>& w, const int8_activations& a, index_t b0, index_t p,
                   index_t first, index_t last, matrix_ref& y) {
  using panels = integer_panels<Codec>;
  constexpr int bits = panels::bits;
  constexpr index_t panel_rows = backend::width, step_bytes = 4 * panel_rows;
  constexpr int parts = static_cast<int>(panels::step_cols / 4);
  // Independent accumulators per activation row for passes over one or two rows, which would
  // otherwise wait on the latency of every dot_quad.
  constexpr int sets = NB <= 2 ? 2 : 1;
  // A step of 4 or more dot_quads is a slow stream (measured at batch 2, 4, 8:
  // bench/history/cpu-linear-op-passes.md, "Prefetch by stream pace").
  constexpr auto pace = NB * parts >= 4 ? simd::pace::slow : simd::pace::fast;
  const std::int8_t* q[NB];
  for (int i = 0; i < NB; ++i) q[i] = a.codes(b0 + i);
  const std::uint8_t* codes = w.codes(p);
  const index_t block_steps = w.activation_cols() / panels::step_cols;
  const index_t blocks = (w.steps() + block_steps - 1) / block_steps;
  const index_t blocks_per_weight_block = (w.block_cols() + w.activation_cols() - 1) / w.activation_cols();
  typename backend::float_vector total[NB];
  for (int i = 0; i < NB; ++i) total[i] = backend::float_zero();
  for (index_t k = 0; k < blocks; ++k) {
    typename backend::int_vector acc[sets][NB];
    for (int u = 0; u < sets; ++u)
      for (int i = 0; i < NB; ++i) acc[u][i] = backend::int_zero();
    const auto step = [&](index_t t, int u) {
      const std::uint8_t* bytes = codes + t * step_bytes;
      simd::prefetch_ahead<pace>(bytes);
      for (int h = 0; h < parts; ++h) {
        const auto quad = integer_quads::template load_quad<bits>(bytes, h);
        for (int i = 0; i < NB; ++i)
          acc[u][i] = integer_quads::template dot_quad<bits>(acc[u][i], quad, q[i] + t * panels::step_cols + 4 * h);
      }
    };
    const index_t t1 = std::min(w.steps(), (k + 1) * block_steps);
    index_t t = k * block_steps;
    for (; t + sets <= t1; t += sets)
      for (int u = 0; u < sets; ++u) step(t + u, u);
    for (; t < t1; ++t) step(t, 0);
    const index_t j = k / blocks_per_weight_block;
    const auto scales = backend::load(w.scales(p, j));
    const auto offsets = backend::load_ints(w.offsets(p, j));
    for (int i = 0; i < NB; ++i) {
      auto sum = acc[0][i];
      for (int u = 1; u < sets; ++u) sum = backend::int_add(sum, acc[u][i]);
      const auto centred = backend::int_sub(sum, backend::int_multiply(offsets, backend::int_splat(a.sum(b0 + i, k))));
      total[i] = backend::fmadd(backend::to_float(centred), backend::multiply(scales, a.scale(b0 + i, k)), total[i]);
    }
  }
  const index_t top = p * panel_rows;
  const index_t l0 = std::max<index_t>(0, first - top), l1 = std::min(panel_rows, last - top);
  alignas(64) float lanes[panel_rows];
  for (int i = 0; i < NB; ++i) {
    backend::store(lanes, total[i]);
    for (index_t l = l0; l < l1; ++l) y(b0 + i, top + l) = lanes[l];
  }
}

/// y(b, r) for weight rows [first, last) and every activation row of `a`, panel by panel, in
/// passes of int_batch activation rows.
template <class Codec>
void integer_panel_rows(tag, const integer_panels<Codec>& w, const int8_activations& a, index_t first,
                        index_t last, matrix_ref& y) {
  constexpr int nb = integer_quads::int_batch;
  const index_t p0 = first / backend::width, p1 = (last + backend::width - 1) / backend::width;
  const auto rows = [&]<int NB>(index_t b0) {
    for (index_t p = p0; p < p1; ++p) integer_panel<Codec, NB>(w, a, b0, p, first, last, y);
  };
  index_t b0 = 0;
  for (; b0 + nb <= a.batch(); b0 += nb) rows.template operator()<nb>(b0);
  // The last partial batch block, one instantiation per remaining count.
  [&]<int... N>(std::integer_sequence<int, N...>) {
    ((a.batch() - b0 == N + 1 ? rows.template operator()<N + 1>(b0) : void()), ...);
  }(std::make_integer_sequence<int, nb - 1>{});
}
