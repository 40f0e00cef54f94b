// Checkpoint files: round trip, atomic writes, and every kind of broken file
// refused with the file named.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "platoon/shm/checkpoint.hpp"
#include "platoon/common/error.hpp"
#include "test_support.hpp"

using platoon::FileError;
using platoon::Layout;
using platoon::LayoutError;
using platoon::ParamView;
using platoon::testing::TempDir;
namespace fs = std::filesystem;

namespace {

struct Model {
  std::vector<float> w = std::vector<float>(12);
  std::vector<float> b = std::vector<float>(4);
  Layout layout;
  std::vector<float> flat;

  explicit Model(std::vector<std::size_t> w_shape = {3, 4}) {
    std::vector<ParamView> params{{"W", w.data(), std::move(w_shape)}, {"b", b.data(), {4}}};
    layout = Layout::of(params);
    flat.resize(layout.total_size());
    std::iota(flat.begin(), flat.end(), 0.5f);
  }
};

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_all(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// The checkpoint `bytes` with `from` replaced by `to` in its JSON header and
// the header length in the prefix rewritten to match.
std::string with_header_edit(const std::string& bytes, const std::string& from, const std::string& to) {
  constexpr std::size_t kLengthAt = 12, kHeaderAt = 20;  // after the magic and the version
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < 8; ++i) length |= std::uint64_t{static_cast<unsigned char>(bytes[kLengthAt + i])} << (8 * i);
  std::string header = bytes.substr(kHeaderAt, length);
  const std::size_t at = header.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from, " is not in the header ", header);
  header.replace(at, from.size(), to);
  std::string out = bytes.substr(0, kLengthAt);
  for (std::size_t i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return out + header + bytes.substr(kHeaderAt + length);
}

}  // namespace

TEST_CASE("a checkpoint round trip keeps the layout, the values and the metadata") {
  TempDir dir;
  const Model model;
  const fs::path path = dir.path() / "center.ckpt";
  platoon::save_checkpoint(path, model.layout, model.flat, {{"job_id", "j1"}, {"step", 42}});

  const platoon::Checkpoint loaded = platoon::load_checkpoint(path);
  CHECK(loaded.layout == model.layout);
  CHECK(loaded.values == model.flat);
  CHECK(loaded.metadata.at("job_id") == "j1");
  CHECK(loaded.metadata.at("step") == 42);

  std::vector<float> into(model.layout.total_size(), -1.0f);
  platoon::load_checkpoint_into(path, model.layout, into);
  CHECK(into == model.flat);

  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // Only the checkpoint is left in the folder: no temporary file.
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("a truncated checkpoint is refused with the path and 'truncated'") {
  TempDir dir;
  const Model model;
  const fs::path good = dir.path() / "good.ckpt";
  platoon::save_checkpoint(good, model.layout, model.flat);
  const std::string bytes = read_all(good);
  const std::size_t data_start = bytes.size() - model.flat.size() * sizeof(float);

  // Inside the magic, inside the fixed prefix, inside the JSON header, at the
  // start of the data, inside the data, one byte short.
  for (const std::size_t cut :
       {std::size_t{4}, std::size_t{12}, std::size_t{40}, data_start, data_start + 10, bytes.size() - 1}) {
    CAPTURE(cut);
    const fs::path path = dir.path() / "cut.ckpt";
    write_all(path, bytes.substr(0, cut));
    CHECK_THROWS_WITH_AS(platoon::load_checkpoint(path), doctest::Contains(path.c_str()), FileError);
    CHECK_THROWS_WITH_AS(platoon::load_checkpoint(path), doctest::Contains("truncated"), FileError);
  }
}

TEST_CASE("missing, foreign, corrupted and future checkpoints are refused with the path") {
  TempDir dir;
  const Model model;
  const fs::path path = dir.path() / "c.ckpt";
  const fs::path missing = dir.path() / "missing.ckpt";
  CHECK_THROWS_WITH_AS(platoon::load_checkpoint(missing), doctest::Contains(missing.c_str()), FileError);

  platoon::save_checkpoint(path, model.layout, model.flat);
  const std::string bytes = read_all(path);

  std::string flipped = bytes;
  flipped[bytes.size() - 5] ^= 0x01;
  write_all(path, flipped);
  CHECK_THROWS_WITH_AS(platoon::load_checkpoint(path), doctest::Contains("corrupted"), FileError);

  std::string foreign = bytes;
  foreign[0] = 'X';
  write_all(path, foreign);
  CHECK_THROWS_WITH_AS(platoon::load_checkpoint(path), doctest::Contains("bad magic"), FileError);

  std::string future = bytes;
  future[8] = 2;  // format version, little-endian
  write_all(path, future);
  CHECK_THROWS_WITH_AS(platoon::load_checkpoint(path), doctest::Contains("version 2"), FileError);

  write_all(path, bytes + "extra");
  CHECK_THROWS_WITH_AS(platoon::load_checkpoint(path), doctest::Contains(path.c_str()), FileError);
}

TEST_CASE("a header whose counts are not integers, or out of range, is refused naming the field") {
  TempDir dir;
  const Model model;
  const fs::path path = dir.path() / "c.ckpt";
  platoon::save_checkpoint(path, model.layout, model.flat);
  const std::string bytes = read_all(path);
  write_all(path, with_header_edit(bytes, "\"count\":16", "\"count\":16"));
  CHECK(platoon::load_checkpoint(path).values == model.flat);  // the edit itself keeps a valid file

  // A float too large for an unsigned count was undefined behaviour before
  // the counts were checked (found by fuzz_checkpoint).
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"count\":16", "\"count\":1.6e31"},
           {"\"count\":16", "\"count\":16.0"},
           {"\"count\":16", "\"count\":-16"},
           {"\"offset\":12", "\"offset\":16666666666666666666666666666662"},
           {"\"offset\":12", "\"offset\":12.5"},
           {"\"shape\":[4]", "\"shape\":[4.0]"},
           {"\"total_size\":16", "\"total_size\":\"16\""}}) {
    CAPTURE(to);
    write_all(path, with_header_edit(bytes, from, to));
    CHECK_THROWS_WITH_AS(platoon::load_checkpoint(path), doctest::Contains(path.c_str()), FileError);
  }
}

TEST_CASE("a checkpoint from another layout is refused naming the parameter") {
  TempDir dir;
  const Model saved({3, 4});
  const Model other({4, 3});
  const fs::path path = dir.path() / "c.ckpt";
  platoon::save_checkpoint(path, saved.layout, saved.flat);

  std::vector<float> into(other.layout.total_size(), -1.0f);
  CHECK_THROWS_WITH_AS(platoon::load_checkpoint_into(path, other.layout, into), doctest::Contains("'W'"), LayoutError);
  CHECK_THROWS_WITH_AS(platoon::load_checkpoint_into(path, other.layout, into), doctest::Contains(path.c_str()),
                       LayoutError);
  CHECK(into == std::vector<float>(other.layout.total_size(), -1.0f));  // untouched
  CHECK_THROWS_AS(platoon::save_checkpoint(path, saved.layout, std::span<const float>(saved.flat).first(3)),
                  LayoutError);
}

TEST_CASE("a failed save names the path and leaves the previous checkpoint valid") {
  TempDir dir;
  Model model;
  const fs::path path = dir.path() / "c.ckpt";
  platoon::save_checkpoint(path, model.layout, model.flat, {{"step", 1}});

  // Writing the temporary file fails half-way: in a child limited to a
  // 100-byte file size (RLIMIT_FSIZE; the write then fails with EFBIG).
  std::vector<float> newer(model.flat.size(), 7.0f);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{100, 100};
    ::setrlimit(RLIMIT_FSIZE, &small);
    try {
      platoon::save_checkpoint(path, model.layout, newer, {{"step", 2}});
    } catch (const platoon::ResourceError& e) {
      std::_Exit(std::string(e.what()).find(path.string()) != std::string::npos ? 0 : 2);
    }
    std::_Exit(1);  // it did not fail
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // ResourceError naming the path
  const platoon::Checkpoint kept = platoon::load_checkpoint(path);
  CHECK(kept.values == model.flat);
  CHECK(kept.metadata.at("step") == 1);
  for (const auto& entry : fs::directory_iterator(dir.path()))  // the temporary file is gone
    CHECK(entry.path().filename() == "c.ckpt");

  // Overwriting works once the way is clear, and replaces the content.
  platoon::save_checkpoint(path, model.layout, newer, {{"step", 2}});
  CHECK(platoon::load_checkpoint(path).values == newer);

  // A folder that no longer exists.
  const fs::path gone = dir.path() / "gone";
  fs::create_directory(gone);
  fs::remove(gone);
  CHECK_THROWS_WITH_AS(platoon::save_checkpoint(gone / "c.ckpt", model.layout, model.flat),
                       doctest::Contains((gone / "c.ckpt").c_str()), platoon::ResourceError);
}

TEST_CASE("a checkpoint schedule is due once per interval") {
  using namespace std::chrono_literals;
  const auto t0 = platoon::CheckpointSchedule::Clock::time_point{} + 1h;
  platoon::CheckpointSchedule schedule(10s, t0);
  CHECK_FALSE(schedule.due(t0 + 9s));
  CHECK(schedule.due(t0 + 10s));
  schedule.mark_saved(t0 + 12s);
  CHECK_FALSE(schedule.due(t0 + 21s));
  CHECK(schedule.due(t0 + 22s));

  const platoon::CheckpointSchedule disabled(0s, t0);
  CHECK_FALSE(disabled.due(t0 + 1000h));
}
