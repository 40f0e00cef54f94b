#include "platoon/sync/sync_policy.hpp"

#include <algorithm>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

SyncPolicy::SyncPolicy(SyncClock clock) : clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point SyncPolicy::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void SyncPolicy::record_sync(std::chrono::nanoseconds duration) {
  if (duration.count() < 0) throw Error(str_cat("a sync cannot take a negative time, got ", duration.count(), " ns"));
  ++syncs_;
  time_syncing_ += duration;
  on_sync(duration, now());
}

EveryN::EveryN(std::size_t n, SyncClock clock) : SyncPolicy(std::move(clock)), n_(n) {
  if (n == 0) throw Error("EveryN needs n >= 1, got 0");
}

bool EveryN::should_sync() { return count_minibatch() % n_ == 0; }

RateLimited::RateLimited(double maximum_rate, std::size_t every_n, double decay, SyncClock clock)
    : SyncPolicy(std::move(clock)), maximum_rate_(maximum_rate), every_n_(every_n), decay_(decay) {
  if (!(maximum_rate > 0.0 && maximum_rate <= 1.0))
    throw Error(str_cat("RateLimited needs 0 < maximum_rate <= 1, got ", maximum_rate));
  if (every_n == 0) throw Error("RateLimited needs every_n >= 1, got 0");
  if (!(decay >= 0.0 && decay < 1.0)) throw Error(str_cat("RateLimited needs 0 <= decay < 1, got ", decay));
}

std::chrono::nanoseconds RateLimited::expected_cost() const {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::max(average_ns_, last_ns_)));
}

bool RateLimited::should_sync() {
  if (count_minibatch() % every_n_ != 0) return false;
  if (!synced_) return true;  // the first sync measures the cost
  const double cost = std::max(average_ns_, last_ns_);
  const double since = std::chrono::duration<double, std::nano>(now() - last_end_).count();
  return cost <= maximum_rate_ * (since + cost);
}

void RateLimited::on_sync(std::chrono::nanoseconds duration, std::chrono::steady_clock::time_point ended) {
  const double ns = static_cast<double>(duration.count());
  average_ns_ = synced_ ? decay_ * average_ns_ + (1.0 - decay_) * ns : ns;
  last_ns_ = ns;
  last_end_ = ended;
  synced_ = true;
}

}  // namespace platoon
