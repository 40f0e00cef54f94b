// Sync policies on a fake clock: a training loop whose minibatches and syncs
// take exactly the time the test says, so every decision is deterministic.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <vector>

#include "platoon/common/error.hpp"
#include "platoon/sync/sync_policy.hpp"

using namespace std::chrono_literals;
using platoon::EveryN;
using platoon::RateLimited;
using platoon::SyncPolicy;

namespace {

struct FakeClock {
  std::chrono::steady_clock::time_point t{std::chrono::seconds(1000)};
  void advance(std::chrono::microseconds d) { t += d; }
  platoon::SyncClock fn() {
    return [this] { return t; };
  }
};

// One sync the fake loop made: when it started and ended, in microseconds.
struct SyncEvent {
  std::int64_t start_us;
  std::int64_t end_us;
  [[nodiscard]] std::int64_t cost_us() const { return end_us - start_us; }
};

// Runs `minibatches` minibatches of `compute` each; the k-th sync (from 0)
// takes cost(k). Returns the syncs made.
std::vector<SyncEvent> run_loop(SyncPolicy& policy, FakeClock& clock, int minibatches,
                                std::chrono::microseconds compute,
                                const std::function<std::chrono::microseconds(std::size_t)>& cost) {
  std::vector<SyncEvent> syncs;
  const auto origin = clock.t;
  const auto us = [&] { return std::chrono::duration_cast<std::chrono::microseconds>(clock.t - origin).count(); };
  for (int m = 0; m < minibatches; ++m) {
    clock.advance(compute);
    const std::int64_t start = us();
    if (policy.maybe_sync([&] { clock.advance(cost(syncs.size())); })) syncs.push_back({start, us()});
  }
  return syncs;
}

// The share of time the k-th sync (k >= 1) took, from the end of the
// previous sync to its own end.
double cycle_share(const std::vector<SyncEvent>& syncs, std::size_t k) {
  return double(syncs[k].cost_us()) / double(syncs[k].end_us - syncs[k - 1].end_us);
}

// Total share of time spent syncing from the end of the first sync to the end
// of the last one.
double overall_share(const std::vector<SyncEvent>& syncs) {
  std::int64_t syncing = 0;
  for (std::size_t k = 1; k < syncs.size(); ++k) syncing += syncs[k].cost_us();
  return double(syncing) / double(syncs.back().end_us - syncs.front().end_us);
}

}  // namespace

TEST_CASE("EveryN syncs on the n-th, 2n-th, ... minibatch") {
  FakeClock clock;
  EveryN every3(3, clock.fn());
  std::vector<int> synced;
  for (int m = 1; m <= 10; ++m)
    if (every3.maybe_sync([] {})) synced.push_back(m);
  CHECK(synced == std::vector<int>{3, 6, 9});
  CHECK(every3.minibatches() == 10);
  CHECK(every3.syncs() == 3);

  EveryN every1(1);
  for (int m = 0; m < 5; ++m) CHECK(every1.should_sync());
  CHECK_THROWS_AS(EveryN(0), platoon::Error);
}

TEST_CASE("record_sync adds up the time spent syncing and refuses negative durations") {
  FakeClock clock;
  EveryN policy(1, clock.fn());
  CHECK(policy.maybe_sync([&] { clock.advance(1500us); }));
  policy.record_sync(500us);
  CHECK(policy.syncs() == 2);
  CHECK(policy.time_syncing() == 2ms);
  CHECK_THROWS_WITH_AS(policy.record_sync(-1ns), doctest::Contains("-1 ns"), platoon::Error);
}

TEST_CASE("RateLimited checks its settings") {
  CHECK_THROWS_WITH_AS(RateLimited(0.0), doctest::Contains("got 0"), platoon::Error);
  CHECK_THROWS_WITH_AS(RateLimited(1.5), doctest::Contains("got 1.5"), platoon::Error);
  CHECK_THROWS_AS(RateLimited(0.1, 0), platoon::Error);
  CHECK_THROWS_WITH_AS(RateLimited(0.1, 1, 1.0), doctest::Contains("decay < 1, got 1"), platoon::Error);
  CHECK_NOTHROW(RateLimited(1.0, 1, 0.0));
}

TEST_CASE("RateLimited syncs on the first minibatch it considers, then only every every_n-th") {
  FakeClock clock;
  RateLimited policy(1.0, 4, 0.9, clock.fn());  // rate 1: every minibatch considered syncs
  std::vector<std::uint64_t> synced;
  for (int m = 0; m < 12; ++m) {
    clock.advance(1ms);
    if (policy.maybe_sync([&] { clock.advance(1ms); })) synced.push_back(policy.minibatches());
  }
  CHECK(synced == std::vector<std::uint64_t>{4, 8, 12});
}

TEST_CASE("RateLimited keeps the share of time syncing at or below the rate, close to it") {
  FakeClock clock;
  RateLimited policy(0.1, 1, 0.9, clock.fn());
  // 2 ms minibatches, 5 ms syncs: every_n = 1 would spend 5/7 of the time syncing.
  const auto syncs = run_loop(policy, clock, 3000, 2ms, [](std::size_t) { return 5ms; });
  REQUIRE(syncs.size() > 50);
  CHECK(syncs.front().start_us == 2000);  // the first sync happens at once
  for (std::size_t k = 1; k < syncs.size(); ++k) CHECK(cycle_share(syncs, k) <= 0.1);
  CHECK(overall_share(syncs) >= 0.09);  // the wait is 45 ms, rounded up to whole 2 ms minibatches
  CHECK(policy.expected_cost() == 5ms);
}

TEST_CASE("RateLimited adapts at once when syncs get 10x slower") {
  FakeClock clock;
  RateLimited policy(0.2, 1, 0.9, clock.fn());
  const std::size_t slow_from = 40;
  const auto syncs = run_loop(policy, clock, 20000, 100us, [&](std::size_t k) { return k < slow_from ? 1ms : 10ms; });
  REQUIRE(syncs.size() > slow_from + 20);
  const auto interval = [&](std::size_t k) { return syncs[k].end_us - syncs[k - 1].end_us; };
  // Before: 1 ms syncs every 5 ms. The first slow sync could not be foreseen
  // (its own cycle is over the rate); from the next one on, the waits are 10x longer.
  CHECK(interval(slow_from - 1) == doctest::Approx(5000).epsilon(0.05));
  CHECK(cycle_share(syncs, slow_from) > 0.2);
  for (std::size_t k = slow_from + 1; k < syncs.size(); ++k) {
    CHECK(cycle_share(syncs, k) <= 0.2);
    CHECK(interval(k) == doctest::Approx(50000).epsilon(0.05));
  }
  CHECK(policy.expected_cost() == 10ms);
}

TEST_CASE("RateLimited trusts faster syncs gradually, never going over the rate") {
  FakeClock clock;
  RateLimited policy(0.2, 1, 0.9, clock.fn());
  const std::size_t fast_from = 10;
  const auto syncs = run_loop(policy, clock, 40000, 100us, [&](std::size_t k) { return k < fast_from ? 10ms : 1ms; });
  for (std::size_t k = 1; k < syncs.size(); ++k) CHECK(cycle_share(syncs, k) <= 0.2);
  // Right after the speed-up the policy still expects nearly 10 ms ...
  CHECK(syncs[fast_from + 1].end_us - syncs[fast_from].end_us > 30000);
  // ... and after about 60 syncs the decayed average has caught up.
  REQUIRE(syncs.size() > fast_from + 80);
  CHECK(syncs.back().end_us - syncs[syncs.size() - 2].end_us == doctest::Approx(5000).epsilon(0.05));
}

TEST_CASE("RateLimited stays at or below the rate while the cost drifts up and down") {
  FakeClock clock;
  RateLimited policy(0.25, 1, 0.9, clock.fn());
  // The cost climbs 2% per sync from 1 ms to about 7 ms, then falls back.
  const auto cost = [](std::size_t k) {
    const double up = k < 100 ? double(k) : 200.0 - double(k);
    double ms = 1.0;
    for (int i = 0; i < int(std::max(up, 0.0)); ++i) ms *= 1.02;
    return std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000));
  };
  const auto syncs = run_loop(policy, clock, 60000, 200us, cost);
  REQUIRE(syncs.size() > 200);
  for (std::size_t k = 1; k < syncs.size(); ++k) {
    // A cycle goes over the rate only by how much its sync was slower than the last.
    const double growth = std::max(1.0, double(syncs[k].cost_us()) / double(syncs[k - 1].cost_us()));
    CHECK(cycle_share(syncs, k) <= 0.25 * growth + 1e-9);
  }
  CHECK(overall_share(syncs) <= 0.25);
  CHECK(overall_share(syncs) >= 0.2);
}
