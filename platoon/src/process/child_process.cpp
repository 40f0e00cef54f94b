#include "platoon/process/child_process.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

extern char** environ;

namespace platoon {

namespace {

/// Whether some process other than a zombie is in process group `pgid`,
/// from /proc/<pid>/stat (state and pgrp follow the command name's ')').
bool group_has_members(pid_t pgid) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

}  // namespace

std::string ExitStatus::describe() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return str_cat("killed by signal ", signal, name ? str_cat(" (SIG", name, ")") : "");
  }
  return str_cat("exited with code ", code);
}

namespace {
ExitStatus decode(int raw) {
  ExitStatus s;
  if (WIFEXITED(raw)) s.code = WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) s.signal = WTERMSIG(raw);
  return s;
}
}  // namespace

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv, const ProcessIo& io,
                                 const std::vector<std::string>& extra_env, const SpawnOptions& options) {
  if (argv.empty()) throw Error("ChildProcess::spawn needs a program");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  // An inherited variable that extra_env sets again is left out: getenv()
  // returns the first match, which would be the stale one.
  const auto overridden = [&](std::string_view entry) {
    const std::string_view name = entry.substr(0, entry.find('='));
    for (const std::string& e : extra_env)
      if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=') return true;
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e)
    if (!overridden(*e)) env.push_back(*e);
  for (const std::string& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (io.stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, io.stdin_fd, 0);
  else posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (io.stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, io.stdout_fd, 1);
  if (io.stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, io.stderr_fd, 2);
  // The child starts with default signal handling and an empty mask, whatever
  // the parent blocked (serve() blocks SIGINT/SIGTERM in its thread).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (options.inherit_sigpipe) sigdelset(&all, SIGPIPE);  // an ignored signal stays ignored across exec
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.own_process_group) {
    posix_spawnattr_setpgroup(&attr, 0);  // a new group, led by the child
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(&attr, flags);

  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw ResourceError(str_cat("cannot start '", argv[0], "': ", std::strerror(rc)));
  return ChildProcess(pid, options.own_process_group);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), own_group_(other.own_group_), status_(other.status_) {
  other.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    this->~ChildProcess();
    pid_ = other.pid_;
    own_group_ = other.own_group_;
    status_ = other.status_;
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    send_signal(SIGKILL);
    int raw = 0;
    while (::waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
    }
  }
  // What the child left behind in its group goes with it.
  if (pid_ > 0 && own_group_ && group_has_members(pid_)) ::kill(-pid_, SIGKILL);
}

std::optional<ExitStatus> ChildProcess::poll() {
  if (status_ || pid_ <= 0) return status_;
  int raw = 0;
  const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
  if (r == pid_) status_ = decode(raw);
  return status_;
}

std::optional<ExitStatus> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  while (!poll()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20'000));
  }
  return status_;
}

void ChildProcess::send_signal(int signo) const {
  if (pid_ <= 0) return;
  if (!status_) {
    ::kill(own_group_ ? -pid_ : pid_, signo);
  } else if (own_group_ && group_has_members(pid_)) {
    // The leader is reaped but its group lives on (a helper it forked). A
    // group id stays taken while the group has members, so this reaches
    // only that group.
    ::kill(-pid_, signo);
  }
}

bool ChildProcess::group_alive() const {
  if (pid_ <= 0) return false;
  if (!status_) return true;
  return own_group_ && group_has_members(pid_);
}

}  // namespace platoon
