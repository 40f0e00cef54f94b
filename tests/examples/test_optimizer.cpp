// Optimizers against hand-computed references for two steps.
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "common/optimizer.hpp"

using namespace platoon::examples;
using doctest::Approx;

namespace {
// The same two-parameter problem for every rule.
const std::vector<float> kStart{1.0f, -2.0f};
const std::vector<float> kGrad1{0.5f, 1.0f};
const std::vector<float> kGrad2{-1.0f, 0.25f};

std::vector<float> two_steps(Optimizer& opt) {
  std::vector<float> p = kStart;
  opt.step(p, kGrad1);
  opt.step(p, kGrad2);
  return p;
}
}  // namespace

TEST_CASE("SGD: p -= lr * g, with the learning rate changed between steps") {
  Sgd sgd(0.1f);
  std::vector<float> p = kStart;
  sgd.step(p, kGrad1);  // [1 - 0.05, -2 - 0.1]
  CHECK(p[0] == Approx(0.95));
  CHECK(p[1] == Approx(-2.1));
  sgd.set_learning_rate(0.5f);
  CHECK(sgd.learning_rate() == 0.5f);
  sgd.step(p, kGrad2);  // [0.95 + 0.5, -2.1 - 0.125]
  CHECK(p[0] == Approx(1.45));
  CHECK(p[1] == Approx(-2.225));
}

TEST_CASE("momentum SGD, two steps") {
  // v1 = g1 = [0.5, 1];            p1 = p0 - 0.1 v1 = [0.95, -2.1]
  // v2 = 0.9 v1 + g2 = [-0.55, 1.15]; p2 = p1 - 0.1 v2 = [1.005, -2.215]
  Momentum opt(0.1f, 0.9f, false);
  const auto p = two_steps(opt);
  CHECK(p[0] == Approx(1.005));
  CHECK(p[1] == Approx(-2.215));
}

TEST_CASE("Nesterov momentum, two steps") {
  // p1 = p0 - 0.1 (g1 + 0.9 v1) = [1 - 0.095, -2 - 0.19] = [0.905, -2.19]
  // p2 = p1 - 0.1 (g2 + 0.9 v2) = [0.905 + 0.1495, -2.19 - 0.1285]
  Momentum opt(0.1f, 0.9f, true);
  const auto p = two_steps(opt);
  CHECK(p[0] == Approx(1.0545));
  CHECK(p[1] == Approx(-2.3185));
}

TEST_CASE("Adam with bias correction, two steps") {
  // Step 1: m = 0.1 g1, v = 0.001 g1^2; the corrected ratio is g1/|g1| = 1,
  //         so p1 = p0 - 0.1 = [0.9, -2.1].
  // Step 2: m = [-0.055, 0.115], v = [0.00124975, 0.0010615],
  //         mhat = m / 0.19, vhat = v / 0.001999,
  //         p2 = p1 - 0.1 mhat / sqrt(vhat) = [0.93661035, -2.18305975].
  Adam opt(0.1f, 0.9f, 0.999f, 1e-8f);
  const auto p = two_steps(opt);
  CHECK(p[0] == Approx(0.93661035).epsilon(1e-5));
  CHECK(p[1] == Approx(-2.18305975).epsilon(1e-5));

  SUBCASE("reset() starts the moments and the step count again") {
    opt.reset();
    std::vector<float> q = kStart;
    opt.step(q, kGrad1);
    CHECK(q[0] == Approx(0.9).epsilon(1e-5));
    CHECK(q[1] == Approx(-2.1).epsilon(1e-5));
  }
}

TEST_CASE("optimizers reject mismatched sizes") {
  std::vector<float> p{1.0f, 2.0f};
  const std::vector<float> short_grad{1.0f};
  Adam adam(0.1f);
  CHECK_THROWS_AS(adam.step(p, short_grad), std::invalid_argument);
  adam.step(p, kGrad1);
  std::vector<float> longer{1.0f, 2.0f, 3.0f};
  const std::vector<float> longer_grad{1.0f, 2.0f, 3.0f};
  CHECK_THROWS_AS(adam.step(longer, longer_grad), std::invalid_argument);
  CHECK_THROWS_AS((void)make_optimizer("adagrad", 0.1f), std::invalid_argument);
  CHECK(make_optimizer("nesterov", 0.1f)->learning_rate() == 0.1f);
}

TEST_CASE("clip_grad_norm rescales to the bound") {
  std::vector<float> g{3.0f, 4.0f};
  CHECK(clip_grad_norm(g, 10.0f) == Approx(5.0));
  CHECK(g[0] == 3.0f);
  CHECK(clip_grad_norm(g, 1.0f) == Approx(5.0));
  CHECK(g[0] == Approx(0.6));
  CHECK(g[1] == Approx(0.8));
}
