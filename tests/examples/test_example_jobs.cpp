// The example programs' job flags end to end, through platoon-launch with a
// controller and two real workers on a small random data set:
// --checkpoint, --checkpoint-every, --resume, --max-time and --standalone
// do what their --help says.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "common/mlp.hpp"
#include "platoon/shm/checkpoint.hpp"
#include "tools_test_support.hpp"

#if !defined(PLATOON_LAUNCH_BIN) || !defined(PLATOON_MLP_WORKER_BIN) || !defined(PLATOON_MLP_CONTROLLER_BIN)
#error "PLATOON_LAUNCH_BIN, PLATOON_MLP_WORKER_BIN and PLATOON_MLP_CONTROLLER_BIN must name the programs"
#endif

namespace fs = std::filesystem;
using platoon::str_cat;
using platoon::testing::run_tool;
using platoon::testing::TempDir;

namespace {

void write_be32(std::ofstream& out, std::uint32_t v) {
  const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                         static_cast<char>(v)};
  out.write(bytes, 4);
}

// An IDX file of unsigned bytes below `below`, drawn from `random`.
void write_random_idx(const fs::path& path, const std::vector<std::uint32_t>& dims, unsigned below,
                      std::mt19937& random) {
  std::ofstream out(path, std::ios::binary);
  write_be32(out, 0x0800u | static_cast<std::uint32_t>(dims.size()));
  std::size_t n = 1;
  for (const std::uint32_t d : dims) {
    write_be32(out, d);
    n *= d;
  }
  std::string bytes(n, '\0');
  for (char& b : bytes) b = static_cast<char>(random() % below);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// An IDX file holding `bytes` under a header of `dims`.
void write_idx(const fs::path& path, const std::vector<std::uint32_t>& dims, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  write_be32(out, 0x0800u | static_cast<std::uint32_t>(dims.size()));
  for (const std::uint32_t d : dims) write_be32(out, d);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string random_bytes(std::size_t n, unsigned below, std::mt19937& random) {
  std::string bytes(n, '\0');
  for (char& b : bytes) b = static_cast<char>(random() % below);
  return bytes;
}

// A Fashion-MNIST folder whose test set is the validation set (the last 5000
// of 5200 random training images): the test accuracy of some parameters is
// their validation accuracy.
fs::path fashion_mnist_testing_on_validation(const TempDir& dir) {
  const fs::path data = dir.path() / "data";
  fs::create_directories(data);
  std::mt19937 random(5);
  const std::size_t pixels = 28 * 28, train = 5200, valid = 5000;
  const std::string images = random_bytes(train * pixels, 256, random), labels = random_bytes(train, 10, random);
  write_idx(data / "train-images-idx3-ubyte.gz", {5200, 28, 28}, images);
  write_idx(data / "train-labels-idx1-ubyte.gz", {5200}, labels);
  write_idx(data / "t10k-images-idx3-ubyte.gz", {5000, 28, 28}, images.substr((train - valid) * pixels));
  write_idx(data / "t10k-labels-idx1-ubyte.gz", {5000}, labels.substr(train - valid));
  return data;
}

// A Fashion-MNIST folder of random images and labels: 5200 training images
// (200 to train on once the 5000 validation images are set aside), 100 test
// images. Plain files under the .gz names: the loader reads both.
fs::path random_fashion_mnist(const TempDir& dir) {
  const fs::path data = dir.path() / "data";
  fs::create_directories(data);
  std::mt19937 random(11);
  write_random_idx(data / "train-images-idx3-ubyte.gz", {5200, 28, 28}, 256, random);
  write_random_idx(data / "train-labels-idx1-ubyte.gz", {5200}, 10, random);
  write_random_idx(data / "t10k-images-idx3-ubyte.gz", {100, 28, 28}, 256, random);
  write_random_idx(data / "t10k-labels-idx1-ubyte.gz", {100}, 10, random);
  return data;
}

// One job of mlp_controller and two mlp_workers (--hidden 8) under
// platoon-launch; returns the launcher's exit status and its output, where
// every process's lines are.
std::pair<platoon::ExitStatus, std::string> run_job(const TempDir& dir, const fs::path& data,
                                                    const std::string& controller_flags,
                                                    const std::string& worker_flags = "") {
  return run_tool({PLATOON_LAUNCH_BIN, "--workers", "2", "--log-dir", (dir.path() / "logs").string(), "--controller",
                   str_cat(PLATOON_MLP_CONTROLLER_BIN, " --valid-every 20 --patience 1000000 --minibatches-per-request 5 ",
                           controller_flags),
                   "--worker",
                   str_cat(PLATOON_MLP_WORKER_BIN, " --data ", data.string(), " --hidden 8 --batch 10 ", worker_flags)},
                  dir, std::chrono::seconds(90));
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

float max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float most = 0;
  for (std::size_t i = 0; i < a.size(); ++i) most = std::max(most, std::fabs(a[i] - b[i]));
  return most;
}

}  // namespace

TEST_CASE("--checkpoint with --checkpoint-every saves during the job and at its end; --max-time ends it") {
  TempDir dir;
  const fs::path data = random_fashion_mnist(dir);
  const fs::path checkpoint = dir.path() / "center.ckpt";
  const auto [status, output] = run_job(
      dir, data, str_cat("--max-minibatches 0 --max-time 2 --checkpoint ", checkpoint.string(), " --checkpoint-every 0.3"));
  INFO(output);
  REQUIRE(status.success());
  CHECK(output.find("stopping: time budget of 2 s spent") != std::string::npos);
  CHECK(count_of(output, str_cat("saved checkpoint ", checkpoint.string(), " (interval)")) >= 2);
  CHECK(count_of(output, str_cat("saved checkpoint ", checkpoint.string(), " (end of job)")) == 1);
  const platoon::Checkpoint saved = platoon::load_checkpoint(checkpoint);
  CHECK(saved.values.size() == platoon::examples::Mlp(1, 8, 4).num_params());
  CHECK(saved.metadata.at("reason") == "end of job");
  CHECK(output.find("final test accuracy") != std::string::npos);
}

TEST_CASE("--resume starts the job from the checkpoint's center, and a checkpoint of another model is refused") {
  TempDir dir;
  const fs::path data = random_fashion_mnist(dir);
  const fs::path first = dir.path() / "first.ckpt", resumed = dir.path() / "resumed.ckpt",
                 fresh = dir.path() / "fresh.ckpt";
  {
    const auto [status, output] = run_job(dir, data, str_cat("--max-minibatches 60 --checkpoint ", first.string()));
    INFO(output);
    REQUIRE(status.success());
  }
  // One minibatch at a learning rate too small to change a float: the
  // center ends where it started. Resumed, that is the first job's center;
  // afresh, it is the seed's initial values, far from it.
  const std::string one_step = "--max-minibatches 1 --checkpoint ";
  const std::string no_learning = "--lr 1e-30";
  {
    const auto [status, output] =
        run_job(dir, data, str_cat(one_step, resumed.string(), " --resume ", first.string()), no_learning);
    INFO(output);
    REQUIRE(status.success());
    CHECK(output.find(str_cat("resumes from ", first.string(), " (")) != std::string::npos);
    CHECK(output.find(str_cat("initialized the parameters from checkpoint ", first.string())) != std::string::npos);
  }
  {
    const auto [status, output] = run_job(dir, data, str_cat(one_step, fresh.string()), no_learning);
    INFO(output);
    REQUIRE(status.success());
  }
  const std::vector<float> a = platoon::load_checkpoint(first).values;
  CHECK(max_abs_difference(platoon::load_checkpoint(resumed).values, a) < 1e-6f);
  CHECK(max_abs_difference(platoon::load_checkpoint(fresh).values, a) > 1e-3f);  // the check can tell

  // A worker whose model has another layout: refused, naming the parameter.
  const auto [status, output] =
      run_job(dir, data, str_cat("--max-minibatches 10 --resume ", first.string()), "--hidden 16");
  INFO(output);
  CHECK(status.code == 2);
  CHECK(output.find(str_cat("parameter layout mismatch: parameter 'fc1.W' has shape [784, 8] in the checkpoint \"",
                            first.string(), "\" and [784, 16] in this job")) != std::string::npos);
}

TEST_CASE("--standalone trains alone on the schedule flags, with no controller, and --max-time ends it") {
  TempDir dir;
  const fs::path data = random_fashion_mnist(dir);
  const auto [status, output] =
      run_tool({PLATOON_MLP_WORKER_BIN, "--standalone", "--data", data.string(), "--hidden", "8", "--batch", "10",
                "--max-minibatches", "0", "--max-time", "1", "--valid-every", "50", "--patience", "1000000"},
               dir, std::chrono::seconds(60));
  INFO(output);
  REQUIRE(status.success());
  CHECK(output.find("[standalone] validation 1: accuracy") != std::string::npos);
  CHECK(output.find("stopping: time budget of 1 s spent") != std::string::npos);
  CHECK(output.find("[standalone] test accuracy") != std::string::npos);
  CHECK(std::regex_search(output, std::regex(R"(trained [1-9]\d* minibatches \(\d+ samples\))")));
}

TEST_CASE("--mode sync tests the parameters of the best validation, or with --test-on final the last ones") {
  TempDir dir;
  const fs::path data = fashion_mnist_testing_on_validation(dir);
  // Random labels: validation accuracy wanders while training overfits the
  // 200 training images, so the best validation is rarely the last one.
  const auto job = [&](const std::string& test_on) {
    return run_job(dir, data, "--group-size 2 --max-minibatches 200 --valid-every 10",
                   str_cat("--mode sync --optimizer sgd --lr 0.02 --test-on ", test_on));
  };
  const std::regex validation(R"(validation (\d+): accuracy ([0-9.]+) \(best ([0-9.]+)\))");
  const std::regex test(R"re(final test accuracy ([0-9.]+) \(parameters: "([a-z ]+)"\))re");
  std::smatch match;

  const auto [best_status, best_output] = job("best");
  INFO(best_output);
  REQUIRE(best_status.success());
  std::string best_validation, last_validation;
  for (auto it = std::sregex_iterator(best_output.begin(), best_output.end(), validation); it != std::sregex_iterator();
       ++it) {
    best_validation = (*it)[3];
    last_validation = (*it)[2];
  }
  REQUIRE(!best_validation.empty());
  REQUIRE(std::regex_search(best_output, match, test));
  CHECK(match[2] == "best validation");
  CHECK(match[1] == best_validation);  // the test set is the validation set
  CHECK(best_validation != last_validation);  // the check can tell best from last

  const auto [final_status, final_output] = job("final");
  INFO(final_output);
  REQUIRE(final_status.success());
  REQUIRE(std::regex_search(final_output, match, test));
  CHECK(match[2] == "final");
}
