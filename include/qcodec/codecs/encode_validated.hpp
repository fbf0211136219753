#pragma once
/// Encoding that measures its own fidelity and enforces a caller's bound.

#include <string_view>

#include "qcodec/codecs/codec.hpp"
#include "qcodec/config.hpp"
#include "qcodec/core/fidelity.hpp"

namespace qcodec::inline QCODEC_ABI {

template <class Codec>
struct validated_encoding {
  encoded_matrix<Codec> encoded;
  fidelity_report report;
};

/// Encodes `w`, decodes it and measures the fidelity; throws qcodec::error naming `name` when
/// the report misses `bound` (nothing is returned then).
template <codec Codec>
validated_encoding<Codec> encode_validated(const Codec& codec, matrix_view w,
                                           const fidelity_bound& bound = {},
                                           std::string_view name = "weight") {
  encoded_matrix<Codec> encoded = codec.encode(w, name);
  const fidelity_report report = measure_fidelity(w, encoded.decode());
  require(report, bound, name);
  return {std::move(encoded), report};
}

}  // namespace qcodec::inline QCODEC_ABI
