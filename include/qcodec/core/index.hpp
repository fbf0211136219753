#pragma once
/// The index type of every shape and position (signed, as Eigen's), without Eigen: device
/// code and the bit-packing helpers use it too.

#include <cstddef>

#include "qcodec/config.hpp"

namespace qcodec::inline QCODEC_ABI {

using index_t = std::ptrdiff_t;

}  // namespace qcodec::inline QCODEC_ABI
