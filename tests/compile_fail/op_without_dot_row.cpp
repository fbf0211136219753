// Must not compile: the dual-stream op over a codec without a fused decode-dot.
#include <qcodec/ops/dual_stream_linear.hpp>

#include "../plain_codec.hpp"

int main() {
  const qcodec::row_matrix w = qcodec::row_matrix::Ones(2, 3);
  qcodec::dual_stream_linear<qcodec::test::plain_codec> op(qcodec::test::plain_codec{}.encode(w));
  return static_cast<int>(op.out_features());
}
