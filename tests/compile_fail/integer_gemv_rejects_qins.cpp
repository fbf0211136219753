// Must not compile: integer-domain compute on QINS codes (a codec at rest: decode first).
#include <qcodec/codecs/qins.hpp>
#include <qcodec/ops/integer_gemv.hpp>

int main() {
  const qcodec::row_matrix w = qcodec::row_matrix::Ones(2, 3);
  const auto encoded = qcodec::qins<8>{}.encode(w);
  return static_cast<int>(qcodec::integer_gemv(encoded, w).sum());
}
