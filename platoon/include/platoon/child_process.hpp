// A child process owned by an object: started with posix_spawn, waited for
// with a bound, killed (SIGKILL) if still running when the owner is
// destroyed. Used by platoon-launch and by the multi-process tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace platoon {

/// How a process ended.
struct ExitStatus {
  int code = 0;    ///< exit code, when it exited
  int signal = 0;  ///< terminating signal, when it was killed (code is then 0)

  [[nodiscard]] bool success() const { return signal == 0 && code == 0; }
  /// "exited with code 3" or "killed by signal 9 (SIGKILL)".
  [[nodiscard]] std::string describe() const;
};

/// Where a child's standard streams go.
struct ProcessIo {
  int stdin_fd = -1;   ///< -1: /dev/null
  int stdout_fd = -1;  ///< -1: inherit
  int stderr_fd = -1;  ///< -1: inherit
};

class ChildProcess {
 public:

  /// Starts `argv[0]` (searched in PATH if it has no slash) with `argv`.
  /// `extra_env` entries ("NAME=value") are added to this process's
  /// environment. Throws ResourceError naming the program on failure.
  static ChildProcess spawn(const std::vector<std::string>& argv, const ProcessIo& io = {},
                            const std::vector<std::string>& extra_env = {});

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  /// Kills (SIGKILL) and reaps the child if it still runs; never throws.
  ~ChildProcess();

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Whether the process has been reaped.
  [[nodiscard]] bool finished() const { return status_.has_value(); }
  /// Its status once reaped.
  [[nodiscard]] const std::optional<ExitStatus>& status() const { return status_; }

  /// Reaps the child if it has ended, without waiting. Returns its status then.
  std::optional<ExitStatus> poll();
  /// Waits at most `timeout` for the child to end.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  /// Sends `signo` if the child still runs.
  void send_signal(int signo) const;

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
};

}  // namespace platoon
