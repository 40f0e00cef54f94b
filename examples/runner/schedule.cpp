#include "schedule.hpp"

#include <algorithm>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon::examples {

TrainingSchedule::TrainingSchedule(ScheduleOptions options)
    : options_(options), next_validation_at_(options.valid_every) {
  if (options_.valid_every <= 0) throw Error("valid_every must be positive");
  if (options_.minibatches_per_request <= 0) throw Error("minibatches_per_request must be positive");
  if (options_.patience <= 0) throw Error("patience must be positive");
}

bool TrainingSchedule::time_spent(double elapsed_seconds) {
  const bool spent = options_.max_seconds > 0 && elapsed_seconds >= options_.max_seconds;
  if (spent && !stopping()) stop_reason_ = str_cat("time budget of ", options_.max_seconds, " s spent");
  return spent;
}

Decision TrainingSchedule::next(double elapsed_seconds) {
  time_spent(elapsed_seconds);
  if (!stopping() && options_.max_minibatches > 0 && given_ >= options_.max_minibatches)
    stop_reason_ = str_cat("minibatch budget of ", options_.max_minibatches, " spent");
  if (stopping()) return {Action::stop, 0};
  if (!validation_pending_ && trained_ >= next_validation_at_) {
    validation_pending_ = true;
    next_validation_at_ = trained_ + options_.valid_every;
    return {Action::valid, 0};
  }
  long n = options_.minibatches_per_request;
  if (options_.max_minibatches > 0) n = std::min(n, options_.max_minibatches - given_);
  given_ += n;
  return {Action::train, n};
}

Validation TrainingSchedule::validated(double error) {
  validation_pending_ = false;
  Validation v;
  v.number = ++validations_;
  v.error = error;
  v.improved = error < best_;
  if (v.improved) {
    best_ = error;
    without_improvement_ = 0;
  } else if (++without_improvement_ >= options_.patience && !stopping()) {
    stop_reason_ = str_cat("early stopping: ", options_.patience, " validations without improvement");
  }
  v.best = best_;
  if (!stopping() && options_.target_accuracy > 0 && 1.0 - error >= options_.target_accuracy)
    stop_reason_ = str_cat("target validation accuracy ", options_.target_accuracy, " reached");
  return v;
}

}  // namespace platoon::examples
