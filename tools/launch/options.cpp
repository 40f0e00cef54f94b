#include "options.hpp"

#include <cmath>
#include <string>

#include <CLI/CLI.hpp>

#include "platoon/common/log.hpp"

using namespace std::chrono_literals;

namespace platoon::launch {

namespace {

constexpr const char* kDescription = R"(usage: platoon-launch [options] --controller "PROGRAM ARGS..." --worker "PROGRAM ARGS..."

Starts one platoon job: the controller, then worker 0 once the controller
answers, then the other workers once worker 0 has created the central
parameters. Supervises them until the job ends.
)";

constexpr const char* kFooter = R"(
Every process gets PLATOON_RUN_DIR=<run folder>; worker i also gets
PLATOON_WORKER_INDEX=i and PLATOON_WORKER_NAME=worker-i, the name its Soldier
shows next to its id, as in [worker 4 (worker-1)]; a restarted worker gets a
new id. Workers also get PLATOON_CONTROLLER_PROCESS=<pid>:<start ticks>, so
that one started as the job ends does not wait for a controller that is gone,
and PLATOON_JOB_KEY, the key the controller wrote to this user's key folder
(only processes holding it may join the job).
With --remote-workers N --address A, the controller also listens on A for
workers on other hosts (control and parameter server, CURVE on both), with
keys the launcher writes to <run>/server.keys and <run>/worker.keys; every
local worker gets PLATOON_CURVE_SERVER_PUBLIC_KEY and PLATOON_CURVE_CLIENT_KEYS.
Once the center exists, the launcher prints the command that starts a remote
worker (also in <run>/remote-worker.sh): copy worker.keys to that host and
run it there. The job waits for them as the controller decides.
Each process's output goes to <run>/<name>.log
(controller.log, worker-0.log, ...) and to stdout prefixed with its name; the
launcher's own messages go to <run>/launch.log. Lines without a timestamp get
one. Ctrl-C stops every process (SIGTERM, SIGKILL after 10 s) and removes the
job's shared memory.

Exit codes (the same with and without --restart):
  0    the job finished: the controller and every worker ended well
  1    bad usage (a bad flag, a port that is taken), or a program could not
       be started
  2    a process of the job failed and no restart made up for it (a worker
       failing while the job is ending is not restarted)
  3    the controller did not answer, the central parameters were not
       created, or a process did not end within --end-grace of the others
  129, 130, 143  interrupted by SIGHUP, SIGINT, SIGTERM
)";

// The longest time flag: about 115 days, far below what milliseconds hold.
constexpr double kMaxSeconds = 1e7;

// A number of seconds in (0, kMaxSeconds].
CLI::Validator positive_seconds() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value) || !std::isfinite(value) || !(value > 0) || value > kMaxSeconds)
          return str_cat("needs a number of seconds in (0, 1e7], not '", text, "'");
        return {};
      },
      "SECONDS in (0, 1e7]");
}

CLI::Validator non_empty(const std::string& what) {
  return CLI::Validator(
      [what](std::string& text) -> std::string { return text.empty() ? "needs a non-empty " + what : ""; }, "");
}

std::chrono::milliseconds to_milliseconds(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  std::string controller, worker;
  double start_timeout = 60, params_timeout = 300, end_grace = 30;
  CLI::App app(kDescription, "platoon-launch");
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "this text");
  app.footer(kFooter);
  app.add_option("--controller", controller,
                 "the controller's command line (split like a shell would, without expansion)")
      ->required()
      ->type_name("CMD");
  app.add_option("--worker", worker, "every worker's command line")->required()->type_name("CMD");
  app.add_option("--workers", o.workers, "number of workers")->check(CLI::Range(1, 10000));
  app.add_option("--remote-workers", o.remote_workers,
                 "workers you start on other hosts by hand: the controller also listens on --address with CURVE "
                 "(keys in the run folder), and the launcher prints the exact command for them")
      ->check(CLI::Range(0, 10000));
  app.add_option("--address", o.address,
                 "this host's address as the other hosts reach it (needed with --remote-workers), e.g. 192.0.2.1")
      ->check(non_empty("address"))
      ->type_name("ADDR");
  app.add_option("--port", o.port,
                 "control port (default: a free loopback port). A literal {port} in an argument is replaced by "
                 "it; if no argument has {port}, \"--port P\" is appended")
      ->check(CLI::Range(1, 65535))
      ->default_str("");
  app.add_option("--experiment", o.experiment, "names the log folder (default: the controller program's name)")
      ->check(non_empty("name"))
      ->type_name("NAME");
  app.add_option("--log-dir", o.log_dir, "put the run folder in DIR instead of logs/<experiment>")
      ->check(non_empty("path"))
      ->type_name("DIR");
  app.add_option("--restart", o.restarts, "restart failed workers up to N times in all")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--start-timeout", start_timeout, "how long the controller may take to answer")
      ->check(positive_seconds());
  app.add_option("--params-timeout", params_timeout,
                 "how long worker 0 may take to create the central parameters")
      ->check(positive_seconds());
  app.add_option("--end-grace", end_grace,
                 "how long the others may take to end once the controller, or every worker, has ended")
      ->check(positive_seconds());
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    o.help = true;
    o.help_text = app.help();
    return o;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  const auto split = [](const char* option, const std::string& command) {
    try {
      return split_command(command);
    } catch (const UsageError& e) {
      throw UsageError(str_cat(option, ": ", e.what()));
    }
  };
  o.controller = split("--controller", controller);
  o.worker = split("--worker", worker);
  if (o.controller.empty()) throw UsageError("--controller names no program");
  if (o.worker.empty()) throw UsageError("--worker names no program");
  if (o.remote_workers > 0 && o.address.empty())
    throw UsageError("--remote-workers needs --address: this host's address as the other hosts reach it");
  if (o.remote_workers == 0 && !o.address.empty()) throw UsageError("--address is only used with --remote-workers");
  if (o.address.find_first_of(":/ *") != std::string::npos)
    throw UsageError(str_cat("--address '", o.address, "' must be a host name or an IPv4 address, without a port"));
  o.start_timeout = to_milliseconds(start_timeout);
  o.params_timeout = to_milliseconds(params_timeout);
  o.end_grace = to_milliseconds(end_grace);
  return o;
}

}  // namespace platoon::launch
