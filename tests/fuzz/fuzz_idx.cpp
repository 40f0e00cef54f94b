// libFuzzer target: arbitrary bytes as an IDX file (plain or gzipped), read
// through load_idx_images() and load_idx_labels() as the examples read
// Fashion-MNIST. Every input must be loaded or refused with FileError, never
// crash, read past its data, or allocate more than the header may announce
// (512 MiB) and the file really holds.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "common/idx.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // In /dev/shm: a file on tmpfs is written and read without a disk.
  static const std::string path = platoon::str_cat("/dev/shm/platoon-fuzz-idx-", ::getpid());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    const platoon::examples::IdxImages images = platoon::examples::load_idx_images(path);
    if (images.pixels.size() != images.count * images.rows * images.cols) __builtin_trap();
    for (const float p : images.pixels)
      if (!(p >= 0.0f && p <= 1.0f)) __builtin_trap();
  } catch (const platoon::FileError&) {
    // refused, with the reason
  }
  try {
    for (const std::uint8_t label : platoon::examples::load_idx_labels(path))
      if (label >= 10) __builtin_trap();
  } catch (const platoon::FileError&) {
  }
  ::unlink(path.c_str());
  return 0;
}
