// Small file helpers shared by the layers that write files (checkpoints, key
// files): an owned file descriptor and an atomic write.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>

namespace platoon {

/// The system's text for an errno value.
std::string errno_text(int err);

/// Owns one file descriptor and closes it when destroyed. Move-only.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  /// Closes now; returns the errno of a failed close, 0 on success.
  int close();

 private:
  int fd_;
};

/// Writes the concatenation of `parts` to `path` atomically, with file mode
/// `mode` (a temporary file "<path>.tmp.<pid>.<random>" created exclusively,
/// never through a link, then fsync, rename, fsync of the
/// directory). Throws ResourceError naming the path and the system's reason.
/// Used for checkpoints and key files.
void write_file_atomically(const std::filesystem::path& path, std::initializer_list<std::string_view> parts,
                           unsigned mode = 0600);

}  // namespace platoon
