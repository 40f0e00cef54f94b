// The example programs run as real processes with bad flags and a data set
// too small for the batch: each must exit 1 at once with a message naming
// the flag and the range (or the set's size), never wrap a value, read past
// the data, or hang. No controller runs: every refusal comes before one is
// needed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "tools_test_support.hpp"

#if !defined(PLATOON_MLP_WORKER_BIN) || !defined(PLATOON_MLP_CONTROLLER_BIN) || !defined(PLATOON_LSTM_WORKER_BIN)
#error "PLATOON_MLP_WORKER_BIN, PLATOON_MLP_CONTROLLER_BIN and PLATOON_LSTM_WORKER_BIN must name the programs"
#endif

namespace fs = std::filesystem;
using platoon::testing::run_tool;
using platoon::testing::TempDir;

namespace {

void write_be32(std::ofstream& out, std::uint32_t v) {
  const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                         static_cast<char>(v)};
  out.write(bytes, 4);
}

// An IDX file of unsigned bytes, all zero (plain: the loader reads plain
// files under the .gz names too).
void write_idx(const fs::path& path, const std::vector<std::uint32_t>& dims) {
  std::ofstream out(path, std::ios::binary);
  write_be32(out, 0x0800u | static_cast<std::uint32_t>(dims.size()));
  std::size_t n = 1;
  for (const std::uint32_t d : dims) {
    write_be32(out, d);
    n *= d;
  }
  const std::string zeros(n, '\0');
  out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  REQUIRE(out.good());
}

// A Fashion-MNIST folder with 5020 training images: 20 training samples once
// the 5000 validation images are set aside.
fs::path tiny_fashion_mnist(const TempDir& dir) {
  const fs::path data = dir.path() / "data";
  fs::create_directories(data);
  write_idx(data / "train-images-idx3-ubyte.gz", {5020, 28, 28});
  write_idx(data / "train-labels-idx1-ubyte.gz", {5020});
  write_idx(data / "t10k-images-idx3-ubyte.gz", {10, 28, 28});
  write_idx(data / "t10k-labels-idx1-ubyte.gz", {10});
  return data;
}

// Runs `argv` (bounded: a hang fails the test) and checks exit 1 with
// `expected` in the output.
void check_refused(const std::vector<std::string>& argv, const std::string& expected) {
  TempDir dir;
  const auto [status, output] = run_tool(argv, dir, std::chrono::seconds(20));
  INFO(argv[0], " ", argv.size() > 1 ? argv[1] : "", ": ", output);
  CHECK(status.code == 1);
  CHECK(output.find(expected) != std::string::npos);
}

}  // namespace

// Defect 6: the batch order was read past its end (gather_batch: sample
// 13097314340346789888 of 60000).
TEST_CASE("a --batch larger than the (limited) training set is refused naming --batch and the set size") {
  TempDir dir;
  const std::string data = tiny_fashion_mnist(dir).string();
  check_refused({PLATOON_MLP_WORKER_BIN, "--standalone", "--data", data, "--train-limit", "10"},
                "--batch 64 is larger than the 10 training samples");
  check_refused({PLATOON_MLP_WORKER_BIN, "--standalone", "--data", data, "--batch", "21"},
                "--batch 21 is larger than the 20 training samples");
  check_refused({PLATOON_LSTM_WORKER_BIN, "--standalone", "--data", data, "--train-limit", "5"},
                "--batch 64 is larger than the 5 training samples");
  // The largest batch that fits trains.
  const auto [status, output] =
      run_tool({PLATOON_MLP_WORKER_BIN, "--standalone", "--data", data, "--batch", "20", "--max-minibatches", "3",
                "--hidden", "8"},
               dir, std::chrono::seconds(60));
  INFO(output);
  CHECK(status.success());
  CHECK(output.find("trained 3 minibatches (60 samples)") != std::string::npos);
}

// Defect 5: --sync-threads -1 became SIZE_MAX threads and the worker hung.
TEST_CASE("--sync-threads outside 1..256 is refused at once") {
  check_refused({PLATOON_MLP_WORKER_BIN, "--sync-threads", "-1"}, "--sync-threads: Value -1 not in range 1 to 256");
  check_refused({PLATOON_MLP_WORKER_BIN, "--sync-threads", "100000"}, "--sync-threads");
}

// Defect 9: wrapped ports, timeouts of zero, negative sizes silently defaulted.
TEST_CASE("flags out of range are refused by every example program, naming the flag and its range") {
  check_refused({PLATOON_MLP_CONTROLLER_BIN, "--port", "99999"}, "--port: Value 99999 not in range 1 to 65535");
  check_refused({PLATOON_MLP_CONTROLLER_BIN, "--port", "0"}, "--port: Value 0 not in range 1 to 65535");
  check_refused({PLATOON_MLP_CONTROLLER_BIN, "--worker-timeout", "0"}, "--worker-timeout: value 0 not in (0, 1e+07]");
  check_refused({PLATOON_MLP_WORKER_BIN, "--port", "-5"}, "--port: Value -5 not in range 1 to 65535");
  check_refused({PLATOON_MLP_WORKER_BIN, "--hidden", "-3"}, "--hidden: Value -3 not in range 0 to 65536");
  check_refused({PLATOON_MLP_WORKER_BIN, "--train-limit", "-5"}, "--train-limit: Value -5 not in range 0");
  check_refused({PLATOON_MLP_WORKER_BIN, "--mode", "sync", "--hidden", "-3"}, "--hidden");
  check_refused({PLATOON_LSTM_WORKER_BIN, "--mode", "sync", "--port", "70000"}, "--port");
  check_refused({PLATOON_MLP_WORKER_BIN, "--mode", "async"}, "--mode: async not in {easgd,sync}");
  check_refused({PLATOON_MLP_WORKER_BIN, "--bogus"}, "--bogus");
}

TEST_CASE("--help of each example program lists its flags with their defaults") {
  TempDir dir;
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> programs = {
      {{PLATOON_MLP_WORKER_BIN, "--help"}, {"--sync-threads INT:INT in [1 - 256]=1", "--batch", "=64", "--mode"}},
      {{PLATOON_MLP_WORKER_BIN, "--mode", "sync", "--help"}, {"--weight-decay", "--batch", "=128"}},
      {{PLATOON_MLP_CONTROLLER_BIN, "--help"}, {"--port INT:INT in [1 - 65535]=5567", "--worker-timeout", "=2"}},
  };
  for (const auto& [argv, expected] : programs) {
    const auto [status, output] = run_tool(argv, dir);
    INFO(output);
    CHECK(status.success());
    for (const std::string& text : expected) CHECK_MESSAGE(output.find(text) != std::string::npos, text);
  }
}
