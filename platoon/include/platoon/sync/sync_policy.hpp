// When a worker syncs: a policy the training loop asks once per minibatch.
//
//   platoon::RateLimited policy(0.1);          // at most 10% of the time syncing
//   while (soldier.send_req("next") == "train") {
//     train_one_minibatch();
//     policy.maybe_sync([&] { soldier.sync_params(); });
//   }
//
// or, when the loop wants to time the sync itself:
//
//   if (policy.should_sync()) {
//     const auto start = std::chrono::steady_clock::now();
//     soldier.sync_params();
//     policy.record_sync(std::chrono::steady_clock::now() - start);
//   }
//
// A policy knows nothing of Soldier or shared memory: it only counts
// minibatches and measures time, through a clock that tests replace.
//
// Choosing RateLimited's maximum_rate. It is the share of wall time a worker
// may spend syncing, counted from the end of one sync to the end of the next.
// Syncing costs memory bandwidth (16 bytes per float32 parameter with EASGD,
// shared by every worker of the host) and time the worker does not train;
// syncing too rarely lets the workers drift apart. Rules of thumb:
//  - 0.5 / number_of_workers is a reasonable start (0.25 with 2 workers,
//    0.1 with 5); stay below 0.5.
//  - A worker that must sync at least every k minibatches (e.g. EASGD with
//    tau = k) wants EveryN{k} instead: RateLimited never forces a sync.
//  - When syncs get slower (more workers contend for the center's locks and
//    for memory bandwidth), RateLimited syncs less often by itself: twice as
//    slow a sync means half as many syncs. There is no need to lower the rate
//    by hand when adding workers, and no danger of saturating the host.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>

namespace platoon {

/// The clock a policy reads. Tests give a fake one; the default reads
/// std::chrono::steady_clock.
using SyncClock = std::function<std::chrono::steady_clock::time_point()>;

/// Interface of a sync policy. Not thread-safe: one policy per training loop.
class SyncPolicy {
 public:
  /// `clock` empty means std::chrono::steady_clock::now.
  explicit SyncPolicy(SyncClock clock = {});
  virtual ~SyncPolicy() = default;
  SyncPolicy(const SyncPolicy&) = delete;
  SyncPolicy& operator=(const SyncPolicy&) = delete;

  /// Called once per minibatch: whether to sync now. When it returns true,
  /// the caller syncs and then calls record_sync().
  [[nodiscard]] virtual bool should_sync() = 0;

  /// Tells the policy that a sync just ended (now, by the policy's clock) and
  /// how long it took. Throws platoon::Error for a negative duration.
  void record_sync(std::chrono::nanoseconds duration);

  /// should_sync(), and if so runs `sync()`, timing it with the policy's
  /// clock, and records it. Returns whether it synced. If `sync` throws, the
  /// exception goes through and nothing is recorded.
  template <class F>
  bool maybe_sync(F&& sync) {
    if (!should_sync()) return false;
    const auto start = now();
    std::forward<F>(sync)();
    record_sync(now() - start);
    return true;
  }

  /// The policy's clock, read now.
  [[nodiscard]] std::chrono::steady_clock::time_point now() const;

  /// How many times should_sync() was called.
  [[nodiscard]] std::uint64_t minibatches() const { return minibatches_; }
  /// How many syncs were recorded.
  [[nodiscard]] std::uint64_t syncs() const { return syncs_; }
  /// The total duration of the recorded syncs.
  [[nodiscard]] std::chrono::nanoseconds time_syncing() const { return time_syncing_; }

 protected:
  /// Counts one call of should_sync(); returns the new count (from 1).
  std::uint64_t count_minibatch() { return ++minibatches_; }
  /// What a policy learns from a recorded sync; `ended` is now().
  virtual void on_sync(std::chrono::nanoseconds duration, std::chrono::steady_clock::time_point ended) {
    (void)duration;
    (void)ended;
  }

 private:
  SyncClock clock_;
  std::uint64_t minibatches_ = 0;
  std::uint64_t syncs_ = 0;
  std::chrono::nanoseconds time_syncing_{0};
};

/// Syncs every n-th minibatch (the n-th, the 2n-th, ...): EASGD's tau.
class EveryN final : public SyncPolicy {
 public:
  /// Throws platoon::Error unless n >= 1.
  explicit EveryN(std::size_t n, SyncClock clock = {});
  [[nodiscard]] bool should_sync() override;
  [[nodiscard]] std::size_t n() const { return n_; }

 private:
  std::size_t n_;
};

/// Syncs as often as it can while keeping the share of wall time spent
/// syncing at or below `maximum_rate`.
///
/// Only every `every_n`-th minibatch is considered. The first one considered
/// always syncs (to measure what a sync costs). After that, with `since` the
/// time elapsed since the previous sync ended and `cost` the expected
/// duration of a sync, it syncs when
///     cost <= maximum_rate * (since + cost)
/// that is, when the sync about to start would take at most maximum_rate of
/// the time from the previous sync's end to its own end.
///
/// The expected cost is the larger of the last sync's duration and a moving
/// average of past durations decayed by `decay` per sync
/// (avg = decay * avg + (1 - decay) * duration). So a sync that got slower
/// (contention, a bigger load on the host) is believed at once and the next
/// wait grows accordingly, while one fast sync does not cause a burst: a
/// faster cost is trusted gradually.
class RateLimited final : public SyncPolicy {
 public:
  /// Throws platoon::Error unless 0 < maximum_rate <= 1, every_n >= 1 and
  /// 0 <= decay < 1.
  explicit RateLimited(double maximum_rate, std::size_t every_n = 1, double decay = 0.9, SyncClock clock = {});

  [[nodiscard]] bool should_sync() override;

  [[nodiscard]] double maximum_rate() const { return maximum_rate_; }
  [[nodiscard]] std::size_t every_n() const { return every_n_; }
  [[nodiscard]] double decay() const { return decay_; }
  /// The cost the next decision assumes (zero before the first sync).
  [[nodiscard]] std::chrono::nanoseconds expected_cost() const;

 protected:
  void on_sync(std::chrono::nanoseconds duration, std::chrono::steady_clock::time_point ended) override;

 private:
  double maximum_rate_;
  std::size_t every_n_;
  double decay_;
  bool synced_ = false;
  double average_ns_ = 0.0;  // decayed average of sync durations
  double last_ns_ = 0.0;     // the last sync's duration
  std::chrono::steady_clock::time_point last_end_{};
};

}  // namespace platoon
