#include "platoon/channel/job_key.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "platoon/common/error.hpp"
#include "platoon/common/file.hpp"
#include "platoon/common/log.hpp"
#include "platoon/common/secret.hpp"

namespace platoon {

namespace fs = std::filesystem;

namespace {

// The folder exists (created 0700 when it did not), is a folder and not a
// link, belongs to this user and is closed to everyone else.
void require_private_folder(const fs::path& folder) {
  if (::mkdir(folder.c_str(), 0700) != 0 && errno != EEXIST)
    throw ResourceError(str_cat("cannot create the key folder ", folder.string(), ": ", errno_text(errno)));
  struct stat st {};
  if (::lstat(folder.c_str(), &st) != 0)
    throw ResourceError(str_cat("cannot inspect the key folder ", folder.string(), ": ", errno_text(errno)));
  if (!S_ISDIR(st.st_mode))
    throw ResourceError(str_cat("the key folder ", folder.string(), " is not a folder (a link or a file is refused)"));
  if (st.st_uid != ::getuid())
    throw ResourceError(str_cat("the key folder ", folder.string(), " belongs to user ", st.st_uid, ", not to user ",
                                ::getuid(), ": refusing to keep job keys there"));
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw ResourceError(str_cat("the key folder ", folder.string(), " is open to other users (mode ", mode,
                                "); it must be 0700"));
  }
}

// The file name for an endpoint: TCP endpoints by port, others by their
// text with everything but letters, digits, '.' and '-' replaced.
std::string key_file_name(std::string_view endpoint) {
  if (endpoint.starts_with("tcp://")) {
    const std::size_t colon = endpoint.rfind(':');
    const std::string_view port = endpoint.substr(colon + 1);
    if (colon > 5 && !port.empty() && port.find_first_not_of("0123456789") == std::string_view::npos)
      return str_cat("tcp-", port, ".key");
  }
  std::string name;
  for (const char c : endpoint)
    name.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_');
  return name + ".key";
}

}  // namespace

fs::path job_key_folder() {
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && runtime[0] == '/') {
    struct stat st {};
    if (::stat(runtime, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::getuid()) {
      const fs::path folder = fs::path(runtime) / "platoon";
      require_private_folder(folder);
      return folder;
    }
  }
  const fs::path folder = str_cat("/tmp/platoon-", ::getuid());
  require_private_folder(folder);
  return folder;
}

fs::path job_key_path(std::string_view endpoint) { return job_key_folder() / key_file_name(endpoint); }

std::string private_ipc_endpoint(std::string_view name) {
  const bool plain = !name.empty() && name.size() <= 64 && name != "." && name != ".." &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
                     });
  if (!plain)
    throw Error(str_cat("ipc endpoint name '", name, "' must be 1 to 64 letters, digits, '-', '_' or '.'"));
  return str_cat("ipc://", (job_key_folder() / str_cat(name, ".ipc")).string());
}

bool is_job_key(std::string_view key) {
  return key.size() == 2 * kJobKeyBytes && key.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string read_job_key(std::string_view endpoint) {
  const fs::path path = job_key_path(endpoint);
  const Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0)
    throw ResourceError(str_cat("no job key for ", endpoint, ": cannot read ", path.string(), " (", errno_text(errno),
                                "); is a controller of this user listening there?"));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::getuid() || (st.st_mode & 077) != 0)
    throw ResourceError(str_cat("the job key file ", path.string(),
                                " is not a file of this user's that only this user can read: refused"));
  char buffer[2 * kJobKeyBytes + 2];
  ssize_t n = 0;
  do n = ::read(fd.get(), buffer, sizeof buffer);
  while (n < 0 && errno == EINTR);
  if (n < 0) throw ResourceError(str_cat("cannot read the job key file ", path.string(), ": ", errno_text(errno)));
  std::string key(buffer, static_cast<std::size_t>(n));
  if (!key.empty() && key.back() == '\n') key.pop_back();
  if (!is_job_key(key))
    throw ResourceError(str_cat("the job key file ", path.string(), " does not hold a job key (", 2 * kJobKeyBytes,
                                " hex digits)"));
  return key;
}

JobKeyFile::JobKeyFile(std::string_view endpoint, std::string key)
    : path_(job_key_path(endpoint)), key_(std::move(key)) {
  write_file_atomically(path_, {key_, "\n"}, 0600);
}

JobKeyFile::~JobKeyFile() {
  // Another job at the same endpoint (this one's port reused) may have
  // written its own key since: that one stays.
  const Fd fd(::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return;
  char buffer[2 * kJobKeyBytes + 2];
  const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
  std::string held(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  if (!held.empty() && held.back() == '\n') held.pop_back();
  if (secrets_equal(held, key_)) ::unlink(path_.c_str());
}

}  // namespace platoon
