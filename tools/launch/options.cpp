#include "options.hpp"

#include <charconv>
#include <exception>
#include <string>

#include "platoon/common/log.hpp"

using namespace std::chrono_literals;

namespace platoon::launch {

const char* const kUsage = R"(usage: platoon-launch [options] --controller "PROGRAM ARGS..." --worker "PROGRAM ARGS..."

Starts one platoon job: the controller, then worker 0 once the controller
answers, then the other workers once worker 0 has created the central
parameters. Supervises them until the job ends.

Options:
  --controller CMD         the controller's command line (split like a shell
                           would, without expansion)
  --worker CMD             every worker's command line
  --workers N              number of workers (default 1)
  --port P                 control port (default: a free loopback port). A
                           literal {port} in an argument is replaced by it;
                           if no argument has {port}, "--port P" is appended
  --experiment NAME        names the log folder (default: the controller
                           program's name)
  --log-dir DIR            put the run folder in DIR instead of
                           logs/<experiment>
  --restart N              restart failed workers up to N times in all
                           (default 0)
  --start-timeout SECONDS  how long the controller may take to answer
                           (default 60)
  --params-timeout SECONDS how long worker 0 may take to create the central
                           parameters (default 300)
  --end-grace SECONDS      how long the others may take to end once the
                           controller, or every worker, has ended (default 30)
  -h, --help               this text

Every process gets PLATOON_RUN_DIR=<run folder>; worker i also gets
PLATOON_WORKER_INDEX=i. Each process's output goes to <run>/<name>.log
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

int parse_int(const std::string& option, const std::string& text, int min, int max) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    throw UsageError(str_cat(option, " needs an integer from ", min, " to ", max, ", not '", text, "'"));
  return value;
}

std::chrono::milliseconds parse_seconds(const std::string& option, const std::string& text) {
  double seconds = 0;
  std::size_t used = 0;
  try {
    seconds = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !(seconds > 0) || seconds > 1e7)
    throw UsageError(str_cat(option, " needs a positive number of seconds, not '", text, "'"));
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool have_controller = false, have_worker = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
      return o;
    }
    std::string value;
    bool inline_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      inline_value = true;
    }
    const auto next = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= argc) throw UsageError(str_cat(arg, " needs a value"));
      return argv[++i];
    };
    if (arg == "--controller") {
      o.controller = split_command(next());
      have_controller = true;
    } else if (arg == "--worker") {
      o.worker = split_command(next());
      have_worker = true;
    } else if (arg == "--workers") {
      o.workers = parse_int(arg, next(), 1, 10000);
    } else if (arg == "--port") {
      o.port = parse_int(arg, next(), 1, 65535);
    } else if (arg == "--experiment") {
      o.experiment = next();
      if (o.experiment.empty()) throw UsageError("--experiment needs a non-empty name");
    } else if (arg == "--log-dir") {
      o.log_dir = next();
      if (o.log_dir.empty()) throw UsageError("--log-dir needs a non-empty path");
    } else if (arg == "--restart") {
      o.restarts = parse_int(arg, next(), 0, 1000000);
    } else if (arg == "--start-timeout") {
      o.start_timeout = parse_seconds(arg, next());
    } else if (arg == "--params-timeout") {
      o.params_timeout = parse_seconds(arg, next());
    } else if (arg == "--end-grace") {
      o.end_grace = parse_seconds(arg, next());
    } else {
      throw UsageError(str_cat("unknown argument '", argv[i], "'"));
    }
  }
  if (!have_controller) throw UsageError("--controller is required");
  if (!have_worker) throw UsageError("--worker is required");
  if (o.controller.empty()) throw UsageError("--controller names no program");
  if (o.worker.empty()) throw UsageError("--worker names no program");
  return o;
}

}  // namespace platoon::launch
