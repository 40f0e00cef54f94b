#include "sync_data.hpp"

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>

#include "common/idx.hpp"
#include "flags.hpp"
#include "platoon/channel/control_client.hpp"
#include "platoon/collective/global_dynamics.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon::examples {

namespace {

constexpr const char* kFiles[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                   "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

SharedImages view(const SharedDataset& d, const char* images, const char* labels) {
  SharedImages s;
  s.pixels = d.array<float>(images);
  s.labels = d.array<std::uint8_t>(labels);
  s.count = s.labels.size();
  if (s.pixels.size() != s.count * static_cast<std::size_t>(kImagePixels))
    throw LayoutError(str_cat("shared data set ", d.name(), ": ", images, " does not hold 28x28 images"));
  return s;
}

}  // namespace

std::vector<std::size_t> all_indices(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), std::size_t{0});
  return v;
}


SharedFashionMnist map_shared_fashion_mnist(const Soldier& soldier, const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> paths;
  for (const char* f : kFiles) paths.push_back(dir / f);
  const nlohmann::json source = describe_files(paths);
  // Only a process that creates the copy reads the files; its shapes become
  // the copy's arrays, and the others map them.
  std::shared_ptr<FashionMnist> loaded;
  auto load = [&] {
    loaded = std::make_shared<FashionMnist>(load_fashion_mnist(dir));
    const FashionMnist& f = *loaded;
    std::vector<DatasetArray> arrays{{"train_images", "float32", {f.train_images.count, f.train_images.image_size()}},
                                     {"train_labels", "uint8", {f.train_labels.size()}},
                                     {"test_images", "float32", {f.test_images.count, f.test_images.image_size()}},
                                     {"test_labels", "uint8", {f.test_labels.size()}}};
    auto fill = [loaded](SharedDataset::Writer& w) {
      std::copy(loaded->train_images.pixels.begin(), loaded->train_images.pixels.end(),
                w.array<float>("train_images").begin());
      std::copy(loaded->train_labels.begin(), loaded->train_labels.end(),
                w.array<std::uint8_t>("train_labels").begin());
      std::copy(loaded->test_images.pixels.begin(), loaded->test_images.pixels.end(),
                w.array<float>("test_images").begin());
      std::copy(loaded->test_labels.begin(), loaded->test_labels.end(), w.array<std::uint8_t>("test_labels").begin());
    };
    return SharedDataset::Loaded{std::move(arrays), fill};
  };
  SharedDataset d = SharedDataset::open_or_create(soldier.job_id(), "fashion-mnist", source, load,
                                                  soldier.controller(), std::chrono::minutes(2));
  loaded.reset();  // the private copy is no longer needed
  for (const DatasetArray& a : d.arrays())
    if ((a.name == "train_images" || a.name == "test_images") &&
        (a.shape.size() != 2 || a.shape[1] != static_cast<std::size_t>(kImagePixels)))
      throw FileError(str_cat("the images in ", dir.string(), " are not 28x28 (", a.name, " ",
                              shape_to_string(a.shape), "); the example models need 28x28"));
  SharedFashionMnist out{std::move(d), {}, {}};
  out.train = view(out.data, "train_images", "train_labels");
  out.test = view(out.data, "test_images", "test_labels");
  return out;
}

TrainValidSplit split_train_valid(std::size_t count, std::size_t validation_size, std::size_t train_limit) {
  if (count <= validation_size)
    throw Error(str_cat("the training set has ", count, " images, not more than the ", validation_size,
                        " kept for validation"));
  TrainValidSplit s;
  const std::size_t train_end = count - validation_size;
  const std::size_t n = train_limit > 0 ? std::min(train_limit, train_end) : train_end;
  s.train.resize(n);
  std::iota(s.train.begin(), s.train.end(), std::size_t{0});
  s.valid.resize(validation_size);
  std::iota(s.valid.begin(), s.valid.end(), train_end);
  return s;
}

GlobalBatches::GlobalBatches(std::vector<std::size_t> samples, std::size_t batch, std::uint64_t seed)
    : samples_(std::move(samples)), batch_(batch), seed_(seed) {
  check_batch_fits(batch_, samples_.size());
}

long GlobalBatches::pass_of(long step) const {
  const std::size_t per_pass = samples_.size() / batch_;
  return static_cast<long>(static_cast<std::size_t>(step) / per_pass);
}

std::span<const std::size_t> GlobalBatches::slice(long step, int rank, int size) {
  // Each pass uses whole batches only; its order depends on the seed and the
  // pass alone, so a worker that joins mid-job computes the same one.
  PLATOON_ENFORCE(step >= 0 && rank >= 0 && rank < size, "a global step or rank out of range");
  const std::size_t per_pass = samples_.size() / batch_;
  const long pass = pass_of(step);
  if (pass != pass_) {
    order_ = samples_;
    std::mt19937_64 rng(seed_ * 1'000'003u + static_cast<std::uint64_t>(pass));
    std::shuffle(order_.begin(), order_.end(), rng);
    pass_ = pass;
  }
  const std::size_t first = (static_cast<std::size_t>(step) % per_pass) * batch_;
  const BatchSlice part = batch_slice(batch_, rank, size);
  // The whole batches of a pass end within the order, and a rank's part
  // within its batch: no slice reaches past the samples.
  PLATOON_ENFORCE(first + part.begin + part.count <= order_.size(), "a batch slice past the end of the samples");
  return std::span<const std::size_t>(order_).subspan(first + part.begin, part.count);
}

void gather_rows(const SharedImages& set, std::span<const std::size_t> indices, Batch& batch) {
  const auto pixels = static_cast<std::size_t>(kImagePixels);
  batch.images.resize(indices.size() * pixels);
  batch.labels.resize(indices.size());
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::size_t i = indices[k];
    if (i >= set.count) throw std::out_of_range(str_cat("gather_rows: sample ", i, " of ", set.count));
    std::copy_n(set.pixels.data() + i * pixels, pixels, batch.images.begin() + static_cast<std::ptrdiff_t>(k * pixels));
    batch.labels[k] = set.labels[i];
  }
}

double sliced_accuracy(Collective& group, Model& model, const SharedImages& set,
                       std::span<const std::size_t> indices) {
  const GroupPosition where = group.position();
  const BatchSlice mine = batch_slice(indices.size(), where.rank, where.size);
  Batch batch;
  gather_rows(set, indices.subspan(mine.begin, mine.count), batch);
  double correct = 0;
  if (batch.size() > 0) correct = std::round(accuracy(model, batch.images.data(), batch.labels.data(), batch.size()) *
                                             batch.size());
  const double counts[2] = {correct, static_cast<double>(batch.size())};
  const std::vector<double> all = group.all_gather(counts);
  double total_correct = 0, total = 0;
  for (std::size_t k = 0; k + 1 < all.size(); k += 2) {
    total_correct += all[k];
    total += all[k + 1];
  }
  return total > 0 ? total_correct / total : 0.0;
}

}  // namespace platoon::examples
