// Shared data sets: one copy per host, mapped by every process of the job;
// mismatched sources and arrays, a loader that fails or dies, a corrupt copy.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "platoon/common/error.hpp"
#include "platoon/shm/shared_dataset.hpp"
#include "test_support.hpp"

using namespace platoon;
using platoon::testing::TempDir;
using platoon::testing::unique_name;

namespace {

constexpr std::size_t kRows = 1000, kCols = 13;

std::vector<DatasetArray> arrays() { return {{"x", "float32", {kRows, kCols}}, {"y", "uint8", {kRows}}}; }

void fill(SharedDataset::Writer& w) {
  const std::span<float> x = w.array<float>("x");
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f;
  const std::span<std::uint8_t> y = w.array<std::uint8_t>("y");
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::uint8_t>(i % 10);
}

// The /dev/shm objects of `job`, and their bytes.
std::size_t shm_bytes_of(const std::string& job, int& objects) {
  std::size_t bytes = 0;
  objects = 0;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm"))
    if (e.path().filename().string().starts_with("platoon-" + job + ".")) {
      bytes += std::filesystem::file_size(e.path());
      ++objects;
    }
  return bytes;
}

struct Files {
  TempDir dir;
  std::filesystem::path a = dir.path() / "a.bin", b = dir.path() / "b.bin";
  Files() {
    std::ofstream(a) << "images";
    std::ofstream(b) << "labels";
  }
};

}  // namespace

TEST_CASE("a data set is loaded once per host and mapped by every process of the job") {
  const std::string job = unique_name("ds");
  Files files;
  const nlohmann::json source = describe_files({files.a, files.b});
  int loads = 0;
  SharedDataset first = SharedDataset::open_or_create(
      job, "train", source, arrays(), [&](SharedDataset::Writer& w) { ++loads, fill(w); }, ProcessId::self(),
      std::chrono::seconds(5));
  CHECK(first.created());

  // Three other processes map it; none loads it again.
  std::vector<pid_t> children;
  for (int k = 0; k < 3; ++k) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        SharedDataset d = SharedDataset::open_or_create(
            job, "train", source, arrays(), [&](SharedDataset::Writer&) { code = 10; }, ProcessId::self(),
            std::chrono::seconds(5));
        const auto x = d.array<float>("x");
        const auto y = d.array<std::uint8_t>("y");
        if (d.created() || x.size() != kRows * kCols || x[777] != 388.5f || y[999] != 9) code = code ? code : 11;
      } catch (...) {
        code = 12;
      }
      std::_Exit(code);
    }
    children.push_back(pid);
  }
  for (const pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(loads == 1);
  int objects = 0;
  const std::size_t bytes = shm_bytes_of(job, objects);
  CHECK(objects == 1);  // one copy, whatever the number of workers
  CHECK(bytes == first.mapped_bytes());
  CHECK(bytes < kRows * kCols * 4 + kRows + 3 * 4096);  // the data, a header page and alignment
  ShmObject::remove(first.name());
}

TEST_CASE("a copy loaded from other files, or with other arrays, is refused with the file named") {
  const std::string job = unique_name("ds");
  Files files;
  SharedDataset first = SharedDataset::open_or_create(job, "train", describe_files({files.a, files.b}), arrays(),
                                                      fill, ProcessId::self(), std::chrono::seconds(5));
  std::ofstream(files.b) << "labels, but another version of them";
  CHECK_THROWS_WITH_AS(SharedDataset::open_or_create(job, "train", describe_files({files.a, files.b}), arrays(), fill,
                                                     ProcessId::self(), std::chrono::seconds(5)),
                       doctest::Contains(files.b.string().c_str()), LayoutError);
  std::vector<DatasetArray> other = arrays();
  other[1].shape = {999};
  Files same_files;  // a separate folder: only the arrays differ below
  SharedDataset second = SharedDataset::open_or_create(job, "other", describe_files({same_files.a}), arrays(), fill,
                                                       ProcessId::self(), std::chrono::seconds(5));
  CHECK_THROWS_WITH_AS(SharedDataset::open_or_create(job, "other", describe_files({same_files.a}), other, fill,
                                                     ProcessId::self(), std::chrono::seconds(5)),
                       doctest::Contains("this worker expects x float32 [1000, 13], y uint8 [999]"), LayoutError);
  CHECK_THROWS_WITH_AS((void)first.array<float>("y"), doctest::Contains("y is uint8"), Error);
  CHECK_THROWS_AS(describe_files({files.dir.path() / "missing.idx"}), FileError);
  ShmObject::remove(first.name());
  ShmObject::remove(second.name());
}

TEST_CASE("a loader that throws leaves nothing; one that dies half-way is replaced") {
  const std::string job = unique_name("ds");
  Files files;
  const nlohmann::json source = describe_files({files.a});
  CHECK_THROWS_WITH_AS(SharedDataset::open_or_create(
                           job, "train", source, arrays(),
                           [](SharedDataset::Writer&) { throw FileError("train.idx is truncated"); },
                           ProcessId::self(), std::chrono::seconds(5)),
                       doctest::Contains("truncated"), FileError);
  int objects = 0;
  shm_bytes_of(job, objects);
  CHECK(objects == 0);

  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    SharedDataset::open_or_create(job, "train", source, arrays(), [](SharedDataset::Writer&) { ::raise(SIGKILL); },
                                  ProcessId::self(), std::chrono::seconds(5));
    std::_Exit(1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  shm_bytes_of(job, objects);
  CHECK(objects == 1);  // the dead loader's half-filled copy
  SharedDataset again = SharedDataset::open_or_create(job, "train", source, arrays(), fill, ProcessId::self(),
                                                      std::chrono::seconds(5));
  CHECK(again.created());  // loaded anew
  CHECK(again.array<std::uint8_t>("y")[13] == 3);
  ShmObject::remove(again.name());
}

TEST_CASE("a corrupted copy is refused with what is wrong") {
  const std::string job = unique_name("ds");
  Files files;
  const nlohmann::json source = describe_files({files.a});
  SharedDataset d = SharedDataset::open_or_create(job, "train", source, arrays(), fill, ProcessId::self(),
                                                  std::chrono::seconds(5));
  {
    ShmObject raw = ShmObject::open(d.name(), /*writable=*/true);
    static_cast<char*>(raw.data())[4096 + 3] ^= 0x20;  // one byte of the table of contents
  }
  CHECK_THROWS_WITH_AS(SharedDataset::open_or_create(job, "train", source, arrays(), fill, ProcessId::self(),
                                                     std::chrono::seconds(5)),
                       doctest::Contains("checksum mismatch"), LayoutError);
  CHECK(dataset_header_problem(nullptr, 0).find("smaller than") != std::string::npos);
  ShmObject::remove(d.name());
}
