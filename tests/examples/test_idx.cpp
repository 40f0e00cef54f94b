// Tests of the IDX loader on small files written here, gzipped and plain,
// and on the real Fashion-MNIST when it is installed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "common/idx.hpp"
#include "platoon/common/error.hpp"

namespace fs = std::filesystem;
using namespace platoon::examples;

namespace {

// A directory unique to this process and test, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("platoon-idx-test-" + std::to_string(::getpid()) + "-" +
             std::to_string(counter++) + "-" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

// IDX bytes: magic 0x0000 <type> <ndims>, the dims, then `data`.
std::vector<std::uint8_t> idx_bytes(const std::vector<std::uint32_t>& dims,
                                    const std::vector<std::uint8_t>& data,
                                    std::uint8_t type = 0x08) {
  std::vector<std::uint8_t> out{0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) put_be32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_file(const fs::path& path, const std::vector<std::uint8_t>& bytes, bool gzip) {
  if (gzip) {
    gzFile file = gzopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    if (!bytes.empty()) {
      REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) ==
              static_cast<int>(bytes.size()));
    }
    REQUIRE(gzclose(file) == Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
  }
}

std::vector<std::uint8_t> ramp(std::size_t n, unsigned mod) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 37) % mod);
  return v;
}

// The message of the FileError `fn` throws; fails the test when it throws nothing.
template <typename Fn>
std::string file_error_message(Fn&& fn) {
  try {
    fn();
  } catch (const platoon::FileError& e) {
    return e.what();
  }
  FAIL("no FileError thrown");
  return {};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Writes a complete fake Fashion-MNIST set (2x3 images) into `dir`.
void write_fake_set(const fs::path& dir, std::uint32_t n_train, std::uint32_t n_train_labels,
                    std::uint32_t n_test, std::uint32_t n_test_labels) {
  write_file(dir / "train-images-idx3-ubyte.gz", idx_bytes({n_train, 2, 3}, ramp(n_train * 6u, 256)), true);
  write_file(dir / "train-labels-idx1-ubyte.gz", idx_bytes({n_train_labels}, ramp(n_train_labels, 10)), true);
  write_file(dir / "t10k-images-idx3-ubyte.gz", idx_bytes({n_test, 2, 3}, ramp(n_test * 6u, 256)), true);
  write_file(dir / "t10k-labels-idx1-ubyte.gz", idx_bytes({n_test_labels}, ramp(n_test_labels, 10)), true);
}

}  // namespace

TEST_CASE("IDX images and labels round trip, gzipped and plain") {
  TempDir dir;
  const auto pixels = ramp(5 * 4 * 3, 256);
  const auto labels = ramp(5, 10);
  for (bool gzip : {true, false}) {
    CAPTURE(gzip);
    const fs::path images_path = dir.path() / (gzip ? "images.gz" : "images");
    const fs::path labels_path = dir.path() / (gzip ? "labels.gz" : "labels");
    write_file(images_path, idx_bytes({5, 4, 3}, pixels), gzip);
    write_file(labels_path, idx_bytes({5}, labels), gzip);

    const IdxImages images = load_idx_images(images_path);
    CHECK(images.count == 5);
    CHECK(images.rows == 4);
    CHECK(images.cols == 3);
    CHECK(images.image_size() == 12);
    REQUIRE(images.pixels.size() == pixels.size());
    for (std::size_t i = 0; i < pixels.size(); ++i) {
      CHECK(images.pixels[i] == doctest::Approx(pixels[i] / 255.0f));
    }
    CHECK(images.image(2)[0] == doctest::Approx(pixels[24] / 255.0f));
    CHECK(load_idx_labels(labels_path) == labels);
  }
}

TEST_CASE("pixels are scaled to [0, 1]") {
  TempDir dir;
  const fs::path path = dir.path() / "extremes.gz";
  write_file(path, idx_bytes({1, 1, 2}, {0, 255}), true);
  const IdxImages images = load_idx_images(path);
  CHECK(images.pixels[0] == 0.0f);
  CHECK(images.pixels[1] == 1.0f);
}

TEST_CASE("a missing file is a FileError naming the path") {
  TempDir dir;
  const fs::path path = dir.path() / "nope-idx3-ubyte.gz";
  const std::string images_msg = file_error_message([&] { (void)load_idx_images(path); });
  CHECK(contains(images_msg, path.string()));
  CHECK(contains(images_msg, "no such file"));
  const std::string labels_msg = file_error_message([&] { (void)load_idx_labels(path); });
  CHECK(contains(labels_msg, path.string()));
}

TEST_CASE("a truncated file is a FileError naming the path and saying truncated") {
  TempDir dir;
  auto check_truncated = [](const fs::path& path, auto load) {
    const std::string msg = file_error_message(load);
    CHECK(contains(msg, path.string()));
    CHECK(contains(msg, "truncated"));
  };
  for (bool gzip : {true, false}) {
    CAPTURE(gzip);
    const std::string suffix = gzip ? ".gz" : "";
    // Data shorter than the header announces.
    const fs::path short_path = dir.path() / ("short" + suffix);
    auto bytes = idx_bytes({3, 4, 4}, ramp(3 * 16, 256));
    bytes.erase(bytes.end() - 5, bytes.end());
    write_file(short_path, bytes, gzip);
    check_truncated(short_path, [&] { (void)load_idx_images(short_path); });

    // Header cut short.
    const fs::path header_path = dir.path() / ("header" + suffix);
    bytes = idx_bytes({3}, ramp(3, 10));
    bytes.erase(bytes.begin() + 6, bytes.end());
    write_file(header_path, bytes, gzip);
    check_truncated(header_path, [&] { (void)load_idx_labels(header_path); });

    // Empty file.
    const fs::path empty_path = dir.path() / ("empty" + suffix);
    write_file(empty_path, {}, gzip);
    check_truncated(empty_path, [&] { (void)load_idx_labels(empty_path); });
  }

  // A gzip stream cut off in the middle.
  const fs::path whole = dir.path() / "whole.gz";
  write_file(whole, idx_bytes({2000}, ramp(2000, 10)), true);
  std::ifstream in(whole, std::ios::binary);
  std::vector<char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const fs::path cut = dir.path() / "cut.gz";
  std::ofstream out(cut, std::ios::binary);
  out.write(gz.data(), static_cast<std::streamsize>(gz.size() / 2));
  out.close();
  check_truncated(cut, [&] { (void)load_idx_labels(cut); });
}

TEST_CASE("a file with a bad magic number is not an IDX file") {
  TempDir dir;
  const fs::path path = dir.path() / "text.gz";
  const std::string text = "hello, this is not an IDX file";
  write_file(path, std::vector<std::uint8_t>(text.begin(), text.end()), true);
  const std::string msg = file_error_message([&] { (void)load_idx_images(path); });
  CHECK(contains(msg, path.string()));
  CHECK(contains(msg, "not an IDX file"));
  CHECK(contains(msg, "0x68656c6c"));  // "hell", the magic found
}

TEST_CASE("wrong element type or dimension count is rejected") {
  TempDir dir;
  const fs::path floats = dir.path() / "floats.gz";
  write_file(floats, idx_bytes({1}, {0, 0, 0, 0}, 0x0D), true);
  const std::string type_msg = file_error_message([&] { (void)load_idx_labels(floats); });
  CHECK(contains(type_msg, floats.string()));
  CHECK(contains(type_msg, "element type 0x0d"));

  // A label file where an image file is expected.
  const fs::path labels = dir.path() / "labels.gz";
  write_file(labels, idx_bytes({4}, ramp(4, 10)), true);
  const std::string dims_msg = file_error_message([&] { (void)load_idx_images(labels); });
  CHECK(contains(dims_msg, labels.string()));
  CHECK(contains(dims_msg, "1 dimensions"));
}

TEST_CASE("labels outside 0..9 are rejected with their index") {
  TempDir dir;
  const fs::path path = dir.path() / "labels.gz";
  write_file(path, idx_bytes({4}, {1, 9, 10, 2}), true);
  const std::string msg = file_error_message([&] { (void)load_idx_labels(path); });
  CHECK(contains(msg, path.string()));
  CHECK(contains(msg, "label 10 at index 2"));
  CHECK(contains(msg, "out of range 0..9"));
}

TEST_CASE("load_fashion_mnist checks image and label counts") {
  TempDir dir;
  SUBCASE("matching counts load") {
    write_fake_set(dir.path(), 7, 7, 3, 3);
    const FashionMnist data = load_fashion_mnist(dir.path(), 2, 3);
    CHECK(data.train_images.count == 7);
    CHECK(data.train_labels.size() == 7);
    CHECK(data.test_images.count == 3);
    CHECK(data.test_labels.size() == 3);
    CHECK(data.test_images.rows == 2);
    CHECK(data.test_images.cols == 3);
  }
  SUBCASE("train mismatch") {
    write_fake_set(dir.path(), 7, 6, 3, 3);
    const std::string msg = file_error_message([&] { (void)load_fashion_mnist(dir.path(), 2, 3); });
    CHECK(contains(msg, "count mismatch"));
    CHECK(contains(msg, (dir.path() / "train-images-idx3-ubyte.gz").string()));
    CHECK(contains(msg, (dir.path() / "train-labels-idx1-ubyte.gz").string()));
    CHECK(contains(msg, "7 images"));
    CHECK(contains(msg, "6 labels"));
  }
  SUBCASE("test mismatch") {
    write_fake_set(dir.path(), 7, 7, 3, 4);
    const std::string msg = file_error_message([&] { (void)load_fashion_mnist(dir.path(), 2, 3); });
    CHECK(contains(msg, "count mismatch"));
    CHECK(contains(msg, (dir.path() / "t10k-labels-idx1-ubyte.gz").string()));
  }
  SUBCASE("missing file names it") {
    write_fake_set(dir.path(), 7, 7, 3, 3);
    fs::remove(dir.path() / "t10k-images-idx3-ubyte.gz");
    const std::string msg = file_error_message([&] { (void)load_fashion_mnist(dir.path(), 2, 3); });
    CHECK(contains(msg, (dir.path() / "t10k-images-idx3-ubyte.gz").string()));
  }
}

// ctest runs this case on its own (examples.fashion_mnist) and reports it as
// skipped, not passed, when it prints the "skipped:" line below.
// PLATOON_FASHION_MNIST_DIR points it elsewhere (to see the skip, say).
TEST_CASE("the real Fashion-MNIST loads when installed") {
  const char* override_dir = std::getenv("PLATOON_FASHION_MNIST_DIR");
  const fs::path dir = override_dir != nullptr ? fs::path(override_dir) : fs::path(default_fashion_mnist_dir());
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: no Fashion-MNIST in " << dir.string());
    return;
  }
  const FashionMnist data = load_fashion_mnist(dir);
  CHECK(data.train_images.count == 60000);
  CHECK(data.train_labels.size() == 60000);
  CHECK(data.test_images.count == 10000);
  CHECK(data.test_labels.size() == 10000);
  CHECK(data.train_images.rows == 28);
  CHECK(data.train_images.cols == 28);
  CHECK(data.test_images.rows == 28);
  CHECK(data.test_images.cols == 28);
  // Every class occurs, and pixels span the whole range.
  std::vector<int> per_class(10, 0);
  for (std::uint8_t label : data.train_labels) ++per_class[label];
  for (int count : per_class) CHECK(count == 6000);
  float lo = 1.0f, hi = 0.0f;
  for (float p : data.test_images.pixels) {
    lo = std::min(lo, p);
    hi = std::max(hi, p);
  }
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);
}

TEST_CASE("images of another size than the model needs are rejected at load, naming the file") {
  TempDir dir;
  write_fake_set(dir.path(), 7, 7, 3, 3);  // 2x3 images
  const std::string msg = file_error_message([&] { (void)load_fashion_mnist(dir.path()); });  // 28x28 expected
  CHECK(contains(msg, (dir.path() / "train-images-idx3-ubyte.gz").string()));
  CHECK(contains(msg, "2x3"));
  CHECK(contains(msg, "28x28"));
}

namespace {

// Runs `fn` in a child process whose address space is capped at `limit`
// bytes; returns whether it returned true there (an exception, bad_alloc
// included, counts as false).
template <typename Fn>
bool holds_within_memory(std::size_t limit, Fn&& fn) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const rlimit cap{limit, limit};
    ::setrlimit(RLIMIT_AS, &cap);
    bool ok = false;
    try {
      ok = fn();
    } catch (...) {
    }
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

}  // namespace

TEST_CASE("the header is checked before any large read: /dev/zero as a labels file fails at once") {
  if (kSanitized) {
    MESSAGE("skipped: a sanitizer's shadow memory does not fit under an address-space limit");
    return;
  }
  // The whole file read first would run into the 512 MiB limit (bad_alloc).
  CHECK(holds_within_memory(std::size_t{512} << 20, [] {
    try {
      (void)load_idx_labels("/dev/zero");
    } catch (const platoon::FileError& e) {
      return contains(e.what(), "/dev/zero") && contains(e.what(), "element type");
    }
    return false;
  }));
}

TEST_CASE("a header announcing more than the loader accepts is rejected before reading the data") {
  TempDir dir;
  const fs::path path = dir.path() / "huge-idx3-ubyte.gz";
  write_file(path, idx_bytes({100000, 1000, 1000}, ramp(100, 256)), true);
  const std::string msg = file_error_message([&] { (void)load_idx_images(path); });
  CHECK(contains(msg, path.string()));
  CHECK(contains(msg, "100000 x 1000 x 1000"));
  CHECK(contains(msg, "at most"));
}
