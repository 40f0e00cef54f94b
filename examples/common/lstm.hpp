// A row-by-row LSTM classifier: each 28x28 image is read as a sequence of
// 28 steps of 28 pixels (one image row per step).
#pragma once

#include <cstdint>
#include <string>

#include <Eigen/Core>

#include "common/model.hpp"

namespace platoon::examples {

/// One LSTM layer of `hidden` units over the 28 rows, then a linear layer
/// from the last hidden state to 10 scores and softmax cross-entropy.
/// Trained with full back-propagation through time.
///
/// Tensors, in order: lstm.Wx {28, 4H}, lstm.Wh {H, 4H}, lstm.b {4H},
/// fc.W {H, 10}, fc.b {10}. The 4H gate columns are grouped as
/// [input, forget, output, candidate], H each. Weights start uniform in
/// +-1/sqrt(H) from std::mt19937(seed); biases at 0 except the forget gate's,
/// which starts at 1 so the cell remembers by default early in training.
/// Work buffers live in the object, so one Lstm must not be used from two
/// threads at once.
class Lstm final : public Model {
 public:
  /// Builds and initialises the network; hidden must be >= 1.
  explicit Lstm(std::uint64_t seed = 1, int hidden = 128);

  float loss_and_grad(const float* images, const std::uint8_t* labels, int n,
                      std::span<float> grad) override;
  void predict(const float* images, int n, std::uint8_t* out) override;
  /// "lstm-h<H>".
  [[nodiscard]] std::string name() const override;

  /// Number of hidden units H.
  [[nodiscard]] int hidden() const { return h_; }

 private:
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;

  /// Runs the 28 steps on n images, keeping what back-propagation needs,
  /// and leaves the class scores in logits_.
  void forward(const float* images, int n);

  int h_;
  std::size_t wx_, wh_, b_, wfc_, bfc_;  // tensor offsets in params_
  // Work buffers, one column per sample and time-major: the block of
  // columns [t*n, (t+1)*n) belongs to step t. Kept between calls so that
  // steady-state training does not allocate.
  Matrix inputs_;    // 28 x 28n: image row t of every sample
  Matrix gates_;     // 4H x 28n: gate activations [i; f; o; g]
  Matrix cells_;     // H x 29n: c_{-1} = 0, then c_0 .. c_27
  Matrix hiddens_;   // H x 29n: h_{-1} = 0, then h_0 .. h_27
  Matrix tanh_cells_;  // H x 28n: tanh(c_t)
  Matrix logits_;    // 10 x n
  Matrix dgates_;    // 4H x 28n: d(loss)/d(gate pre-activations)
  Matrix dh_, dc_;   // H x n: errors flowing back through h and c
};

}  // namespace platoon::examples
