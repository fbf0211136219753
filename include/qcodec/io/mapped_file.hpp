#pragma once
/// A read-only memory mapping of a whole file (POSIX), so large files are not copied.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"

namespace qcodec::inline QCODEC_ABI::io {

/// Owns a read-only mapping of a regular file; bytes() stays valid until destruction
/// (a move keeps the same address).
class mapped_file {
 public:
  mapped_file() = default;

  /// Maps `path`; throws qcodec::error naming the file when it cannot be opened or mapped, or
  /// is not a regular file. The open does not block: a FIFO (whose open would wait for a
  /// writer) or a device is refused by the fstat that follows, before anything is read.
  explicit mapped_file(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) qcodec::detail::fail(path.string(), ": cannot open: ", std::strerror(errno));
    struct ::stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd);
      qcodec::detail::fail(path.string(), ": not a regular file");
    }
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ > 0) {
      void* address = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (address == MAP_FAILED) {
        const int code = errno;
        ::close(fd);
        qcodec::detail::fail(path.string(), ": cannot map ", size_, " bytes: ", std::strerror(code));
      }
      data_ = static_cast<const std::byte*>(address);
    }
    ::close(fd);
  }

  mapped_file(mapped_file&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  mapped_file& operator=(mapped_file&& other) noexcept {
    if (this != &other) {
      unmap();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { unmap(); }

  /// The file's bytes.
  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  void unmap() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
  }

  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Drops the pages wholly inside `bytes` (a span of a read-only mapping) from this process's
/// resident set (madvise MADV_DONTNEED); a later read faults them in again from the file. A
/// streaming reader calls it once it is done with a tensor, so that its resident memory is
/// bounded by the tensors it holds, not by the file. Partial pages at either end are kept.
inline void release_pages(std::span<const std::byte> bytes) noexcept {
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(bytes.data());
  const std::uintptr_t first = (begin + page - 1) / page * page;
  const std::uintptr_t last = (begin + bytes.size()) / page * page;
  if (bytes.empty() || last <= first) return;
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace qcodec::inline QCODEC_ABI::io
