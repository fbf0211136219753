// The kernels of ops/slab_products.hpp, compiled per SIMD target (core/simd/foreach_target.hpp;
// no include guard, includes nothing). Lanes are the activation rows of a slab: one vector
// load of x(slab, c), the weight broadcast, one FMA per output row. Several output rows advance
// together as independent FMA chains, each still in its stated order: the specification's bits.
//  - Dense tile product: `tile_rows_together` rows of the tile per pass, over blocks of
//    tile_block_cols columns (the slab's block, 16 KiB, stays in L1 across the tile's rows;
//    the sums wait in `partial` between blocks).
//  - Sparse product: slab by slab over every row of the range, so a slab (cols x 16 floats)
//    stays in the L2 cache while it serves them all; a group's rows walk their entries side by
//    side (ortho_groups: interleaved and padded, no branch), each over its own in column order.

/// value * x + sum, one rounding, per lane (__builtin_fmaf: the scalar backend's fmadd is
/// a * b + c, fused only where the compiler contracts it).
inline float slab_fma(float value, float x, float sum) { return __builtin_fmaf(value, x, sum); }
template <class Vector>
Vector slab_fma(float value, Vector x, Vector sum) {
  return backend::fmadd(backend::splat(value), x, sum);
}

/// Lane operations on the slab_rows activation rows of a slab column.
struct slab_lanes {
  static constexpr index_t width = slab_rows;
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
  static vector load(const float* x) {
    vector v;
    for (int s = 0; s < steps; ++s) v.v[s] = backend::load(x + s * backend::width);
    return v;
  }
  static vector load_fma(float value, const float* x, vector sum) { return fma(value, load(x), sum); }
  static vector fma(float value, const vector& x, vector sum) {
    for (int s = 0; s < steps; ++s) sum.v[s] = slab_fma(value, x.v[s], sum.v[s]);
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
  static float load_fma(float value, const float* x, float sum) { return slab_fma(value, *x, sum); }
  static void store(float* out, float sum) { *out = sum; }
};

/// y(b0 + j, r0 + i) = fma(alpha, sum_ij, y(b0 + j, r0 + i)) + bias[r0 + i] for j < count,
/// i < held: row by row of y (its outputs of a group are contiguous).
template <class Lanes, class Column, int Rows>
void ortho_finish(const ortho_product<Column>& p, index_t b0, index_t count, index_t r0, index_t held,
                  const typename Lanes::vector (&sums)[Rows]) {
  float lanes[Rows][Lanes::width];
  for (int i = 0; i < Rows; ++i) Lanes::store(lanes[i], sums[i]);
  for (index_t j = 0; j < count; ++j) {
    float* out = p.y + (b0 + j) * p.y_stride + r0;
    for (index_t i = 0; i < held; ++i) out[i] = __builtin_fmaf(p.alpha, lanes[i][j], out[i]);
    if (p.bias != nullptr)
      for (index_t i = 0; i < held; ++i) out[i] += p.bias[r0 + i];
  }
}

template <class Lanes, class Column>
void ortho_product_lanes(const ortho_product<Column>& p, index_t first, index_t last) {
  constexpr int together = static_cast<int>(ortho_group_rows);
  const ortho_groups<Column>& o = *p.groups;
  for (index_t b0 = 0; b0 < p.batch; b0 += Lanes::width) {
    const index_t count = std::min(Lanes::width, p.batch - b0);
    const float* x = p.x + b0 * p.cols;  // slab b0 / width (x itself at batch 1)
    for (index_t g = first; g < last; ++g) {
      [&]<int... I>(std::integer_sequence<int, I...>) {
        typename Lanes::vector sums[together] = {(static_cast<void>(I), Lanes::zero())...};
        for (std::size_t e = o.offsets[g], end = o.offsets[g + 1]; e < end; e += together)
          ((sums[I] = Lanes::load_fma(o.values[e + I], x + static_cast<index_t>(o.columns[e + I]) * Lanes::width,
                                      sums[I])),
           ...);
        const index_t r0 = g * together, held = std::min<index_t>(together, o.rows - r0);
        ortho_finish<Lanes>(p, b0, count, r0, held, sums);
      }(std::make_integer_sequence<int, together>{});
    }
  }
}

/// Applies the sparse product (ops/slab_products.hpp) to the rows of groups [first, last).
template <class Column>
void ortho_product_groups(tag, const ortho_product<Column>& p, index_t first, index_t last) {
  if (p.batch == 1) ortho_product_lanes<ortho_one_lane>(p, first, last);
  else ortho_product_lanes<slab_lanes>(p, first, last);
}

/// Rows of the tile one pass of the dense product serves (its FMA chains; registers hold rows x
/// slab_rows / width sums), measured on a 32 x 4096 tile: AVX-512 8 rows 1.1-2x faster than 12,
/// 16 or 24; AVX2 6 rows 1.05x faster than 4 (bench/RESULTS.md, "Decode-then-GEMM: the slab
/// kernel").
inline constexpr int tile_rows_together = backend::width >= 16 ? 8 : 6;
/// Columns per block of the dense product: the slab's block is tile_block_cols · 64 bytes.
inline constexpr index_t tile_block_cols = 256;

/// Rows [r, r + Rows) of the tile over columns [k0, k1) of slab `x`: the sums continue from
/// `partial` (or start at 0 when k0 == 0) and go back to it.
template <int Rows>
void tile_rows_block(const tile_product& p, const float* x, index_t r, index_t k0, index_t k1) {
  using vector = slab_lanes::vector;
  [&]<int... I>(std::integer_sequence<int, I...>) {
    float* partial = p.partial + r * slab_rows;
    vector sums[Rows] = {(static_cast<void>(I), k0 == 0 ? slab_lanes::zero() : slab_lanes::load(partial + I * slab_rows))...};
    const float* w[Rows] = {(p.w + (r + I) * p.cols)...};
    for (index_t k = k0; k < k1; ++k) {
      const vector xk = slab_lanes::load(x + k * slab_rows);
      ((sums[I] = slab_lanes::fma(w[I][k], xk, sums[I])), ...);
    }
    (slab_lanes::store(partial + I * slab_rows, sums[I]), ...);
  }(std::make_integer_sequence<int, Rows>{});
}

/// Applies the dense tile product (ops/slab_products.hpp).
inline void tile_product_rows(tag, const tile_product& p) {
  constexpr int together = tile_rows_together;
  for (index_t b0 = 0; b0 < p.batch; b0 += slab_rows) {
    const float* x = p.slabs + b0 * p.cols;
    for (index_t k0 = 0; k0 < p.cols; k0 += tile_block_cols) {
      const index_t k1 = std::min(p.cols, k0 + tile_block_cols);
      index_t r = 0;
      for (; r + together <= p.rows; r += together) tile_rows_block<together>(p, x, r, k0, k1);
      for (; r + 2 <= p.rows; r += 2) tile_rows_block<2>(p, x, r, k0, k1);
      if (r < p.rows) tile_rows_block<1>(p, x, r, k0, k1);
    }
    const index_t count = std::min(slab_rows, p.batch - b0);
    for (index_t j = 0; j < count; ++j)
      for (index_t r = 0; r < p.rows; ++r) p.y[(b0 + j) * p.y_stride + p.first + r] = p.partial[r * slab_rows + j];
  }
}
