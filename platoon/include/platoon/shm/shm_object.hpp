// One POSIX shared-memory object mapped into this process: the building block
// of the segments that are not the parameter center (the collective group's
// buffers, shared data sets). Plain shm_open + mmap, no Boost.
#pragma once

#include <cstddef>
#include <string>

namespace platoon {

/// Reserves the first `bytes` of the open shared-memory file `fd` (object
/// `name`), so that a full /dev/shm is a ResourceError here, naming the bytes
/// needed and free, rather than a SIGBUS at the first write.
void reserve_shm_space(int fd, const std::string& name, std::size_t bytes);

/// A mapping of one named POSIX shared-memory object ("/dev/shm/<name>").
/// Move-only; unmapping never removes the name (see remove()).
class ShmObject {
 public:
  ShmObject() = default;

  /// Creates `name` exclusively (mode 0600) with `bytes` bytes reserved
  /// (posix_fallocate, so a full /dev/shm is an error here rather than a
  /// SIGBUS later) and maps it read-write, zero-filled. Throws ResourceError
  /// naming the object: it exists already, or there is not enough space (the
  /// message gives the bytes needed and free). Nothing is left behind on
  /// failure.
  static ShmObject create(const std::string& name, std::size_t bytes);

  /// Maps an existing object, read-write or read-only, at its real size.
  /// Throws ResourceError naming it if it does not exist or cannot be mapped.
  static ShmObject open(const std::string& name, bool writable);

  /// Removes the name; mappings stay valid. False if there was nothing.
  static bool remove(const std::string& name) noexcept;

  ShmObject(ShmObject&& other) noexcept;
  ShmObject& operator=(ShmObject&& other) noexcept;
  ShmObject(const ShmObject&) = delete;
  ShmObject& operator=(const ShmObject&) = delete;
  ~ShmObject();

  [[nodiscard]] void* data() const { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] bool mapped() const { return data_ != nullptr; }

 private:
  ShmObject(std::string name, void* data, std::size_t size) : name_(std::move(name)), data_(data), size_(size) {}
  std::string name_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace platoon
