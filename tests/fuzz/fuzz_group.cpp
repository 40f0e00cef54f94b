// libFuzzer target: arbitrary bytes as a collective group segment, a
// worker's slot and a shared data set, read the way ShmCollective::attach()
// and SharedDataset::open_or_create() read what they map.
// Every input must give a verdict (a problem or none), never a crash or a
// read outside the bytes. Seeds: real segments written by seed_group.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "platoon/collective/shm_collective.hpp"
#include "platoon/shm/shared_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Mapped segments are page-aligned; so is this copy (and ASan bounds it exactly).
  const std::size_t rounded = (size + 4095) / 4096 * 4096;
  std::unique_ptr<void, decltype(&std::free)> buffer(std::aligned_alloc(4096, rounded == 0 ? 4096 : rounded),
                                                     &std::free);
  if (size > 0) std::memcpy(buffer.get(), data, size);
  const std::string group = platoon::group_header_problem(size == 0 ? nullptr : buffer.get(), size);
  const std::string slot = platoon::slot_header_problem(size == 0 ? nullptr : buffer.get(), size);
  const std::string dataset = platoon::dataset_header_problem(size == 0 ? nullptr : buffer.get(), size);
  // A sound group segment is at least a header page plus one rank's block.
  if (group.empty() && size < 4096) std::abort();
  return 0;
}
