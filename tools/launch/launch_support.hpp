// The parts of platoon-launch that need no processes: splitting a command
// string into words, putting the control port into a command, and cutting
// a process's output into timestamped lines. Kept apart so that the tests
// can check them directly.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "platoon/common/error.hpp"

namespace platoon::launch {

/// A command line or option that platoon-launch cannot use. The message says
/// what is wrong and with which argument.
class UsageError : public Error {
 public:
  using Error::Error;
};

/// Splits `command` into words as a POSIX shell would, without expanding
/// anything: words are separated by blanks; '...' keeps everything literally;
/// "..." keeps everything but lets a backslash escape \ " $ ` and a newline;
/// outside quotes a backslash keeps the next character. Throws UsageError on
/// an unterminated quote or a trailing backslash.
std::vector<std::string> split_command(std::string_view command);

/// Replaces every literal "{port}" in `argv` by `port`; when no argument
/// contains "{port}", appends "--port" and `port` instead.
std::vector<std::string> with_port(std::vector<std::string> argv, int port);

/// Whether `line` starts with an ISO-8601 timestamp such as
/// "2026-11-21T23:10:00.123Z" (what platoon::Logger writes): the date, 'T',
/// the time to the second, then an optional fraction and 'Z' or an offset.
bool starts_with_timestamp(std::string_view line);

/// `word` quoted for a POSIX shell: as it is when it holds only safe
/// characters, else in single quotes. split_command() reads it back.
std::string shell_quote(std::string_view word);

/// `line` with a timestamp: as it is when it starts with one, else
/// platoon::utc_timestamp() + " " + line.
std::string stamped(std::string_view line);

/// Cuts a byte stream into lines (without their '\n'). A line longer than
/// `max_line` bytes is passed on in pieces of that size, so that a process
/// that never writes a newline cannot make the buffer grow without bound.
class LineSplitter {
 public:
  using Sink = std::function<void(std::string_view line)>;
  explicit LineSplitter(Sink sink, std::size_t max_line = 64 * 1024) : sink_(std::move(sink)), max_line_(max_line) {}

  /// Passes on every complete line in `bytes`; keeps the rest for later.
  void feed(std::string_view bytes);
  /// Passes on what is left (a last line with no newline), if anything.
  void finish();

 private:
  Sink sink_;
  std::size_t max_line_;
  std::string partial_;
};

}  // namespace platoon::launch
