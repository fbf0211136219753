#pragma once
/// The one exception type of qcodec.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "qcodec/config.hpp"

namespace qcodec {

/// Reports bad input or a violated bound; the message names the tensor, row or file at fault.
/// Outside the ABI namespace (config.hpp): one type for every translation unit, so a handler
/// catches it whatever flags the code that threw it was built with.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace qcodec

namespace qcodec::inline QCODEC_ABI::detail {

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  std::ostringstream message;
  message << "qcodec: ";
  (message << ... << std::forward<Parts>(parts));
  throw error(message.str());
}

}  // namespace qcodec::inline QCODEC_ABI::detail
