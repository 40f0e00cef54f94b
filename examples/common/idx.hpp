// Loading of IDX files (the MNIST / Fashion-MNIST format), gzipped or plain.
//
// Every failure throws platoon::FileError whose message names the file and
// says what is wrong with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace platoon::examples {

/// A set of greyscale images, stored image after image, row-major.
struct IdxImages {
  std::size_t count = 0;
  std::size_t rows = 0;
  std::size_t cols = 0;
  /// count * rows * cols pixels scaled from 0..255 to [0, 1].
  std::vector<float> pixels;

  /// Pixels per image (rows * cols).
  [[nodiscard]] std::size_t image_size() const { return rows * cols; }
  /// First pixel of image `i` (no bounds check).
  [[nodiscard]] const float* image(std::size_t i) const { return pixels.data() + i * image_size(); }
};

/// Reads an IDX file of unsigned bytes with three dimensions (count, rows,
/// cols). The magic, the element type and the dimensions are read and
/// checked from the header before any data: the data read is exactly what
/// the header announces, at most 512 MiB (after decompression), so a wrong
/// file or a gzip bomb is refused without being read. Throws FileError when
/// the file is missing, unreadable, not an IDX file, of another element type
/// or dimension count, announces too much, or is truncated. Bytes after the
/// announced data are not read.
IdxImages load_idx_images(const std::filesystem::path& path);

/// Reads an IDX file of unsigned bytes with one dimension. Throws FileError
/// for the same reasons as load_idx_images(), and when a label is not in
/// 0..num_classes-1 (the message gives the label and its index).
std::vector<std::uint8_t> load_idx_labels(const std::filesystem::path& path, int num_classes = 10);

/// The four files of Fashion-MNIST.
struct FashionMnist {
  IdxImages train_images;
  std::vector<std::uint8_t> train_labels;
  IdxImages test_images;
  std::vector<std::uint8_t> test_labels;
};

/// Loads train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
/// t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from `dir`.
/// Throws FileError for any broken file, when a set's image and label counts
/// differ, and when an images file's images are not `rows` x `cols` (what
/// the model needs; the message names the file and both sizes).
FashionMnist load_fashion_mnist(const std::filesystem::path& dir, std::size_t rows = 28, std::size_t cols = 28);

/// Where Debian's packaged Fashion-MNIST lives: /usr/share/datasets/fashion-mnist.
std::string default_fashion_mnist_dir();

}  // namespace platoon::examples
