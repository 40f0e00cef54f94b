// Command-line flags of the example programs (controllers, EASGD and
// synchronous workers), parsed with CLI11: --help lists every flag with its
// default, and a value outside the range a flag accepts is refused naming
// the flag and the range, never wrapped or silently replaced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "platoon/common/error.hpp"
#include "schedule.hpp"

namespace platoon::examples {

/// Bad usage: an unknown flag, a missing value, or a value out of range. The
/// message names the flag and what it accepts. The programs exit 1.
class UsageError : public Error {
 public:
  using Error::Error;
};

/// Thrown by the parsers for --help; `text` is the help to print (exit 0).
struct HelpRequested {
  std::string text;
};

/// The most threads a worker's syncs may use (Soldier's bound).
constexpr int kMaxSyncThreads = 256;

/// Hyper-parameter defaults of one example's EASGD worker.
struct WorkerDefaults {
  int batch = 64;
  double learning_rate = 1e-3;
  double lr_decay = 1.0;  ///< learning rate factor after each pass over the data
  std::string optimizer = "adam";
  int sync_every = 10;
  double alpha = 0.5;
  double clip_norm = 0;
  ScheduleOptions schedule;  ///< used by --standalone
};

/// The flags of an EASGD (or --standalone) worker, and their values.
struct WorkerFlags {
  std::string endpoint;       ///< --endpoint, or tcp://127.0.0.1:<--port> (5567)
  std::string data;           ///< --data (Debian's Fashion-MNIST)
  int batch = 0;              ///< --batch: samples per minibatch (at most the training set)
  double learning_rate = 0;   ///< --lr
  double lr_decay = 1;        ///< --lr-decay: factor per pass over the data
  std::string optimizer;      ///< --optimizer
  int sync_every = 0;         ///< --sync-every: minibatches between syncs
  double alpha = 0;           ///< --alpha: EASGD's moving rate
  std::uint64_t seed = 1;     ///< --seed
  int hidden = 0;             ///< --hidden (0: the model's default)
  double clip_norm = 0;       ///< --clip-norm (0: none)
  std::size_t train_limit = 0;   ///< --train-limit (0: the whole training set)
  std::size_t sync_threads = 1;  ///< --sync-threads (1..kMaxSyncThreads)
  double progress_every = 5;  ///< --progress-every: seconds between progress lines (0: none)
  bool standalone = false;    ///< --standalone: train alone, no controller
  ScheduleOptions schedule;   ///< --max-minibatches ... (--standalone only)
};

/// Parses an EASGD worker's argv (--mode easgd is accepted and ignored).
/// Throws HelpRequested for --help, UsageError for bad usage.
WorkerFlags parse_worker_flags(int argc, char** argv, const WorkerDefaults& defaults);

/// The flags of an example controller, and their values.
struct ControllerFlags {
  std::string endpoint;   ///< --endpoint (empty: tcp://127.0.0.1:<port>)
  int port = 5567;        ///< --port
  std::string checkpoint;               ///< --checkpoint PATH (empty: none)
  double checkpoint_every_seconds = 60;  ///< --checkpoint-every
  std::string resume;                   ///< --resume PATH (empty: start afresh)
  double worker_timeout_seconds = 2;    ///< --worker-timeout
  int group_size = 1;                   ///< --group-size: synchronous workers to wait for
  ScheduleOptions schedule;             ///< --max-minibatches ... --minibatches-per-request
};

/// Parses an example controller's argv. Throws HelpRequested for --help,
/// UsageError for bad usage.
ControllerFlags parse_controller_flags(int argc, char** argv, const ScheduleOptions& defaults);

/// The flags every synchronous worker takes, and their values.
struct SyncFlags {
  std::string endpoint;           ///< --endpoint, or tcp://127.0.0.1:<--port> (5567)
  std::string data;               ///< --data (Debian's Fashion-MNIST)
  std::size_t global_batch = 0;   ///< --batch: samples per global step, all workers together
  float learning_rate = 0;        ///< --lr
  double lr_decay = 1;            ///< --lr-decay: factor per pass over the data
  std::string optimizer;          ///< --optimizer: sgd, momentum, nesterov, adam, adamw
  float weight_decay = -1;        ///< --weight-decay (-1: the optimizer's default)
  float clip_norm = 0;            ///< --clip-norm of the reduced gradient (0: none)
  std::uint64_t seed = 1;         ///< --seed: model and minibatch order, the same on every worker
  std::size_t train_limit = 0;    ///< --train-limit (0: the whole training set)
  int hidden = 0;                 ///< --hidden (0: the model's default)
  double progress_every = 5;      ///< --progress-every: seconds between progress lines (0: none)
  /// --test-on: true ("best", the default) tests the parameters of the best
  /// validation, as early stopping picks them; false ("final") the last ones.
  bool test_best = true;
};
/// The defaults that differ per example.
struct SyncDefaults {
  std::size_t global_batch = 128;
  double learning_rate = 1e-3;
  double lr_decay = 1.0;
  std::string optimizer = "adam";
  double clip_norm = 0;
};
/// Parses a synchronous worker's argv (--mode sync is accepted). Throws
/// HelpRequested for --help, UsageError for bad usage.
SyncFlags parse_sync_flags(int argc, char** argv, const SyncDefaults& defaults);

/// The value of --mode in argv ("--mode X" or "--mode=X"), "easgd" when
/// absent: which loop, and so which parser, an example worker runs. The
/// parsers check the value itself.
std::string worker_mode(int argc, char** argv);

/// Throws UsageError naming --batch and the set's size unless
/// 1 <= batch <= training_samples: a minibatch never reads past the set.
void check_batch_fits(std::size_t batch, std::size_t training_samples);

}  // namespace platoon::examples
