#include "platoon/sync/sync_rules.hpp"

#include <cmath>

#include "../common/vector_loop.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

namespace {
float checked_alpha(float alpha) {
  if (!(alpha > 0.0f && alpha <= 1.0f))
    throw Error(str_cat("EASGD alpha must be in (0, 1], got ", alpha));
  return alpha;
}

// One pass, 16 bytes per element: read both, write both. Both writes use
// the same d, computed from the values before either write.
PLATOON_VECTOR_LOOP void easgd_loop(float* __restrict l, float* __restrict c, std::size_t n, float a) {
  for (std::size_t i = 0; i < n; ++i) {
    const float d = a * (l[i] - c[i]);
    l[i] -= d;
    c[i] += d;
  }
}

PLATOON_VECTOR_LOOP void asgd_loop(float* __restrict l, float* __restrict c, float* __restrict last, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const float center = c[i] + (l[i] - last[i]);
    c[i] = center;
    l[i] = center;
    last[i] = center;
  }
}

PLATOON_VECTOR_LOOP void weighted_loop(float* __restrict l, float* __restrict c, std::size_t n, float alpha, float beta) {
  for (std::size_t i = 0; i < n; ++i) {
    const float value = alpha * c[i] + beta * l[i];
    c[i] = value;
    l[i] = value;
  }
}

}  // namespace

EASGD::EASGD(float alpha) : alpha_(checked_alpha(alpha)), alpha_this_sync_(alpha) {}

void EASGD::set_alpha(float alpha) { alpha_.store(checked_alpha(alpha), std::memory_order_relaxed); }

std::string EASGD::describe() const { return str_cat("EASGD(alpha=", alpha(), ")"); }

void EASGD::apply(std::span<float> local, std::span<float> central, std::size_t /*offset*/) {
  PLATOON_ENFORCE(local.size() == central.size(), "EASGD piece sizes differ");
  easgd_loop(local.data(), central.data(), local.size(), alpha_this_sync_);
}

void ASGD::init_piece(std::span<const float> local, std::size_t offset) {
  PLATOON_ENFORCE(offset + local.size() <= last_.size(), "ASGD piece outside the attached vector");
  std::copy(local.begin(), local.end(), last_.begin() + static_cast<std::ptrdiff_t>(offset));
}

void ASGD::apply(std::span<float> local, std::span<float> central, std::size_t offset) {
  PLATOON_ENFORCE(local.size() == central.size(), "ASGD piece sizes differ");
  PLATOON_ENFORCE(offset + local.size() <= last_.size(), "ASGD piece outside the attached vector");
  asgd_loop(local.data(), central.data(), last_.data() + offset, local.size());
}

WeightedAverage::WeightedAverage(float alpha, float beta) : alpha_(alpha), beta_(beta) {
  if (!(std::isfinite(alpha) && std::isfinite(beta) && alpha >= 0.0f && beta >= 0.0f))
    throw Error(str_cat("WeightedAverage needs finite alpha, beta >= 0, got alpha=", alpha, " beta=", beta));
}

std::string WeightedAverage::describe() const {
  return str_cat("WeightedAverage(alpha=", alpha_, ", beta=", beta_, ")");
}

void WeightedAverage::apply(std::span<float> local, std::span<float> central, std::size_t /*offset*/) {
  PLATOON_ENFORCE(local.size() == central.size(), "WeightedAverage piece sizes differ");
  weighted_loop(local.data(), central.data(), local.size(), alpha_, beta_);
}

}  // namespace platoon
