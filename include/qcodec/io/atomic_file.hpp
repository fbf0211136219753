#pragma once
/// Atomic file replacement (POSIX): write a temporary file in the target's directory, fsync,
/// rename over the target, fsync the directory. On any failure the temporary file is removed
/// and an existing target is left untouched.
///
/// The target must be a regular file or absent. A symbolic link, FIFO, device, socket or
/// directory is refused before anything is written (a rename would replace the link or the
/// special file itself, e.g. /dev/null run as root), and checked again just before the rename.
/// Symbolic links are refused rather than followed: the caller names the file it means.
///
/// The temporary file is unnamed (O_TMPFILE) where the file system has it: it gets a name
/// only once complete and checked, just before the rename, so a kill (even SIGKILL) during the
/// write leaves nothing behind. Elsewhere it is a hidden ".NAME.tmp-PID-N-T" file, registered
/// for removal by remove_temporaries_on_interrupt() (interrupt_cleanup.hpp).

#include <fcntl.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/io/interrupt_cleanup.hpp"

namespace qcodec::inline QCODEC_ABI::io {

/// Sink handed to the producer of an atomically written file.
class file_sink {
 public:
  file_sink(int fd, std::string label) : fd_(fd), label_(std::move(label)) {}

  /// Appends `length` bytes of file `from` starting at `offset` (copy_file_range, which may
  /// share extents on a file system that can; a buffered pread/write where it fails); throws
  /// qcodec::error on a read or write error or when `from` ends early.
  void copy_from(int from, std::uint64_t offset, std::uint64_t length) {
    auto in = static_cast<::off_t>(offset);
    while (length > 0 && use_copy_file_range_) {
      const ::ssize_t copied = ::copy_file_range(from, &in, fd_, nullptr, length, 0);
      if (copied < 0 && errno == EINTR) continue;
      if (copied < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP ||
                         errno == EBADF || errno == EPERM)) {
        use_copy_file_range_ = false;  // the buffered copy below goes on from `in`
        break;
      }
      if (copied < 0) qcodec::detail::fail(label_, ": copy failed: ", std::strerror(errno));
      if (copied == 0) qcodec::detail::fail(label_, ": copy failed: the spill file ended early");
      length -= static_cast<std::uint64_t>(copied);
    }
    std::vector<std::byte> buffer;
    while (length > 0) {
      if (buffer.empty()) buffer.resize(std::size_t{1} << 20);
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer.size()));
      const ::ssize_t got = ::pread(from, buffer.data(), want, in);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) qcodec::detail::fail(label_, ": read failed: ", std::strerror(errno));
      if (got == 0) qcodec::detail::fail(label_, ": copy failed: the spill file ended early");
      write(std::span(buffer.data(), static_cast<std::size_t>(got)));
      in += got;
      length -= static_cast<std::uint64_t>(got);
    }
  }

  /// Appends `bytes`; throws qcodec::error on a write error (disk full, I/O error).
  void write(std::span<const std::byte> bytes) {
    const std::byte* data = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      const ::ssize_t written = ::write(fd_, data, left);
      if (written < 0 && errno == EINTR) continue;
      if (written < 0 && errno == EFAULT)
        qcodec::detail::fail(label_, ": write failed: the data to write could not be read (a mapped "
                             "input file shrank while it was being read?)");
      if (written <= 0) qcodec::detail::fail(label_, ": write failed: ", std::strerror(errno));
      data += written;
      left -= static_cast<std::size_t>(written);
    }
  }

 private:
  int fd_;
  std::string label_;
  bool use_copy_file_range_ = true;
};

/// A check of a complete file that accepts every file.
struct accept_file {
  void operator()(const std::filesystem::path&) const {}
};

namespace detail {

/// What kind of file `mode` describes, for error messages.
inline const char* file_kind(::mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

/// A fresh name for a temporary file next to `path` (at most 100 bytes of the target's name:
/// the suffix adds about 40, and a name may have 255).
inline std::string temporary_name(const std::filesystem::path& directory, const std::filesystem::path& path) {
  static std::atomic<unsigned long> counter{0};
  const auto clock = std::chrono::steady_clock::now().time_since_epoch().count();
  return (directory / ("." + path.filename().string().substr(0, 100) + ".tmp-" +
                       std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" +
                       std::to_string(clock)))
      .string();
}

}  // namespace detail

/// Throws qcodec::error unless `path` is absent or a regular file (symbolic links refused,
/// not followed). Returns the regular file's status in `*existing` when it exists.
inline bool require_regular_or_absent(const std::filesystem::path& path, struct ::stat* existing = nullptr) {
  struct ::stat status {};
  if (::lstat(path.c_str(), &status) != 0) {
    if (errno == ENOENT) return false;
    qcodec::detail::fail(path.string(), ": cannot inspect the output path: ", std::strerror(errno));
  }
  if (S_ISLNK(status.st_mode))
    qcodec::detail::fail(path.string(), ": is a symbolic link; the output must be a regular file or absent "
                         "(name the file the link points to)");
  if (!S_ISREG(status.st_mode))
    qcodec::detail::fail(path.string(), ": is ", detail::file_kind(status.st_mode),
                         "; the output must be a regular file or absent");
  if (existing != nullptr) *existing = status;
  return true;
}

/// Opens a fresh read-write temporary file in `directory` that has no name (O_TMPFILE; where
/// the file system lacks it, a named file unlinked at once, registered for removal on an
/// interrupt for the moment it has a name), so nothing is left behind even on SIGKILL. The
/// caller closes the descriptor. Throws qcodec::error when none can be created.
inline int open_unnamed_temporary(const std::filesystem::path& directory) {
  const std::filesystem::path dir = directory.empty() ? std::filesystem::path(".") : directory;
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  for (unsigned attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    const std::string temp = detail::temporary_name(dir, "spill");
    const int slot = detail::register_temporary(temp);
    fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    const int code = errno;
    if (fd >= 0) ::unlink(temp.c_str());
    detail::unregister_temporary(slot);
    if (fd < 0 && code != EEXIST) break;
  }
  if (fd < 0)
    qcodec::detail::fail("cannot create a temporary file in '", dir.string(), "': ", std::strerror(errno));
  return fd;
}

/// Writes `path` atomically: `produce(file_sink&)` writes the content to a temporary file
/// that replaces `path` only once complete and synced, and once `check(temporary_path)` has
/// returned (e.g. read the file back; the path may be a /proc/self/fd link to the unnamed
/// file). If `path` is neither a regular file nor absent, if `produce` or `check` throws, or
/// if any step fails, `path` is untouched, no temporary file is left, and the exception
/// propagates.
template <class Producer, class Check = accept_file>
void write_file_atomically(const std::filesystem::path& path, Producer&& produce, Check&& check = {}) {
  const std::filesystem::path directory =
      path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  // The temporary file gets the mode the target would get: an existing target's own mode,
  // else 0666 less the umask (applied by the kernel to open's mode; mkstemp would force 0600).
  struct ::stat target_status {};
  const bool replacing = require_regular_or_absent(path, &target_status);
  // Unnamed first; a file system without O_TMPFILE (or no /proc to link it by) gets a named one.
  int fd = ::access("/proc/self/fd", X_OK) == 0
               ? ::open(directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666)
               : -1;
  const bool unnamed = fd >= 0;
  std::string temp;
  int cleanup_slot = -1;
  for (unsigned attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    temp = detail::temporary_name(directory, path);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) qcodec::detail::fail(path.string(), ": cannot create a temporary file in '",
                           directory.string(), "': ", std::strerror(errno));
  if (!unnamed) cleanup_slot = detail::register_temporary(temp);
  bool open = true;
  bool named = !unnamed;
  try {
    if (replacing && ::fchmod(fd, target_status.st_mode & 07777) != 0)
      qcodec::detail::fail(path.string(), ": cannot set the temporary file's mode: ", std::strerror(errno));
    file_sink sink(fd, path.string());
    produce(sink);
    if (::fsync(fd) != 0) qcodec::detail::fail(path.string(), ": fsync failed: ", std::strerror(errno));
    check(std::filesystem::path(unnamed ? "/proc/self/fd/" + std::to_string(fd) : temp));
    // The target may have been replaced by something else while the file was written.
    require_regular_or_absent(path);
    if (unnamed) {
      const std::string link = "/proc/self/fd/" + std::to_string(fd);
      for (unsigned attempt = 0; !named && attempt < 100; ++attempt) {
        temp = detail::temporary_name(directory, path);
        cleanup_slot = detail::register_temporary(temp);
        named = ::linkat(AT_FDCWD, link.c_str(), AT_FDCWD, temp.c_str(), AT_SYMLINK_FOLLOW) == 0;
        if (named) break;
        const int code = errno;
        detail::unregister_temporary(cleanup_slot);
        cleanup_slot = -1;
        if (code != EEXIST)
          qcodec::detail::fail(path.string(), ": cannot name the temporary file: ", std::strerror(code));
      }
      if (!named) qcodec::detail::fail(path.string(), ": cannot name the temporary file");
    }
    open = false;
    if (::close(fd) != 0) qcodec::detail::fail(path.string(), ": close failed: ", std::strerror(errno));
    if (::rename(temp.c_str(), path.c_str()) != 0)
      qcodec::detail::fail(path.string(), ": cannot rename the temporary file into place: ",
                   std::strerror(errno));
    detail::unregister_temporary(cleanup_slot);
  } catch (...) {
    if (open) ::close(fd);
    if (named) ::unlink(temp.c_str());
    detail::unregister_temporary(cleanup_slot);
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
