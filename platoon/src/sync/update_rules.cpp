#include "platoon/sync/update_rules.hpp"

#include <cmath>
#include <sstream>

#include "../common/vector_loop.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

namespace {

std::string number(float x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

// The rules' element loops, one pass each, dispatched by CPU (vector_loop.hpp).

PLATOON_VECTOR_LOOP void sgd_loop(float* __restrict p, const float* __restrict g, std::size_t n, float lr, float wd) {
  for (std::size_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
}

PLATOON_VECTOR_LOOP void momentum_loop(float* __restrict p, const float* __restrict grad, float* __restrict velocity,
                                       std::size_t n, float lr, float mu, float wd, bool nesterov) {
  for (std::size_t i = 0; i < n; ++i) {
    const float g = grad[i] + wd * p[i];
    const float v = mu * velocity[i] + g;
    velocity[i] = v;
    p[i] -= lr * (nesterov ? g + mu * v : v);
  }
}

struct AdamStep {
  float b1, b2, eps, step_size, inv_sqrt_c2, decay;
};

PLATOON_VECTOR_LOOP void adam_loop(float* __restrict p, const float* __restrict grad, float* __restrict m,
                                   float* __restrict v, std::size_t n, AdamStep s) {
  for (std::size_t i = 0; i < n; ++i) {
    const float g = grad[i];
    m[i] = s.b1 * m[i] + (1.0f - s.b1) * g;
    v[i] = s.b2 * v[i] + (1.0f - s.b2) * g * g;
    p[i] -= s.step_size * m[i] / (std::sqrt(v[i]) * s.inv_sqrt_c2 + s.eps) + s.decay * p[i];
  }
}

}  // namespace

void UpdateRule::check_sizes(std::span<const float> params, std::span<const float> grad, std::size_t attached) {
  if (params.size() != grad.size())
    throw Error(str_cat("update step: ", params.size(), " parameters but ", grad.size(), " gradients"));
  if (attached != params.size())
    throw Error(str_cat("update step: the rule's state is sized for ", attached, " parameters, got ", params.size(),
                        " (attach() again to change it)"));
}

Sgd::Sgd(float lr, Settings settings) : UpdateRule(lr), settings_(settings) {
  if (!(lr >= 0.0f)) throw Error(str_cat("sgd: learning rate ", number(lr), " is negative"));
  if (!(settings.momentum >= 0.0f && settings.momentum < 1.0f))
    throw Error(str_cat("sgd: momentum ", number(settings.momentum), " is outside [0, 1)"));
  if (settings.nesterov && settings.momentum == 0.0f) throw Error("sgd: Nesterov needs a momentum above 0");
  if (!(settings.weight_decay >= 0.0f))
    throw Error(str_cat("sgd: weight decay ", number(settings.weight_decay), " is negative"));
}

Sgd::Sgd(float lr) : Sgd(lr, Settings{}) {}

void Sgd::attach(std::size_t elements) {
  attached_ = elements;
  velocity_.assign(settings_.momentum > 0.0f ? elements : 0, 0.0f);
  is_attached_ = true;
}

void Sgd::step(std::span<float> params, std::span<const float> grad) {
  if (!is_attached_) attach(params.size());
  check_sizes(params, grad, attached_);
  const float lr = lr_, mu = settings_.momentum, wd = settings_.weight_decay;
  if (mu == 0.0f)
    sgd_loop(params.data(), grad.data(), params.size(), lr, wd);
  else
    momentum_loop(params.data(), grad.data(), velocity_.data(), params.size(), lr, mu, wd, settings_.nesterov);
}

std::vector<std::span<float>> Sgd::state() {
  if (velocity_.empty()) return {};
  return {velocity_};
}

std::string Sgd::describe() const {
  std::string name = settings_.nesterov ? "nesterov" : settings_.momentum > 0.0f ? "momentum" : "sgd";
  std::string out = str_cat(name, "(lr=", number(lr_));
  if (settings_.momentum > 0.0f) out += str_cat(", mu=", number(settings_.momentum));
  if (settings_.weight_decay > 0.0f) out += str_cat(", wd=", number(settings_.weight_decay));
  return out + ")";
}

Adam::Adam(float lr, Settings settings) : UpdateRule(lr), settings_(settings) {
  if (!(lr >= 0.0f)) throw Error(str_cat("adam: learning rate ", number(lr), " is negative"));
  if (!(settings.beta1 >= 0.0f && settings.beta1 < 1.0f) || !(settings.beta2 >= 0.0f && settings.beta2 < 1.0f))
    throw Error(str_cat("adam: betas ", number(settings.beta1), ", ", number(settings.beta2), " must be in [0, 1)"));
  if (!(settings.eps > 0.0f)) throw Error(str_cat("adam: eps ", number(settings.eps), " must be positive"));
  if (!(settings.weight_decay >= 0.0f))
    throw Error(str_cat("adam: weight decay ", number(settings.weight_decay), " is negative"));
}

Adam::Adam(float lr) : Adam(lr, Settings{}) {}

void Adam::attach(std::size_t elements) {
  m_.assign(elements, 0.0f);
  v_.assign(elements, 0.0f);
  step_count_[0] = 0.0f;
  is_attached_ = true;
}

void Adam::step(std::span<float> params, std::span<const float> grad) {
  if (!is_attached_) attach(params.size());
  check_sizes(params, grad, m_.size());
  step_count_[0] += 1.0f;
  // Bias corrections in double: 1 - beta2^k is tiny for small k.
  const double k = step_count_[0];
  const auto correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(settings_.beta1), k));
  const auto correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(settings_.beta2), k));
  const AdamStep s{.b1 = settings_.beta1,
                   .b2 = settings_.beta2,
                   .eps = settings_.eps,
                   .step_size = lr_ / correction1,
                   .inv_sqrt_c2 = 1.0f / std::sqrt(correction2),
                   .decay = lr_ * settings_.weight_decay};
  adam_loop(params.data(), grad.data(), m_.data(), v_.data(), params.size(), s);
}

std::vector<std::span<float>> Adam::state() { return {m_, v_, step_count_}; }

std::string Adam::describe() const {
  std::string out = str_cat("adam(lr=", number(lr_));
  if (settings_.weight_decay > 0.0f) out += str_cat(", wd=", number(settings_.weight_decay));
  return out + ")";
}

std::unique_ptr<UpdateRule> make_update_rule(std::string_view kind, float lr, float weight_decay) {
  const auto wd = [&](float fallback) { return weight_decay >= 0.0f ? weight_decay : fallback; };
  if (kind == "sgd") return std::make_unique<Sgd>(lr, Sgd::Settings{0.0f, false, wd(0.0f)});
  if (kind == "momentum") return std::make_unique<Sgd>(lr, Sgd::Settings{0.9f, false, wd(0.0f)});
  if (kind == "nesterov") return std::make_unique<Sgd>(lr, Sgd::Settings{0.9f, true, wd(0.0f)});
  if (kind == "adam") return std::make_unique<Adam>(lr, Adam::Settings{.weight_decay = wd(0.0f)});
  if (kind == "adamw") return std::make_unique<Adam>(lr, Adam::Settings{.weight_decay = wd(0.01f)});
  throw Error(str_cat("unknown update rule '", kind, "' (expected sgd, momentum, nesterov, adam or adamw)"));
}

float clip_grad_norm(std::span<float> grad, float max_norm) {
  double sum = 0.0;
  for (const float g : grad) sum += static_cast<double>(g) * g;
  const auto norm = static_cast<float>(std::sqrt(sum));
  if (max_norm > 0.0f && norm > max_norm) {
    const float scale = max_norm / norm;
    for (float& g : grad) g *= scale;
  }
  return norm;
}

}  // namespace platoon
