// libFuzzer target: arbitrary bytes as a checkpoint file, read through
// load_checkpoint(), as a controller given --resume does. Every input must
// be loaded or refused with FileError, never crash or allocate what the
// file does not hold.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/shm/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // In /dev/shm: a file on tmpfs is written and read without a disk.
  static const std::string path = platoon::str_cat("/dev/shm/platoon-fuzz-checkpoint-", ::getpid());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    const platoon::Checkpoint c = platoon::load_checkpoint(path);
    if (c.values.size() != c.layout.total_size()) __builtin_trap();
  } catch (const platoon::FileError&) {
    // refused, with the reason
  }
  ::unlink(path.c_str());
  return 0;
}
