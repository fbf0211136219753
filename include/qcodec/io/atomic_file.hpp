#pragma once
/// Atomic file replacement (POSIX): write a temporary file in the target's directory, fsync,
/// rename over the target, fsync the directory. On any failure the temporary file is removed
/// and an existing target is left untouched.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"

namespace qcodec::inline QCODEC_ABI::io {

/// Sink handed to the producer of an atomically written file.
class file_sink {
 public:
  file_sink(int fd, std::string label) : fd_(fd), label_(std::move(label)) {}

  /// Appends `bytes`; throws qcodec::error on a write error (disk full, I/O error).
  void write(std::span<const std::byte> bytes) {
    const std::byte* data = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      const ::ssize_t written = ::write(fd_, data, left);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) qcodec::detail::fail(label_, ": write failed: ", std::strerror(errno));
      data += written;
      left -= static_cast<std::size_t>(written);
    }
  }

 private:
  int fd_;
  std::string label_;
};

/// A check of a complete file that accepts every file.
struct accept_file {
  void operator()(const std::filesystem::path&) const {}
};

/// Writes `path` atomically: `produce(file_sink&)` writes the content to a temporary file
/// that replaces `path` only once complete and synced, and once `check(temporary_path)` has
/// returned (e.g. read the file back). If `produce` or `check` throws, or any step fails,
/// `path` is untouched, no temporary file is left, and the exception propagates.
template <class Producer, class Check = accept_file>
void write_file_atomically(const std::filesystem::path& path, Producer&& produce, Check&& check = {}) {
  const std::filesystem::path directory =
      path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  // The temporary file gets the mode the target would get: an existing target's own mode,
  // else 0666 less the umask (applied by the kernel to open's mode; mkstemp would force 0600).
  struct stat target_status {};
  const bool replacing = ::stat(path.c_str(), &target_status) == 0;
  // At most 100 bytes of the target's name: the suffix adds about 40, and a name may be 255.
  const std::string prefix = "." + path.filename().string().substr(0, 100) + ".tmp-";
  std::string temp;
  int fd = -1;
  for (unsigned attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    static std::atomic<unsigned long> counter{0};
    const auto clock = std::chrono::steady_clock::now().time_since_epoch().count();
    temp = (directory / (prefix + std::to_string(::getpid()) + "-" + std::to_string(++counter) +
                         "-" + std::to_string(clock)))
               .string();
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) qcodec::detail::fail(path.string(), ": cannot create a temporary file in '",
                           directory.string(), "': ", std::strerror(errno));
  bool open = true;
  try {
    if (replacing && ::fchmod(fd, target_status.st_mode & 07777) != 0)
      qcodec::detail::fail(path.string(), ": cannot set the temporary file's mode: ", std::strerror(errno));
    file_sink sink(fd, path.string());
    produce(sink);
    if (::fsync(fd) != 0) qcodec::detail::fail(path.string(), ": fsync failed: ", std::strerror(errno));
    open = false;
    if (::close(fd) != 0) qcodec::detail::fail(path.string(), ": close failed: ", std::strerror(errno));
    check(std::filesystem::path(temp));
    if (::rename(temp.c_str(), path.c_str()) != 0)
      qcodec::detail::fail(path.string(), ": cannot rename the temporary file into place: ",
                   std::strerror(errno));
  } catch (...) {
    if (open) ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  // The rename is durable once the directory entry is synced; failing that, the file is
  // complete either way, so it is not an error.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace qcodec::inline QCODEC_ABI::io
