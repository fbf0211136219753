// The linear codec's kernels, written once against the generic vector operations and
// compiled per SIMD target (core/simd/foreach_target.hpp; no include guard, includes nothing).
// Called through linear::decode_rows and linear::dot_row.

/// Rows [first, last) of a linear storage as FP32, bit-exact with linear::decode_rows_ref:
/// per lane an integer subtract, an exact int -> float conversion and one multiply, as
/// linear_math::dequantize. Group starts are 0 or multiples of 32 and widths are even, so
/// INT4 steps start on a byte.
template <class Codec>
void linear_decode_rows(tag, const typename Codec::storage& s, index_t first, index_t last, float* out) {
  constexpr int bits = codec_traits<Codec>::bits;
  constexpr index_t w = backend::width;
  for (index_t r = first; r < last; ++r, out += s.cols) {
    const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
    for (index_t c0 = 0; c0 < s.cols; c0 += s.group_size()) {
      const index_t block = s.block_index(r, c0 / s.group_size());
      const float scale = static_cast<float>(s.scales[static_cast<std::size_t>(block)]);
      const int offset = s.offset(block);
      const auto offsets = backend::int_splat(offset);
      const index_t c1 = std::min(s.cols, c0 + s.group_size());
      index_t c = c0;
      for (; c + w <= c1; c += w)
        backend::store(out + c, backend::multiply(backend::to_float(backend::int_sub(
                                                      backend::template load_codes<bits>(row, c), offsets)),
                                                  scale));
      for (; c < c1; ++c) out[c] = linear_math::dequantize(unpack_code<bits>(row, c), offset, scale);
    }
  }
}

/// out[b] = sum_c Ŵ(r, c) x[b][c] for b < NB, decoding row r in registers: the same decoded
/// values as linear_decode_rows, summed in another order (two accumulators per lane, then
/// the lanes, then the ragged tail). With `cached` (the decoded weight) the values are read
/// from it instead, in the same order, giving the same bits.
template <class Codec, int NB>
void linear_dot_row(tag, const typename Codec::storage& s, index_t r, const float* const* x, float* out,
                    const float* cached) {
  constexpr int bits = codec_traits<Codec>::bits;
  constexpr index_t w = backend::width;
  const float* cached_row = cached == nullptr ? nullptr : cached + r * s.cols;
  const std::uint8_t* row = s.codes.data() + r * s.row_bytes();
  typename backend::float_vector acc[2][NB];
  for (auto& lane : acc)
    for (auto& a : lane) a = backend::float_zero();
  float tail[NB] = {};
  for (index_t c0 = 0; c0 < s.cols; c0 += s.group_size()) {
    const index_t block = s.block_index(r, c0 / s.group_size());
    const float scale = static_cast<float>(s.scales[static_cast<std::size_t>(block)]);
    const int offset = s.offset(block);
    const auto offsets = backend::int_splat(offset);
    const auto decoded = [&](index_t c) {
      return cached_row ? backend::load(cached_row + c)
                        : backend::multiply(backend::to_float(backend::int_sub(
                                                backend::template load_codes<bits>(row, c), offsets)),
                                            scale);
    };
    const index_t c1 = std::min(s.cols, c0 + s.group_size());
    index_t c = c0;
    for (; c + 2 * w <= c1; c += 2 * w) {
      const auto w0 = decoded(c), w1 = decoded(c + w);
      for (int b = 0; b < NB; ++b) {
        acc[0][b] = backend::fmadd(w0, backend::load(x[b] + c), acc[0][b]);
        acc[1][b] = backend::fmadd(w1, backend::load(x[b] + c + w), acc[1][b]);
      }
    }
    for (; c + w <= c1; c += w) {
      const auto w0 = decoded(c);
      for (int b = 0; b < NB; ++b) acc[0][b] = backend::fmadd(w0, backend::load(x[b] + c), acc[0][b]);
    }
    for (; c < c1; ++c) {
      const float value = cached_row ? cached_row[c] : linear_math::dequantize(unpack_code<bits>(row, c), offset, scale);
      for (int b = 0; b < NB; ++b) tail[b] = std::fma(value, x[b][c], tail[b]);  // explicit: same bits with or without -ffp-contract
    }
  }
  for (int b = 0; b < NB; ++b) out[b] = (backend::reduce(acc[0][b]) + backend::reduce(acc[1][b])) + tail[b];
}
