#include "progress.hpp"

#include <cstdio>

namespace platoon::examples {

std::string progress_line(long minibatches, double samples_per_second, double sync_share) {
  char line[120];
  std::snprintf(line, sizeof line, "progress: %ld minibatches  %.0f samples/s  sync %.2f%%", minibatches,
                samples_per_second, 100.0 * sync_share);
  return line;
}

std::string local_validation_line(double accuracy) {
  char line[60];
  std::snprintf(line, sizeof line, "local validation: accuracy %.4f", accuracy);
  return line;
}

ProgressLog::ProgressLog(const Logger& log, double every_seconds) : log_(log), every_seconds_(every_seconds) {}

void ProgressLog::trained(long minibatches, long samples) {
  minibatches_ += minibatches;
  interval_samples_ += samples;
  if (every_seconds_ <= 0) return;
  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - interval_start_).count();
  if (seconds < every_seconds_) return;
  log_.info(progress_line(minibatches_, static_cast<double>(interval_samples_) / seconds, sync_seconds_ / seconds));
  interval_start_ = now;
  interval_samples_ = 0;
  sync_seconds_ = 0;
}

}  // namespace platoon::examples
