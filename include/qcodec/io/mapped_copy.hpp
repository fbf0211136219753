#pragma once
/// Copies out of a file mapping that turn a shrinking file into an error, not a crash.
///
/// A mapped page past the end of a file that was truncated after it was mapped raises SIGBUS
/// when touched. These copies run under a SIGBUS handler (installed once, process-wide) that
/// recognises a fault inside the range being copied and jumps back (siglongjmp) to throw
/// qcodec::error; a fault anywhere else goes to the handler that was there before (by default
/// the process ends, as without this header). Between the jump point and the copy nothing
/// owns resources, so the jump skips no destructor.

#include <signal.h>

#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"

namespace qcodec::inline QCODEC_ABI::io {

namespace detail {

struct mapped_copy_guard {
  sigjmp_buf jump;
  const std::byte* begin;
  const std::byte* end;
};

inline thread_local mapped_copy_guard* active_mapped_copy = nullptr;

inline struct sigaction& sigbus_before_qcodec() {
  static struct sigaction previous {};
  return previous;
}

extern "C" inline void on_mapped_copy_fault(int signal_number, siginfo_t* info, void* context) {
  mapped_copy_guard* guard = active_mapped_copy;
  const auto* address = static_cast<const std::byte*>(info->si_addr);
  if (guard != nullptr && address >= guard->begin && address < guard->end) siglongjmp(guard->jump, 1);
  const struct sigaction& previous = sigbus_before_qcodec();
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(signal_number, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal_number);
  } else {
    ::signal(SIGBUS, SIG_DFL);  // returning repeats the faulting access, which now ends the process
  }
}

inline void install_mapped_copy_handler() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_sigaction = on_mapped_copy_fault;
    sigemptyset(&action.sa_mask);
    // SA_NODEFER: the jump leaves the handler without restoring the signal mask, so SIGBUS
    // must not be blocked while it runs.
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    if (::sigaction(SIGBUS, &action, &sigbus_before_qcodec()) != 0)
      qcodec::detail::fail("cannot install a SIGBUS handler: ", std::strerror(errno));
    return true;
  }();
  (void)installed;
}

[[noreturn]] inline void fail_mapped_copy(std::string_view label) {
  qcodec::detail::fail(label, ": the file shrank while it was being read (truncated or replaced "
                              "in place by another process); nothing read from it is used");
}

}  // namespace detail

/// Copies `from`, memory of a mapped file (or any memory), to `to`. Throws qcodec::error
/// naming `label` when the file was truncated under the mapping.
inline void copy_from_mapping(std::span<const std::byte> from, std::byte* to, std::string_view label) {
  if (from.empty()) return;
  detail::install_mapped_copy_handler();
  detail::mapped_copy_guard guard;
  guard.begin = from.data();
  guard.end = from.data() + from.size();
  detail::mapped_copy_guard* const outer = detail::active_mapped_copy;
  detail::active_mapped_copy = &guard;
  if (sigsetjmp(guard.jump, 0) == 0) {
    std::memcpy(to, from.data(), from.size());
    detail::active_mapped_copy = outer;
    return;
  }
  detail::active_mapped_copy = outer;
  detail::fail_mapped_copy(label);
}

/// Calls `use(chunk)` on consecutive copies (at most 64 KiB each) of `from`, memory of a
/// mapped file; `use` runs outside the guarded copy and may throw. Throws as copy_from_mapping.
template <class Use>
void for_each_mapped_chunk(std::span<const std::byte> from, std::string_view label, Use&& use) {
  constexpr std::size_t chunk_bytes = std::size_t{1} << 16;
  alignas(64) std::byte chunk[chunk_bytes];
  for (std::size_t done = 0; done < from.size(); done += chunk_bytes) {
    const auto part = from.subspan(done, std::min(chunk_bytes, from.size() - done));
    copy_from_mapping(part, chunk, label);
    use(std::span<const std::byte>(chunk, part.size()));
  }
}

/// True when `a` and `b` (memory of mapped files) hold the same bytes. Throws as copy_from_mapping.
inline bool equal_mapped(std::span<const std::byte> a, std::span<const std::byte> b, std::string_view label) {
  if (a.size() != b.size()) return false;
  bool same = true;
  std::size_t offset = 0;
  for_each_mapped_chunk(a, label, [&](std::span<const std::byte> chunk) {
    std::byte other[std::size_t{1} << 12];
    for (std::size_t i = 0; same && i < chunk.size(); i += sizeof other) {
      const std::size_t n = std::min(sizeof other, chunk.size() - i);
      copy_from_mapping(b.subspan(offset + i, n), other, label);
      same = std::memcmp(chunk.data() + i, other, n) == 0;
    }
    offset += chunk.size();
  });
  return same;
}

}  // namespace qcodec::inline QCODEC_ABI::io
