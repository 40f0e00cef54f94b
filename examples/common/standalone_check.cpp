// example_models_check: trains one example model standalone on Fashion-MNIST
// and prints, per epoch, the training time, mean train loss and test
// accuracy. Used to tune the hyper-parameters the distributed examples use.
//
//   example_models_check --model mlp|lstm [--epochs E] [--batch B] [--lr LR]
//       [--optimizer adam|adamw|sgd|momentum|nesterov] [--lr-decay D] [--hidden H]
//       [--clip NORM] [--seed S] [--data DIR] [--target ACC] [--threads 1]
//
// --hidden sets the LSTM hidden size, or the MLP's first layer (the second
// gets half). --target stops once the test accuracy reaches it.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include "common/idx.hpp"
#include "common/lstm.hpp"
#include "common/mlp.hpp"
#include "platoon/sync/update_rules.hpp"
#include "common/train.hpp"
#include "platoon/common/error.hpp"

namespace {

using namespace platoon::examples;

struct Options {
  std::string model = "mlp";
  std::string optimizer = "adam";
  int epochs = 5;
  int batch = 64;
  float lr = 1e-3f;
  float lr_decay = 1.0f;  // learning rate multiplied by this after each epoch
  int hidden = 0;         // 0: the model's default
  float clip = 0.0f;      // gradient norm clip, 0 = off
  std::uint64_t seed = 1;
  int threads = 1;
  double target = 0.0;    // stop once test accuracy reaches it (0 = never)
  std::string data = default_fashion_mnist_dir();
};

void usage() {
  std::fprintf(stderr,
               "usage: example_models_check --model mlp|lstm [--epochs E] [--batch B] [--lr LR]\n"
               "         [--optimizer adam|adamw|sgd|momentum|nesterov] [--lr-decay D] [--hidden H]\n"
               "         [--clip NORM] [--seed S] [--data DIR] [--target ACC] [--threads 1]\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + arg);
    const std::string value = argv[++i];
    if (arg == "--model") o.model = value;
    else if (arg == "--optimizer") o.optimizer = value;
    else if (arg == "--epochs") o.epochs = std::stoi(value);
    else if (arg == "--batch") o.batch = std::stoi(value);
    else if (arg == "--lr") o.lr = std::stof(value);
    else if (arg == "--lr-decay") o.lr_decay = std::stof(value);
    else if (arg == "--hidden") o.hidden = std::stoi(value);
    else if (arg == "--clip") o.clip = std::stof(value);
    else if (arg == "--seed") o.seed = std::stoull(value);
    else if (arg == "--threads") o.threads = std::stoi(value);
    else if (arg == "--target") o.target = std::stod(value);
    else if (arg == "--data") o.data = value;
    else throw std::invalid_argument("unknown option " + arg);
  }
  if (o.model != "mlp" && o.model != "lstm") throw std::invalid_argument("--model must be mlp or lstm");
  if (o.epochs < 1 || o.batch < 1) throw std::invalid_argument("--epochs and --batch must be >= 1");
  return o;
}

int run(const Options& o) {
  // The models are single threaded by design (Eigen without OpenMP): the
  // distributed examples get their parallelism from worker processes.
  if (o.threads != 1) std::printf("note: --threads %d ignored, the models run on one thread\n", o.threads);

  const auto t_load = std::chrono::steady_clock::now();
  const FashionMnist data = load_fashion_mnist(o.data);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

  // --hidden is the LSTM's hidden size, or the MLP's first layer (the second
  // then gets half of it, as in the default 256-128).
  std::unique_ptr<Model> model;
  if (o.model == "lstm") {
    model = std::make_unique<Lstm>(o.seed, o.hidden > 0 ? o.hidden : 128);
  } else if (o.hidden > 0) {
    model = std::make_unique<Mlp>(o.seed, o.hidden, std::max(o.hidden / 2, 1));
  } else {
    model = std::make_unique<Mlp>(o.seed);
  }
  auto optimizer = platoon::make_update_rule(o.optimizer, o.lr);

  std::printf("%s: %zu parameters, %s, batch %d, lr decay %g, clip %g, seed %llu\n",
              model->name().c_str(), model->num_params(), optimizer->describe().c_str(), o.batch,
              static_cast<double>(o.lr_decay), static_cast<double>(o.clip),
              static_cast<unsigned long long>(o.seed));
  std::printf("loaded %zu train / %zu test images from %s in %.1f s\n", data.train_images.count,
              data.test_images.count, o.data.c_str(), load_s);
  std::printf("%5s %9s %9s %10s %9s %9s\n", "epoch", "train_s", "total_s", "train_loss",
              "test_acc", "lr");
  std::fflush(stdout);

  Trainer trainer(*model, *optimizer, data.train_images, data.train_labels);
  trainer.set_clip_norm(o.clip);
  IndexShuffler shuffler(data.train_images.count, o.seed);
  double total_s = 0.0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const float lr = optimizer->learning_rate();
    const float loss = trainer.epoch(shuffler.next_epoch(), o.batch);
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total_s += train_s;
    const double acc = accuracy(*model, data.test_images.pixels.data(), data.test_labels.data(),
                                static_cast<int>(data.test_images.count));
    std::printf("%5d %9.2f %9.2f %10.4f %9.4f %9.2e\n", epoch, train_s, total_s,
                static_cast<double>(loss), acc, static_cast<double>(lr));
    std::fflush(stdout);
    optimizer->set_learning_rate(lr * o.lr_decay);
    if (o.target > 0.0 && acc >= o.target) {
      std::printf("target %.4f reached after %d epochs, %.1f s of training\n", o.target, epoch, total_s);
      return 0;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const platoon::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    usage();
    return 2;
  }
}
