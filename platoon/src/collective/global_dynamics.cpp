#include "platoon/collective/global_dynamics.hpp"

#include <algorithm>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

namespace {

void require_same_size(const char* what, std::size_t a, std::size_t b) {
  if (a != b) throw Error(str_cat(what, ": ", a, " parameters but a buffer of ", b));
}

}  // namespace

BatchSlice batch_slice(std::size_t total, int rank, int size) {
  if (size < 1) throw Error(str_cat("batch_slice: group size ", size, " must be at least 1"));
  if (rank < 0 || rank >= size)
    throw Error(str_cat("batch_slice: rank ", rank, " is outside the group (ranks 0..", size - 1, ")"));
  const auto n = static_cast<std::size_t>(size);
  const auto r = static_cast<std::size_t>(rank);
  const std::size_t base = total / n, extra = total % n;
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

void average_parameters(Collective& group, std::span<float> params) { group.all_reduce(params, ReduceOp::mean); }

void average_updates(Collective& group, std::span<float> params, std::span<float> last, std::span<float> scratch) {
  require_same_size("average_updates", params.size(), last.size());
  if (scratch.size() < params.size()) require_same_size("average_updates", params.size(), scratch.size());
  const std::span<float> update = scratch.first(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) update[i] = params[i] - last[i];
  group.all_reduce(update, ReduceOp::mean);
  for (std::size_t i = 0; i < params.size(); ++i) {
    last[i] += update[i];
    params[i] = last[i];
  }
}

SyncEasgd::SyncEasgd(float alpha) : alpha_(alpha) {
  if (!(alpha > 0.0f && alpha <= 1.0f)) throw Error(str_cat("synchronous EASGD: alpha ", alpha, " is outside (0, 1]"));
}

void SyncEasgd::init(std::span<const float> params) { center_.assign(params.begin(), params.end()); }

void SyncEasgd::step(Collective& group, std::span<float> params, std::span<float> scratch) {
  if (center_.size() != params.size())
    throw Error(str_cat("synchronous EASGD: the center holds ", center_.size(), " values, the parameters ",
                        params.size(), " (init() first)"));
  if (scratch.size() < params.size()) require_same_size("synchronous EASGD", params.size(), scratch.size());
  const std::span<float> d = scratch.first(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    d[i] = alpha_ * (params[i] - center_[i]);
    params[i] -= d[i];
  }
  group.all_reduce(d, ReduceOp::sum);
  for (std::size_t i = 0; i < params.size(); ++i) center_[i] += d[i];
}

std::string SyncEasgd::describe() const { return str_cat("sync-EASGD(alpha=", alpha_, ")"); }

}  // namespace platoon
