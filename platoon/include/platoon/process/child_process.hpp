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

/// How a child is started, beyond its arguments, streams and environment.
struct SpawnOptions {
  /// Start the child as the leader of a process group of its own (its
  /// process group id is its pid). A terminal's Ctrl-C then reaches only the
  /// parent, which stops its children in order; send_signal() and the
  /// destructor signal the whole group, so the child's own children are
  /// reached too.
  bool own_process_group = false;
  /// Leave SIGPIPE as this process has it instead of resetting it to the
  /// default. platoon-launch ignores SIGPIPE and passes that on: a child
  /// whose output pipe closes (its launcher was killed) gets EPIPE from its
  /// writes instead of dying, and ends its job cleanly.
  bool inherit_sigpipe = false;
};

class ChildProcess {
 public:

  /// Starts `argv[0]` (searched in PATH if it has no slash) with `argv`.
  /// `extra_env` entries ("NAME=value") are added to this process's
  /// environment, replacing a variable of the same name. Throws ResourceError
  /// naming the program on failure.
  static ChildProcess spawn(const std::vector<std::string>& argv, const ProcessIo& io = {},
                            const std::vector<std::string>& extra_env = {}, const SpawnOptions& options = {});

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  /// Kills (SIGKILL; its whole process group if it leads one) and reaps the
  /// child if it still runs, and kills what is left of its group even when
  /// the child itself has ended; never throws.
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
  /// Sends `signo` if the child has not been reaped yet: to its process group
  /// when it was started with SpawnOptions::own_process_group, else to it.
  /// (An unreaped child keeps its pid, so the signal cannot reach a stranger.)
  /// A group whose leader has been reaped is still signalled while it has
  /// members (processes the child forked), so that none is left behind.
  void send_signal(int signo) const;
  /// Whether the child runs, or (with its own process group) a process of
  /// its group does, zombies aside.
  [[nodiscard]] bool group_alive() const;
  /// Whether the child leads a process group of its own.
  [[nodiscard]] bool own_process_group() const { return own_group_; }

 private:
  ChildProcess(pid_t pid, bool own_group) : pid_(pid), own_group_(own_group) {}
  pid_t pid_ = -1;
  bool own_group_ = false;
  std::optional<ExitStatus> status_;
};

}  // namespace platoon
