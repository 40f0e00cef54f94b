// The first 32 bytes of every platoon object in shared memory: the parameter
// segment, a job's group segments and slots, shared data sets. Whatever an
// object's kind and format version, its owner (the job's controller) sits at
// the same place, so that the stale-object check can judge any of them, even
// one written by another build.
//
//   bytes 0-7    magic, "PLATOON" and a letter for the kind
//   bytes 8-11   format version of that kind
//   bytes 12-15  state (being written, ready, ...: the kind's own values)
//   bytes 16-23  the controller's pid
//   bytes 24-31  the controller's start time (clock ticks since boot)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "platoon/process/process.hpp"

namespace platoon {

/// Every object's header starts with this (its headers derive from it).
struct ObjectPrefix {
  char magic[8];
  std::uint32_t version;
  std::atomic<std::uint32_t> state;
  std::int64_t controller_pid;
  std::uint64_t controller_start_ticks;

  /// Fills the prefix of a header being written (state last is up to the caller).
  void init(const char (&kind_magic)[8], std::uint32_t format_version, std::uint32_t initial_state,
            const ProcessId& controller);
};
static_assert(sizeof(ObjectPrefix) == 32);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

/// Shared-memory objects lay out their regions in pages of this size.
inline constexpr std::size_t kShmPage = 4096;

/// The controller that owns the object at `base` (`size` bytes), read from
/// its prefix: nullopt when it is shorter than the prefix or its magic does
/// not start with "PLATOON".
std::optional<ProcessId> object_owner(const void* base, std::size_t size);

}  // namespace platoon
