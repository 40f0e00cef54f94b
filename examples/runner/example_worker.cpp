#include "example_worker.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "common/idx.hpp"
#include "common/train.hpp"
#include "flags.hpp"
#include "platoon/common/error.hpp"
#include "platoon/channel/control_client.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/soldier.hpp"

namespace platoon::examples {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kValidationSize = 5000;  // the last 5000 training images

// The data a worker trains and evaluates on.
struct Data {
  FashionMnist set;
  std::vector<std::size_t> train;  // indices into the training images
  std::vector<std::size_t> valid;
};

Data load_data(const std::string& dir, std::size_t train_limit) {
  Data d{load_fashion_mnist(dir), {}, {}};
  const std::size_t n = d.set.train_images.count;
  if (n <= kValidationSize) throw Error(str_cat("the training set in ", dir, " has only ", n, " images"));
  const std::size_t train_end = n - kValidationSize;
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

// Trains minibatches in order, reshuffling at each epoch. Each epoch uses
// whole minibatches only, so a minibatch never reaches past the samples.
class MinibatchStream {
 public:
  /// Throws UsageError naming --batch when `batch` exceeds the training samples.
  MinibatchStream(Model& model, UpdateRule& optimizer, const Data& data, std::size_t batch, std::uint64_t seed,
                  float clip_norm, double lr_decay)
      : optimizer_(optimizer),
        lr_decay_(lr_decay),
        trainer_(model, optimizer, data.set.train_images, data.set.train_labels),
        indices_(data.train),
        shuffler_(data.train.size(), seed),
        batch_(batch) {
    check_batch_fits(batch_, indices_.size());
    trainer_.set_clip_norm(clip_norm);
  }

  void step() {
    if (position_ + batch_ > order_.size()) {
      // Each new pass over the data after the first decays the learning rate.
      if (!order_.empty()) optimizer_.set_learning_rate(static_cast<float>(optimizer_.learning_rate() * lr_decay_));
      const auto permutation = shuffler_.next_epoch();
      order_.clear();
      for (std::size_t i : permutation) order_.push_back(indices_[i]);
      position_ = 0;
    }
    PLATOON_ENFORCE(position_ + batch_ <= order_.size(), "a minibatch past the end of the epoch's order");
    trainer_.step(std::span<const std::size_t>(order_).subspan(position_, batch_));
    position_ += batch_;
    samples_ += batch_;
  }
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

void print_throughput(long samples, double train_seconds, long minibatches) {
  std::printf("trained %ld minibatches (%ld samples) in %.2f s\n", minibatches, samples, train_seconds);
  std::printf("throughput %.1f\n", train_seconds > 0 ? samples / train_seconds : 0.0);
  std::fflush(stdout);
}

int run_standalone(const WorkerFlags& flags, Model& model, UpdateRule& optimizer, const Data& data) {
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
  print_throughput(stream.samples(), train_seconds, schedule.minibatches_trained());
  return 0;
}

int run_with_controller(const WorkerFlags& flags, Model& model, UpdateRule& optimizer, const Data& data,
                        const ModelFactory& make_model) {
  Soldier::Options options;
  options.endpoint = flags.endpoint;
  options.sync_threads = flags.sync_threads;
  Soldier soldier(options);
  soldier.init_shared_params(model.param_views(), std::make_unique<EASGD>(static_cast<float>(flags.alpha)));
  // Every worker shuffles its own way.
  const std::uint64_t seed = flags.seed * 1000 + static_cast<std::uint64_t>(soldier.worker_id());
  MinibatchStream stream(model, optimizer, data, static_cast<std::size_t>(flags.batch), seed,
                         static_cast<float>(flags.clip_norm), flags.lr_decay);
  const long sync_every = flags.sync_every;

  // Validation and test look at the center through a scratch model, so the
  // worker's own progress is never thrown away.
  std::unique_ptr<Model> scratch = make_model(1, flags.hidden);
  auto center_accuracy = [&](const IdxImages& images, std::span<const std::uint8_t> labels,
                             const std::vector<std::size_t>* indices) {
    {
      auto guard = soldier.lock();
      const auto center = soldier.central_values();
      std::copy(center.begin(), center.end(), scratch->params().begin());
    }
    if (indices) return accuracy_on(*scratch, images, labels, *indices);
    return accuracy(*scratch, images.pixels.data(), labels.data(), static_cast<int>(labels.size()));
  };

  // Throughput counts everything but validations: training, syncs and the
  // requests to the controller, so that it shows what platoon costs.
  long minibatches = 0;
  long unreported = 0;  // minibatches trained since the last "next"
  double valid_seconds = 0;
  const auto started = Clock::now();
  while (true) {
    const json what = soldier.send_req("next", {{"done", unreported}});
    unreported = 0;
    const std::string action = what.at("action").get<std::string>();
    if (action == "stop") break;
    if (action == "valid") {
      const auto v0 = Clock::now();
      const double acc = center_accuracy(data.set.train_images, data.set.train_labels, &data.valid);
      soldier.send_req({{"valid_error", 1.0 - acc}});
      valid_seconds += std::chrono::duration<double>(Clock::now() - v0).count();
      continue;
    }
    if (action != "train") throw ProtocolError(str_cat("unexpected answer from the controller: ", what.dump()));
    const long k = json_integer<long>(what.at("minibatches"));
    for (long i = 0; i < k; ++i) {
      stream.step();
      if (++minibatches % sync_every == 0) soldier.sync_params();
    }
    unreported = k;
  }
  const double train_seconds = std::chrono::duration<double>(Clock::now() - started).count() - valid_seconds;
  soldier.sync_params();  // the center gets this worker's last progress
  if (soldier.send_req({{"finished", true}}).value("test", false)) {
    const double test = center_accuracy(data.set.test_images, data.set.test_labels, nullptr);
    soldier.send_req({{"test_accuracy", test}});
  }
  soldier.close();
  print_throughput(stream.samples(), train_seconds, minibatches);
  return 0;
}

}  // namespace

int run_example_worker(int argc, char** argv, const WorkerDefaults& defaults, const ModelFactory& make_model) {
  try {
    const WorkerFlags flags = parse_worker_flags(argc, argv, defaults);
    const Data data = load_data(flags.data, flags.train_limit);
    // Before the model and the controller: a batch the data cannot fill is bad usage.
    check_batch_fits(static_cast<std::size_t>(flags.batch), data.train.size());
    std::unique_ptr<Model> model = make_model(flags.seed, flags.hidden);
    const auto optimizer = make_update_rule(flags.optimizer, static_cast<float>(flags.learning_rate));
    if (flags.standalone) return run_standalone(flags, *model, *optimizer, data);
    return run_with_controller(flags, *model, *optimizer, data, make_model);
  } catch (const HelpRequested& help) {
    std::cout << help.text;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "worker: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace platoon::examples
