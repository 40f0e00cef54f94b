// platoon-launch: starts one platoon job in the right order and supervises it.
//
//   platoon-launch --workers 4 --controller "my_controller --steps 1000"
//                  --worker "my_worker --lr 0.01"
//
// Order: the controller; wait until it answers "platoon-status"; worker 0 (it
// creates the central parameters); wait until "platoon-status" says
// params_ready; then the other workers. No sleeps on guesses.
//
// Every line a process writes (stdout and stderr) goes to <run>/<name>.log and
// to this program's stdout, prefixed with the process name; every line carries
// a timestamp. The run folder is logs/<experiment>/<YYYY-MM-DD_HH-MM-SS>/
// (local time), or <log-dir>/<YYYY-MM-DD_HH-MM-SS>/ with --log-dir.
//
// A worker that fails is restarted while --restart allows; any other failure
// stops the whole job. Ctrl-C (or SIGTERM) stops the job in order: SIGTERM to
// every process, SIGKILL after 10 s, then the job's shared-memory segment is
// removed. The processes run in process groups of their own, so a terminal's
// Ctrl-C reaches only this program.
//
// Exit codes, the same with and without --restart (README.md, "Tools"):
//   0    the job finished: the controller and every worker ended well
//   1    bad usage (a bad flag, a port that is taken), or a program could not
//        be started
//   2    a process of the job failed and no restart made up for it
//   3    the controller did not answer, the central parameters were not
//        created, or a process did not end within --end-grace of the others
//   129, 130, 143   interrupted by SIGHUP, SIGINT, SIGTERM (128 + signal)
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "logs.hpp"
#include "options.hpp"
#include "supervision.hpp"

namespace platoon::launch {
namespace {

int main_launch(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "platoon-launch: " << e.what() << "\n(platoon-launch --help shows the usage)\n";
    return kExitUsage;
  }
  if (options.help) {
    std::cout << options.help_text;
    return kExitFinished;
  }
  // Signals are blocked before any child exists, so none is lost.
  std::optional<SignalWatch> signals;
  int port = options.port;
  fs::path run_dir;
  try {
    signals.emplace();
    if (port == 0) port = free_loopback_port();
    const std::string experiment =
        options.experiment.empty() ? fs::path(options.controller[0]).filename().string() : options.experiment;
    const fs::path parent = options.log_dir.empty() ? fs::path("logs") / experiment : fs::path(options.log_dir);
    run_dir = create_run_dir(parent);
  } catch (const std::exception& e) {
    std::cerr << "platoon-launch: " << e.what() << "\n";
    return kExitUsage;
  }
  std::size_t width = std::string_view("controller").size();
  width = std::max(width, str_cat("worker-", options.workers - 1).size());
  try {
    Output output(run_dir, width);
    LaunchLog log(output);
    Launcher launcher(std::move(options), port, run_dir, *signals, output, log.logger());
    return launcher.run();
  } catch (const std::exception& e) {
    std::cerr << "platoon-launch: " << e.what() << "\n";
    return kExitUsage;
  }
}

}  // namespace
}  // namespace platoon::launch

int main(int argc, char** argv) { return platoon::launch::main_launch(argc, argv); }

