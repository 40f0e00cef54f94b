#include "platoon/common/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

std::string errno_text(int err) { return std::strerror(err); }

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

int Fd::close() {
  if (fd_ < 0) return 0;
  const int rc = ::close(fd_);
  fd_ = -1;
  return rc == 0 ? 0 : errno;
}

void write_file_atomically(const std::filesystem::path& path, std::initializer_list<std::string_view> parts,
                           unsigned mode) {
  // The temporary file is created exclusively (O_EXCL, O_NOFOLLOW): whatever
  // another user planted at its name (a symlink to a file of theirs, a FIFO)
  // is never opened. The name has a random part, so that nobody can plant it
  // in advance, and a clash is retried with another one.
  std::random_device random;
  std::filesystem::path temp;
  Fd fd;
  int err = 0;
  for (int attempt = 0; attempt < 16 && fd.get() < 0; ++attempt) {
    temp = str_cat(path.string(), ".tmp.", ::getpid(), ".", std::hex, random(), random());
    const int raw = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    err = errno;
    fd = Fd(raw);
    if (raw < 0 && err != EEXIST) break;
  }
  if (fd.get() < 0) {  // the temporary file was not created: nothing to remove
    throw ResourceError(str_cat("cannot write ", path, ": creating ", temp, " failed: ", errno_text(err)));
  }
  auto fail = [&](const std::string& step, int err) {
    ::unlink(temp.c_str());
    throw ResourceError(str_cat("cannot write ", path, ": ", step, " failed: ", errno_text(err)));
  };

  {
    // The umask may have narrowed the mode; set exactly what was asked.
    if (::fchmod(fd.get(), mode) != 0) fail("fchmod", errno);
    for (std::string_view part : parts) {
      while (!part.empty()) {
        const ssize_t n = ::write(fd.get(), part.data(), part.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          fail("write", errno);
        }
        part.remove_prefix(static_cast<std::size_t>(n));
      }
    }
    if (::fsync(fd.get()) != 0) fail("fsync", errno);
    if (const int err = fd.close(); err != 0) fail("close", err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) fail(str_cat("renaming ", temp), errno);

  // Make the rename itself durable.
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0)
    throw ResourceError(str_cat("wrote ", path, " but could not flush its directory ", dir, ": ", errno_text(errno)));
}

}  // namespace platoon
