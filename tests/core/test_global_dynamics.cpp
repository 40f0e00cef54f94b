// Batch slices, average SGD and synchronous EASGD over a group of threads.
#include <doctest/doctest.h>

#include <numeric>

#include "platoon/collective/global_dynamics.hpp"
#include "platoon/common/error.hpp"
#include "test_support.hpp"
#include "thread_group.hpp"

using namespace platoon;
using platoon::testing::run_ranks;
using platoon::testing::ThreadGroup;

TEST_CASE("batch slices are as even as possible and cover every sample once") {
  for (const std::size_t total : {0, 1, 7, 30, 31, 1000}) {
    for (const int size : {1, 2, 3, 4, 8}) {
      CAPTURE(total);
      CAPTURE(size);
      std::size_t next = 0, smallest = total, largest = 0;
      for (int r = 0; r < size; ++r) {
        const BatchSlice s = batch_slice(total, r, size);
        CHECK(s.begin == next);
        next += s.count;
        smallest = std::min(smallest, s.count);
        largest = std::max(largest, s.count);
      }
      CHECK(next == total);
      CHECK(largest - smallest <= 1);
    }
  }
  CHECK(batch_slice(30, 3, 4).count == 7);  // 8, 8, 7, 7
  CHECK_THROWS_WITH_AS(batch_slice(30, 4, 4), doctest::Contains("rank 4 is outside the group (ranks 0..3)"), Error);
  CHECK_THROWS_AS(batch_slice(30, 0, 0), Error);
}

TEST_CASE("average SGD: parameters and updates averaged over the ranks") {
  constexpr int kRanks = 3;
  constexpr std::size_t kN = 1000;
  ThreadGroup group(kRanks, 4096);
  std::vector<std::vector<float>> params(kRanks), last(kRanks);
  run_ranks(kRanks, [&](int r) {
    auto c = group.attach(r);
    params[r].assign(kN, static_cast<float>(r));  // 0, 1, 2: mean 1
    average_parameters(*c, params[r]);
    last[r] = params[r];
    for (std::size_t i = 0; i < kN; ++i) params[r][i] += static_cast<float>(3 * r);  // updates 0, 3, 6: mean 3
    std::vector<float> scratch(kN);
    average_updates(*c, params[r], last[r], scratch);
  });
  for (int r = 0; r < kRanks; ++r) {
    for (std::size_t i = 0; i < kN; ++i) {
      CHECK(params[r][i] == 4.0f);
      CHECK(last[r][i] == 4.0f);
    }
  }
}

TEST_CASE("synchronous EASGD: identical center replicas, and center + sum of workers is conserved") {
  constexpr int kRanks = 4;
  constexpr std::size_t kN = 257;
  ThreadGroup group(kRanks, 4096);
  std::vector<std::vector<float>> x(kRanks), centers(kRanks);
  run_ranks(kRanks, [&](int r) {
    auto c = group.attach(r);
    x[r].assign(kN, 1.0f);
    SyncEasgd easgd(0.25f);
    easgd.init(x[r]);  // every rank starts from the same values
    std::vector<float> scratch(kN);
    for (int step = 0; step < 5; ++step) {
      for (std::size_t i = 0; i < kN; ++i) x[r][i] += 0.125f * static_cast<float>(r + 1);  // "training"
      easgd.step(*c, x[r], scratch);
    }
    centers[r].assign(easgd.center().begin(), easgd.center().end());
  });
  for (int r = 1; r < kRanks; ++r) CHECK(centers[r] == centers[0]);  // bitwise
  // Each step adds 0.125 * (1 + 2 + 3 + 4) to the workers; EASGD moves mass
  // between workers and center without creating any.
  const double expected = (kRanks + 1) * 1.0 + 5 * 0.125 * 10;
  for (std::size_t i = 0; i < kN; ++i) {
    double total = centers[0][i];
    for (int r = 0; r < kRanks; ++r) total += x[r][i];
    CHECK(total == doctest::Approx(expected).epsilon(1e-6));
  }
  CHECK(centers[0][0] > 1.0f);  // the center moved towards the workers
  CHECK_THROWS_AS(SyncEasgd(0.0f), Error);
}
