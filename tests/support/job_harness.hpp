// Helpers for tests that run a job as real processes: each child's output
// goes to "<name>.log" in a temporary folder, and the test reads the logs
// when something fails.
#pragma once

#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "platoon/process/child_process.hpp"
#include "test_support.hpp"

namespace platoon::testing {

/// The whole content of a file ("" if it cannot be read).
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Waits at most `timeout` until `path` exists.
inline bool wait_for_file(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// Child processes of one program, each logging into the same folder. The
/// children are killed when this is destroyed (ChildProcess's destructor).
class LoggedProcesses {
 public:
  explicit LoggedProcesses(std::string program) : program_(std::move(program)) {}

  /// Starts the program with `args`; its stdout and stderr go to
  /// "<name>.log". The reference stays valid (children live in a deque).
  ChildProcess& spawn(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), program_);
    const auto log = dir_.path() / (name + ".log");
    FILE* f = std::fopen(log.c_str(), "w");
    if (f == nullptr) throw std::runtime_error("cannot create " + log.string());
    ChildProcess child = ChildProcess::spawn(args, {-1, fileno(f), fileno(f)});
    std::fclose(f);
    return children_.emplace_back(std::move(child));
  }

  /// Every log so far, each under a "---- <file>" line.
  [[nodiscard]] std::string logs() const {
    std::string all;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
      if (entry.path().extension() == ".log")
        all += "---- " + entry.path().filename().string() + "\n" + read_file(entry.path());
    return all;
  }

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  std::string program_;
  TempDir dir_;  // destroyed after the children: their logs stay readable to the end
  std::deque<ChildProcess> children_;
};

}  // namespace platoon::testing
