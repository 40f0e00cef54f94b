#include "platoon/shm/object_prefix.hpp"

#include <cstring>

namespace platoon {

void ObjectPrefix::init(const char (&kind_magic)[8], std::uint32_t format_version, std::uint32_t initial_state,
                        const ProcessId& controller) {
  std::memcpy(magic, kind_magic, sizeof magic);
  version = format_version;
  state.store(initial_state, std::memory_order_relaxed);
  controller_pid = controller.pid;
  controller_start_ticks = controller.start_ticks;
}

std::optional<ProcessId> object_owner(const void* base, std::size_t size) {
  if (base == nullptr || size < sizeof(ObjectPrefix) || std::memcmp(base, "PLATOON", 7) != 0) return std::nullopt;
  const auto* bytes = static_cast<const unsigned char*>(base);
  ProcessId owner;
  std::memcpy(&owner.pid, bytes + offsetof(ObjectPrefix, controller_pid), sizeof owner.pid);
  std::memcpy(&owner.start_ticks, bytes + offsetof(ObjectPrefix, controller_start_ticks), sizeof owner.start_ticks);
  return owner;
}

}  // namespace platoon
