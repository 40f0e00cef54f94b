#include "common/mlp.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "common/softmax.hpp"

namespace platoon::examples {
namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using MatrixMap = Eigen::Map<Matrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;

// Largest number of images predict() pushes through at once.
constexpr int kPredictChunk = 256;

}  // namespace

Mlp::Mlp(std::uint64_t seed, int hidden1, int hidden2) : h1_(hidden1), h2_(hidden2) {
  if (hidden1 < 1 || hidden2 < 1) throw std::invalid_argument("Mlp: hidden sizes must be >= 1");
  const auto in = static_cast<std::size_t>(kImagePixels);
  const auto s1 = static_cast<std::size_t>(h1_);
  const auto s2 = static_cast<std::size_t>(h2_);
  const auto out = static_cast<std::size_t>(kNumClasses);
  w1_ = add_tensor("fc1.W", {in, s1});
  b1_ = add_tensor("fc1.b", {s1});
  w2_ = add_tensor("fc2.W", {s1, s2});
  b2_ = add_tensor("fc2.b", {s2});
  w3_ = add_tensor("fc3.W", {s2, out});
  b3_ = add_tensor("fc3.b", {out});
  allocate();

  std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
  auto he_init = [&](std::size_t offset, std::size_t fan_in, std::size_t fan_out) {
    std::normal_distribution<float> normal(0.0f, std::sqrt(2.0f / static_cast<float>(fan_in)));
    for (std::size_t i = 0; i < fan_in * fan_out; ++i) params_[offset + i] = normal(rng);
  };
  he_init(w1_, in, s1);
  he_init(w2_, s1, s2);
  he_init(w3_, s2, out);
}

std::string Mlp::name() const {
  return "mlp-784-" + std::to_string(h1_) + "-" + std::to_string(h2_) + "-10";
}

void Mlp::forward(const float* images, int n) {
  // A row-major n x 784 buffer is exactly a column-major 784 x n matrix.
  const Eigen::Map<const Matrix> x(images, kImagePixels, n);
  const MatrixMap w1(params_.data() + w1_, h1_, kImagePixels);
  const VectorMap b1(params_.data() + b1_, h1_);
  const MatrixMap w2(params_.data() + w2_, h2_, h1_);
  const VectorMap b2(params_.data() + b2_, h2_);
  const MatrixMap w3(params_.data() + w3_, kNumClasses, h2_);
  const VectorMap b3(params_.data() + b3_, kNumClasses);

  a1_.resize(h1_, n);  // no-op when the size is unchanged
  a1_.noalias() = w1 * x;
  a1_.colwise() += b1;
  a1_ = a1_.cwiseMax(0.0f);

  a2_.resize(h2_, n);
  a2_.noalias() = w2 * a1_;
  a2_.colwise() += b2;
  a2_ = a2_.cwiseMax(0.0f);

  logits_.resize(kNumClasses, n);
  logits_.noalias() = w3 * a2_;
  logits_.colwise() += b3;
}

float Mlp::loss_and_grad(const float* images, const std::uint8_t* labels, int n,
                         std::span<float> grad) {
  check_loss_args(n, grad);
  forward(images, n);
  const float loss = detail::softmax_cross_entropy(logits_, labels);
  const Matrix& d3 = logits_;  // now d(loss)/d(logits)

  const Eigen::Map<const Matrix> x(images, kImagePixels, n);
  const MatrixMap w2(params_.data() + w2_, h2_, h1_);
  const MatrixMap w3(params_.data() + w3_, kNumClasses, h2_);
  MatrixMap gw1(grad.data() + w1_, h1_, kImagePixels);
  VectorMap gb1(grad.data() + b1_, h1_);
  MatrixMap gw2(grad.data() + w2_, h2_, h1_);
  VectorMap gb2(grad.data() + b2_, h2_);
  MatrixMap gw3(grad.data() + w3_, kNumClasses, h2_);
  VectorMap gb3(grad.data() + b3_, kNumClasses);

  gw3.noalias() = d3 * a2_.transpose();
  gb3 = d3.rowwise().sum();

  // ReLU passes the error only where the unit was active (output > 0).
  d2_.resize(h2_, n);
  d2_.noalias() = w3.transpose() * d3;
  d2_ = (a2_.array() > 0.0f).select(d2_, 0.0f);
  gw2.noalias() = d2_ * a1_.transpose();
  gb2 = d2_.rowwise().sum();

  d1_.resize(h1_, n);
  d1_.noalias() = w2.transpose() * d2_;
  d1_ = (a1_.array() > 0.0f).select(d1_, 0.0f);
  gw1.noalias() = d1_ * x.transpose();
  gb1 = d1_.rowwise().sum();
  return loss;
}

void Mlp::predict(const float* images, int n, std::uint8_t* out) {
  for (int start = 0; start < n; start += kPredictChunk) {
    const int count = std::min(kPredictChunk, n - start);
    forward(images + static_cast<std::size_t>(start) * kImagePixels, count);
    detail::argmax_columns(logits_, out + start);
  }
}

}  // namespace platoon::examples
