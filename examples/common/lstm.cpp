#include "common/lstm.hpp"

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

constexpr int kSteps = 28;     // image rows
constexpr int kInputs = 28;    // pixels per row
// Largest number of images predict() pushes through at once.
constexpr int kPredictChunk = 256;

}  // namespace

Lstm::Lstm(std::uint64_t seed, int hidden) : h_(hidden) {
  if (hidden < 1) throw std::invalid_argument("Lstm: hidden size must be >= 1");
  const auto h = static_cast<std::size_t>(h_);
  wx_ = add_tensor("lstm.Wx", {static_cast<std::size_t>(kInputs), 4 * h});
  wh_ = add_tensor("lstm.Wh", {h, 4 * h});
  b_ = add_tensor("lstm.b", {4 * h});
  wfc_ = add_tensor("fc.W", {h, static_cast<std::size_t>(kNumClasses)});
  bfc_ = add_tensor("fc.b", {static_cast<std::size_t>(kNumClasses)});
  allocate();

  std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
  const float bound = 1.0f / std::sqrt(static_cast<float>(h_));
  std::uniform_real_distribution<float> uniform(-bound, bound);
  auto fill = [&](std::size_t offset, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) params_[offset + i] = uniform(rng);
  };
  fill(wx_, kInputs * 4 * h);
  fill(wh_, h * 4 * h);
  fill(wfc_, h * kNumClasses);
  std::fill_n(params_.begin() + static_cast<std::ptrdiff_t>(b_ + h), h, 1.0f);  // forget gate
}

std::string Lstm::name() const { return "lstm-h" + std::to_string(h_); }

void Lstm::forward(const float* images, int n) {
  const int h = h_;
  const MatrixMap wx(params_.data() + wx_, 4 * h, kInputs);
  const MatrixMap wh(params_.data() + wh_, 4 * h, h);
  const VectorMap b(params_.data() + b_, 4 * h);
  const MatrixMap wfc(params_.data() + wfc_, kNumClasses, h);
  const VectorMap bfc(params_.data() + bfc_, kNumClasses);

  // Reorder the rows time-major so each step's inputs are one contiguous block.
  inputs_.resize(kInputs, kSteps * n);
  for (int s = 0; s < n; ++s) {
    const float* image = images + static_cast<std::size_t>(s) * kImagePixels;
    for (int t = 0; t < kSteps; ++t) {
      std::copy_n(image + t * kInputs, kInputs, inputs_.col(t * n + s).data());
    }
  }

  // The input projections of all 28 steps in one product.
  gates_.resize(4 * h, kSteps * n);
  gates_.noalias() = wx * inputs_;
  gates_.colwise() += b;

  cells_.resize(h, (kSteps + 1) * n);
  hiddens_.resize(h, (kSteps + 1) * n);
  tanh_cells_.resize(h, kSteps * n);
  cells_.leftCols(n).setZero();
  hiddens_.leftCols(n).setZero();
  for (int t = 0; t < kSteps; ++t) {
    auto g = gates_.middleCols(t * n, n);
    if (t > 0) g.noalias() += wh * hiddens_.middleCols(t * n, n);  // h_{-1} = 0
    g.topRows(3 * h) = g.topRows(3 * h).array().logistic().matrix();
    g.bottomRows(h) = g.bottomRows(h).array().tanh().matrix();
    const auto in = g.topRows(h).array();
    const auto forget = g.middleRows(h, h).array();
    const auto out = g.middleRows(2 * h, h).array();
    const auto cand = g.bottomRows(h).array();
    auto c = cells_.middleCols((t + 1) * n, n);
    auto tc = tanh_cells_.middleCols(t * n, n);
    c.array() = forget * cells_.middleCols(t * n, n).array() + in * cand;
    tc.array() = c.array().tanh();
    hiddens_.middleCols((t + 1) * n, n).array() = out * tc.array();
  }

  logits_.resize(kNumClasses, n);
  logits_.noalias() = wfc * hiddens_.rightCols(n);
  logits_.colwise() += bfc;
}

float Lstm::loss_and_grad(const float* images, const std::uint8_t* labels, int n,
                          std::span<float> grad) {
  check_loss_args(n, grad);
  forward(images, n);
  const float loss = detail::softmax_cross_entropy(logits_, labels);
  const Matrix& dlogits = logits_;

  const int h = h_;
  const MatrixMap wh(params_.data() + wh_, 4 * h, h);
  const MatrixMap wfc(params_.data() + wfc_, kNumClasses, h);
  MatrixMap gwx(grad.data() + wx_, 4 * h, kInputs);
  MatrixMap gwh(grad.data() + wh_, 4 * h, h);
  VectorMap gb(grad.data() + b_, 4 * h);
  MatrixMap gwfc(grad.data() + wfc_, kNumClasses, h);
  VectorMap gbfc(grad.data() + bfc_, kNumClasses);

  gwfc.noalias() = dlogits * hiddens_.rightCols(n).transpose();
  gbfc = dlogits.rowwise().sum();

  dh_.resize(h, n);
  dc_.resize(h, n);
  dgates_.resize(4 * h, kSteps * n);
  dh_.noalias() = wfc.transpose() * dlogits;
  dc_.setZero();
  for (int t = kSteps - 1; t >= 0; --t) {
    const auto g = gates_.middleCols(t * n, n);
    const auto in = g.topRows(h).array();
    const auto forget = g.middleRows(h, h).array();
    const auto out = g.middleRows(2 * h, h).array();
    const auto cand = g.bottomRows(h).array();
    const auto tc = tanh_cells_.middleCols(t * n, n).array();
    const auto c_prev = cells_.middleCols(t * n, n).array();
    auto dg = dgates_.middleCols(t * n, n);

    // h_t = o * tanh(c_t): the error reaches o directly and c_t through tanh.
    dc_.array() += dh_.array() * out * (1.0f - tc.square());
    dg.middleRows(2 * h, h).array() = dh_.array() * tc * out * (1.0f - out);
    // c_t = f * c_{t-1} + i * g, then each gate's own non-linearity.
    dg.topRows(h).array() = dc_.array() * cand * in * (1.0f - in);
    dg.middleRows(h, h).array() = dc_.array() * c_prev * forget * (1.0f - forget);
    dg.bottomRows(h).array() = dc_.array() * in * (1.0f - cand.square());
    dc_.array() *= forget;
    if (t > 0) dh_.noalias() = wh.transpose() * dg;
  }

  // Weight gradients summed over all steps, each in one product: step t's
  // recurrent input is h_{t-1}, i.e. the first 28 blocks of hiddens_.
  gwx.noalias() = dgates_ * inputs_.transpose();
  gwh.noalias() = dgates_ * hiddens_.leftCols(kSteps * n).transpose();
  gb = dgates_.rowwise().sum();
  return loss;
}

void Lstm::predict(const float* images, int n, std::uint8_t* out) {
  for (int start = 0; start < n; start += kPredictChunk) {
    const int count = std::min(kPredictChunk, n - start);
    forward(images + static_cast<std::size_t>(start) * kImagePixels, count);
    detail::argmax_columns(logits_, out + start);
  }
}

}  // namespace platoon::examples
