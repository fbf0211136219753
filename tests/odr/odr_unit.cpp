// One translation unit of the one-definition-rule test, compiled three times with different
// flags (tests/CMakeLists.txt); ODR_UNIT names this copy's report function. Each copy decodes
// with the library's dispatch and reports the target it ran and its ABI namespace.
#include <qcodec/qcodec.hpp>

#include <cstring>
#include <vector>

#include "odr_report.hpp"

#define ODR_STRING(x) #x
#define ODR_EXPAND(x) ODR_STRING(x)

odr_report ODR_UNIT() {
  using namespace qcodec;
  row_matrix w(3, 77);
  for (index_t r = 0; r < w.rows(); ++r)
    for (index_t c = 0; c < w.cols(); ++c) w(r, c) = static_cast<float>((r * 31 + c * 17) % 23) - 11.0f;
  const auto encoded = linear<4, per_group<32>, half, symmetry::asymmetric>{}.encode(w);
  std::vector<float> fast(static_cast<std::size_t>(w.size())), reference(fast.size());
  encoded.decode_rows(0, w.rows(), fast.data());
  decltype(encoded)::codec_type::decode_rows_ref(encoded.storage(), 0, w.rows(), reference.data());
  const bool same = std::memcmp(fast.data(), reference.data(), fast.size() * sizeof(float)) == 0;
  return {ODR_EXPAND(QCODEC_ABI), std::string(simd::target_name(simd::active_target())), same};
}
