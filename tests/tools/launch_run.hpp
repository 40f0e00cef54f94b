// One platoon-launch run on the fixture job (launch_fixture.cpp), for the
// launcher tests and the soak test.
#pragma once

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "platoon/process/process.hpp"
#include "tools_test_support.hpp"

#if !defined(PLATOON_LAUNCH_BIN) || !defined(PLATOON_LAUNCH_FIXTURE_BIN)
#error "PLATOON_LAUNCH_BIN and PLATOON_LAUNCH_FIXTURE_BIN must name the binaries"
#endif

namespace platoon::testing {

/// Quotes `word` for the launcher's command splitting.
inline std::string quoted(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// One platoon-launch run on the fixture job, in a folder of its own. The
/// destructor kills any process of the job still alive (so that a failing
/// test leaves nothing behind); the tests check that there is none.
class LaunchRun {
 public:
  struct Job {
    int workers = 3;
    int steps = 10;
    std::string controller_extra{};  // more controller arguments
    std::string worker_extra{};      // more worker arguments
    std::vector<std::string> launcher_extra{};
  };

  explicit LaunchRun(const Job& job) {
    const std::string fixture = quoted(PLATOON_LAUNCH_FIXTURE_BIN);
    const std::string record = quoted(record_path().string());
    std::vector<std::string> argv{PLATOON_LAUNCH_BIN,
                                  "--workers",
                                  std::to_string(job.workers),
                                  "--log-dir",
                                  logs_path().string(),
                                  "--controller",
                                  str_cat(fixture, " controller --workers ", job.workers, " --steps ", job.steps,
                                          " --record ", record, " ", job.controller_extra),
                                  "--worker",
                                  str_cat(fixture, " worker --record ", record, " ", job.worker_extra)};
    argv.insert(argv.end(), job.launcher_extra.begin(), job.launcher_extra.end());
    run_.emplace(argv, dir_.path() / "launcher-output.txt", /*own_process_group=*/true);
  }

  ~LaunchRun() {
    run_.reset();  // kills the launcher if the test gave up on it
    for (const ProcessId& p : job_processes())
      if (p.alive()) ::kill(static_cast<pid_t>(p.pid), SIGKILL);
  }
  LaunchRun(const LaunchRun&) = delete;
  LaunchRun& operator=(const LaunchRun&) = delete;

  ExitStatus wait(std::chrono::milliseconds timeout = std::chrono::seconds(30)) { return run_->wait(timeout); }
  /// The launcher; it leads its own process group, as a terminal's
  /// foreground job does, so send_signal() acts like Ctrl-C.
  ChildProcess& launcher() { return run_->child(); }
  [[nodiscard]] std::string output() const { return run_->output(); }
  [[nodiscard]] std::vector<std::string> record() const { return read_lines(record_path()); }
  /// A folder of the run's own, removed with it.
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }
  [[nodiscard]] std::filesystem::path record_path() const { return dir_.path() / "record.txt"; }
  [[nodiscard]] std::filesystem::path logs_path() const { return dir_.path() / "logs"; }

  /// The run folder the launcher made (the only folder in logs/).
  [[nodiscard]] std::filesystem::path run_dir() const {
    std::vector<std::filesystem::path> dirs;
    for (const auto& e : std::filesystem::directory_iterator(logs_path()))
      if (e.is_directory()) dirs.push_back(e.path());
    REQUIRE(dirs.size() == 1);
    return dirs[0];
  }

  /// Every process of the job that recorded its start ("pid=P ticks=T").
  [[nodiscard]] std::vector<ProcessId> job_processes() const {
    std::vector<ProcessId> out;
    const std::regex id(R"(pid=(\d+) ticks=(\d+))");
    for (const std::string& line : record()) {
      std::smatch m;
      if (std::regex_search(line, m, id)) out.push_back({std::stoll(m[1]), std::stoull(m[2])});
    }
    return out;
  }

  /// The job's segment, from the controller's record line.
  [[nodiscard]] std::string segment() const {
    for (const std::string& line : record())
      if (const auto at = line.find(" segment "); line.starts_with("controller job ") && at != std::string::npos)
        return line.substr(at + 9);
    return {};
  }

  /// The controller's port, from its record line; 0 until it is recorded.
  [[nodiscard]] int port() const {
    for (const std::string& line : record())
      if (line.starts_with("controller port ")) return std::stoi(line.substr(16));
    return 0;
  }

  /// The number of record lines starting with `prefix`.
  [[nodiscard]] std::size_t count(const std::string& prefix) const {
    const auto lines = record();
    return static_cast<std::size_t>(
        std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.starts_with(prefix); }));
  }

  /// Everything to read when a check fails.
  [[nodiscard]] std::string story() const {
    return str_cat("---- launcher output\n", output(), "---- record\n", read_file(record_path()));
  }

 private:
  TempDir dir_;
  std::optional<ToolRun> run_;
};

/// Checks that no process of the job is alive and that its segment is gone.
inline void check_nothing_left(const LaunchRun& run) {
  INFO(run.story());
  const auto processes = run.job_processes();
  CHECK(processes.size() >= 2);
  for (const ProcessId& p : processes) CHECK_MESSAGE(!p.alive(), "pid ", p.pid, " is still alive");
  const std::string segment = run.segment();
  REQUIRE(!segment.empty());
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path("/dev/shm") / segment));
}

}  // namespace platoon::testing
