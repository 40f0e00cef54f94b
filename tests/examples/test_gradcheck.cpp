// Gradient checks of the example models against finite differences,
// plus layout and training sanity checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/lstm.hpp"
#include "common/mlp.hpp"
#include "common/model.hpp"
#include "platoon/sync/update_rules.hpp"

using namespace platoon::examples;
using platoon::Adam;

namespace {

struct Samples {
  std::vector<float> images;
  std::vector<std::uint8_t> labels;
  int n = 0;
};

// n random images with pixels in [0, 1] and random labels.
Samples random_samples(int n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::uniform_int_distribution<int> label(0, kNumClasses - 1);
  Samples s;
  s.n = n;
  s.images.resize(static_cast<std::size_t>(n) * kImagePixels);
  for (float& p : s.images) p = pixel(rng);
  for (int i = 0; i < n; ++i) s.labels.push_back(static_cast<std::uint8_t>(label(rng)));
  return s;
}

double loss_at(Model& model, const Samples& s, std::vector<float>& scratch) {
  return model.loss_and_grad(s.images.data(), s.labels.data(), s.n, scratch);
}

// Difference quotients of the loss along coordinate i with step eps:
// central, forward and backward. The steps actually taken are measured in
// float, since p + eps rounds.
struct Differences {
  double central = 0.0;
  double forward = 0.0;
  double backward = 0.0;
};

Differences differences(Model& model, const Samples& s, std::size_t i, float eps, double loss0,
                        std::vector<float>& scratch) {
  float* p = model.params().data() + i;
  const float original = *p;
  *p = original + eps;
  const double up = static_cast<double>(*p) - original;
  const double loss_up = loss_at(model, s, scratch);
  *p = original - eps;
  const double down = static_cast<double>(original) - *p;
  const double loss_down = loss_at(model, s, scratch);
  *p = original;
  return Differences{(loss_up - loss_down) / (up + down), (loss_up - loss0) / up,
                     (loss0 - loss_down) / down};
}

// Symmetric relative error, with a floor so that coordinates whose gradient
// is near zero are judged by absolute error instead.
double relative_error(double analytic, double numeric, double floor) {
  return std::abs(analytic - numeric) / std::max(std::abs(analytic) + std::abs(numeric), floor);
}

// How one tensor's analytic gradient compares with finite differences.
struct TensorCheck {
  std::string name;
  int checked = 0;
  double norm_error = 0.0;   // ||analytic - numeric|| / ||numeric|| over the sample
  double worst_error = 0.0;  // largest per-coordinate relative_error()
  std::string worst;         // that coordinate and its estimates, for messages
};

// Compares `analytic` (the gradient from loss_and_grad at the current
// parameters) with finite differences on up to `per_tensor` random
// coordinates of EVERY tensor.
//
// The loss is float32, so two losses near 2.3 differ with an error of a few
// 1e-7; with eps = 1e-3 that is ~1e-4 on the derivative, as large as the
// smallest gradients here, while eps = 1e-2 is precise but often moves a ReLU
// pre-activation across zero (with 4 samples x 384 units, some lie within
// 1e-2 of it), and a central difference across a kink averages both sides.
// The analytic gradient then equals one of the one-sided derivatives. So each
// coordinate is double-checked: central, forward and backward differences
// with eps 1e-2 and 1e-3 are taken, and the one closest to the analytic value
// is the numeric estimate. A wrong gradient is far from all six.
//
// Bounds, as used by check_model_gradient(): per tensor, the relative error
// of the sampled gradient vector must be <= 2e-2 (over 40 seeds of model and
// data the worst seen was 2.3e-3, a 10x margin, while a tensor whose
// gradient is off by 10% fails it by 5x); per coordinate, the symmetric
// error must be <= 0.3 (worst seen 0.07, on a bias whose gradient is ~1e-3),
// which catches a sign error (error 1) or a value taken from elsewhere.
std::vector<TensorCheck> check_gradient(Model& model, const Samples& s,
                                        const std::vector<float>& analytic, int per_tensor,
                                        std::uint32_t seed) {
  constexpr double kFloor = 1e-3;
  std::vector<TensorCheck> results;
  std::vector<float> scratch(model.num_params());
  std::mt19937 rng(seed);
  const float* base = model.params().data();
  const double loss0 = loss_at(model, s, scratch);
  for (const platoon::ParamView& view : model.param_views()) {
    std::size_t size = 1;
    for (std::size_t d : view.shape) size *= d;
    const auto offset = static_cast<std::size_t>(view.data - base);
    std::vector<std::size_t> coords(size);
    for (std::size_t k = 0; k < size; ++k) coords[k] = offset + k;
    std::shuffle(coords.begin(), coords.end(), rng);
    coords.resize(std::min<std::size_t>(size, static_cast<std::size_t>(per_tensor)));

    TensorCheck check;
    check.name = view.name;
    double diff2 = 0.0, numeric2 = 0.0;
    for (std::size_t i : coords) {
      const double a = analytic[i];
      const Differences coarse = differences(model, s, i, 1e-2f, loss0, scratch);
      const Differences fine = differences(model, s, i, 1e-3f, loss0, scratch);
      double best = coarse.central;
      for (double estimate : {coarse.forward, coarse.backward, fine.central, fine.forward, fine.backward}) {
        if (std::abs(estimate - a) < std::abs(best - a)) best = estimate;
      }
      diff2 += (a - best) * (a - best);
      numeric2 += best * best;
      const double err = relative_error(a, best, kFloor);
      if (err >= check.worst_error) {
        check.worst_error = err;
        check.worst = view.name + "[" + std::to_string(i - offset) + "]: analytic " +
                      std::to_string(a) + ", central " + std::to_string(coarse.central) + " / " +
                      std::to_string(fine.central) + " (eps 1e-2 / 1e-3)";
      }
      ++check.checked;
    }
    check.norm_error = std::sqrt(diff2 / std::max(numeric2, 1e-30));
    results.push_back(check);
  }
  return results;
}

// The analytic gradient, computed into a buffer pre-filled with NaN so that
// any element loss_and_grad fails to write shows up.
std::vector<float> analytic_gradient(Model& model, const Samples& s) {
  std::vector<float> grad(model.num_params(), std::nanf(""));
  (void)model.loss_and_grad(s.images.data(), s.labels.data(), s.n, grad);
  return grad;
}

void check_model_gradient(Model& model, int n, const std::vector<std::string>& expected_tensors) {
  const Samples s = random_samples(n, 11);
  const std::vector<float> grad = analytic_gradient(model, s);
  for (std::size_t i = 0; i < grad.size(); ++i) {
    REQUIRE_MESSAGE(std::isfinite(grad[i]), "gradient element " << i << " not written");
  }

  const std::vector<TensorCheck> good = check_gradient(model, s, grad, 50, 5);
  std::vector<std::string> names;
  for (const TensorCheck& t : good) {
    names.push_back(t.name);
    INFO(t.worst);
    CHECK_MESSAGE(t.norm_error <= 2e-2, t.name << " relative error " << t.norm_error);
    CHECK_MESSAGE(t.worst_error <= 0.3, t.name << " worst coordinate error " << t.worst_error);
    MESSAGE(model.name() << " " << t.name << ": " << t.checked << " coordinates, relative error "
                         << t.norm_error << ", worst coordinate " << t.worst_error);
  }
  CHECK(names == expected_tensors);  // every tensor was checked

  // The check must be able to fail: a gradient 10% off in one tensor, or
  // with one tensor's sign flipped, is caught.
  const auto views = model.param_views();
  for (std::size_t which : {std::size_t{0}, views.size() - 1}) {
    for (float factor : {1.1f, -1.0f}) {
      CAPTURE(which);
      CAPTURE(factor);
      std::vector<float> wrong = grad;
      const auto offset = static_cast<std::size_t>(views[which].data - model.params().data());
      std::size_t size = 1;
      for (std::size_t d : views[which].shape) size *= d;
      for (std::size_t k = 0; k < size; ++k) wrong[offset + k] *= factor;
      const TensorCheck bad = check_gradient(model, s, wrong, 50, 5)[which];
      CHECK(bad.norm_error > 2e-2);
      if (factor < 0) CHECK(bad.worst_error > 0.3);
    }
  }
}

void check_layout(Model& model) {
  const auto views = model.param_views();
  REQUIRE(!views.empty());
  float* expected = model.params().data();
  std::set<std::string> names;
  for (const auto& view : views) {
    CHECK(view.data == expected);  // contiguous, in order, no gaps
    std::size_t size = 1;
    for (std::size_t d : view.shape) size *= d;
    CHECK(size > 0);
    expected += size;
    CHECK(names.insert(view.name).second);
  }
  CHECK(expected == model.params().data() + model.num_params());
}

// A few Adam steps on a small fixed set must cut its loss well down.
void check_learns(Model& model, int steps, float lr) {
  const Samples s = random_samples(32, 3);
  std::vector<float> grad(model.num_params());
  Adam adam(lr);
  const float first = model.loss_and_grad(s.images.data(), s.labels.data(), s.n, grad);
  float last = first;
  for (int i = 0; i < steps; ++i) {
    adam.step(model.params(), grad);
    last = model.loss_and_grad(s.images.data(), s.labels.data(), s.n, grad);
  }
  CHECK(last < 0.25f * first);
  std::vector<std::uint8_t> predicted(static_cast<std::size_t>(s.n));
  model.predict(s.images.data(), s.n, predicted.data());
  CHECK(accuracy(model, s.images.data(), s.labels.data(), s.n, 7) > 0.9);
}

}  // namespace

TEST_CASE("MLP gradient matches finite differences") {
  Mlp model(7);  // the real 784-256-128-10 network
  check_model_gradient(model, 4, {"fc1.W", "fc1.b", "fc2.W", "fc2.b", "fc3.W", "fc3.b"});
}

TEST_CASE("LSTM gradient matches finite differences") {
  Lstm model(7, 8);
  check_model_gradient(model, 3, {"lstm.Wx", "lstm.Wh", "lstm.b", "fc.W", "fc.b"});
}

TEST_CASE("param_views cover the flat vector in order") {
  Mlp mlp(1);
  check_layout(mlp);
  CHECK(mlp.num_params() == 784u * 256 + 256 + 256u * 128 + 128 + 128u * 10 + 10);
  const auto mlp_views = mlp.param_views();
  CHECK(mlp_views[0].name == "fc1.W");
  CHECK(mlp_views[0].shape == std::vector<std::size_t>{784, 256});

  Lstm lstm(1, 16);
  check_layout(lstm);
  CHECK(lstm.num_params() == 28u * 64 + 16u * 64 + 64 + 16u * 10 + 10);
  const auto lstm_views = lstm.param_views();
  CHECK(lstm_views[1].name == "lstm.Wh");
  CHECK(lstm_views[1].shape == std::vector<std::size_t>{16, 64});
  // Forget-gate biases (second quarter) start at 1, the others at 0.
  const float* b = lstm_views[2].data;
  CHECK(b[0] == 0.0f);
  CHECK(b[16] == 1.0f);
  CHECK(b[31] == 1.0f);
  CHECK(b[32] == 0.0f);
}

TEST_CASE("the same seed gives the same parameters") {
  Mlp a(42), b(42), c(43);
  CHECK(std::equal(a.params().begin(), a.params().end(), b.params().begin()));
  CHECK(!std::equal(a.params().begin(), a.params().end(), c.params().begin()));
  Lstm d(42, 8), e(42, 8);
  CHECK(std::equal(d.params().begin(), d.params().end(), e.params().begin()));
}

TEST_CASE("loss_and_grad rejects bad arguments") {
  Mlp model(1, 8, 4);
  const Samples s = random_samples(2, 1);
  std::vector<float> grad(model.num_params());
  std::vector<float> short_grad(model.num_params() - 1);
  CHECK_THROWS_AS(model.loss_and_grad(s.images.data(), s.labels.data(), 0, grad), std::invalid_argument);
  CHECK_THROWS_AS(model.loss_and_grad(s.images.data(), s.labels.data(), 2, short_grad),
                  std::invalid_argument);
}

TEST_CASE("the models can fit a small set") {
  SUBCASE("MLP") {
    Mlp model(5, 64, 32);
    check_learns(model, 60, 3e-3f);
  }
  SUBCASE("LSTM") {
    Lstm model(5, 32);
    check_learns(model, 150, 1e-2f);
  }
}
