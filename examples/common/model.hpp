// The interface shared by the example classifiers for 28x28 images.
//
// A Model owns all its parameters in ONE contiguous float vector. Each named
// tensor is a slice of it, so a worker can hand param_views() to platoon and
// sync the whole model in place, and an optimizer can update params() as one
// flat span with a gradient of the same layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "platoon/common/params.hpp"

namespace platoon::examples {

/// Pixels per input image (28 x 28), row-major, values in [0, 1].
inline constexpr int kImagePixels = 28 * 28;
/// Number of classes (Fashion-MNIST labels 0..9).
inline constexpr int kNumClasses = 10;

class Model {
 public:
  virtual ~Model() = default;

  /// Named views into params(), in a fixed order that covers the flat vector
  /// from start to end without gaps. Weight shapes are {in, out}, row-major:
  /// a layer computes y = x * W + b.
  [[nodiscard]] std::vector<platoon::ParamView> param_views();

  /// The whole flat parameter vector.
  [[nodiscard]] std::span<float> params() { return params_; }
  [[nodiscard]] std::span<const float> params() const { return params_; }
  /// Number of parameters (size of params()).
  [[nodiscard]] std::size_t num_params() const { return params_.size(); }

  /// Mean softmax cross-entropy over the n samples. `images` is n x 784,
  /// row-major; `labels` holds n values in 0..9. Overwrites `grad` (same size
  /// and layout as params()) with the gradient of that mean. Throws
  /// std::invalid_argument when n < 1 or grad has the wrong size.
  virtual float loss_and_grad(const float* images, const std::uint8_t* labels, int n,
                              std::span<float> grad) = 0;

  /// Writes the most likely class of each of the n images to out[0..n).
  virtual void predict(const float* images, int n, std::uint8_t* out) = 0;

  /// A short name for logs, e.g. "mlp-784-256-128-10".
  [[nodiscard]] virtual std::string name() const = 0;

 protected:
  Model() = default;
  Model(const Model&) = default;
  Model& operator=(const Model&) = default;

  /// Declares the next tensor of the layout; call in the constructor, in
  /// order, then allocate(). Returns its offset in the flat vector.
  std::size_t add_tensor(std::string name, std::vector<std::size_t> shape);
  /// Sizes the flat vector (zero-filled) for the declared tensors.
  void allocate() { params_.assign(declared_size_, 0.0f); }
  /// Throws std::invalid_argument unless n >= 1 and grad.size() == num_params().
  void check_loss_args(int n, std::span<const float> grad) const;

  std::vector<float> params_;

 private:
  struct Tensor {
    std::string name;
    std::vector<std::size_t> shape;
    std::size_t offset = 0;
  };
  std::vector<Tensor> tensors_;
  std::size_t declared_size_ = 0;
};

/// Fraction of the n images that `model` classifies as their label;
/// evaluates `batch` images at a time so memory stays bounded.
double accuracy(Model& model, const float* images, const std::uint8_t* labels, int n,
                int batch = 1000);

}  // namespace platoon::examples
