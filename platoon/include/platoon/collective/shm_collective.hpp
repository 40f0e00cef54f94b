// The shared-memory backend of the collective layer, for the workers of one
// host.
//
// Each worker owns a buffer in shared memory, its "slot" (a ShmObject it
// creates once and keeps for its whole life, so its address never changes).
// The controller creates one group segment per epoch (GroupSegment::create)
// naming each member's process and slot; each worker maps it at its rank
// (ShmCollective::attach), and with it every other member's slot. The group
// segment holds, per rank, a progress counter that only ever grows. Every step of a collective is
// "write my part, bump my counter, wait until every counter has reached the
// same value"; waits spin briefly, then sleep on a futex in the segment.
//
// all_reduce below 1 MiB: every rank reduces all slots (one pass, lowest
// latency). From 1 MiB: reduce-scatter then all-gather, pipelined in 1 MiB
// chunks: each rank sums its own slice of each chunk over every slot (in rank
// order, so the bits are the same everywhere) and writes it back into its own
// slot, and every rank then copies the reduced slices out. A buffer that
// already lives in this rank's slot (registered_buffer()) is reduced where it
// is: nothing is copied in, and the result is read in place.
//
// A peer that dies (its pid is gone) or makes no progress for the call's
// timeout breaks the group: the rank that sees it marks the segment broken,
// and every rank's current and later calls throw PeerLostError naming the
// lost rank and its pid.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "platoon/collective/collective.hpp"
#include "platoon/process/process.hpp"
#include "platoon/shm/shm_object.hpp"

namespace platoon {

/// The largest group the shared-memory backend forms.
inline constexpr int kMaxShmGroupSize = 256;

/// Creates a worker's slot `name`: `elements` floats in shared memory behind
/// a one-page header that names the job's controller (every platoon segment
/// starts with magic, version, state and the controller's pid and start
/// time, so stale-segment tools can judge any of them). Throws ResourceError
/// as ShmObject::create does.
ShmObject create_slot(const std::string& name, std::size_t elements, const ProcessId& controller);

/// The floats of a slot made by create_slot(). Throws LayoutError naming the
/// object if it is not a sound slot.
std::span<float> slot_values(const ShmObject& slot);

/// Checks a slot's header from raw bytes (magic, version, state, a size
/// inside `size`). Returns the problem, or an empty string. Used by
/// slot_values() and by the fuzz target.
std::string slot_header_problem(const void* base, std::size_t size);

/// One member of a group, as the controller writes it into the segment.
struct GroupMember {
  ProcessId process;
  std::string slot_name;          ///< the member's slot (a ShmObject's name)
  std::size_t slot_elements = 0;  ///< floats in that slot
};

/// The group segment of one epoch, as the controller creates and retires it.
/// Move-only; destroying it unmaps only (see remove()).
class GroupSegment {
 public:
  /// Creates segment `name` for `members` (rank order). Throws
  /// ResourceError (exists, no space) or Error (no members, too many, a slot
  /// name that is not a platoon name or too long).
  static GroupSegment create(const std::string& name, const std::string& job_id, std::uint64_t epoch,
                             const std::vector<GroupMember>& members, const ProcessId& controller);

  GroupSegment(GroupSegment&&) noexcept;
  GroupSegment& operator=(GroupSegment&&) noexcept;
  GroupSegment(const GroupSegment&) = delete;
  GroupSegment& operator=(const GroupSegment&) = delete;
  ~GroupSegment();

  [[nodiscard]] const std::string& name() const;
  [[nodiscard]] std::uint64_t epoch() const;

  /// Ends the epoch: a member still waiting in a collective gets
  /// PeerLostError("epoch ... is over") at once instead of at its timeout.
  void retire() noexcept;

  /// Breaks the epoch because the member at `rank` is gone (the controller
  /// saw its process end): every member's collective throws PeerLostError
  /// naming that rank and its pid at once. Out of range: as retire().
  void lose(int rank) noexcept;

  /// Whether a member marked the epoch broken, and which rank was lost
  /// (-1 when none, or when only retire() ended it).
  [[nodiscard]] int lost_rank() const;

  /// Removes a segment's name (mappings stay valid). False if none.
  static bool remove(const std::string& name) noexcept;

 private:
  struct Impl;
  explicit GroupSegment(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Checks a group segment's header from raw bytes: magic, version, checksum,
/// sizes, every region inside `size` bytes, without overflow. Returns the
/// problem, or an empty string. Used by attach() and by the fuzz target.
std::string group_header_problem(const void* base, std::size_t size);

/// One rank of a group, mapped into this process.
class ShmCollective final : public Collective {
 public:
  /// Maps group segment `name` as `rank`, whose slot is `own_slot` (mapped by
  /// the caller, who keeps it alive longer than this object), and maps every
  /// other member's slot. Throws ResourceError if a segment or slot does not
  /// exist, LayoutError if the header is not sound or a slot is smaller than
  /// it says, Error if `rank` is outside the group or the segment names
  /// another process or another slot at that rank.
  static std::unique_ptr<ShmCollective> attach(const std::string& name, int rank, const ShmObject& own_slot,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(5));

  ~ShmCollective() override;
  ShmCollective(const ShmCollective&) = delete;
  ShmCollective& operator=(const ShmCollective&) = delete;

  [[nodiscard]] GroupPosition position() const override;
  [[nodiscard]] std::chrono::milliseconds timeout() const override;
  void set_timeout(std::chrono::milliseconds timeout);

  /// This rank's slot, up to the smallest slot of the group: a buffer in
  /// shared memory that all_reduce reduces in place, with nothing copied in
  /// or out. Data elsewhere, or larger, goes through the slots in rounds.
  [[nodiscard]] std::span<float> registered_buffer() const;

  using Collective::all_reduce;
  using Collective::barrier;
  using Collective::broadcast;
  using Collective::broadcast_bytes;
  using Collective::all_gather;
  void all_reduce(std::span<float> data, ReduceOp op, std::chrono::milliseconds timeout) override;
  void broadcast(std::span<float> data, int root, std::chrono::milliseconds timeout) override;
  void broadcast_bytes(std::string& data, int root, std::chrono::milliseconds timeout) override;
  void barrier(std::chrono::milliseconds timeout) override;
  std::vector<double> all_gather(std::span<const double> values, std::chrono::milliseconds timeout) override;

  /// Whether the group is broken (a peer lost, the epoch retired, or a call
  /// whose sizes disagreed): every later call throws.
  [[nodiscard]] bool broken() const;
  /// The rank whose loss broke the group, or -1 (not broken, or the epoch
  /// was retired, or only a size disagreement).
  [[nodiscard]] int lost_rank() const;

 private:
  struct Impl;
  explicit ShmCollective(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace platoon
