// Timestamped, tagged log lines, so that the logs of every process of a job
// can be put on one time axis:
//   2026-11-21T23:10:00.123Z [worker 1] synced 10000000 parameters
#pragma once

#include <atomic>
#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>

namespace platoon {

/// Writes one line per call to a FILE (stderr by default), prefixed with an
/// ISO-8601 UTC timestamp (milliseconds) and a tag naming the process.
/// Each line is written with a single fwrite, so the lines of concurrent
/// threads and processes sharing the stream do not interleave.
///
/// When the stream can no longer be written (its reader is gone: platoon-launch
/// was killed, and with it the pipe it read), a line is appended to the file
/// named by $PLATOON_LOG_FILE instead, this process's log file, which
/// platoon-launch names for each process it starts. Nothing is lost then, the
/// last words of a job included.
class Logger {
 public:
  explicit Logger(std::string tag, std::FILE* out = stderr) : tag_(std::move(tag)), out_(out) {}
  Logger(const Logger& other) : tag_(other.tag_), out_(other.out_), stream_gone_(other.stream_gone_.load()) {}
  Logger& operator=(const Logger& other) {
    tag_ = other.tag_;
    out_ = other.out_;
    stream_gone_.store(other.stream_gone_.load());
    return *this;
  }

  /// Says that the stream's reader is known to be gone (the launcher that
  /// read it died), so that every later line goes to $PLATOON_LOG_FILE at
  /// once. Needed because a dying reader may keep the pipe open a moment
  /// after it is seen dead (its other threads still hold the descriptor),
  /// and a line written then would be lost. Thread-safe.
  void stream_gone() const { stream_gone_.store(true); }

  /// Changes the tag (e.g. once a worker has learned its id).
  void set_tag(std::string tag) { tag_ = std::move(tag); }
  [[nodiscard]] const std::string& tag() const { return tag_; }

  /// Writes `message` as one line.
  void write(std::string_view message) const;

  /// Writes the arguments, streamed one after the other, as one line.
  template <class... Args>
  void info(const Args&... args) const { write(concat(args...)); }
  /// Same as info(), prefixed with "warning: ".
  template <class... Args>
  void warn(const Args&... args) const { write(concat("warning: ", args...)); }
  /// Same as info(), prefixed with "error: ".
  template <class... Args>
  void error(const Args&... args) const { write(concat("error: ", args...)); }

 private:
  template <class... Args>
  static std::string concat(const Args&... args) {
    std::ostringstream out;
    (out << ... << args);
    return out.str();
  }

  std::string tag_;
  std::FILE* out_;
  mutable std::atomic<bool> stream_gone_{false};
};

/// The current time as "2026-11-21T23:10:00.123Z".
std::string utc_timestamp();

/// Streams its arguments into one string: the building block of messages.
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

}  // namespace platoon
