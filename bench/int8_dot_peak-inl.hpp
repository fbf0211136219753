// The integer kernels' inner step alone, compiled per SIMD target like a library kernel
// (core/simd/foreach_target.hpp; no include guard, includes nothing): dot_quad on registers
// and an L1-resident activation quad, `chains` independent accumulators. Returns the lanes
// (weight rows) one dot_quad serves.
inline qcodec::index_t int8_dot_peak_run(tag, int steps) {
  constexpr int chains = 12;
  alignas(64) static const std::int8_t q[4] = {3, -1, 2, -3};
  alignas(64) std::uint8_t bytes[4 * backend::width];
  for (index_t i = 0; i < 4 * backend::width; ++i) bytes[i] = static_cast<std::uint8_t>(i * 3);
  const auto codes = integer_quads::load_quad<8>(bytes, 0);
  typename backend::int_vector acc[chains];
  for (auto& a : acc) a = backend::int_zero();
  for (int i = 0; i < steps; ++i)
    for (auto& a : acc) a = integer_quads::dot_quad<8>(a, codes, q);
  for (auto& a : acc) benchmark::DoNotOptimize(a);
  return backend::width;
}
