// libFuzzer target: arbitrary bytes as a parameter segment in /dev/shm, read
// through SharedSegment::inspect() and, when sound, attach(): what every
// controller does with every "platoon-*" object at start. Every input must
// give a verdict, never a crash or a read outside the mapping.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/shm/shm_object.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;  // an empty object cannot be created
  static const std::string name = platoon::str_cat("platoon-fuzz-segment-", ::getpid());
  platoon::ShmObject::remove(name);
  {
    platoon::ShmObject object = platoon::ShmObject::create(name, size);
    std::memcpy(object.data(), data, size);
  }
  const platoon::SegmentInfo info = platoon::SharedSegment::inspect(name);
  (void)platoon::stale_reason(info);
  if (info.problem.empty() && info.layout) {
    try {
      (void)platoon::SharedSegment::attach(name, *info.layout, std::chrono::milliseconds(1));
    } catch (const platoon::Error&) {
      // not ready, or refused: a verdict
    }
  }
  platoon::ShmObject::remove(name);
  return 0;
}
