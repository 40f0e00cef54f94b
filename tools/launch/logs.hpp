// platoon-launch's logs: the run folder, the per-process log files with the
// prefixed console copy, the launcher's own log, and the children's pipes.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "launch_support.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon::launch {

namespace fs = std::filesystem;

/// Creates <parent>/<YYYY-MM-DD_HH-MM-SS> (local time), adding "-2", "-3", ...
/// when a run of the same second has it already.
fs::path create_run_dir(const fs::path& parent);

/// Where lines end up: <run>/<name>.log and stdout, "name | line". Each line
/// is written with one fwrite and flushed, so a crash loses nothing and
/// `tail -f` shows it at once.
class Output {
 public:
  Output(fs::path run_dir, std::size_t name_width) : run_dir_(std::move(run_dir)), width_(name_width) {}
  ~Output() {
    for (auto& [name, file] : files_) std::fclose(file);
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  /// Creates (or opens for appending) <run>/<name>.log.
  void open(const std::string& name) {
    if (files_.contains(name)) return;
    const fs::path path = run_dir_ / (name + ".log");
    std::FILE* file = std::fopen(path.c_str(), "ae");
    if (file == nullptr) throw ResourceError(str_cat("cannot open log file '", path.string(), "': ", std::strerror(errno)));
    files_[name] = file;
  }

  /// Writes one line of `name`, with a timestamp if it has none.
  void line(const std::string& name, std::string_view text) {
    std::string out = stamped(text);
    out += '\n';
    if (auto it = files_.find(name); it != files_.end()) {
      std::fwrite(out.data(), 1, out.size(), it->second);
      std::fflush(it->second);
    }
    std::string console = name;
    console.resize(std::max(width_, name.size()), ' ');
    console += " | ";
    console += out;
    std::fwrite(console.data(), 1, console.size(), stdout);
    std::fflush(stdout);
  }

 private:
  fs::path run_dir_;
  std::size_t width_;
  std::map<std::string, std::FILE*> files_;
};

/// The launcher's own log: a platoon::Logger tagged "launch" whose lines go
/// through Output like any process's (to launch.log and to stdout). The
/// Logger writes to a stdio stream whose bytes land in a LineSplitter.
class LaunchLog {
 public:
  explicit LaunchLog(Output& output)
      : output_(output), splitter_([this](std::string_view l) { output_.line("launch", l); }) {
    output_.open("launch");
    cookie_io_functions_t io{};
    io.write = [](void* self, const char* data, std::size_t size) -> ssize_t {
      static_cast<LaunchLog*>(self)->splitter_.feed({data, size});
      return static_cast<ssize_t>(size);
    };
    stream_ = fopencookie(this, "w", io);
    if (stream_ == nullptr) throw ResourceError("cannot open the launcher's log stream");
    std::setvbuf(stream_, nullptr, _IONBF, 0);
    logger_.emplace("launch", stream_);
  }
  ~LaunchLog() {
    logger_.reset();
    std::fclose(stream_);
    splitter_.finish();
  }
  LaunchLog(const LaunchLog&) = delete;
  LaunchLog& operator=(const LaunchLog&) = delete;

  [[nodiscard]] const Logger& logger() const { return *logger_; }

 private:
  Output& output_;
  LineSplitter splitter_;
  std::FILE* stream_ = nullptr;
  std::optional<Logger> logger_;
};

/// The read end of a child's stdout+stderr pipe, cut into lines for Output.
class Pipe {
 public:
  Pipe(Output& output, std::string name)
      : splitter_([&output, name = std::move(name)](std::string_view l) { output.line(name, l); }) {}
  ~Pipe() { close(); }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  /// Creates the pipe; returns the write end for the child (close it after
  /// spawning with close_write_end()).
  int open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw ResourceError(str_cat("cannot create a pipe: ", std::strerror(errno)));
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    return write_fd_;
  }
  void close_write_end() {
    if (write_fd_ >= 0) ::close(write_fd_);
    write_fd_ = -1;
  }
  [[nodiscard]] int fd() const { return read_fd_; }
  [[nodiscard]] bool open_now() const { return read_fd_ >= 0; }

  /// Reads what is there without waiting (at most `budget` bytes, so that one
  /// chatty process cannot starve the others); at end of file, passes on a
  /// last partial line and closes.
  void drain(std::size_t budget = std::size_t{1} << 20) {
    char buffer[65536];
    while (read_fd_ >= 0 && budget > 0) {
      const ssize_t n = ::read(read_fd_, buffer, std::min(sizeof buffer, budget));
      if (n > 0) {
        splitter_.feed({buffer, static_cast<std::size_t>(n)});
        budget -= static_cast<std::size_t>(n);
      } else if (n == 0) {
        close();
      } else if (errno != EINTR) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) close();
        return;
      }
    }
  }

  /// Passes on a last partial line and closes the read end.
  void close() {
    splitter_.finish();
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = -1;
    close_write_end();
  }

 private:
  LineSplitter splitter_;
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace platoon::launch
