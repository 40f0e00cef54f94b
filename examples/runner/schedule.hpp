// When to train, validate and stop: the decisions of the examples'
// controller, as a pure class so that the standalone workers take the very
// same decisions and the tests need no sockets.
#pragma once

#include <optional>
#include <string>

namespace platoon::examples {

struct ScheduleOptions {
  long max_minibatches = 0;       ///< stop after this many in total (0: no limit)
  double max_seconds = 0;         ///< stop after this much time (0: no limit)
  long valid_every = 1000;        ///< validate after this many minibatches in total
  int patience = 10;              ///< stop after this many validations without improvement
  double target_accuracy = 0;     ///< stop once validation accuracy reaches it (0: never)
  int minibatches_per_request = 10;  ///< minibatches handed out per "train" answer
};

enum class Action { train, valid, stop };

/// What to do next, and for "train" how many minibatches.
struct Decision {
  Action action = Action::stop;
  long minibatches = 0;
};

/// The outcome of one validation.
struct Validation {
  int number = 0;     ///< 1 for the first validation
  double error = 1;   ///< this validation's error
  double best = 1;    ///< the best error so far, this one included
  bool improved = false;
};

class TrainingSchedule {
 public:
  explicit TrainingSchedule(ScheduleOptions options);

  /// The next decision for a worker, `elapsed_seconds` into the job. Hands
  /// out at most one validation at a time.
  Decision next(double elapsed_seconds);
  /// Whether the time budget is spent `elapsed_seconds` into the job; once it
  /// is, the schedule is stopping (checked on every decision, and by the
  /// controller between requests).
  bool time_spent(double elapsed_seconds);
  /// Records minibatches a worker has finished.
  void trained(long minibatches) { trained_ += minibatches; }
  /// Records a validation error; may decide to stop (patience, target).
  Validation validated(double error);
  /// A validation that was handed out will not come back (its worker died).
  void validation_abandoned() { validation_pending_ = false; }

  [[nodiscard]] bool stopping() const { return !stop_reason_.empty(); }
  [[nodiscard]] const std::string& stop_reason() const { return stop_reason_; }
  [[nodiscard]] long minibatches_trained() const { return trained_; }
  [[nodiscard]] long minibatches_given() const { return given_; }
  [[nodiscard]] double best_error() const { return best_; }
  [[nodiscard]] const ScheduleOptions& options() const { return options_; }

 private:
  ScheduleOptions options_;
  long given_ = 0;
  long trained_ = 0;
  long next_validation_at_;
  bool validation_pending_ = false;
  int validations_ = 0;
  int without_improvement_ = 0;
  double best_ = 1.0;
  std::string stop_reason_;
};

}  // namespace platoon::examples
