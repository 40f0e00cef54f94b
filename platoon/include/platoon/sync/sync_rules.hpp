// Sync rules: how a worker's local values and the central values are
// combined by Soldier::sync_params(). A rule is pure arithmetic over flat
// float spans; it knows nothing of shared memory or locks, so it can be
// tested on plain vectors and written by users.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace platoon {

/// What a parameter server does to one chunk of the center when a remote
/// worker syncs (see SyncRule::center_update): the rule's center half, as
/// data, so that the server needs no per-worker state. `pushed` is what the
/// worker sent (SyncRule::remote_push); the server overwrites it with its
/// answer, under the chunk's lock:
///   elastic:  d = alpha * (pushed - center); center += d;  answer d
///   add:      center += pushed;                            answer center
///   weighted: center = alpha * center + beta * pushed;      answer center
struct CenterUpdate {
  enum class Kind : std::uint32_t { elastic = 1, add = 2, weighted = 3 };
  Kind kind = Kind::elastic;
  float alpha = 0.0f;
  float beta = 0.0f;

  /// Applies the update to one chunk: `pushed` and `center` have the same
  /// size; `pushed` becomes the answer.
  void apply(std::span<float> pushed, std::span<float> center) const;
  /// Why the update is unusable (an unknown kind, a non-finite weight,
  /// alpha outside (0, 1] for elastic), or an empty string.
  [[nodiscard]] std::string problem() const;
};

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

  // ---- Syncing over TCP (a worker on another host than the center) ----
  //
  // A remote worker cannot lock the center, so its rule is split in two: the
  // worker sends remote_push() of a piece, the parameter server applies
  // center_update() to the center under the chunk's lock, and the worker
  // folds the answer into its local values with remote_apply(). A rule
  // without a center_update() syncs through shared memory only.

  /// The center's half of this rule, read at begin_sync(); nullopt when the
  /// rule cannot sync over TCP (the default).
  [[nodiscard]] virtual std::optional<CenterUpdate> center_update() const { return std::nullopt; }
  /// What to send for one piece (`out` has the piece's size).
  virtual void remote_push(std::span<const float> local, std::size_t offset, std::span<float> out) {
    (void)offset;
    std::copy(local.begin(), local.end(), out.begin());
  }
  /// Folds the server's answer for one piece into the local values.
  virtual void remote_apply(std::span<float> local, std::span<const float> answer, std::size_t offset) {
    (void)offset;
    std::copy(answer.begin(), answer.end(), local.begin());
  }
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
  /// The server computes d = alpha * (local - center), adds it to the center
  /// and answers d; the worker subtracts the same d.
  [[nodiscard]] std::optional<CenterUpdate> center_update() const override;
  void remote_apply(std::span<float> local, std::span<const float> d, std::size_t offset) override;

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
  /// The worker sends local - last, the server adds it and answers the
  /// center, which becomes both local and last.
  [[nodiscard]] std::optional<CenterUpdate> center_update() const override;
  void remote_push(std::span<const float> local, std::size_t offset, std::span<float> out) override;
  void remote_apply(std::span<float> local, std::span<const float> center, std::size_t offset) override;

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
  [[nodiscard]] float alpha() const { return alpha_; }
  [[nodiscard]] float beta() const { return beta_; }
  [[nodiscard]] std::string describe() const override;
  void apply(std::span<float> local, std::span<float> central, std::size_t offset) override;
  /// The worker sends its values, the server averages them in and answers
  /// the center, which the worker takes.
  [[nodiscard]] std::optional<CenterUpdate> center_update() const override;

 private:
  float alpha_;
  float beta_;
};

}  // namespace platoon
