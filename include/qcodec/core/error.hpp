#pragma once
/// The one exception type of qcodec.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace qcodec {

/// Reports bad input or a violated bound; the message names the tensor, row or file at fault.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  std::ostringstream message;
  message << "qcodec: ";
  (message << ... << std::forward<Parts>(parts));
  throw error(message.str());
}

}  // namespace detail
}  // namespace qcodec
