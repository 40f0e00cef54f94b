#include "platoon/common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>

namespace platoon {

std::string utc_timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t seconds = system_clock::to_time_t(now);
  const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  const std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  char out[48];
  std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), buffer, static_cast<int>(millis));
  return out;
}

void Logger::write(std::string_view message) const {
  std::string line = utc_timestamp();
  line += " [";
  line += tag_;
  line += "] ";
  line += message;
  line += '\n';
  if (!stream_gone_.load()) {
    const bool written = std::fwrite(line.data(), 1, line.size(), out_) == line.size() && std::fflush(out_) == 0;
    if (written) return;
    std::clearerr(out_);
  }
  // The reader of the stream is gone: the process's own log file, if it has one.
  // Opened for each line: this is rare, and safe from any thread.
  const char* fallback = std::getenv("PLATOON_LOG_FILE");
  if (fallback == nullptr || *fallback == '\0') return;
  const int fd = ::open(fallback, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

}  // namespace platoon
