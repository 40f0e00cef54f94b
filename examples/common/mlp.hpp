// A multi-layer perceptron 784-256-128-10 with ReLU and softmax.
#pragma once

#include <cstdint>
#include <string>

#include <Eigen/Core>

#include "common/model.hpp"

namespace platoon::examples {

/// Fully connected classifier: 784 -> hidden1 -> ReLU -> hidden2 -> ReLU -> 10.
/// Tensors, in order: fc1.W {784, h1}, fc1.b {h1}, fc2.W {h1, h2}, fc2.b {h2},
/// fc3.W {h2, 10}, fc3.b {10}. Weights get He initialisation
/// (normal, stddev sqrt(2 / fan_in)) from std::mt19937(seed); biases start at 0.
/// Work buffers live in the object, so one Mlp must not be used from two
/// threads at once.
class Mlp final : public Model {
 public:
  /// Builds and initialises the network; hidden sizes must be >= 1.
  explicit Mlp(std::uint64_t seed = 1, int hidden1 = 256, int hidden2 = 128);

  float loss_and_grad(const float* images, const std::uint8_t* labels, int n,
                      std::span<float> grad) override;
  void predict(const float* images, int n, std::uint8_t* out) override;
  /// "mlp-784-<h1>-<h2>-10".
  [[nodiscard]] std::string name() const override;

 private:
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;

  /// Runs the layers on n images; leaves activations in a1_, a2_, logits_.
  void forward(const float* images, int n);

  int h1_;
  int h2_;
  std::size_t w1_, b1_, w2_, b2_, w3_, b3_;  // tensor offsets in params_
  // Activations and back-propagated errors, one column per sample; kept
  // between calls so that steady-state training does not allocate.
  Matrix a1_, a2_, logits_, d1_, d2_;
};

}  // namespace platoon::examples
