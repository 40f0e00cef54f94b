// The shared parameter segment: one POSIX shared-memory object per job that
// holds the central values of every parameter, described by a self-checking
// header, and cut into chunks that each have a lock surviving its holder's
// death.
//
// Memory map (all offsets in the header):
//   [header: magic, version, state, owner, sizes, checksum]
//   [layout as JSON text: names, shapes, dtype, offsets]
//   [one robust process-shared mutex per chunk, 64 bytes each]
//   [central values: float32, 4096-byte aligned]
//
// The header has no Boost or pthread types in this file: users of Soldier do
// not need those headers.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "platoon/common/log.hpp"
#include "platoon/common/params.hpp"
#include "platoon/process/process.hpp"

namespace platoon {

/// What platoon-shm and the stale-state check read from a segment header.
struct SegmentInfo {
  std::string name;
  std::string job_id;
  ProcessId controller;          ///< the controller of the job (owner)
  ProcessId creator;             ///< the worker that created the segment
  bool ready = false;            ///< the central values have been initialized
  std::size_t bytes = 0;         ///< size of the shared-memory object
  std::int64_t created_unix_ms = 0;
  std::optional<Layout> layout;  ///< absent when the header is unreadable
  std::string problem;           ///< why the header is unreadable, else empty
  /// Whether `controller` was read: every platoon object (this segment, and
  /// a job's group segments, slots and shared data, of any format version)
  /// starts with "PLATOON", a version, a state and its controller's pid and
  /// start time at bytes 16 and 24, so its owner is known even when the rest
  /// of its header is not readable by this build.
  bool owner_known = false;
};

/// Checks a parameter segment's header from raw bytes (the object's real
/// size): magic, version, every region inside `size` without overflow, in
/// order and aligned, then the checksum. Returns the problem, or an empty
/// string. What inspect() and attach() use, and the fuzz target.
std::string segment_header_problem(const void* base, std::size_t size);

/// Why `info`'s object may be removed as stale, or an empty string when it
/// must be kept: only an object whose controller is positively dead (its pid
/// gone, or reused by another process) is stale, whatever its format. One
/// whose owner cannot be read is kept.
std::string stale_reason(const SegmentInfo& info);

/// A scoped hold on one or more chunk locks; releases them when destroyed.
/// Move-only.
class SegmentLock {
 public:
  SegmentLock() = default;
  ~SegmentLock();
  SegmentLock(SegmentLock&& other) noexcept;
  SegmentLock& operator=(SegmentLock&& other) noexcept;
  SegmentLock(const SegmentLock&) = delete;
  SegmentLock& operator=(const SegmentLock&) = delete;

  /// Releases the locks now (idempotent).
  void release() noexcept;
  [[nodiscard]] bool held() const { return !mutexes_.empty(); }

 private:
  friend class SharedSegment;
  std::vector<void*> mutexes_;  // pthread_mutex_t*, released in reverse order
};

/// One job's shared parameter segment, mapped into this process.
/// Move-only; unmapping never removes the segment (see remove()).
class SharedSegment {
 public:
  /// Elements per chunk when the creator does not choose: 1 Mi floats (4 MiB).
  static constexpr std::size_t kDefaultChunkElements = std::size_t{1} << 20;

  /// Creates the segment `name` (readable by its owner only) for `layout`,
  /// in the "initializing" state. Throws ResourceError if it exists already
  /// or cannot be created (the message names the segment).
  static SharedSegment create(const std::string& name, const std::string& job_id, const Layout& layout,
                              const ProcessId& controller, std::size_t chunk_elements = kDefaultChunkElements);

  /// Maps an existing segment, checks its header (magic, version, checksum)
  /// and waits up to `timeout` for it to become ready. Throws ResourceError
  /// if it does not exist, LayoutError if its header is corrupted or its
  /// layout differs from `expected` (naming the first differing parameter),
  /// TimeoutError if it does not become ready in time.
  static SharedSegment attach(const std::string& name, const Layout& expected, std::chrono::milliseconds timeout);

  /// Reads a segment's header without attaching. Never throws for a bad
  /// header: SegmentInfo::problem says what is wrong.
  static SegmentInfo inspect(const std::string& name);

  /// Removes the segment's name; processes that mapped it keep their mapping.
  /// Returns false if there was nothing to remove.
  static bool remove(const std::string& name) noexcept;

  /// Names of every platoon object on this host ("/dev/shm/platoon-*").
  static std::vector<std::string> list();

  /// Removes every platoon object of this host (segments, and jobs' group
  /// segments, slots and shared data) that stale_reason() calls stale: its
  /// controller is positively dead. Anything else is kept, whatever its
  /// format. Each removal is logged as a warning. Returns the names removed.
  static std::vector<std::string> reclaim_dead(const Logger& log);

  /// The segment name platoon uses for a job.
  static std::string name_for_job(const std::string& job_id);

  SharedSegment(SharedSegment&&) noexcept;
  SharedSegment& operator=(SharedSegment&&) noexcept;
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  ~SharedSegment();

  /// Publishes the central values: attach() waits for this.
  void mark_ready();

  [[nodiscard]] const std::string& name() const;
  [[nodiscard]] const Layout& layout() const;
  /// Every central value, in layout order.
  [[nodiscard]] std::span<float> values() const;

  [[nodiscard]] std::size_t num_chunks() const;
  /// Elements per chunk (the last chunk may be shorter).
  [[nodiscard]] std::size_t chunk_elements() const;
  /// The central values of chunk `i`.
  [[nodiscard]] std::span<float> chunk(std::size_t i) const;

  /// Locks chunk `i`, waiting at most `timeout`. If the previous holder died
  /// while holding it, the lock is recovered and `log` says so (the chunk may
  /// hold a partial update). Throws TimeoutError naming the segment, the
  /// chunk and the holder's pid.
  [[nodiscard]] SegmentLock lock_chunk(std::size_t i, std::chrono::milliseconds timeout, const Logger& log) const;

  /// Locks every chunk, in order (the order sync uses, so no deadlock).
  [[nodiscard]] SegmentLock lock_all(std::chrono::milliseconds timeout, const Logger& log) const;

 private:
  struct Impl;
  explicit SharedSegment(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace platoon
