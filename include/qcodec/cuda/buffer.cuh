#pragma once
/// Owning device memory (RAII, move-only) and checked copies.

#include <cstddef>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

#include <cuda_runtime.h>

#include "qcodec/config.hpp"
#include "qcodec/cuda/error.cuh"

namespace qcodec::inline QCODEC_ABI::cuda {

/// A device array of `size()` elements of trivially copyable T, freed on destruction.
template <class T>
class device_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "device buffers hold trivially copyable types");

 public:
  device_buffer() = default;
  /// Allocates `count` uninitialised elements (none for 0).
  explicit device_buffer(std::size_t count) : size_(count) {
    if (count > 0) check(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)), "cudaMalloc");
  }
  /// Allocates and copies `host` (synchronous with respect to the host buffer).
  explicit device_buffer(std::span<const T> host) : device_buffer(host.size()) { upload(host); }
  device_buffer(device_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  device_buffer& operator=(device_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * sizeof(T); }
  bool empty() const { return size_ == 0; }

  /// Copies `host` (host.size() <= size()) to the start of the buffer, synchronously.
  void upload(std::span<const T> host) {
    if (host.size() > size_)
      qcodec::detail::fail("device_buffer::upload: ", host.size(), " elements into a buffer of ", size_);
    if (!host.empty()) check(cudaMemcpy(data_, host.data(), host.size_bytes(), cudaMemcpyHostToDevice), "cudaMemcpy (upload)");
  }
  /// Copies the first host.size() elements back to `host`, synchronously.
  void download(std::span<T> host) const {
    if (host.size() > size_)
      qcodec::detail::fail("device_buffer::download: ", host.size(), " elements from a buffer of ", size_);
    if (!host.empty()) check(cudaMemcpy(host.data(), data_, host.size_bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy (download)");
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) (void)cudaFree(data_);  // a destructor cannot report; cudaFree only fails after an earlier error
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace qcodec::inline QCODEC_ABI::cuda
