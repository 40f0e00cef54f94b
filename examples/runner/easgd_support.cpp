#include "easgd_support.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "program.hpp"
#include "schedule.hpp"

namespace platoon::examples {

LocalData load_local_data(const std::string& dir, std::size_t train_limit) {
  LocalData d{load_fashion_mnist(dir), {}, {}};
  const std::size_t n = d.set.train_images.count;
  if (n <= kValidationImages)
    throw Error(str_cat("the training set in ", dir, " has only ", n, " images, no more than the ",
                        kValidationImages, " set aside for validation"));
  const std::size_t train_end = n - kValidationImages;
  const std::size_t train_n = train_limit > 0 ? std::min(train_limit, train_end) : train_end;
  for (std::size_t i = 0; i < train_n; ++i) d.train.push_back(i);
  for (std::size_t i = train_end; i < n; ++i) d.valid.push_back(i);
  return d;
}

double accuracy_on(Model& model, const IdxImages& images, std::span<const std::uint8_t> labels,
                   const std::vector<std::size_t>& indices) {
  Batch batch;
  gather_batch(images, labels, indices, batch);
  return accuracy(model, batch.images.data(), batch.labels.data(), batch.size());
}

MinibatchStream::MinibatchStream(Model& model, UpdateRule& optimizer, const LocalData& data, std::size_t batch,
                                 std::uint64_t seed, float clip_norm, double lr_decay)
    : optimizer_(optimizer),
      lr_decay_(lr_decay),
      trainer_(model, optimizer, data.set.train_images, data.set.train_labels),
      indices_(data.train),
      shuffler_(data.train.size(), seed),
      batch_(batch) {
  check_batch_fits(batch_, indices_.size());
  trainer_.set_clip_norm(clip_norm);
}

void MinibatchStream::step() {
  if (position_ + batch_ > order_.size()) {
    if (!order_.empty()) optimizer_.set_learning_rate(static_cast<float>(optimizer_.learning_rate() * lr_decay_));
    const auto permutation = shuffler_.next_epoch();
    order_.clear();
    for (std::size_t i : permutation) order_.push_back(indices_[i]);
    position_ = 0;
  }
  PLATOON_ENFORCE(position_ + batch_ <= order_.size(), "a minibatch past the end of the epoch's order");
  trainer_.step(std::span<const std::size_t>(order_).subspan(position_, batch_));
  position_ += batch_;
  samples_ += static_cast<long>(batch_);
}

CenterEvaluator::CenterEvaluator(Soldier& soldier, std::unique_ptr<Model> scratch)
    : soldier_(soldier), scratch_(std::move(scratch)) {
  PLATOON_ENFORCE(scratch_ != nullptr, "CenterEvaluator needs a scratch model");
}

void CenterEvaluator::copy_center() {
  // Chunk by chunk, each under its lock: in shared memory and over TCP alike.
  try {
    soldier_.read_center(scratch_->params());
  } catch (const LayoutError& e) {
    throw LayoutError(str_cat(e.what(), ": the scratch model ", scratch_->name(), " does not fit the center"));
  }
}

double CenterEvaluator::accuracy(const IdxImages& images, std::span<const std::uint8_t> labels,
                                 const std::vector<std::size_t>& indices) {
  copy_center();
  return accuracy_on(*scratch_, images, labels, indices);
}

double CenterEvaluator::accuracy(const IdxImages& images, std::span<const std::uint8_t> labels) {
  copy_center();
  return examples::accuracy(*scratch_, images.pixels.data(), labels.data(), static_cast<int>(labels.size()));
}

int run_standalone(const WorkerFlags& flags, Model& model, UpdateRule& optimizer, const LocalData& data) {
  using Clock = std::chrono::steady_clock;
  TrainingSchedule schedule(flags.schedule);
  Logger log("standalone");
  MinibatchStream stream(model, optimizer, data, static_cast<std::size_t>(flags.batch), flags.seed,
                         static_cast<float>(flags.clip_norm), flags.lr_decay);
  const auto started = Clock::now();
  double valid_seconds = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
  while (true) {
    const Decision d = schedule.next(elapsed());
    if (d.action == Action::stop) break;
    if (d.action == Action::valid) {
      const auto v0 = Clock::now();
      const double acc = accuracy_on(model, data.set.train_images, data.set.train_labels, data.valid);
      const Validation v = schedule.validated(1.0 - acc);
      char line[160];
      std::snprintf(line, sizeof line, "validation %d: accuracy %.4f (best %.4f)%s  %.1f s  %ld minibatches",
                    v.number, acc, 1.0 - v.best, v.improved ? " *" : "  ", elapsed(), schedule.minibatches_trained());
      log.info(line);
      valid_seconds += std::chrono::duration<double>(Clock::now() - v0).count();
      continue;
    }
    for (long i = 0; i < d.minibatches; ++i) stream.step();
    schedule.trained(d.minibatches);
  }
  const double train_seconds = elapsed() - valid_seconds;
  log.info("stopping: ", schedule.stop_reason());
  const double test = accuracy(model, data.set.test_images.pixels.data(), data.set.test_labels.data(),
                               static_cast<int>(data.set.test_labels.size()));
  char line[80];
  std::snprintf(line, sizeof line, "test accuracy %.4f  %.1f s", test, elapsed());
  log.info(line);
  print_throughput(schedule.minibatches_trained(), stream.samples(), train_seconds);
  return 0;
}

}  // namespace platoon::examples
