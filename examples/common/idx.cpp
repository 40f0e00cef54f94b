#include "common/idx.hpp"

#include <algorithm>
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

/// The most data bytes an IDX file may announce (Fashion-MNIST's training
/// images are 47 MB): a wrong file or a gzip bomb stops here, not at bad_alloc.
constexpr std::size_t kMaxDataBytes = std::size_t{512} << 20;

// An open IDX file, plain or gzipped (gzread passes plain files through),
// read in order: the header first, then exactly the announced data.
class IdxReader {
 public:
  explicit IdxReader(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail(path, "no such file");
    if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not a file");
    errno = 0;
    file_.reset(gzopen(path.c_str(), "rb"));
    if (!file_) fail(path, std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "out of memory"));
  }

  /// Appends up to `n` bytes to `out`, in chunks, so that memory grows only
  /// with the data that is really there. Returns how many were read.
  std::size_t read(std::vector<std::uint8_t>& out, std::size_t n) {
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    std::size_t done = 0;
    while (done < n) {
      const std::size_t want = std::min(kChunk, n - done);
      const std::size_t old_size = out.size();
      out.resize(old_size + want);
      const int got = gzread(file_.get(), out.data() + old_size, static_cast<unsigned>(want));
      if (got < 0) {
        int code = 0;
        const char* message = gzerror(file_.get(), &code);
        fail(path_, std::string("truncated or corrupt gzip data (zlib: ") + message + ")");
      }
      out.resize(old_size + static_cast<std::size_t>(got));
      done += static_cast<std::size_t>(got);
      if (got == 0) break;
    }
    if (done < n) {
      // zlib reports a gzip stream cut short as Z_BUF_ERROR after returning
      // what it could decompress, not as a read error.
      int code = Z_OK;
      const char* message = gzerror(file_.get(), &code);
      if (code == Z_BUF_ERROR) fail(path_, std::string("truncated gzip stream (zlib: ") + message + ")");
    }
    return done;
  }

 private:
  std::filesystem::path path_;
  GzHandle file_;
};

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
  IdxReader reader(path);
  // The magic first: a file that is not IDX is never read further.
  if (reader.read(idx.bytes, 4) < 4) {
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
  const std::size_t header_size = 4 + 4 * expected_dims;
  if (reader.read(idx.bytes, header_size - 4) < header_size - 4) {
    fail(path, "truncated: " + std::to_string(idx.bytes.size()) + " bytes, the header alone needs " +
                   std::to_string(header_size));
  }
  // The counts, then their product, bounded before any of the data is read.
  std::size_t total = 1;
  bool too_big = false;
  std::string shape;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::size_t dim = read_be32(idx.bytes.data() + 4 + 4 * d);
    idx.dims.push_back(dim);
    shape += (d ? " x " : "") + std::to_string(dim);
    if (dim != 0 && total > kMaxDataBytes / dim) too_big = true;
    if (!too_big) total *= dim;
  }
  if (too_big || total > kMaxDataBytes) {
    fail(path, "the header announces " + shape + " bytes of data; this loader reads at most " +
                   std::to_string(kMaxDataBytes) + " bytes");
  }
  const std::size_t available = reader.read(idx.bytes, total);
  if (available < total) {
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

FashionMnist load_fashion_mnist(const std::filesystem::path& dir, std::size_t rows, std::size_t cols) {
  const auto train_images = dir / "train-images-idx3-ubyte.gz";
  const auto train_labels = dir / "train-labels-idx1-ubyte.gz";
  const auto test_images = dir / "t10k-images-idx3-ubyte.gz";
  const auto test_labels = dir / "t10k-labels-idx1-ubyte.gz";
  FashionMnist data;
  // The image size the model needs is checked here, once, for both sets.
  auto check_size = [&](const std::filesystem::path& path, const IdxImages& images) {
    if (images.rows != rows || images.cols != cols) {
      fail(path, "holds " + std::to_string(images.rows) + "x" + std::to_string(images.cols) +
                     " images; the model needs " + std::to_string(rows) + "x" + std::to_string(cols));
    }
  };
  data.train_images = load_idx_images(train_images);
  check_size(train_images, data.train_images);
  data.train_labels = load_idx_labels(train_labels);
  data.test_images = load_idx_images(test_images);
  check_size(test_images, data.test_images);
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
