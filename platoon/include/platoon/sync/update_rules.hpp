// Update rules: how a step's gradient changes the parameters, after the
// all-reduce of synchronous training (and in any single process). Every
// worker of a group applies the same rule to the same reduced gradient, so
// every replica stays bitwise identical. Like the sync rules, a rule is pure
// arithmetic over flat float spans, and users can write their own.
//
//   platoon::Adam adam(1e-3f, {.weight_decay = 1e-4f});
//   adam.attach(model.num_params());             // sizes the state
//   state.state = adam.state();                  // handed to joining workers
//   ...
//   soldier.all_reduce(soldier.gradients());
//   adam.step(model.params(), soldier.gradients());
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace platoon {

/// Interface of an update rule.
class UpdateRule {
 public:
  virtual ~UpdateRule() = default;

  /// Sizes the per-element state for `elements` parameters, zeroed, and
  /// starts the step count again. step() calls it on first use.
  virtual void attach(std::size_t elements) = 0;

  /// One step: changes `params` by the gradient `grad` (same size). Throws
  /// Error naming both sizes when they differ, or differ from attach()'s.
  virtual void step(std::span<float> params, std::span<const float> grad) = 0;

  /// The state buffers (velocity; Adam's moments and step count), in a fixed
  /// order. A worker that joins a group receives them from rank 0
  /// (Soldier::GroupState::state), so they must be attach()ed first.
  [[nodiscard]] virtual std::vector<std::span<float>> state() = 0;

  /// A short description for logs, e.g. "adam(lr=0.001, wd=0.0001)".
  [[nodiscard]] virtual std::string describe() const = 0;

  /// The learning rate can change between any two steps.
  void set_learning_rate(float lr) { lr_ = lr; }
  [[nodiscard]] float learning_rate() const { return lr_; }

 protected:
  explicit UpdateRule(float lr) : lr_(lr) {}
  /// Throws Error unless params and grad have the same size, equal to
  /// `attached` (the state's size).
  static void check_sizes(std::span<const float> params, std::span<const float> grad, std::size_t attached);

  float lr_;
};

/// SGD with optional momentum and Nesterov, and L2 weight decay:
///   g' = g + wd * p;  v = mu * v + g';
///   p -= lr * v             (momentum), or
///   p -= lr * (g' + mu * v) (Nesterov), or
///   p -= lr * g'            (mu = 0).
class Sgd final : public UpdateRule {
 public:
  struct Settings {
    float momentum = 0.0f;
    bool nesterov = false;
    float weight_decay = 0.0f;
  };
  /// Throws Error for a negative learning rate, momentum outside [0, 1),
  /// Nesterov without momentum, or a negative weight decay.
  Sgd(float lr, Settings settings);
  /// Plain SGD.
  explicit Sgd(float lr);
  void attach(std::size_t elements) override;
  void step(std::span<float> params, std::span<const float> grad) override;
  [[nodiscard]] std::vector<std::span<float>> state() override;
  [[nodiscard]] std::string describe() const override;

 private:
  Settings settings_;
  std::vector<float> velocity_;  // empty without momentum
  std::size_t attached_ = 0;
  bool is_attached_ = false;
};

/// Adam (Kingma & Ba) with bias correction and decoupled weight decay
/// (AdamW, Loshchilov & Hutter): with k the step number from 1,
///   m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,
///   p -= lr * (m / (1-b1^k)) / (sqrt(v / (1-b2^k)) + eps) + lr * wd * p.
/// The step count is part of the state (a float, exact up to 2^24 steps).
class Adam final : public UpdateRule {
 public:
  struct Settings {
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;
  };
  /// Throws Error for a negative learning rate, betas outside [0, 1), a
  /// non-positive eps or a negative weight decay.
  Adam(float lr, Settings settings);
  /// Default betas and eps, no weight decay.
  explicit Adam(float lr);
  void attach(std::size_t elements) override;
  void step(std::span<float> params, std::span<const float> grad) override;
  [[nodiscard]] std::vector<std::span<float>> state() override;
  [[nodiscard]] std::string describe() const override;
  /// Steps taken since attach().
  [[nodiscard]] long steps() const { return static_cast<long>(step_count_[0]); }

 private:
  Settings settings_;
  std::vector<float> m_, v_;
  std::vector<float> step_count_ = {0.0f};
  bool is_attached_ = false;
};

/// Builds a rule by name: "sgd", "momentum", "nesterov" (momentum 0.9),
/// "adam" or "adamw" (weight decay 0.01), with `weight_decay` overriding the
/// default when non-negative. Throws Error naming the accepted names.
std::unique_ptr<UpdateRule> make_update_rule(std::string_view kind, float lr, float weight_decay = -1.0f);

/// Scales `grad` in place so its L2 norm is at most `max_norm` (no-op when
/// max_norm <= 0). Returns the norm before scaling.
float clip_grad_norm(std::span<float> grad, float max_norm);

}  // namespace platoon
