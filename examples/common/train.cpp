#include "common/train.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace platoon::examples {

IndexShuffler::IndexShuffler(std::size_t n, std::uint64_t seed) : order_(n), rng_(seed) {
  std::iota(order_.begin(), order_.end(), std::size_t{0});
}

std::span<const std::size_t> IndexShuffler::next_epoch() {
  std::shuffle(order_.begin(), order_.end(), rng_);
  return order_;
}

void gather_batch(const IdxImages& images, std::span<const std::uint8_t> labels,
                  std::span<const std::size_t> indices, Batch& batch) {
  if (images.image_size() != static_cast<std::size_t>(kImagePixels)) {
    throw std::invalid_argument("gather_batch: images are " + std::to_string(images.rows) + "x" +
                                std::to_string(images.cols) + ", the models need 28x28");
  }
  if (images.count != labels.size()) {
    throw std::invalid_argument("gather_batch: " + std::to_string(images.count) + " images but " +
                                std::to_string(labels.size()) + " labels");
  }
  const std::size_t pixels = images.image_size();
  batch.images.resize(indices.size() * pixels);
  batch.labels.resize(indices.size());
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::size_t i = indices[k];
    if (i >= images.count) {
      throw std::out_of_range("gather_batch: sample " + std::to_string(i) + " of " +
                              std::to_string(images.count));
    }
    std::copy_n(images.image(i), pixels, batch.images.begin() + static_cast<std::ptrdiff_t>(k * pixels));
    batch.labels[k] = labels[i];
  }
}

Trainer::Trainer(Model& model, UpdateRule& optimizer, const IdxImages& images,
                 std::span<const std::uint8_t> labels)
    : model_(model), optimizer_(optimizer), images_(images), labels_(labels),
      grad_(model.num_params()) {}

float Trainer::step(std::span<const std::size_t> indices) {
  gather_batch(images_, labels_, indices, batch_);
  const float loss =
      model_.loss_and_grad(batch_.images.data(), batch_.labels.data(), batch_.size(), grad_);
  if (clip_norm_ > 0.0f) clip_grad_norm(grad_, clip_norm_);
  optimizer_.step(model_.params(), grad_);
  return loss;
}

float Trainer::epoch(std::span<const std::size_t> order, int batch_size) {
  if (batch_size < 1) throw std::invalid_argument("Trainer::epoch: batch size must be >= 1");
  double total = 0.0;
  long batches = 0;
  const auto b = static_cast<std::size_t>(batch_size);
  for (std::size_t start = 0; start < order.size(); start += b) {
    total += step(order.subspan(start, std::min(b, order.size() - start)));
    ++batches;
  }
  return batches > 0 ? static_cast<float>(total / static_cast<double>(batches)) : 0.0f;
}

}  // namespace platoon::examples
