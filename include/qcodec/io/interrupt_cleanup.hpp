#pragma once
/// Removal of named temporary files when the process is interrupted (SIGINT, SIGTERM, SIGHUP).
///
/// write_file_atomically registers a named temporary file here for as long as it exists (only
/// where the file system has no unnamed temporary files, O_TMPFILE). A program that calls
/// remove_temporaries_on_interrupt() once gets handlers that unlink every registered file and
/// then end the process by the same signal, with the default action. SIGKILL cannot be
/// handled: an unnamed temporary file is the only protection against it.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstddef>
#include <cstring>
#include <string_view>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"

namespace qcodec::inline QCODEC_ABI::io {

namespace detail {

/// Fixed slots (no allocation, readable from a signal handler): a slot is owned while `state`
/// is 1 and its path is complete; the handler reads only slots in that state.
struct temporary_slot {
  std::atomic<int> state{0};  // 0 free, 2 being written, 1 registered
  char path[PATH_MAX]{};
};
inline std::array<temporary_slot, 32>& temporary_slots() {
  static std::array<temporary_slot, 32> slots;
  return slots;
}

/// Registers `path` for removal on interrupt; returns its slot, or -1 when none is free or the
/// path is too long (the file is then not removed on interrupt, which is not an error).
inline int register_temporary(std::string_view path) {
  if (path.size() >= PATH_MAX) return -1;
  auto& slots = temporary_slots();
  for (std::size_t i = 0; i < slots.size(); ++i) {
    int expected = 0;
    if (!slots[i].state.compare_exchange_strong(expected, 2)) continue;
    std::memcpy(slots[i].path, path.data(), path.size());
    slots[i].path[path.size()] = '\0';
    slots[i].state.store(1);
    return static_cast<int>(i);
  }
  return -1;
}

/// Forgets slot `slot` (from register_temporary; -1 is ignored).
inline void unregister_temporary(int slot) {
  if (slot >= 0) temporary_slots()[static_cast<std::size_t>(slot)].state.store(0);
}

/// Unlinks every registered file; async-signal-safe.
inline void unlink_registered_temporaries() noexcept {
  for (temporary_slot& slot : temporary_slots())
    if (slot.state.load() == 1) ::unlink(slot.path);
}

extern "C" inline void remove_temporaries_and_reraise(int signal_number) {
  unlink_registered_temporaries();
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

}  // namespace detail

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove the temporary files of the
/// atomic writes in progress, then end the process by that signal. A signal the process
/// ignores stays ignored. Throws qcodec::error when a handler cannot be installed.
inline void remove_temporaries_on_interrupt() {
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction previous {};
    if (::sigaction(signal_number, nullptr, &previous) != 0)
      qcodec::detail::fail("cannot query the handler of signal ", signal_number, ": ", std::strerror(errno));
    if (previous.sa_handler == SIG_IGN) continue;
    struct sigaction action {};
    action.sa_handler = detail::remove_temporaries_and_reraise;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    if (::sigaction(signal_number, &action, nullptr) != 0)
      qcodec::detail::fail("cannot install the handler of signal ", signal_number, ": ", std::strerror(errno));
  }
}

}  // namespace qcodec::inline QCODEC_ABI::io
