// The sync rules against plain references written element by element.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "platoon/common/error.hpp"
#include "platoon/sync/sync_rules.hpp"

using platoon::ASGD;
using platoon::EASGD;
using platoon::WeightedAverage;

namespace {
std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Applies a rule over [0, n) in pieces of `piece` elements, as a Soldier does.
void apply_in_pieces(platoon::SyncRule& rule, std::vector<float>& local, std::vector<float>& central,
                     std::size_t piece) {
  rule.begin_sync();
  for (std::size_t off = 0; off < local.size(); off += piece) {
    const std::size_t n = std::min(piece, local.size() - off);
    rule.apply({local.data() + off, n}, {central.data() + off, n}, off);
  }
}
}  // namespace

TEST_CASE("EASGD moves local and center toward each other by the same d") {
  const std::size_t n = 1037;  // not a multiple of any vector width
  auto local = random_vector(n, 1);
  auto central = random_vector(n, 2);
  auto ref_local = local;
  auto ref_central = central;
  const float alpha = 0.3f;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = alpha * (double(ref_local[i]) - double(ref_central[i]));
    ref_local[i] = float(ref_local[i] - d);
    ref_central[i] = float(ref_central[i] + d);
  }
  EASGD rule(alpha);
  apply_in_pieces(rule, local, central, 100);
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(local[i] == doctest::Approx(ref_local[i]).epsilon(1e-5));
    CHECK(central[i] == doctest::Approx(ref_central[i]).epsilon(1e-5));
  }
}

TEST_CASE("EASGD conserves local + center") {
  auto local = random_vector(64, 3);
  auto central = random_vector(64, 4);
  std::vector<float> before(64);
  for (std::size_t i = 0; i < 64; ++i) before[i] = local[i] + central[i];
  EASGD rule(0.5f);
  apply_in_pieces(rule, local, central, 64);
  for (std::size_t i = 0; i < 64; ++i) {
    CHECK(local[i] + central[i] == doctest::Approx(before[i]).epsilon(1e-5));
    CHECK(local[i] == doctest::Approx(central[i]).epsilon(1e-5));  // alpha 0.5 meets in the middle
  }
}

TEST_CASE("EASGD alpha changes at the next sync and is validated") {
  EASGD rule(0.5f);
  std::vector<float> local{2.0f}, central{0.0f};
  rule.set_alpha(0.25f);
  apply_in_pieces(rule, local, central, 1);
  CHECK(local[0] == doctest::Approx(1.5f));
  CHECK(central[0] == doctest::Approx(0.5f));
  CHECK_THROWS_AS(rule.set_alpha(0.0f), platoon::Error);
  CHECK_THROWS_AS(rule.set_alpha(1.5f), platoon::Error);
  CHECK_THROWS_AS(EASGD(-0.1f), platoon::Error);
  CHECK(rule.alpha() == 0.25f);
}

TEST_CASE("ASGD sends the progress since the last sync and takes the center") {
  const std::size_t n = 300;
  auto local = random_vector(n, 5);
  auto central = local;  // as after attaching
  ASGD rule;
  rule.attach(n);
  rule.init_piece(local, 0);
  // Local progress, and progress from another worker in the center.
  auto progress = random_vector(n, 6);
  auto other = random_vector(n, 7);
  std::vector<float> expected(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float start = local[i];
    local[i] += progress[i];
    central[i] += other[i];
    expected[i] = start + other[i] + progress[i];
  }
  apply_in_pieces(rule, local, central, 128);
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(central[i] == doctest::Approx(expected[i]).epsilon(1e-5));
    CHECK(local[i] == central[i]);
  }
  // A second sync with no progress changes nothing.
  auto before = central;
  apply_in_pieces(rule, local, central, 128);
  CHECK(central == before);
}

TEST_CASE("WeightedAverage is Legion's alpha/beta rule") {
  std::vector<float> local{4.0f, 0.0f}, central{0.0f, 2.0f};
  WeightedAverage rule(0.75f, 0.25f);
  apply_in_pieces(rule, local, central, 2);
  CHECK(central[0] == doctest::Approx(1.0f));
  CHECK(central[1] == doctest::Approx(1.5f));
  CHECK(local == central);
  CHECK_THROWS_AS(WeightedAverage(-1.0f, 0.5f), platoon::Error);
}
