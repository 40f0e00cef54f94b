// What the synchronous examples share (helpers, not the loop): Fashion-MNIST
// in the job's shared memory, the global minibatches that every rank cuts the
// same way, and validation sliced over the ranks and combined exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "common/model.hpp"
#include "common/train.hpp"
#include "flags.hpp"
#include "platoon/collective/collective.hpp"
#include "platoon/shm/shared_dataset.hpp"
#include "platoon/soldier.hpp"

namespace platoon::examples {

/// 0, 1, ..., n-1.
std::vector<std::size_t> all_indices(std::size_t n);


/// Images and labels that live in shared memory (read-only).
struct SharedImages {
  std::span<const float> pixels;  ///< count x 784
  std::span<const std::uint8_t> labels;
  std::size_t count = 0;
};

/// Fashion-MNIST mapped from the job's one copy on this host.
struct SharedFashionMnist {
  SharedDataset data;  ///< owns the mapping
  SharedImages train;
  SharedImages test;
};

/// Maps the job's shared copy of the Fashion-MNIST files in `dir`; the first
/// worker of the host loads it (checking every file, as load_fashion_mnist
/// does). Throws FileError naming a missing or broken file, LayoutError when
/// the shared copy came from other files, ResourceError when /dev/shm is too
/// small (with the bytes needed and free).
SharedFashionMnist map_shared_fashion_mnist(const Soldier& soldier, const std::filesystem::path& dir);

/// The training samples and the validation samples (the last
/// `validation_size` training images), as indices.
struct TrainValidSplit {
  std::vector<std::size_t> train;
  std::vector<std::size_t> valid;
};
/// Throws Error when the set has no more images than `validation_size`.
/// `train_limit` > 0 keeps only that many training samples.
TrainValidSplit split_train_valid(std::size_t count, std::size_t validation_size, std::size_t train_limit);

/// The global minibatches of a synchronous job: global step s takes `batch`
/// samples from a shuffled order of `samples` (reshuffled, from `seed`, at
/// every pass), so every rank computes the same list without it crossing the
/// socket, and results do not depend on the number of workers.
class GlobalBatches {
 public:
  /// Throws UsageError naming --batch when batch is 0 or larger than the
  /// number of samples.
  GlobalBatches(std::vector<std::size_t> samples, std::size_t batch, std::uint64_t seed);
  /// The part of global step `step`'s minibatch that `rank` of `size` takes
  /// (platoon::batch_slice). Valid until the next call.
  std::span<const std::size_t> slice(long step, int rank, int size);
  /// Passes over the data completed before global step `step`.
  [[nodiscard]] long pass_of(long step) const;
  [[nodiscard]] std::size_t batch() const { return batch_; }

 private:
  std::vector<std::size_t> samples_;
  std::size_t batch_;
  std::uint64_t seed_;
  long pass_ = -1;  // the pass `order_` is for
  std::vector<std::size_t> order_;
  std::vector<std::size_t> part_;
};

/// Copies the samples `indices` of `set` into `batch`. Throws
/// std::out_of_range for an index past the set.
void gather_rows(const SharedImages& set, std::span<const std::size_t> indices, Batch& batch);

/// Accuracy of `model` on the samples `indices` of `set`, computed over the
/// group: each rank classifies its slice, and the counts are summed exactly
/// (total correct over total samples). Every rank gets the same value.
/// Throws PeerLostError as a collective does.
double sliced_accuracy(Collective& group, Model& model, const SharedImages& set,
                       std::span<const std::size_t> indices);

}  // namespace platoon::examples
