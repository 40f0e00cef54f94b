#include "flags.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <string_view>

#include <CLI/CLI.hpp>

#include "platoon/channel/control_client.hpp"
#include "platoon/common/log.hpp"
#include "common/idx.hpp"

namespace platoon::examples {

namespace {

// The longest time flag in seconds: about 115 days, far below what the
// milliseconds of a timeout can hold.
constexpr double kMaxSeconds = 1e7;
constexpr int kMaxBatch = 1'000'000;
constexpr long kMaxCount = 1'000'000'000;  // minibatches, samples, validations

std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// A number in [low, high], or in (low, high] with `low_excluded`. CLI11's
// Range prints doubles with six decimals; this one prints them as written.
CLI::Validator number_in(double low, double high, bool low_excluded = false) {
  const std::string range =
      str_cat(low_excluded ? "(" : "[", number_text(low), ", ", number_text(high), "]");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return str_cat("'", text, "' is not a number");
        const bool above_low = low_excluded ? value > low : value >= low;
        if (!std::isfinite(value) || !above_low || value > high) return str_cat("value ", text, " not in ", range);
        return {};
      },
      "in " + range);
}

// An app whose options show their defaults in --help and take the last of
// repeated values (as the examples always did: the launcher may append a
// --port after the user's own).
void configure(CLI::App& app, const std::string& footer) {
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "this text");
  app.footer(footer);
}

void parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    throw HelpRequested{app.help()};
  } catch (const CLI::ParseError& e) {
    throw UsageError(str_cat(e.what(), " (--help lists the flags and their ranges)"));
  }
}

void add_port(CLI::App& app, std::string& endpoint, int& port) {
  app.add_option("--port", port, "the controller's port on this host (tcp://127.0.0.1:PORT)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--endpoint", endpoint, "the controller's endpoint, instead of --port (tcp://HOST:PORT)");
}

void add_mode(CLI::App& app, const std::string& mode) {
  // The value picks the loop before parsing (worker_mode()); declared here
  // so that it is listed and checked.
  static const std::vector<std::string> kModes{"easgd", "sync"};
  app.add_option_function<std::string>("--mode", [](const std::string&) {},
                                       "the training loop: easgd (a center, elastic averaging) or sync "
                                       "(all-reduce of the gradients)")
      ->check(CLI::IsMember(kModes))
      ->default_str(mode);
}

void add_optimizer(CLI::App& app, std::string& optimizer) {
  app.add_option("--optimizer", optimizer, "the update rule")
      ->check(CLI::IsMember({"sgd", "momentum", "nesterov", "adam", "adamw"}));
}

void add_schedule(CLI::App& app, ScheduleOptions& s, const std::string& who) {
  app.add_option("--max-minibatches", s.max_minibatches, "stop after this many minibatches in total (0: no limit)")
      ->check(CLI::Range(0L, kMaxCount));
  app.add_option("--max-time", s.max_seconds, "stop after this many seconds (0: no limit)")
      ->check(number_in(0, kMaxSeconds));
  app.add_option("--valid-every", s.valid_every, "validate " + who + " after this many minibatches in total")
      ->check(CLI::Range(1L, kMaxCount));
  app.add_option("--patience", s.patience, "stop after this many validations without improvement")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--target-accuracy", s.target_accuracy, "stop once validation accuracy reaches it (0: never)")
      ->check(number_in(0, 1));
}

void add_progress_every(CLI::App& app, double& seconds) {
  app.add_option("--progress-every", seconds, "seconds between progress lines in the log (0: none)")
      ->check(number_in(0, kMaxSeconds, true));
}

// A seed of 0 or more: CLI11 would read "-1" into an unsigned as 2^64 - 1.
void add_seed(CLI::App& app, std::uint64_t& seed, const std::string& what) {
  app.add_option_function<std::int64_t>(
         "--seed", [&seed](std::int64_t value) { seed = static_cast<std::uint64_t>(value); }, what)
      ->check(CLI::Range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()))
      ->default_str(std::to_string(seed));
}

std::string endpoint_of(const std::string& endpoint, int port) {
  return endpoint.empty() ? loopback_endpoint(port) : endpoint;
}

}  // namespace

WorkerFlags parse_worker_flags(int argc, char** argv, const WorkerDefaults& defaults) {
  CLI::App app("A worker of the Fashion-MNIST examples: trains its own copy of the model and syncs it with "
               "the job's center by EASGD every --sync-every minibatches; with --standalone, trains alone.",
               argc > 0 ? argv[0] : "worker");
  configure(app, "Bad usage exits 1, naming the flag and the range it accepts.");
  WorkerFlags f;
  f.data = default_fashion_mnist_dir();
  f.batch = defaults.batch;
  f.learning_rate = defaults.learning_rate;
  f.lr_decay = defaults.lr_decay;
  f.optimizer = defaults.optimizer;
  f.sync_every = defaults.sync_every;
  f.alpha = defaults.alpha;
  f.clip_norm = defaults.clip_norm;
  f.schedule = defaults.schedule;
  int port = 5567;
  long train_limit = 0;
  int sync_threads = 1;
  add_mode(app, "easgd");
  add_port(app, f.endpoint, port);
  app.add_option("--data", f.data, "the folder of the four Fashion-MNIST files");
  app.add_option("--batch", f.batch, "samples per minibatch (at most the training samples)")
      ->check(CLI::Range(1, kMaxBatch));
  app.add_option("--lr", f.learning_rate, "learning rate")->check(number_in(0, 1e6, true));
  app.add_option("--lr-decay", f.lr_decay, "learning rate factor after each pass over the data")
      ->check(number_in(0, 1, true));
  add_optimizer(app, f.optimizer);
  app.add_option("--sync-every", f.sync_every, "minibatches between syncs with the center")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--alpha", f.alpha, "EASGD's moving rate")->check(number_in(0, 1, true));
  add_seed(app, f.seed, "the model's seed (the order of the samples also takes the worker id)");
  app.add_option("--hidden", f.hidden, "hidden units (0: the model's default)")->check(CLI::Range(0, 65536));
  app.add_option("--clip-norm", f.clip_norm, "clip the gradient to this norm (0: no clipping)")
      ->check(number_in(0, 1e9));
  app.add_option("--train-limit", train_limit, "train on the first N samples only (0: the whole training set)")
      ->check(CLI::Range(0L, kMaxCount));
  app.add_option("--sync-threads", sync_threads, "threads per sync, this one included")
      ->check(CLI::Range(1, kMaxSyncThreads));
  add_progress_every(app, f.progress_every);
  app.add_flag("--standalone", f.standalone, "train alone, no controller, with the schedule flags below");
  add_schedule(app, f.schedule, "(--standalone)");
  parse(app, argc, argv);
  f.endpoint = endpoint_of(f.endpoint, port);
  f.train_limit = static_cast<std::size_t>(train_limit);
  f.sync_threads = static_cast<std::size_t>(sync_threads);
  return f;
}

ControllerFlags parse_controller_flags(int argc, char** argv, const ScheduleOptions& defaults) {
  CLI::App app("The controller of the Fashion-MNIST examples: hands out minibatches and validations to the "
               "workers and stops the job at a budget, a target accuracy or when patience runs out.",
               argc > 0 ? argv[0] : "controller");
  configure(app, "Bad usage exits 1, naming the flag and the range it accepts.");
  ControllerFlags f;
  f.schedule = defaults;
  app.add_option("--port", f.port, "the port to serve on (tcp://127.0.0.1:PORT)")->check(CLI::Range(1, 65535));
  app.add_option("--endpoint", f.endpoint, "the endpoint to bind, instead of --port (tcp://HOST:PORT)");
  add_schedule(app, f.schedule, "(by one worker)");
  app.add_option("--minibatches-per-request", f.schedule.minibatches_per_request,
                 "minibatches handed out per request of a worker")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--checkpoint", f.checkpoint, "write the center to this file (empty: no checkpoints)");
  app.add_option("--checkpoint-every", f.checkpoint_every_seconds, "seconds between checkpoints")
      ->check(number_in(0, kMaxSeconds, true));
  app.add_option("--resume", f.resume, "start from this checkpoint file");
  app.add_option("--worker-timeout", f.worker_timeout_seconds, "seconds of silence after which a worker is lost")
      ->check(number_in(0, kMaxSeconds, true));
  app.add_option("--group-size", f.group_size,
                 "synchronous workers (--mode sync) that must join before the group's first epoch")
      ->check(CLI::Range(1, 10'000));
  parse(app, argc, argv);
  return f;
}

SyncFlags parse_sync_flags(int argc, char** argv, const SyncDefaults& defaults) {
  CLI::App app("A synchronous worker of the Fashion-MNIST examples (--mode sync): every worker computes the "
               "gradient of its slice of one global minibatch, one all-reduce averages them.",
               argc > 0 ? argv[0] : "worker");
  configure(app, "Bad usage exits 1, naming the flag and the range it accepts.");
  SyncFlags f;
  f.data = default_fashion_mnist_dir();
  int port = 5567;
  int batch = static_cast<int>(defaults.global_batch);
  double learning_rate = defaults.learning_rate;
  double weight_decay = -1;
  double clip_norm = defaults.clip_norm;
  long train_limit = 0;
  f.lr_decay = defaults.lr_decay;
  f.optimizer = defaults.optimizer;
  add_mode(app, "easgd");
  add_port(app, f.endpoint, port);
  app.add_option("--data", f.data, "the folder of the four Fashion-MNIST files");
  app.add_option("--batch", batch, "samples per global step, all workers together (at most the training samples)")
      ->check(CLI::Range(1, kMaxBatch));
  app.add_option("--lr", learning_rate, "learning rate")->check(number_in(0, 1e6, true));
  app.add_option("--lr-decay", f.lr_decay, "learning rate factor after each pass over the data")
      ->check(number_in(0, 1, true));
  add_optimizer(app, f.optimizer);
  app.add_option("--weight-decay", weight_decay, "weight decay (-1: the optimizer's default)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            double value = 0;
            if (!CLI::detail::lexical_cast(text, value)) return str_cat("'", text, "' is not a number");
            if (value == -1 || (value >= 0 && value <= 1)) return {};
            return str_cat("value ", text, " not in [0, 1] (or -1: the optimizer's default)");
          },
          "in [0, 1], or -1"));
  app.add_option("--clip-norm", clip_norm, "clip the reduced gradient to this norm (0: no clipping)")
      ->check(number_in(0, 1e9));
  add_seed(app, f.seed, "model and minibatch order, the same on every worker");
  app.add_option("--train-limit", train_limit, "train on the first N samples only (0: the whole training set)")
      ->check(CLI::Range(0L, kMaxCount));
  app.add_option("--hidden", f.hidden, "hidden units (0: the model's default)")->check(CLI::Range(0, 65536));
  add_progress_every(app, f.progress_every);
  std::string test_on = "best";
  app.add_option("--test-on", test_on,
                 "which parameters the test set measures: best (those of the best validation) or final")
      ->check(CLI::IsMember({"best", "final"}));
  parse(app, argc, argv);
  f.test_best = test_on == "best";
  f.endpoint = endpoint_of(f.endpoint, port);
  f.global_batch = static_cast<std::size_t>(batch);
  f.learning_rate = static_cast<float>(learning_rate);
  f.weight_decay = static_cast<float>(weight_decay);
  f.clip_norm = static_cast<float>(clip_norm);
  f.train_limit = static_cast<std::size_t>(train_limit);
  return f;
}

std::string worker_mode(int argc, char** argv) {
  std::string mode = "easgd";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--mode" && i + 1 < argc) mode = argv[++i];
    else if (arg.starts_with("--mode=")) mode = std::string(arg.substr(7));
  }
  return mode;
}

void check_batch_fits(std::size_t batch, std::size_t training_samples) {
  if (batch == 0) throw UsageError("--batch must be at least 1");
  if (batch > training_samples)
    throw UsageError(str_cat("--batch ", batch, " is larger than the ", training_samples,
                             " training samples (--train-limit and the data set bound them); use a --batch in 1..",
                             training_samples));
}

}  // namespace platoon::examples
