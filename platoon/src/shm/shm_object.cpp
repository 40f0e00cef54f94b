#include "platoon/shm/shm_object.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "platoon/common/error.hpp"
#include "platoon/common/file.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

namespace {
std::string object_path(const std::string& name) { return "/" + name; }

std::string free_bytes_text() {
  struct statvfs fs {};
  if (::statvfs("/dev/shm", &fs) != 0) return "unknown";
  return std::to_string(static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize);
}
}  // namespace

void reserve_shm_space(int fd, const std::string& name, std::size_t bytes) {
  // tmpfs reserves nothing on ftruncate: a write to an unreserved page of a
  // full /dev/shm would be SIGBUS later, far from here.
  if (const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)); err != 0) {
    if (err == ENOSPC)
      throw ResourceError(str_cat("cannot create shared-memory object ", name, ": /dev/shm has not enough space: ",
                                  bytes, " bytes needed, ", free_bytes_text(), " bytes free"));
    throw ResourceError(
        str_cat("cannot create shared-memory object ", name, ": reserving ", bytes, " bytes failed: ", errno_text(err)));
  }
}

ShmObject ShmObject::create(const std::string& name, std::size_t bytes) {
  if (bytes == 0) throw ResourceError(str_cat("shared-memory object ", name, ": cannot create an empty object"));
  Fd fd(::shm_open(object_path(name).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0)
    throw ResourceError(str_cat("cannot create shared-memory object ", name, ": ", errno_text(errno)));
  auto fail = [&](const std::string& what) {
    ::shm_unlink(object_path(name).c_str());
    throw ResourceError(str_cat("cannot create shared-memory object ", name, ": ", what));
  };
  try {
    reserve_shm_space(fd.get(), name, bytes);
  } catch (const ResourceError&) {
    ::shm_unlink(object_path(name).c_str());
    throw;
  }
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) fail(str_cat("mmap of ", bytes, " bytes failed: ", errno_text(errno)));
  return ShmObject(name, data, bytes);
}

ShmObject ShmObject::open(const std::string& name, bool writable) {
  Fd fd(::shm_open(object_path(name).c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0));
  if (fd.get() < 0) throw ResourceError(str_cat("cannot open shared-memory object ", name, ": ", errno_text(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw ResourceError(str_cat("cannot stat shared-memory object ", name, ": ", errno_text(errno)));
  if (st.st_size <= 0) throw ResourceError(str_cat("shared-memory object ", name, " is empty"));
  const auto bytes = static_cast<std::size_t>(st.st_size);
  void* data = ::mmap(nullptr, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED)
    throw ResourceError(str_cat("cannot map shared-memory object ", name, ": ", errno_text(errno)));
  return ShmObject(name, data, bytes);
}

bool ShmObject::remove(const std::string& name) noexcept { return ::shm_unlink(object_path(name).c_str()) == 0; }

ShmObject::ShmObject(ShmObject&& other) noexcept
    : name_(std::move(other.name_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

ShmObject& ShmObject::operator=(ShmObject&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, size_);
    name_ = std::move(other.name_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

ShmObject::~ShmObject() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace platoon
