#pragma once
/// IEEE binary16 storage type (Eigen::half) and its conversions.

#include <Eigen/Core>

#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI {

/// 16-bit float as stored at rest; converts to float exactly and from float round-to-nearest-even.
using half = Eigen::half;

/// Scale storage types a codec may use.
template <class T>
concept scale_storage = std::same_as<T, float> || std::same_as<T, half>;

/// Largest finite value of a storage type.
template <scale_storage T>
constexpr float max_finite() {
  return std::same_as<T, half> ? 65504.0f : 3.40282347e38f;
}

}  // namespace qcodec::inline QCODEC_ABI
