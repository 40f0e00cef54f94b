// Update rules over flat parameter spans: SGD, momentum SGD (optionally
// Nesterov) and Adam. The learning rate can be changed between any two steps.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace platoon::examples {

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  /// Applies one update to `params` from the gradient `grad` (same size).
  /// Per-element state is sized on the first step; a later step of another
  /// size throws std::invalid_argument.
  virtual void step(std::span<float> params, std::span<const float> grad) = 0;

  /// Forgets the per-element state (velocities, moments, step count), e.g.
  /// after the parameters were replaced from elsewhere.
  virtual void reset() = 0;

  /// Short description for logs, e.g. "adam(lr=0.001)".
  [[nodiscard]] virtual std::string describe() const = 0;

  void set_learning_rate(float lr) { lr_ = lr; }
  [[nodiscard]] float learning_rate() const { return lr_; }

 protected:
  explicit Optimizer(float lr) : lr_(lr) {}
  /// Throws std::invalid_argument unless params, grad and (when sized) the
  /// optimizer's state all have the same size.
  static void check_sizes(std::span<const float> params, std::span<const float> grad,
                          std::size_t state_size);

  float lr_;
};

/// Plain SGD: p -= lr * g.
class Sgd final : public Optimizer {
 public:
  explicit Sgd(float lr) : Optimizer(lr) {}
  void step(std::span<float> params, std::span<const float> grad) override;
  void reset() override {}
  [[nodiscard]] std::string describe() const override;
};

/// Momentum SGD with velocity v = mu * v + g; then p -= lr * v, or with
/// Nesterov p -= lr * (g + mu * v). v starts at 0.
class Momentum final : public Optimizer {
 public:
  Momentum(float lr, float momentum = 0.9f, bool nesterov = false)
      : Optimizer(lr), momentum_(momentum), nesterov_(nesterov) {}
  void step(std::span<float> params, std::span<const float> grad) override;
  void reset() override { velocity_.clear(); }
  [[nodiscard]] std::string describe() const override;

 private:
  float momentum_;
  bool nesterov_;
  std::vector<float> velocity_;
};

/// Adam (Kingma & Ba) with bias correction:
/// m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, k = step number from 1,
/// p -= lr * (m / (1-b1^k)) / (sqrt(v / (1-b2^k)) + eps).
class Adam final : public Optimizer {
 public:
  explicit Adam(float lr, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
      : Optimizer(lr), beta1_(beta1), beta2_(beta2), eps_(eps) {}
  void step(std::span<float> params, std::span<const float> grad) override;
  void reset() override;
  [[nodiscard]] std::string describe() const override;

 private:
  float beta1_, beta2_, eps_;
  long steps_ = 0;
  std::vector<float> m_, v_;
};

/// Builds an optimizer by name: "sgd", "momentum", "nesterov" (momentum 0.9)
/// or "adam" (default betas). Throws std::invalid_argument for other names.
std::unique_ptr<Optimizer> make_optimizer(std::string_view kind, float lr);

/// Scales `grad` in place so its L2 norm is at most max_norm (no-op when
/// max_norm <= 0). Returns the norm before scaling.
float clip_grad_norm(std::span<float> grad, float max_norm);

}  // namespace platoon::examples
