#include "common/idx.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>

#include <zlib.h>

#include "platoon/common/error.hpp"

namespace platoon::examples {
namespace {

constexpr std::uint8_t kUnsignedByteType = 0x08;

std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw FileError("IDX file " + quoted(path) + ": " + what);
}

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

// Reads the whole (decompressed) content. Reading everything first means a
// header that announces more than the file holds never makes us allocate
// more than the real data; gzread passes plain files through unchanged.
std::vector<std::uint8_t> read_all(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, "no such file");
  if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not a file");
  errno = 0;
  GzHandle file(gzopen(path.c_str(), "rb"));
  if (!file) {
    fail(path, std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "out of memory"));
  }
  std::vector<std::uint8_t> bytes;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    const std::size_t old_size = bytes.size();
    bytes.resize(old_size + kChunk);
    const int got = gzread(file.get(), bytes.data() + old_size, kChunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      fail(path, std::string("truncated or corrupt gzip data (zlib: ") + message + ")");
    }
    bytes.resize(old_size + static_cast<std::size_t>(got));
    if (got == 0) break;
  }
  // zlib reports a gzip stream cut short as Z_BUF_ERROR after returning what
  // it could decompress, not as a read error.
  int code = Z_OK;
  const char* message = gzerror(file.get(), &code);
  if (code == Z_BUF_ERROR) fail(path, std::string("truncated gzip stream (zlib: ") + message + ")");
  return bytes;
}

std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::string hex(std::uint32_t value, int digits) {
  std::ostringstream out;
  out << "0x" << std::hex;
  out.width(digits);
  out.fill('0');
  out << value;
  return out.str();
}

// A parsed IDX file of unsigned bytes: its dimensions and a pointer to the
// data inside `bytes`.
struct IdxContent {
  std::vector<std::uint8_t> bytes;
  std::vector<std::size_t> dims;
  std::size_t data_offset = 0;
  std::size_t data_size = 0;
};

IdxContent parse_idx(const std::filesystem::path& path, std::size_t expected_dims) {
  IdxContent idx;
  idx.bytes = read_all(path);
  const std::size_t header_size = 4 + 4 * expected_dims;
  if (idx.bytes.size() < 4) {
    fail(path, "truncated: " + std::to_string(idx.bytes.size()) +
                   " bytes, too short for the 4-byte magic number");
  }
  const std::uint32_t magic = read_be32(idx.bytes.data());
  if (idx.bytes[0] != 0 || idx.bytes[1] != 0) {
    fail(path, "not an IDX file (magic number " + hex(magic, 8) +
                   " found; an IDX magic starts with two zero bytes)");
  }
  const std::uint8_t type = idx.bytes[2];
  const std::size_t ndims = idx.bytes[3];
  if (type != kUnsignedByteType) {
    fail(path, "wrong element type " + hex(type, 2) + " (magic " + hex(magic, 8) +
                   "); expected 0x08, unsigned byte");
  }
  if (ndims != expected_dims) {
    fail(path, "has " + std::to_string(ndims) + " dimensions (magic " + hex(magic, 8) +
                   "); expected " + std::to_string(expected_dims));
  }
  if (idx.bytes.size() < header_size) {
    fail(path, "truncated: " + std::to_string(idx.bytes.size()) + " bytes, the header alone needs " +
                   std::to_string(header_size));
  }
  std::size_t total = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::size_t dim = read_be32(idx.bytes.data() + 4 + 4 * d);
    idx.dims.push_back(dim);
    // Overflow would mean the header announces more than any file can hold.
    if (dim != 0 && total > std::numeric_limits<std::size_t>::max() / dim) {
      fail(path, "truncated: the header announces more data than can exist");
    }
    total *= dim;
  }
  const std::size_t available = idx.bytes.size() - header_size;
  if (available < total) {
    std::string shape;
    for (std::size_t d = 0; d < ndims; ++d) shape += (d ? " x " : "") + std::to_string(idx.dims[d]);
    fail(path, "truncated: the header announces " + shape + " = " + std::to_string(total) +
                   " bytes of data but only " + std::to_string(available) + " follow");
  }
  idx.data_offset = header_size;
  idx.data_size = total;
  return idx;
}

}  // namespace

IdxImages load_idx_images(const std::filesystem::path& path) {
  const IdxContent idx = parse_idx(path, 3);
  IdxImages images;
  images.count = idx.dims[0];
  images.rows = idx.dims[1];
  images.cols = idx.dims[2];
  images.pixels.resize(idx.data_size);
  const std::uint8_t* data = idx.bytes.data() + idx.data_offset;
  for (std::size_t i = 0; i < idx.data_size; ++i) {
    images.pixels[i] = static_cast<float>(data[i]) * (1.0f / 255.0f);
  }
  return images;
}

std::vector<std::uint8_t> load_idx_labels(const std::filesystem::path& path, int num_classes) {
  const IdxContent idx = parse_idx(path, 1);
  const auto first = idx.bytes.begin() + static_cast<std::ptrdiff_t>(idx.data_offset);
  std::vector<std::uint8_t> labels(first, first + static_cast<std::ptrdiff_t>(idx.data_size));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= num_classes) {
      fail(path, "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                     " is out of range 0.." + std::to_string(num_classes - 1));
    }
  }
  return labels;
}

FashionMnist load_fashion_mnist(const std::filesystem::path& dir) {
  const auto train_images = dir / "train-images-idx3-ubyte.gz";
  const auto train_labels = dir / "train-labels-idx1-ubyte.gz";
  const auto test_images = dir / "t10k-images-idx3-ubyte.gz";
  const auto test_labels = dir / "t10k-labels-idx1-ubyte.gz";
  FashionMnist data;
  data.train_images = load_idx_images(train_images);
  data.train_labels = load_idx_labels(train_labels);
  data.test_images = load_idx_images(test_images);
  data.test_labels = load_idx_labels(test_labels);

  auto check_counts = [](const std::filesystem::path& images_path, std::size_t images,
                         const std::filesystem::path& labels_path, std::size_t labels) {
    if (images != labels) {
      throw FileError("image/label count mismatch: " + quoted(images_path) + " holds " +
                      std::to_string(images) + " images but " + quoted(labels_path) + " holds " +
                      std::to_string(labels) + " labels");
    }
  };
  check_counts(train_images, data.train_images.count, train_labels, data.train_labels.size());
  check_counts(test_images, data.test_images.count, test_labels, data.test_labels.size());
  if (data.train_images.rows != data.test_images.rows ||
      data.train_images.cols != data.test_images.cols) {
    throw FileError("image size mismatch: " + quoted(train_images) + " holds " +
                    std::to_string(data.train_images.rows) + "x" +
                    std::to_string(data.train_images.cols) + " images but " + quoted(test_images) +
                    " holds " + std::to_string(data.test_images.rows) + "x" +
                    std::to_string(data.test_images.cols));
  }
  return data;
}

std::string default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

}  // namespace platoon::examples
