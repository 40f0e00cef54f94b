// The job key: a secret that a worker must show to register with a
// controller. The controller writes it to a file only its user can read, so
// that the processes of other users on the host can neither join a job nor
// act in it; the same user's processes are inside the trust boundary.
//
// Key files live in $XDG_RUNTIME_DIR/platoon when that folder is usable, or
// else in /tmp/platoon-<uid>, a folder of mode 0700 owned by the user (it is
// refused when anyone else owns it or can enter it). A job at a TCP endpoint
// has the file "tcp-<port>.key": a worker reaches a controller bound to any
// address of the host through its port.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace platoon {

/// Bytes of randomness in a job key (it is written as twice as many hex digits).
inline constexpr std::size_t kJobKeyBytes = 32;

/// The folder of this user's key files, created (mode 0700) when missing.
/// Throws ResourceError naming it when it cannot be created, or when it is
/// not a folder of this user's that only this user can enter.
std::filesystem::path job_key_folder();

/// Where the key of the job at `endpoint` is kept (see above); creates the
/// folder as job_key_folder() does.
std::filesystem::path job_key_path(std::string_view endpoint);

/// Reads the key of the job at `endpoint` from its file. Throws
/// ResourceError naming the file when it is missing, unreadable, not this
/// user's, readable by others, or does not hold a key.
std::string read_job_key(std::string_view endpoint);

/// An ipc:// endpoint for a single-host job: a socket named `name` in the
/// user's key folder (job_key_folder(), mode 0700), which no other user can
/// enter, let alone connect to. `name` may hold letters, digits, '-', '_'
/// and '.'; throws Error naming it otherwise.
std::string private_ipc_endpoint(std::string_view name);

/// Whether `key` has the form of a job key (2·kJobKeyBytes hex digits).
bool is_job_key(std::string_view key);

/// The key file of one job, written (mode 0600, atomically) when made and
/// removed when destroyed, unless another job has replaced it meanwhile.
class JobKeyFile {
 public:
  /// Writes `key` as the key of the job at `endpoint`. Throws ResourceError
  /// naming the file when it cannot.
  JobKeyFile(std::string_view endpoint, std::string key);
  ~JobKeyFile();
  JobKeyFile(const JobKeyFile&) = delete;
  JobKeyFile& operator=(const JobKeyFile&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::string key_;
};

}  // namespace platoon
