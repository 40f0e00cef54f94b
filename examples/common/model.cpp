#include "common/model.hpp"

#include <algorithm>
#include <stdexcept>

namespace platoon::examples {

std::vector<platoon::ParamView> Model::param_views() {
  std::vector<platoon::ParamView> views;
  views.reserve(tensors_.size());
  for (const Tensor& t : tensors_) {
    views.push_back(platoon::ParamView{t.name, params_.data() + t.offset, t.shape});
  }
  return views;
}

std::size_t Model::add_tensor(std::string name, std::vector<std::size_t> shape) {
  std::size_t size = 1;
  for (std::size_t d : shape) size *= d;
  const std::size_t offset = declared_size_;
  tensors_.push_back(Tensor{std::move(name), std::move(shape), offset});
  declared_size_ += size;
  return offset;
}

void Model::check_loss_args(int n, std::span<const float> grad) const {
  if (n < 1) throw std::invalid_argument(name() + ": batch of " + std::to_string(n) + " samples");
  if (grad.size() != params_.size()) {
    throw std::invalid_argument(name() + ": gradient has " + std::to_string(grad.size()) +
                                " elements, the model " + std::to_string(params_.size()));
  }
}

double accuracy(Model& model, const float* images, const std::uint8_t* labels, int n, int batch) {
  if (n <= 0) return 0.0;
  batch = std::max(batch, 1);
  std::vector<std::uint8_t> predicted(static_cast<std::size_t>(std::min(n, batch)));
  long correct = 0;
  for (int start = 0; start < n; start += batch) {
    const int count = std::min(batch, n - start);
    model.predict(images + static_cast<std::size_t>(start) * kImagePixels, count, predicted.data());
    for (int i = 0; i < count; ++i) correct += predicted[static_cast<std::size_t>(i)] == labels[start + i];
  }
  return static_cast<double>(correct) / n;
}

}  // namespace platoon::examples
