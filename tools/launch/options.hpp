// platoon-launch's command line: the options, their parsing, the usage text
// and the exit codes.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "launch_support.hpp"

namespace platoon::launch {

constexpr int kExitFinished = 0;
constexpr int kExitUsage = 1;
constexpr int kExitFailed = 2;
constexpr int kExitTimeout = 3;

struct Options {
  std::vector<std::string> controller;
  std::vector<std::string> worker;
  int workers = 1;
  /// Workers the user starts on other hosts by hand (--remote-workers): the
  /// launcher prints their command line once the center exists.
  int remote_workers = 0;
  /// This host's address as the other hosts reach it (--address), required
  /// with remote workers: the controller listens there with CURVE.
  std::string address;
  int port = 0;  // 0: find a free one
  std::string experiment;
  std::string log_dir;
  int restarts = 0;
  std::chrono::milliseconds start_timeout = std::chrono::seconds(60);
  std::chrono::milliseconds params_timeout = std::chrono::seconds(300);
  /// How long the workers get to finish once the controller has ended (and
  /// the controller once every worker has finished).
  std::chrono::milliseconds end_grace = std::chrono::seconds(30);
  /// --help was asked: print `help_text` (every option with its default,
  /// the environment, the logs and the exit codes) and exit 0.
  bool help = false;
  std::string help_text;
};

/// Parses platoon-launch's arguments (CLI11): --workers 1..10000, --port
/// 1..65535 (absent: a free one), --restart 0..1000000, the timeouts in
/// seconds in (0, 1e7]. Throws UsageError naming the bad one and the range
/// it accepts.
Options parse_options(int argc, char** argv);

}  // namespace platoon::launch
