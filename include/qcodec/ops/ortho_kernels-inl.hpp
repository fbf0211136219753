// The sparse product's kernel (ops/ortho_product.hpp), compiled per SIMD target
// (core/simd/foreach_target.hpp; no include guard, includes nothing). Lanes are activation
// rows: a chunk of ortho_chunk_rows of them per pass over the rows' entries (one lane at batch
// 1), the entry's value broadcast, x(chunk, c) one load from the chunk's slab of xᵀ. The passes
// go chunk by chunk over every row of the range, so a slab (cols x 16 floats) stays in the
// L2 cache while it serves them all. Four output rows walk their entries side by side (entry k
// of each, then k + 1): independent FMA chains, each still over its own row's entries in
// column order, the specification's bits.

/// value * x + sum, one rounding, per lane (__builtin_fmaf: the scalar backend's fmadd is
/// a * b + c, fused only where the compiler contracts it).
inline float ortho_fma(float value, float x, float sum) { return __builtin_fmaf(value, x, sum); }
template <class Vector>
Vector ortho_fma(float value, Vector x, Vector sum) {
  return backend::fmadd(backend::splat(value), x, sum);
}

/// Lane operations on a chunk of ortho_chunk_rows activation rows (a slab column of xᵀ).
struct ortho_chunk_lanes {
  static constexpr index_t width = ortho_chunk_rows;
  static constexpr int steps = static_cast<int>(width / backend::width);
  static_assert(steps * backend::width == width);
  struct vector {
    typename backend::float_vector v[steps];
  };
  static vector zero() {
    vector z;
    for (int s = 0; s < steps; ++s) z.v[s] = backend::float_zero();
    return z;
  }
  static vector fma(float value, const float* x, vector sum) {
    for (int s = 0; s < steps; ++s) sum.v[s] = ortho_fma(value, backend::load(x + s * backend::width), sum.v[s]);
    return sum;
  }
  static void store(float* out, const vector& sums) {
    for (int s = 0; s < steps; ++s) backend::store(out + s * backend::width, sums.v[s]);
  }
};

/// Lane operations on one activation row (batch 1: x itself).
struct ortho_one_lane {
  static constexpr index_t width = 1;
  using vector = float;
  static float zero() { return 0; }
  static float fma(float value, const float* x, float sum) { return ortho_fma(value, *x, sum); }
  static void store(float* out, float sum) { *out = sum; }
};

/// The sums of `Rows` output rows from r on over the activation rows of `x` (a slab, or x
/// itself): entry k of each row, then k + 1, each row's entries in column order. The rows are
/// unrolled at compile time, so the sums stay in registers.
template <class Lanes, int Rows, class Column>
void ortho_row_sums(const ortho_product<Column>& p, const float* x, index_t r, typename Lanes::vector (&out)[Rows]) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    typename Lanes::vector sums[Rows] = {(static_cast<void>(I), Lanes::zero())...};
    const std::uint32_t first[Rows] = {p.row_offsets[r + I]...};
    const std::uint32_t length[Rows] = {(p.row_offsets[r + I + 1] - first[I])...};
    const std::uint32_t shortest = std::min({length[I]...});
    const auto step = [&](typename Lanes::vector& sum, std::uint32_t e) {
      sum = Lanes::fma(p.values[e], x + static_cast<index_t>(p.columns[e]) * Lanes::width, sum);
    };
    for (std::uint32_t k = 0; k < shortest; ++k) (step(sums[I], first[I] + k), ...);
    ((void)[&] { for (std::uint32_t k = shortest; k < length[I]; ++k) step(sums[I], first[I] + k); }(), ...);
    ((out[I] = sums[I]), ...);
  }(std::make_integer_sequence<int, Rows>{});
}

/// y(b0 + j, r) = fma(alpha, sum_j, y(b0 + j, r)) + bias[r] for j < count.
template <class Lanes, class Column>
void ortho_finish(const ortho_product<Column>& p, index_t b0, index_t count, index_t r,
                  const typename Lanes::vector& sums) {
  float lanes[Lanes::width];
  Lanes::store(lanes, sums);
  for (index_t j = 0; j < count; ++j) {
    float& out = p.y[(b0 + j) * p.y_stride + r];
    float value = __builtin_fmaf(p.alpha, lanes[j], out);
    if (p.bias != nullptr) value += p.bias[r];
    out = value;
  }
}

template <class Lanes, class Column>
void ortho_product_lanes(const ortho_product<Column>& p, index_t first, index_t last) {
  constexpr int together = 4;
  for (index_t b0 = 0; b0 < p.batch; b0 += Lanes::width) {
    const index_t count = std::min(Lanes::width, p.batch - b0);
    const float* x = p.x + b0 * p.cols;  // chunk b0 / width's slab (x itself at batch 1)
    index_t r = first;
    for (; r + together <= last; r += together) {
      typename Lanes::vector sums[together];
      ortho_row_sums<Lanes>(p, x, r, sums);
      for (int i = 0; i < together; ++i) ortho_finish<Lanes>(p, b0, count, r + i, sums[i]);
    }
    for (; r < last; ++r) {
      typename Lanes::vector sums[1];
      ortho_row_sums<Lanes>(p, x, r, sums);
      ortho_finish<Lanes>(p, b0, count, r, sums[0]);
    }
  }
}

/// Applies the sparse product (ops/ortho_product.hpp) to the output rows [first, last).
template <class Column>
void ortho_product_rows(tag, const ortho_product<Column>& p, index_t first, index_t last) {
  if (p.batch == 1) ortho_product_lanes<ortho_one_lane>(p, first, last);
  else ortho_product_lanes<ortho_chunk_lanes>(p, first, last);
}
