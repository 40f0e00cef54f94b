// A worker's progress lines: what platoon-plot draws samples/s and the share
// of time spent syncing from. The format is fixed (README, "Log lines"),
// and tests/plot checks it against the plot tool's parser:
//
//   progress: <M> minibatches  <R> samples/s  sync <S>%
//
// M counts this worker's minibatches so far; R and S are measured over the
// wall time since the previous line, validations included (they show as
// dips), so that the lines of all workers add up to the job's throughput.
#pragma once

#include <chrono>
#include <string>
#include <utility>

#include "platoon/common/log.hpp"

namespace platoon::examples {

/// The progress line, formatted (tests print it to check the parser).
std::string progress_line(long minibatches, double samples_per_second, double sync_share);

/// The line a worker writes after validating its own model beside the
/// center's (EASGD only: synchronous replicas are the center):
///
///   local validation: accuracy <A>
std::string local_validation_line(double accuracy);

/// Counts a worker's minibatches, samples and sync time, and writes a
/// progress line to `log` every `every_seconds` of wall time (0: never).
class ProgressLog {
 public:
  ProgressLog(const Logger& log, double every_seconds);

  /// Runs `sync()` (a sync or an all-reduce) and counts its time as syncing.
  template <class Sync>
  void time_sync(Sync&& sync) {
    const auto t0 = Clock::now();
    std::forward<Sync>(sync)();
    sync_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
  }

  /// Counts `minibatches` trained with `samples` samples in all, and writes
  /// a line if one is due.
  void trained(long minibatches, long samples);

 private:
  using Clock = std::chrono::steady_clock;
  const Logger& log_;
  double every_seconds_;
  Clock::time_point interval_start_ = Clock::now();
  long minibatches_ = 0;
  long interval_samples_ = 0;
  double sync_seconds_ = 0;
};

}  // namespace platoon::examples
