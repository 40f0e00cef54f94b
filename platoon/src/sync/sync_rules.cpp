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

PLATOON_VECTOR_LOOP void elastic_center_loop(float* __restrict p, float* __restrict c, std::size_t n, float a) {
  for (std::size_t i = 0; i < n; ++i) {
    const float d = a * (p[i] - c[i]);
    c[i] += d;
    p[i] = d;
  }
}

PLATOON_VECTOR_LOOP void add_center_loop(float* __restrict p, float* __restrict c, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const float value = c[i] + p[i];
    c[i] = value;
    p[i] = value;
  }
}

PLATOON_VECTOR_LOOP void weighted_center_loop(float* __restrict p, float* __restrict c, std::size_t n, float alpha,
                                              float beta) {
  for (std::size_t i = 0; i < n; ++i) {
    const float value = alpha * c[i] + beta * p[i];
    c[i] = value;
    p[i] = value;
  }
}

}  // namespace

void CenterUpdate::apply(std::span<float> pushed, std::span<float> center) const {
  PLATOON_ENFORCE(pushed.size() == center.size(), "CenterUpdate piece sizes differ");
  switch (kind) {
    case Kind::elastic: return elastic_center_loop(pushed.data(), center.data(), pushed.size(), alpha);
    case Kind::add: return add_center_loop(pushed.data(), center.data(), pushed.size());
    case Kind::weighted: return weighted_center_loop(pushed.data(), center.data(), pushed.size(), alpha, beta);
  }
  PLATOON_ENFORCE(false, "CenterUpdate of an unknown kind");
}

std::string CenterUpdate::problem() const {
  if (kind != Kind::elastic && kind != Kind::add && kind != Kind::weighted)
    return str_cat("unknown center update kind ", static_cast<std::uint32_t>(kind));
  if (!std::isfinite(alpha) || !std::isfinite(beta)) return "non-finite alpha or beta";
  if (kind == Kind::elastic && !(alpha > 0.0f && alpha <= 1.0f)) return str_cat("EASGD alpha ", alpha, " is outside (0, 1]");
  if (kind == Kind::weighted && (alpha < 0.0f || beta < 0.0f)) return "WeightedAverage needs alpha, beta >= 0";
  return {};
}

EASGD::EASGD(float alpha) : alpha_(checked_alpha(alpha)), alpha_this_sync_(alpha) {}

void EASGD::set_alpha(float alpha) { alpha_.store(checked_alpha(alpha), std::memory_order_relaxed); }

std::string EASGD::describe() const { return str_cat("EASGD(alpha=", alpha(), ")"); }

void EASGD::apply(std::span<float> local, std::span<float> central, std::size_t /*offset*/) {
  PLATOON_ENFORCE(local.size() == central.size(), "EASGD piece sizes differ");
  easgd_loop(local.data(), central.data(), local.size(), alpha_this_sync_);
}

std::optional<CenterUpdate> EASGD::center_update() const {
  return CenterUpdate{CenterUpdate::Kind::elastic, alpha_this_sync_, 0.0f};
}

void EASGD::remote_apply(std::span<float> local, std::span<const float> d, std::size_t /*offset*/) {
  PLATOON_ENFORCE(local.size() == d.size(), "EASGD piece sizes differ");
  for (std::size_t i = 0; i < local.size(); ++i) local[i] -= d[i];
}

std::optional<CenterUpdate> ASGD::center_update() const { return CenterUpdate{CenterUpdate::Kind::add, 0.0f, 0.0f}; }

void ASGD::remote_push(std::span<const float> local, std::size_t offset, std::span<float> out) {
  PLATOON_ENFORCE(offset + local.size() <= last_.size() && out.size() == local.size(), "ASGD piece outside the attached vector");
  for (std::size_t i = 0; i < local.size(); ++i) out[i] = local[i] - last_[offset + i];
}

void ASGD::remote_apply(std::span<float> local, std::span<const float> center, std::size_t offset) {
  PLATOON_ENFORCE(offset + local.size() <= last_.size() && center.size() == local.size(), "ASGD piece outside the attached vector");
  std::copy(center.begin(), center.end(), local.begin());
  std::copy(center.begin(), center.end(), last_.begin() + static_cast<std::ptrdiff_t>(offset));
}

std::optional<CenterUpdate> WeightedAverage::center_update() const {
  return CenterUpdate{CenterUpdate::Kind::weighted, alpha_, beta_};
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
