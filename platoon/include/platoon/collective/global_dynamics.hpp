// Platoon's global dynamics over a collective group, and how a global
// minibatch is cut among its ranks.
//
// Synchronous data parallelism averages gradients (Soldier::all_reduce and
// an UpdateRule). These are the other two ways a synchronous group keeps its
// replicas together:
//   - average SGD: every worker trains on its own, and the group averages
//     the parameters (or the updates since the last average) every k steps;
//   - synchronous EASGD: every worker holds the same replica of the center c;
//     with d_i = alpha (x_i - c), every worker does x_i -= d_i, and every
//     replica does c += sum_i d_i (one all-reduce of d).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "platoon/collective/collective.hpp"

namespace platoon {

/// The part of a global minibatch of `total` samples that `rank` of `size`
/// takes: samples [begin, begin + count). The first `total % size` ranks take
/// one sample more, so the parts differ by at most one and cover every
/// sample once, whatever `total`.
struct BatchSlice {
  std::size_t begin = 0;
  std::size_t count = 0;
};
/// Throws Error when size < 1 or rank is outside 0..size-1.
BatchSlice batch_slice(std::size_t total, int rank, int size);

/// Replaces `params` with their mean over the group (average SGD).
void average_parameters(Collective& group, std::span<float> params);

/// Average SGD on updates: each rank's change since `last` is averaged and
/// applied to `last`, which then equals `params` on every rank. `scratch`
/// (same size; the Soldier's gradients() buffer avoids a copy) holds the
/// update during the all-reduce.
void average_updates(Collective& group, std::span<float> params, std::span<float> last, std::span<float> scratch);

/// Synchronous EASGD: every rank keeps an identical replica of the center.
class SyncEasgd {
 public:
  /// Throws Error unless 0 < alpha <= 1.
  explicit SyncEasgd(float alpha);

  /// Starts the center from `params` (the same on every rank: call it after
  /// Soldier::init_group has copied rank 0's parameters).
  void init(std::span<const float> params);

  /// One elastic step: d = alpha (x - c); x -= d; c += sum over ranks of d.
  /// `scratch` (same size as x) carries d through the all-reduce.
  void step(Collective& group, std::span<float> params, std::span<float> scratch);

  /// This rank's replica of the center (the same bits on every rank).
  [[nodiscard]] std::span<float> center() { return center_; }
  [[nodiscard]] float alpha() const { return alpha_; }
  [[nodiscard]] std::string describe() const;

 private:
  float alpha_;
  std::vector<float> center_;
};

}  // namespace platoon
