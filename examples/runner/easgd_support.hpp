// What the EASGD example workers share (their loop is in each worker's own
// file, e.g. examples/mlp/mlp_worker.cpp): each worker's own copy of
// Fashion-MNIST, the stream of minibatches it trains on, validation of the
// center on a scratch copy, and --standalone, the same training without
// platoon, the reference for what platoon costs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/idx.hpp"
#include "common/model.hpp"
#include "common/train.hpp"
#include "flags.hpp"
#include "platoon/soldier.hpp"
#include "platoon/sync/update_rules.hpp"

namespace platoon::examples {

/// Images set aside for validation: the last ones of the training set.
constexpr std::size_t kValidationImages = 5000;

/// The data one EASGD worker trains and validates on, in its own memory.
struct LocalData {
  FashionMnist set;
  std::vector<std::size_t> train;  ///< indices into set.train_images
  std::vector<std::size_t> valid;  ///< the last kValidationImages training images
};

/// Loads Fashion-MNIST from `dir` and splits its training images: the last
/// kValidationImages validate, the first `train_limit` of the others train
/// (0: all of them). Throws Error naming `dir` when it has no more images
/// than the validation part, and what load_fashion_mnist() throws.
LocalData load_local_data(const std::string& dir, std::size_t train_limit);

/// The fraction of `indices` (into `images`) that `model` classifies right.
double accuracy_on(Model& model, const IdxImages& images, std::span<const std::uint8_t> labels,
                   const std::vector<std::size_t>& indices);

/// Trains `model` one minibatch at a time, in an order reshuffled at each
/// pass over the data; each pass uses whole minibatches only, so a
/// minibatch never reaches past the samples. After the first pass, each new
/// one multiplies the learning rate by `lr_decay`.
class MinibatchStream {
 public:
  /// Throws UsageError naming --batch when `batch` exceeds the training samples.
  MinibatchStream(Model& model, UpdateRule& optimizer, const LocalData& data, std::size_t batch,
                  std::uint64_t seed, float clip_norm, double lr_decay);

  /// Trains the next minibatch.
  void step();
  /// Samples trained so far.
  [[nodiscard]] long samples() const { return samples_; }

 private:
  UpdateRule& optimizer_;
  double lr_decay_;
  Trainer trainer_;
  const std::vector<std::size_t>& indices_;
  IndexShuffler shuffler_;
  std::vector<std::size_t> order_;
  std::size_t position_ = 0;
  std::size_t batch_;
  long samples_ = 0;
};

/// Evaluates the job's center through a scratch model: the center is copied
/// into it under the center's locks, so that validating never touches the
/// worker's own parameters, and its progress is kept.
class CenterEvaluator {
 public:
  /// `soldier` must have called init_shared_params(); `scratch` must have
  /// the layout of the model the center was made from.
  CenterEvaluator(Soldier& soldier, std::unique_ptr<Model> scratch);

  /// The center's accuracy on `indices` of `images`.
  double accuracy(const IdxImages& images, std::span<const std::uint8_t> labels,
                  const std::vector<std::size_t>& indices);
  /// The center's accuracy on every image of `images`.
  double accuracy(const IdxImages& images, std::span<const std::uint8_t> labels);

 private:
  void copy_center();
  Soldier& soldier_;
  std::unique_ptr<Model> scratch_;
};

/// --standalone: trains `model` alone with the schedule of `flags`, taking
/// the decisions a controller would, then prints the test accuracy and the
/// throughput as a worker does. Returns the exit code (0).
int run_standalone(const WorkerFlags& flags, Model& model, UpdateRule& optimizer, const LocalData& data);

}  // namespace platoon::examples
