#include "common/optimizer.hpp"

#include <cmath>
#include <stdexcept>

namespace platoon::examples {

void Optimizer::check_sizes(std::span<const float> params, std::span<const float> grad,
                            std::size_t state_size) {
  if (params.size() != grad.size()) {
    throw std::invalid_argument("optimizer step: " + std::to_string(params.size()) +
                                " parameters but " + std::to_string(grad.size()) + " gradients");
  }
  if (state_size != 0 && state_size != params.size()) {
    throw std::invalid_argument("optimizer step: state sized for " + std::to_string(state_size) +
                                " parameters, got " + std::to_string(params.size()) +
                                " (call reset() to change size)");
  }
}

void Sgd::step(std::span<float> params, std::span<const float> grad) {
  check_sizes(params, grad, 0);
  for (std::size_t i = 0; i < params.size(); ++i) params[i] -= lr_ * grad[i];
}

std::string Sgd::describe() const { return "sgd(lr=" + std::to_string(lr_) + ")"; }

void Momentum::step(std::span<float> params, std::span<const float> grad) {
  check_sizes(params, grad, velocity_.size());
  if (velocity_.empty()) velocity_.assign(params.size(), 0.0f);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const float v = momentum_ * velocity_[i] + grad[i];
    velocity_[i] = v;
    params[i] -= lr_ * (nesterov_ ? grad[i] + momentum_ * v : v);
  }
}

std::string Momentum::describe() const {
  return std::string(nesterov_ ? "nesterov" : "momentum") + "(lr=" + std::to_string(lr_) +
         ", mu=" + std::to_string(momentum_) + ")";
}

void Adam::step(std::span<float> params, std::span<const float> grad) {
  check_sizes(params, grad, m_.size());
  if (m_.empty()) {
    m_.assign(params.size(), 0.0f);
    v_.assign(params.size(), 0.0f);
  }
  ++steps_;
  // Bias corrections in double: 1 - beta2^k is tiny for small k.
  const double k = static_cast<double>(steps_);
  const auto correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1_), k));
  const auto correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2_), k));
  const float step_size = lr_ / correction1;
  const float inv_sqrt_c2 = 1.0f / std::sqrt(correction2);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const float g = grad[i];
    m_[i] = beta1_ * m_[i] + (1.0f - beta1_) * g;
    v_[i] = beta2_ * v_[i] + (1.0f - beta2_) * g * g;
    params[i] -= step_size * m_[i] / (std::sqrt(v_[i]) * inv_sqrt_c2 + eps_);
  }
}

void Adam::reset() {
  steps_ = 0;
  m_.clear();
  v_.clear();
}

std::string Adam::describe() const { return "adam(lr=" + std::to_string(lr_) + ")"; }

std::unique_ptr<Optimizer> make_optimizer(std::string_view kind, float lr) {
  if (kind == "sgd") return std::make_unique<Sgd>(lr);
  if (kind == "momentum") return std::make_unique<Momentum>(lr, 0.9f, false);
  if (kind == "nesterov") return std::make_unique<Momentum>(lr, 0.9f, true);
  if (kind == "adam") return std::make_unique<Adam>(lr);
  throw std::invalid_argument("unknown optimizer '" + std::string(kind) +
                              "' (expected sgd, momentum, nesterov or adam)");
}

float clip_grad_norm(std::span<float> grad, float max_norm) {
  double sum = 0.0;
  for (float g : grad) sum += static_cast<double>(g) * g;
  const auto norm = static_cast<float>(std::sqrt(sum));
  if (max_norm > 0.0f && norm > max_norm) {
    const float scale = max_norm / norm;
    for (float& g : grad) g *= scale;
  }
  return norm;
}

}  // namespace platoon::examples
