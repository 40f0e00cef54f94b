// Small helpers for a training loop: shuffled sample order, minibatch
// gathering, and a trainer that runs optimizer steps on a data set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "common/idx.hpp"
#include "common/model.hpp"
#include "platoon/sync/update_rules.hpp"

namespace platoon::examples {

/// A fresh random permutation of 0..n-1 per call, reproducible from the seed.
class IndexShuffler {
 public:
  IndexShuffler(std::size_t n, std::uint64_t seed);
  /// Reshuffles and returns the new order (valid until the next call).
  std::span<const std::size_t> next_epoch();
  [[nodiscard]] std::size_t size() const { return order_.size(); }

 private:
  std::vector<std::size_t> order_;
  std::mt19937_64 rng_;
};

/// A minibatch copied into contiguous buffers: size() images of 784 floats,
/// row-major, and their labels.
struct Batch {
  std::vector<float> images;
  std::vector<std::uint8_t> labels;
  [[nodiscard]] int size() const { return static_cast<int>(labels.size()); }
};

/// Copies the samples `indices` of (images, labels) into `batch`, reusing its
/// storage. Throws std::out_of_range for an index past the data, and
/// std::invalid_argument when the images are not 28x28 or the counts differ.
void gather_batch(const IdxImages& images, std::span<const std::uint8_t> labels,
                  std::span<const std::size_t> indices, Batch& batch);

/// Runs optimizer steps of `model` on a data set, keeping the batch and
/// gradient buffers between steps. Holds references: the model, optimizer
/// and data must outlive it.
class Trainer {
 public:
  Trainer(Model& model, UpdateRule& optimizer, const IdxImages& images,
          std::span<const std::uint8_t> labels);

  /// When > 0, gradients are rescaled to at most this L2 norm before each step.
  void set_clip_norm(float max_norm) { clip_norm_ = max_norm; }

  /// One optimizer step on the samples `indices`; returns their mean loss
  /// before the step.
  float step(std::span<const std::size_t> indices);

  /// Steps over `order` in minibatches of batch_size (the last one may be
  /// smaller); returns the mean of the minibatch losses.
  float epoch(std::span<const std::size_t> order, int batch_size);

 private:
  Model& model_;
  UpdateRule& optimizer_;
  const IdxImages& images_;
  std::span<const std::uint8_t> labels_;
  float clip_norm_ = 0.0f;
  Batch batch_;
  std::vector<float> grad_;
};

}  // namespace platoon::examples
