// The synchronous examples' helpers: global minibatches that every rank cuts
// the same way, whatever the number of ranks, and validation sliced over a
// group of threads that equals the one-process accuracy exactly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <numeric>
#include <set>

#include "common/mlp.hpp"
#include "sync_data.hpp"
#include "platoon/common/error.hpp"
#include "thread_group.hpp"

using namespace platoon;
using namespace platoon::examples;
using platoon::testing::run_ranks;
using platoon::testing::ThreadGroup;

TEST_CASE("global minibatches: the ranks' slices make the same global batch for 1, 2, 3 and 4 ranks") {
  std::vector<std::size_t> samples(1000);
  std::iota(samples.begin(), samples.end(), std::size_t{0});
  GlobalBatches one(samples, 30, 7);
  for (long step : {0L, 5L, 33L, 34L, 100L}) {  // 33 batches per pass: 33 and 100 start new passes
    const auto whole = one.slice(step, 0, 1);
    const std::vector<std::size_t> expected(whole.begin(), whole.end());
    CHECK(std::set<std::size_t>(expected.begin(), expected.end()).size() == 30);
    for (int size : {2, 3, 4}) {
      GlobalBatches cut(samples, 30, 7);
      std::vector<std::size_t> joined;
      for (int r = 0; r < size; ++r) {
        const auto part = cut.slice(step, r, size);
        joined.insert(joined.end(), part.begin(), part.end());
      }
      CHECK(joined == expected);
    }
  }
  CHECK(one.pass_of(32) == 0);
  CHECK(one.pass_of(33) == 1);
  CHECK_THROWS_AS(GlobalBatches(samples, 1001, 1), Error);
}

TEST_CASE("sliced validation over 3 ranks equals the one-process accuracy exactly") {
  // 1001 synthetic images: not a multiple of 3, so the slices are uneven.
  constexpr std::size_t kCount = 1001;
  std::vector<float> pixels(kCount * kImagePixels);
  std::vector<std::uint8_t> labels(kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    labels[i] = static_cast<std::uint8_t>((i * 7) % 10);
    for (int p = 0; p < kImagePixels; ++p)
      pixels[i * kImagePixels + p] = static_cast<float>(((i + 3) * (p + 11)) % 17) / 16.0f;
  }
  const SharedImages set{pixels, labels, kCount};
  std::vector<std::size_t> indices(kCount);
  std::iota(indices.begin(), indices.end(), std::size_t{0});
  Mlp reference(3, 32, 16);
  const double whole = accuracy(reference, pixels.data(), labels.data(), static_cast<int>(kCount));
  CHECK(whole > 0.0);

  ThreadGroup group(3, 1024);
  std::vector<double> got(3);
  run_ranks(3, [&](int r) {
    auto c = group.attach(r);
    Mlp model(3, 32, 16);  // the same seed: the same parameters on every rank
    got[r] = sliced_accuracy(*c, model, set, indices);
  });
  for (double g : got) CHECK(g == whole);  // exact: counts, not averages of fractions
}
