// Update rules against hand-computed references, their state (what a joining
// worker receives), and their argument checks.
#include <doctest/doctest.h>

#include <vector>

#include "platoon/common/error.hpp"
#include "platoon/sync/update_rules.hpp"

using namespace platoon;
using doctest::Approx;

namespace {
// The same two-parameter problem for every rule.
const std::vector<float> kStart{1.0f, -2.0f};
const std::vector<float> kGrad1{0.5f, 1.0f};
const std::vector<float> kGrad2{-1.0f, 0.25f};

std::vector<float> two_steps(UpdateRule& rule) {
  std::vector<float> p = kStart;
  rule.step(p, kGrad1);
  rule.step(p, kGrad2);
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
  sgd.step(p, kGrad2);  // [0.95 + 0.5, -2.1 - 0.125]
  CHECK(p[0] == Approx(1.45));
  CHECK(p[1] == Approx(-2.225));
  CHECK(sgd.state().empty());  // nothing to hand over
}

TEST_CASE("SGD with L2 weight decay adds wd * p to the gradient") {
  Sgd sgd(0.1f, {.weight_decay = 0.5f});
  std::vector<float> p = kStart;
  sgd.step(p, kGrad1);  // g' = [0.5 + 0.5, 1 - 1] -> [0.9, -2]
  CHECK(p[0] == Approx(0.9));
  CHECK(p[1] == Approx(-2.0));
}

TEST_CASE("momentum and Nesterov, two steps; the velocity is the state") {
  // v1 = g1 = [0.5, 1];               p1 = [0.95, -2.1]
  // v2 = 0.9 v1 + g2 = [-0.55, 1.15]; p2 = p1 - 0.1 v2 = [1.005, -2.215]
  Sgd momentum(0.1f, {.momentum = 0.9f});
  auto p = two_steps(momentum);
  CHECK(p[0] == Approx(1.005));
  CHECK(p[1] == Approx(-2.215));
  REQUIRE(momentum.state().size() == 1);
  CHECK(momentum.state()[0][0] == Approx(-0.55));
  // Nesterov: p1 = p0 - 0.1 (g1 + 0.9 v1) = [0.905, -2.19]; p2 = p1 - 0.1 (g2 + 0.9 v2)
  Sgd nesterov(0.1f, {.momentum = 0.9f, .nesterov = true});
  p = two_steps(nesterov);
  CHECK(p[0] == Approx(1.0545));
  CHECK(p[1] == Approx(-2.3185));
}

TEST_CASE("Adam with bias correction, two steps; moments and step count are the state") {
  // Step 1: the corrected ratio is g1/|g1| = 1, so p1 = p0 - 0.1 = [0.9, -2.1].
  // Step 2: m = [-0.055, 0.115], v = [0.00124975, 0.0010615],
  //         p2 = p1 - 0.1 (m / 0.19) / sqrt(v / 0.001999) = [0.93661035, -2.18305975].
  Adam adam(0.1f);
  const auto p = two_steps(adam);
  CHECK(p[0] == Approx(0.93661035).epsilon(1e-5));
  CHECK(p[1] == Approx(-2.18305975).epsilon(1e-5));
  CHECK(adam.steps() == 2);
  const auto state = adam.state();
  REQUIRE(state.size() == 3);
  CHECK(state[0][0] == Approx(-0.055));
  CHECK(state[1][1] == Approx(0.0010615).epsilon(1e-4));
  CHECK(state[2][0] == 2.0f);

  SUBCASE("a rule that receives that state continues exactly like the original") {
    Adam copy(0.1f);
    copy.attach(2);
    for (std::size_t b = 0; b < state.size(); ++b)
      std::copy(state[b].begin(), state[b].end(), copy.state()[b].begin());
    std::vector<float> a = p, c = p;
    adam.step(a, kGrad1);
    copy.step(c, kGrad1);
    CHECK(a == c);
  }
  SUBCASE("attach() starts the moments and the step count again") {
    adam.attach(2);
    std::vector<float> q = kStart;
    adam.step(q, kGrad1);
    CHECK(q[0] == Approx(0.9).epsilon(1e-5));
    CHECK(adam.steps() == 1);
  }
}

TEST_CASE("AdamW: the weight decay is decoupled, lr * wd * p, not through the moments") {
  // One step from p0 with g1: the Adam part moves every element by lr (= 0.1);
  // the decay adds lr * wd * p0 = 0.1 * 0.5 * p0.
  Adam adamw(0.1f, {.weight_decay = 0.5f});
  std::vector<float> p = kStart;
  adamw.step(p, kGrad1);
  CHECK(p[0] == Approx(1.0 - 0.1 - 0.05).epsilon(1e-5));
  CHECK(p[1] == Approx(-2.0 - 0.1 + 0.1).epsilon(1e-5));
  CHECK(make_update_rule("adamw", 0.1f)->describe() == "adam(lr=0.1, wd=0.01)");
}

TEST_CASE("update rules reject bad settings and mismatched sizes, naming them") {
  CHECK_THROWS_WITH_AS(Sgd(-1.0f), doctest::Contains("learning rate -1"), Error);
  CHECK_THROWS_WITH_AS(Sgd(0.1f, {.momentum = 1.0f}), doctest::Contains("momentum 1 is outside [0, 1)"), Error);
  CHECK_THROWS_AS(Sgd(0.1f, {.nesterov = true}), Error);
  CHECK_THROWS_AS(Adam(0.1f, {.beta2 = 1.0f}), Error);
  CHECK_THROWS_WITH_AS((void)make_update_rule("adagrad", 0.1f), doctest::Contains("expected sgd, momentum"), Error);
  std::vector<float> p{1.0f, 2.0f};
  const std::vector<float> short_grad{1.0f};
  Adam adam(0.1f);
  CHECK_THROWS_WITH_AS(adam.step(p, short_grad), doctest::Contains("2 parameters but 1 gradients"), Error);
  adam.step(p, kGrad1);
  std::vector<float> longer{1.0f, 2.0f, 3.0f};
  CHECK_THROWS_WITH_AS(adam.step(longer, longer), doctest::Contains("sized for 2 parameters, got 3"), Error);
}

TEST_CASE("clip_grad_norm rescales to the bound") {
  std::vector<float> g{3.0f, 4.0f};
  CHECK(clip_grad_norm(g, 10.0f) == Approx(5.0));
  CHECK(g[0] == 3.0f);
  CHECK(clip_grad_norm(g, 1.0f) == Approx(5.0));
  CHECK(g[0] == Approx(0.6));
  CHECK(g[1] == Approx(0.8));
}
