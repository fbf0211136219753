// The kernels of ops/slab_products.hpp against their specification, restated here as plain
// loops, on every SIMD target: the same bits everywhere (ragged slabs, rows not a multiple of
// the rows kept together, unaligned pointers, both column index widths, a row range).

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <qcodec/ops/slab_products.hpp>

#include "random_matrix.hpp"
#include "targets.hpp"

using namespace qcodec;

namespace {

/// A copy of `values` starting one float past a 64-byte boundary.
struct unaligned_copy {
  explicit unaligned_copy(const float* values, std::size_t count) : storage(count + 17) {
    auto address = reinterpret_cast<std::uintptr_t>(storage.data());
    const std::size_t skip = ((64 - address % 64) % 64) / sizeof(float) + 1;
    data = storage.data() + skip;
    std::copy(values, values + count, data);
  }
  std::vector<float> storage;
  float* data;
};

}  // namespace

TEST_CASE("to_slabs: x(b, c) at slab b / 16, column c, lane b % 16, the padding zero", "[slab]") {
  const row_matrix x = test::random_normal(19, 7, 1);
  detail::aligned_buffer slabs;
  to_slabs(x, slabs);
  for (index_t b = 0; b < 32; ++b)
    for (index_t c = 0; c < 7; ++c) {
      const float stored = slabs.data()[(b / slab_rows) * 7 * slab_rows + c * slab_rows + b % slab_rows];
      CHECK(stored == (b < 19 ? x(b, c) : 0.0f));
    }
}

TEST_CASE("tile_product: y(b, first + i) is one FMA chain over the columns, on every target", "[slab]") {
  const index_t rows = 45, cols = 300, first = 3, y_cols = 50;  // 45: not a multiple of 6 or 8
  const row_matrix w = test::random_normal(rows, cols, 2);
  const unaligned_copy tile(w.data(), static_cast<std::size_t>(w.size()));
  for (index_t batch : {1, 16, 17, 33}) {
    const row_matrix x = test::random_normal(batch, cols, 3 + static_cast<unsigned>(batch));
    detail::aligned_buffer slabs;
    to_slabs(x, slabs);
    row_matrix expected = row_matrix::Constant(batch, y_cols, -7.0f);
    for (index_t b = 0; b < batch; ++b)
      for (index_t i = 0; i < rows; ++i) {
        float sum = 0;
        for (index_t k = 0; k < cols; ++k) sum = std::fma(w(i, k), x(b, k), sum);
        expected(b, first + i) = sum;
      }
    test::for_each_target([&](simd::target) {
      row_matrix y = row_matrix::Constant(batch, y_cols, -7.0f);
      std::vector<float> partial_storage(static_cast<std::size_t>(rows * slab_rows + 1));
      const tile_product product{slabs.data(), cols, batch, tile.data, rows, y.data(), y_cols, first,
                                 partial_storage.data() + 1};
      simd::dispatch([&](auto target) { tile_product_rows(target, product); });
      CAPTURE(batch);
      CHECK(y == expected);
    });
  }
}

namespace {

/// A random CSR stream of rows x cols: 0 to 24 entries per row (row 5 empty).
struct random_stream {
  random_stream(index_t rows, index_t cols, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> count(0, 24);
    std::uniform_int_distribution<index_t> column(0, cols - 1);
    std::normal_distribution<float> value(0.0f, 1.0f);
    offsets.push_back(0);
    for (index_t r = 0; r < rows; ++r) {
      std::vector<std::uint32_t> row;
      for (int n = r == 5 ? 0 : count(rng); n > 0; --n) row.push_back(static_cast<std::uint32_t>(column(rng)));
      std::sort(row.begin(), row.end());
      row.erase(std::unique(row.begin(), row.end()), row.end());
      for (std::uint32_t c : row) {
        columns.push_back(c);
        values.push_back(value(rng));
      }
      offsets.push_back(static_cast<std::uint32_t>(columns.size()));
    }
  }
  std::vector<std::uint32_t> offsets, columns;
  std::vector<float> values;
};

template <class Column>
void check_ortho_product(index_t cols, unsigned seed) {
  // 37 rows: the last group is partial (37 is prime); the groups from 1 on are rows [group rows, 37).
  const index_t rows = 37, first_group = 1, last_group = (rows + ortho_group_rows - 1) / ortho_group_rows;
  const index_t first = first_group * ortho_group_rows, last = rows;
  const random_stream stream(rows, cols, seed);
  const std::vector<Column> columns(stream.columns.begin(), stream.columns.end());
  const unaligned_copy values(stream.values.data(), stream.values.size());
  const ortho_groups<Column> groups(rows, stream.offsets.data(), columns.data(), values.data);
  REQUIRE(groups.groups() == last_group);
  std::vector<float> bias(rows);
  for (index_t r = 0; r < rows; ++r) bias[static_cast<std::size_t>(r)] = 0.125f * static_cast<float>(r) - 2.0f;
  const float alpha = 3.5f;
  for (index_t batch : {1, 8, 19, 40})
    for (bool with_bias : {false, true}) {
      const row_matrix x = test::random_normal(batch, cols, seed + static_cast<unsigned>(batch));
      detail::aligned_buffer slabs;
      to_slabs(x, slabs);
      const row_matrix y0 = test::random_normal(batch, rows, seed + 100);
      row_matrix expected = y0;
      for (index_t b = 0; b < batch; ++b)
        for (index_t r = first; r < last; ++r) {
          float sum = 0;
          for (std::uint32_t e = stream.offsets[static_cast<std::size_t>(r)]; e < stream.offsets[static_cast<std::size_t>(r) + 1]; ++e)
            sum = std::fma(stream.values[e], x(b, static_cast<index_t>(stream.columns[e])), sum);
          expected(b, r) = std::fma(alpha, sum, y0(b, r));
          if (with_bias) expected(b, r) += bias[static_cast<std::size_t>(r)];
        }
      test::for_each_target([&](simd::target) {
        row_matrix y = y0;
        const ortho_product<Column> product{&groups, batch == 1 ? x.data() : slabs.data(), cols, batch, alpha,
                                            with_bias ? bias.data() : nullptr, y.data(), rows};
        simd::dispatch([&](auto target) { ortho_product_groups(target, product, first_group, last_group); });
        CAPTURE(batch, with_bias);
        CHECK(y == expected);  // rows outside [first, last) untouched
      });
    }
}

}  // namespace

TEST_CASE("ortho_product: fma(alpha, column-order FMA chain, y) + bias on a range of row groups, on every target", "[slab]") {
  SECTION("16-bit columns") { check_ortho_product<std::uint16_t>(300, 11); }
  SECTION("32-bit columns") { check_ortho_product<std::uint32_t>(70000, 12); }
}

TEST_CASE("ortho_groups: an empty layout holds no group", "[slab]") {
  CHECK(ortho_groups<std::uint16_t>{}.groups() == 0);
  const std::uint32_t offsets[] = {0};
  CHECK(ortho_groups<std::uint32_t>(0, offsets, nullptr, nullptr).groups() == 0);
}
