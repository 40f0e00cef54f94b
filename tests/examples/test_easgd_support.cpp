// What the EASGD example workers share, with a real controller and Soldier
// in this process: validation looks at the center on a scratch copy.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "common/mlp.hpp"
#include "easgd_support.hpp"
#include "platoon/common/error.hpp"
#include "platoon/sync/sync_rules.hpp"
#include "soldier_support.hpp"
#include "test_support.hpp"

using namespace platoon::examples;
using platoon::Soldier;

namespace {

// `count` 28x28 images of random pixels and random labels.
struct RandomImages {
  platoon::examples::IdxImages images;
  std::vector<std::uint8_t> labels;

  explicit RandomImages(std::size_t count) {
    std::mt19937 random(7);
    std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
    images.count = count;
    images.rows = 28;
    images.cols = 28;
    images.pixels.resize(count * 28 * 28);
    for (float& p : images.pixels) p = pixel(random);
    for (std::size_t i = 0; i < count; ++i) labels.push_back(static_cast<std::uint8_t>(random() % 10));
  }
};

}  // namespace

TEST_CASE("validation on a scratch copy of the center leaves the worker's own parameters intact") {
  platoon::testing::EndOnRequestController controller;
  platoon::testing::ServedController served(controller);
  Soldier soldier(platoon::testing::soldier_options_for(served));

  Mlp model(1, 8, 4);
  soldier.init_shared_params(model.param_views(), std::make_unique<platoon::EASGD>(0.5f));
  const std::vector<float> center(model.params().begin(), model.params().end());  // made from this worker's values
  // The worker's progress since: its parameters move away from the center.
  for (std::size_t i = 0; i < model.num_params(); ++i) model.params()[i] += 0.05f * static_cast<float>(i % 7) - 0.1f;
  const std::vector<float> progress(model.params().begin(), model.params().end());

  const RandomImages data(200);
  std::vector<std::size_t> indices(150);
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = i + 50;
  CenterEvaluator evaluator(soldier, std::make_unique<Mlp>(99, 8, 4));  // a scratch of other values
  const double on_indices = evaluator.accuracy(data.images, data.labels, indices);
  const double on_all = evaluator.accuracy(data.images, data.labels);

  // The worker's parameters are what its training made them, bit for bit.
  CHECK(std::vector<float>(model.params().begin(), model.params().end()) == progress);
  // And what was evaluated is the center.
  Mlp reference(99, 8, 4);
  std::copy(center.begin(), center.end(), reference.params().begin());
  CHECK(on_indices == accuracy_on(reference, data.images, data.labels, indices));
  CHECK(on_all == accuracy(reference, data.images.pixels.data(), data.labels.data(), 200));

  // A scratch model of another layout is refused, with both sizes.
  CenterEvaluator wrong(soldier, std::make_unique<Mlp>(1, 9, 4));
  CHECK_THROWS_WITH_AS(wrong.accuracy(data.images, data.labels), doctest::Contains("the scratch model"),
                       platoon::LayoutError);
  soldier.close();
}
