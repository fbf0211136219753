#pragma once
// A tensor shape as the command-line tools print it: [rows,cols].
#include <cstdint>
#include <string>
#include <vector>

namespace qcodec::examples {

inline std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(std::to_string(shape[i]));
  }
  return out + "]";
}

}  // namespace qcodec::examples
