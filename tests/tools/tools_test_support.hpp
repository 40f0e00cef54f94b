// Helpers for the tests of the command-line tools: run a tool as a real
// process with its output captured in a file, read files, read a process's
// identity from /proc.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "platoon/process/child_process.hpp"
#include "platoon/process/process.hpp"
#include "job_harness.hpp"
#include "test_support.hpp"

namespace platoon::testing {

inline std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// A tool run as a child process, its stdout and stderr going to one file.
/// With `own_process_group`, it runs as a terminal's foreground job would:
/// child().send_signal() then reaches its whole process group, like Ctrl-C.
class ToolRun {
 public:
  ToolRun(const std::vector<std::string>& argv, const std::filesystem::path& output, bool own_process_group = false)
      : output_(output) {
    std::FILE* f = std::fopen(output.c_str(), "w");
    REQUIRE(f != nullptr);
    child_ = ChildProcess::spawn(argv, {-1, fileno(f), fileno(f)}, {}, {.own_process_group = own_process_group});
    std::fclose(f);
  }

  /// Waits at most `timeout`; fails the test if the tool is still running.
  ExitStatus wait(std::chrono::milliseconds timeout) {
    const auto status = child_.wait_for(timeout);
    INFO("tool output:\n" << output());
    REQUIRE_MESSAGE(status.has_value(), "the tool did not end within ", timeout.count(), " ms");
    return *status;
  }
  [[nodiscard]] std::string output() const { return read_file(output_); }
  ChildProcess& child() { return child_; }

 private:
  std::filesystem::path output_;
  ChildProcess child_;
};

/// Runs a tool to its end (bounded) and returns its status and output.
inline std::pair<ExitStatus, std::string> run_tool(const std::vector<std::string>& argv, const TempDir& dir,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  ToolRun run(argv, dir.path() / unique_name("tool-output"));
  const ExitStatus status = run.wait(timeout);
  return {status, run.output()};
}

/// The identity of a running process, read from /proc/<pid>/stat.
inline ProcessId process_id_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);
  ProcessId id;
  id.pid = pid;
  const auto close = text.rfind(')');
  if (close == std::string::npos) return id;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  for (int i = 3; i < 22; ++i) rest >> field;  // fields 3..21
  rest >> id.start_ticks;
  return id;
}

}  // namespace platoon::testing
