// Sync rules: how a worker's local values and the central values are
// combined by Soldier::sync_params(). A rule is pure arithmetic over flat
// float spans; it knows nothing of shared memory or locks, so it can be
// tested on plain vectors and written by users.
#pragma once

#include <atomic>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace platoon {

/// Interface of a sync rule.
///
/// The flat parameter vector (every parameter, in layout order) is cut into
/// pieces. For each sync, the Soldier calls begin_sync() once, then apply()
/// once per piece, with that piece's lock held. apply() may run for
/// different pieces on several threads at once, so it must only touch the
/// elements (and per-element state) of its own piece.
class SyncRule {
 public:
  virtual ~SyncRule() = default;

  /// A short description for logs, e.g. "EASGD(alpha=0.5)".
  [[nodiscard]] virtual std::string describe() const = 0;

  /// Called once when the worker attaches, with the number of elements of the
  /// flat vector: rules with per-element state allocate it here.
  virtual void attach(std::size_t total_size) { (void)total_size; }

  /// Called once per piece after attach(), with the worker's local values as
  /// they are when syncing starts (ASGD remembers them as `last`).
  virtual void init_piece(std::span<const float> local, std::size_t offset) {
    (void)local;
    (void)offset;
  }

  /// Called once at the start of each sync, before any apply(): the place to
  /// read run-time settings once, so that every piece of one sync uses the
  /// same values.
  virtual void begin_sync() {}

  /// Combines one piece. `local` and `central` have the same size; `offset`
  /// is the position of the piece's first element in the flat vector.
  virtual void apply(std::span<float> local, std::span<float> central, std::size_t offset) = 0;
};

/// Elastic averaging (EASGD, asynchronous form), one fused pass:
///   d = alpha * (local - central); local -= d; central += d
/// Both writes use the same d, computed from the values before either write.
/// alpha can be changed at any time with set_alpha(); a change takes effect
/// at the next sync.
class EASGD final : public SyncRule {
 public:
  /// Throws platoon::Error unless 0 < alpha <= 1.
  explicit EASGD(float alpha);

  /// Changes alpha for the following syncs; thread-safe. Throws platoon::Error
  /// unless 0 < alpha <= 1.
  void set_alpha(float alpha);
  [[nodiscard]] float alpha() const { return alpha_.load(std::memory_order_relaxed); }

  [[nodiscard]] std::string describe() const override;
  void begin_sync() override { alpha_this_sync_ = alpha(); }
  void apply(std::span<float> local, std::span<float> central, std::size_t offset) override;

 private:
  std::atomic<float> alpha_;
  float alpha_this_sync_;
};

/// Platoon's ASGD rule: central += local - last; local = last = central.
/// `last` is the local value right after the previous sync, so the center
/// receives exactly the progress made since then.
class ASGD final : public SyncRule {
 public:
  [[nodiscard]] std::string describe() const override { return "ASGD"; }
  void attach(std::size_t total_size) override { last_.assign(total_size, 0.0f); }
  void init_piece(std::span<const float> local, std::size_t offset) override;
  void apply(std::span<float> local, std::span<float> central, std::size_t offset) override;

 private:
  std::vector<float> last_;
};

/// A weighted average held by the center, after Legion's parameter server:
///   central = alpha * central + beta * local; local = central
/// Usually beta = 1 - alpha.
class WeightedAverage final : public SyncRule {
 public:
  /// Throws platoon::Error unless alpha and beta are finite and >= 0.
  WeightedAverage(float alpha, float beta);
  [[nodiscard]] std::string describe() const override;
  void apply(std::span<float> local, std::span<float> central, std::size_t offset) override;

 private:
  float alpha_;
  float beta_;
};

}  // namespace platoon
