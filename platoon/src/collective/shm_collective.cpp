#include "platoon/collective/shm_collective.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <limits>
#include <cstring>
#include <thread>

#include "../common/vector_loop.hpp"
#include "platoon/common/checksum.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/shm/object_prefix.hpp"
#include "platoon/shm/shm_object.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace platoon {

const char* to_string(ReduceOp op) { return op == ReduceOp::sum ? "sum" : "mean"; }

std::string Collective::describe() const {
  const GroupPosition p = position();
  return str_cat("epoch ", p.epoch, ", rank ", p.rank, " of ", p.size);
}

namespace {

constexpr char kMagic[8] = {'P', 'L', 'A', 'T', 'O', 'O', 'N', 'G'};
constexpr char kSlotMagic[8] = {'P', 'L', 'A', 'T', 'O', 'O', 'N', 'S'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kStateReady = 2;
constexpr std::size_t kPage = kShmPage;
constexpr std::size_t kJobIdBytes = 128;
constexpr std::uint32_t kRetired = 0xffffffffu;
// Below this many bytes all_reduce takes the one-pass path.
constexpr std::size_t kSmallBytes = std::size_t{1} << 20;
// Pipeline chunk of the large path, in floats (1 MiB).
constexpr std::size_t kPipelineElements = std::size_t{1} << 18;
// Reduction block: the partial sums of one block stay in L1.
constexpr std::size_t kReduceBlock = 2048;
// Slices start on 64-byte boundaries.
constexpr std::size_t kSliceAlign = 16;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// The fixed header. Its first 32 bytes have the same shape as the parameter
// segment's (magic, version, state, controller pid, controller start time), so
// that the stale-segment tools can judge any platoon segment by its owner.
struct Header : ObjectPrefix {
  std::uint64_t epoch;
  std::uint64_t size;          // ranks
  std::uint64_t ranks_offset;  // RankBlock[size]
  std::uint64_t total_bytes;
  char job_id[kJobIdBytes];
  std::uint64_t checksum;  // FNV-1a of magic, version and every field from controller_pid to job_id
  // Mutable state, not covered by the checksum.
  alignas(64) std::atomic<std::uint32_t> broken;  // 0, lost rank + 1, or kRetired
  std::atomic<std::int64_t> broken_pid;
  alignas(64) std::atomic<std::uint32_t> wake;     // futex word, bumped on every progress while sleepers > 0
  std::atomic<std::uint32_t> sleepers;
};
static_assert(sizeof(Header) <= kPage);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// A slot's header: the common prefix, then its size. The floats start at kPage.
struct SlotHeader : ObjectPrefix {
  std::uint64_t elements;
};
static_assert(sizeof(SlotHeader) <= kPage);

// What a rank says about the call it is in; double-buffered by call parity,
// so a rank may write call N+1's while a slower one still reads call N's.
struct CallInfo {
  std::uint64_t seq;
  std::uint64_t elements;
  std::uint32_t kind;
  std::uint32_t op;
  std::int32_t root;
  std::uint32_t count;  // all_gather values
  double values[Collective::kMaxGatherValues];
};

constexpr std::size_t kSlotNameBytes = 192;

struct alignas(64) RankBlock {
  // Written by the controller: the member's process and slot.
  std::int64_t pid;
  std::uint64_t start_ticks;
  std::uint64_t slot_elements;
  char slot_name[kSlotNameBytes];
  alignas(64) std::atomic<std::uint64_t> progress;
  alignas(64) CallInfo call[2];
};

enum class Kind : std::uint32_t { barrier = 1, all_reduce, broadcast, broadcast_bytes, all_gather };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::barrier: return "barrier";
    case Kind::all_reduce: return "all_reduce";
    case Kind::broadcast: return "broadcast";
    case Kind::broadcast_bytes: return "broadcast_bytes";
    case Kind::all_gather: return "all_gather";
  }
  return "collective";
}

std::uint64_t header_checksum(const Header& h) {
  std::uint64_t hash = fnv1a(h.magic, sizeof h.magic);
  hash = fnv1a(&h.version, sizeof h.version, hash);
  const auto* from = reinterpret_cast<const char*>(&h.controller_pid);
  const auto* to = reinterpret_cast<const char*>(&h.checksum);
  return fnv1a(from, static_cast<std::size_t>(to - from), hash);
}

// a * b + c without wrapping; false on overflow.
bool checked_mul_add(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t& out) {
  std::uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return false;
  return !__builtin_add_overflow(product, c, &out);
}

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* timeout) {
  // Not FUTEX_PRIVATE: the word is shared between processes.
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr, 0);
}

void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

PLATOON_VECTOR_LOOP void add_into(float* __restrict acc, const float* __restrict x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) acc[i] += x[i];
}

PLATOON_VECTOR_LOOP void sum_two(float* __restrict out, const float* __restrict a, const float* __restrict b,
                                 std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

PLATOON_VECTOR_LOOP void divide(float* __restrict x, std::size_t n, float by) {
  for (std::size_t i = 0; i < n; ++i) x[i] /= by;
}

// out[i] = (((s0[i] + s1[i]) + s2[i]) + ...) for i in [0, n), optionally
// divided by the rank count: the same order on every rank. `out` may be one
// of the sources (the slice owner's own slot): blocks go through `block`.
void reduce_range(float* out, const std::vector<const float*>& sources, std::size_t n, ReduceOp op) {
  const std::size_t ranks = sources.size();
  const float by = static_cast<float>(ranks);
  alignas(64) float block[kReduceBlock];
  for (std::size_t start = 0; start < n; start += kReduceBlock) {
    const std::size_t len = std::min(kReduceBlock, n - start);
    if (ranks == 2) {
      sum_two(block, sources[0] + start, sources[1] + start, len);
    } else {
      std::memcpy(block, sources[0] + start, len * sizeof(float));
      for (std::size_t k = 1; k < ranks; ++k) add_into(block, sources[k] + start, len);
    }
    if (op == ReduceOp::mean) divide(block, len, by);
    std::memcpy(out + start, block, len * sizeof(float));
  }
}

// Where rank `r` of `n` starts its slice of a range of `len` elements.
std::size_t slice_begin(std::size_t len, std::size_t n, std::size_t r) {
  const std::size_t per = round_up((len + n - 1) / n, kSliceAlign);
  return std::min(len, per * r);
}

}  // namespace

std::string group_header_problem(const void* base, std::size_t size) {
  if (size < kPage) return str_cat("group segment is ", size, " bytes, smaller than its header");
  const auto& h = *static_cast<const Header*>(base);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return "not a platoon group segment (bad magic)";
  if (h.version != kVersion)
    return str_cat("group segment format version ", h.version, ", this platoon reads ", kVersion);
  if (h.total_bytes != size) return str_cat("group header says ", h.total_bytes, " bytes, the segment has ", size);
  if (h.size == 0 || h.size > static_cast<std::uint64_t>(kMaxShmGroupSize))
    return str_cat("group size ", h.size, " is outside 1..", kMaxShmGroupSize);
  std::uint64_t ranks_end = 0;
  if (!checked_mul_add(h.size, sizeof(RankBlock), h.ranks_offset, ranks_end))
    return "group header sizes overflow (corrupted header)";
  if (h.ranks_offset < kPage || h.ranks_offset % 64 != 0 || ranks_end > size)
    return "group header regions are out of bounds or misaligned (corrupted header)";
  if (h.job_id[kJobIdBytes - 1] != '\0') return "group header job id is not terminated (corrupted header)";
  // The rank blocks are written once by the controller, like the header.
  const auto* blocks = reinterpret_cast<const RankBlock*>(static_cast<const char*>(base) + h.ranks_offset);
  for (std::uint64_t r = 0; r < h.size; ++r) {
    const RankBlock& b = blocks[r];
    if (b.slot_name[kSlotNameBytes - 1] != '\0' || std::strncmp(b.slot_name, "platoon-", 8) != 0)
      return str_cat("rank ", r, " has no valid slot name (corrupted header)");
    std::uint64_t slot_bytes = 0;
    if (!checked_mul_add(b.slot_elements, sizeof(float), 0, slot_bytes))
      return str_cat("rank ", r, "'s slot size overflows (corrupted header)");
  }
  // Last, so that the structure is checked (and fuzzed) whatever the checksum.
  if (header_checksum(h) != h.checksum) return "group header checksum mismatch (corrupted header)";
  return {};
}

// ------------------------------------------------------------------ slots

ShmObject create_slot(const std::string& name, std::size_t elements, const ProcessId& controller) {
  std::uint64_t bytes = 0;
  if (!checked_mul_add(elements, sizeof(float), kPage, bytes))
    throw Error(str_cat("slot ", name, ": ", elements, " floats is too large"));
  ShmObject object = ShmObject::create(name, bytes);
  auto* h = new (object.data()) SlotHeader{};
  h->init(kSlotMagic, kVersion, 0, controller);
  h->elements = elements;
  h->state.store(kStateReady, std::memory_order_release);
  return object;
}

std::string slot_header_problem(const void* base, std::size_t size) {
  if (base == nullptr || size < kPage) return str_cat(size, " bytes, smaller than a slot's header (", kPage, ")");
  const auto& h = *static_cast<const SlotHeader*>(base);
  if (std::memcmp(h.magic, kSlotMagic, sizeof kSlotMagic) != 0) return "not a platoon slot (bad magic)";
  if (h.version != kVersion) return str_cat("slot format version ", h.version, ", this build reads ", kVersion);
  if (h.state.load(std::memory_order_acquire) != kStateReady) return "its creator did not finish it";
  if (h.elements > (size - kPage) / sizeof(float))
    return str_cat("it says ", h.elements, " floats but has ", size, " bytes");
  return {};
}

std::span<float> slot_values(const ShmObject& slot) {
  if (const std::string problem = slot_header_problem(slot.data(), slot.mapped() ? slot.size() : 0); !problem.empty())
    throw LayoutError(str_cat("slot ", slot.name(), ": ", problem));
  const auto& h = *static_cast<const SlotHeader*>(slot.data());
  return {reinterpret_cast<float*>(static_cast<char*>(slot.data()) + kPage), static_cast<std::size_t>(h.elements)};
}

// ------------------------------------------------------------ GroupSegment

struct GroupSegment::Impl {
  ShmObject object;
  std::uint64_t epoch = 0;
  Header& header() const { return *static_cast<Header*>(object.data()); }
};

GroupSegment::GroupSegment(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GroupSegment::GroupSegment(GroupSegment&&) noexcept = default;
GroupSegment& GroupSegment::operator=(GroupSegment&&) noexcept = default;
GroupSegment::~GroupSegment() = default;

GroupSegment GroupSegment::create(const std::string& name, const std::string& job_id, std::uint64_t epoch,
                                  const std::vector<GroupMember>& members, const ProcessId& controller) {
  if (members.empty()) throw Error(str_cat("group segment ", name, ": a group needs at least one member"));
  if (members.size() > static_cast<std::size_t>(kMaxShmGroupSize))
    throw Error(str_cat("group segment ", name, ": ", members.size(), " members, at most ", kMaxShmGroupSize));
  if (job_id.size() >= kJobIdBytes) throw Error(str_cat("job id '", job_id, "' is too long for a group segment"));
  for (const GroupMember& m : members)
    if (m.slot_name.size() >= kSlotNameBytes || !m.slot_name.starts_with("platoon-"))
      throw Error(str_cat("group segment ", name, ": slot name '", m.slot_name,
                          "' must start with 'platoon-' and be shorter than ", kSlotNameBytes, " bytes"));
  const std::size_t n = members.size();
  const std::size_t ranks_offset = kPage;
  const std::size_t total = round_up(ranks_offset + n * sizeof(RankBlock), kPage);

  auto impl = std::make_unique<Impl>();
  impl->object = ShmObject::create(name, total);
  impl->epoch = epoch;
  auto* base = static_cast<char*>(impl->object.data());
  auto* h = new (base) Header{};
  h->init(kMagic, kVersion, 0, controller);
  h->epoch = epoch;
  h->size = n;
  h->ranks_offset = ranks_offset;
  h->total_bytes = total;
  std::strncpy(h->job_id, job_id.c_str(), kJobIdBytes - 1);
  auto* blocks = reinterpret_cast<RankBlock*>(base + ranks_offset);
  for (std::size_t r = 0; r < n; ++r) {
    auto* b = new (blocks + r) RankBlock{};
    b->pid = members[r].process.pid;
    b->start_ticks = members[r].process.start_ticks;
    b->slot_elements = members[r].slot_elements;
    std::strncpy(b->slot_name, members[r].slot_name.c_str(), kSlotNameBytes - 1);
  }
  h->checksum = header_checksum(*h);
  h->state.store(kStateReady, std::memory_order_release);
  return GroupSegment(std::move(impl));
}

const std::string& GroupSegment::name() const { return impl_->object.name(); }
std::uint64_t GroupSegment::epoch() const { return impl_->epoch; }

void GroupSegment::retire() noexcept {
  Header& h = impl_->header();
  std::uint32_t expected = 0;
  h.broken.compare_exchange_strong(expected, kRetired);
  h.wake.fetch_add(1);
  futex(&h.wake, FUTEX_WAKE, INT_MAX, nullptr);
}

void GroupSegment::lose(int rank) noexcept {
  Header& h = impl_->header();
  if (rank < 0 || static_cast<std::uint64_t>(rank) >= h.size) return retire();
  std::uint32_t expected = 0;
  h.broken.compare_exchange_strong(expected, static_cast<std::uint32_t>(rank + 1));
  h.wake.fetch_add(1);
  futex(&h.wake, FUTEX_WAKE, INT_MAX, nullptr);
}

int GroupSegment::lost_rank() const {
  const std::uint32_t b = impl_->header().broken.load();
  return b == 0 || b == kRetired ? -1 : static_cast<int>(b - 1);
}

bool GroupSegment::remove(const std::string& name) noexcept { return ShmObject::remove(name); }

// ----------------------------------------------------------- ShmCollective

struct ShmCollective::Impl {
  ShmObject object;
  std::vector<ShmObject> peer_slots;  // the other ranks' slots, mapped here
  Header* header = nullptr;
  RankBlock* blocks = nullptr;
  std::vector<float*> slots;
  int rank = 0;
  int size = 1;
  std::uint64_t epoch = 0;
  std::size_t slot_elements = 0;
  std::chrono::milliseconds timeout{5000};
  std::uint64_t ticks = 0;  // this rank's progress
  std::uint64_t calls = 0;
  std::string local_break;  // why this rank considers the group broken, if it does
  std::vector<float> scratch;
  std::vector<const float*> sources;

  [[nodiscard]] std::string where() const { return str_cat("epoch ", epoch, ", rank ", rank, " of ", size); }

  [[nodiscard]] std::string broken_text(std::uint32_t b) const {
    if (b == kRetired) return str_cat("group epoch ", epoch, " is over: the controller formed a new epoch");
    const int lost = static_cast<int>(b - 1);
    const std::int64_t pid = lost >= 0 && lost < size ? blocks[lost].pid : header->broken_pid.load();
    return str_cat("group epoch ", epoch, " is broken: rank ", lost, " (pid ", pid, ") was lost");
  }

  void check_usable(Kind kind) const {
    if (!local_break.empty()) throw PeerLostError(str_cat(kind_name(kind), " (", where(), "): ", local_break));
    if (const std::uint32_t b = header->broken.load(); b != 0)
      throw PeerLostError(str_cat(kind_name(kind), " (", where(), "): ", broken_text(b)));
  }

  void tick() {
    ++ticks;
    blocks[rank].progress.store(ticks, std::memory_order_seq_cst);
    if (header->sleepers.load(std::memory_order_seq_cst) > 0) {
      header->wake.fetch_add(1, std::memory_order_seq_cst);
      futex(&header->wake, FUTEX_WAKE, INT_MAX, nullptr);
    }
  }

  // The first rank whose progress is below `target`, or -1.
  int laggard(std::uint64_t target) const {
    for (int k = 0; k < size; ++k)
      if (blocks[k].progress.load(std::memory_order_acquire) < target) return k;
    return -1;
  }

  [[noreturn]] void declare_lost(Kind kind, int lost, const std::string& why) {
    std::uint32_t expected = 0;
    if (header->broken.compare_exchange_strong(expected, static_cast<std::uint32_t>(lost + 1)))
      header->broken_pid.store(blocks[lost].pid);
    header->wake.fetch_add(1);
    futex(&header->wake, FUTEX_WAKE, INT_MAX, nullptr);
    throw PeerLostError(str_cat(kind_name(kind), " (", where(), "): rank ", lost, " (pid ", blocks[lost].pid, ") ",
                                why, "; the group is broken"));
  }

  // Waits until every rank's progress has reached `target`. A peer that makes
  // no progress for `limit`, or whose process is gone, breaks the group.
  void wait_all(std::uint64_t target, Kind kind, std::chrono::milliseconds limit) {
    // Spin first: a peer a few microseconds behind is the common case.
    for (int i = 0; i < 4000; ++i) {
      if (laggard(target) < 0) return;
      cpu_relax();
    }
    using Clock = std::chrono::steady_clock;
    auto last_change = Clock::now();
    auto next_liveness = last_change;
    std::uint64_t seen_total = 0;
    for (int k = 0; k < size; ++k) seen_total += blocks[k].progress.load();
    while (true) {
      header->sleepers.fetch_add(1, std::memory_order_seq_cst);
      const std::uint32_t w = header->wake.load(std::memory_order_seq_cst);
      const int behind = laggard(target);
      if (behind < 0) {
        header->sleepers.fetch_sub(1);
        return;
      }
      if (const std::uint32_t b = header->broken.load(); b != 0) {
        header->sleepers.fetch_sub(1);
        throw PeerLostError(str_cat(kind_name(kind), " (", where(), "): ", broken_text(b)));
      }
      const timespec slice{0, 10'000'000};  // 10 ms: liveness checks and the deadline stay prompt
      futex(&header->wake, FUTEX_WAIT, w, &slice);
      header->sleepers.fetch_sub(1);

      const auto now = Clock::now();
      std::uint64_t total = 0;
      for (int k = 0; k < size; ++k) total += blocks[k].progress.load();
      if (total != seen_total) {
        seen_total = total;
        last_change = now;
      }
      const int still = laggard(target);
      if (still < 0) return;
      if (now >= next_liveness) {
        next_liveness = now + std::chrono::milliseconds(20);
        for (int k = 0; k < size; ++k) {
          if (blocks[k].progress.load() >= target) continue;
          const ProcessId peer{blocks[k].pid, blocks[k].start_ticks};
          if (!peer.alive()) declare_lost(kind, k, "died");
        }
      }
      if (now - last_change >= limit)
        declare_lost(kind, still,
                     str_cat("made no progress for ",
                             std::chrono::duration_cast<std::chrono::milliseconds>(now - last_change).count(),
                             " ms (limit ", limit.count(), " ms)"));
    }
  }

  // Starts call `kind`: publishes what this rank passes, waits for every
  // rank to do the same and checks that they agree.
  void begin_call(Kind kind, std::uint64_t elements, ReduceOp op, int root, std::span<const double> values,
                  std::chrono::milliseconds limit) {
    check_usable(kind);
    if (limit.count() <= 0) throw Error(str_cat(kind_name(kind), " (", where(), "): the timeout must be positive"));
    ++calls;
    CallInfo& mine = blocks[rank].call[calls % 2];
    mine.seq = calls;
    mine.elements = elements;
    mine.kind = static_cast<std::uint32_t>(kind);
    mine.op = static_cast<std::uint32_t>(op);
    mine.root = root;
    mine.count = static_cast<std::uint32_t>(values.size());
    std::copy(values.begin(), values.end(), mine.values);
    tick();
    wait_all(ticks, kind, limit);
    // Every rank compares every rank with rank 0, so all report the same.
    const CallInfo& first = blocks[0].call[calls % 2];
    for (int k = 1; k < size; ++k) {
      const CallInfo& theirs = blocks[k].call[calls % 2];
      std::string problem;
      if (theirs.seq != first.seq || theirs.kind != first.kind)
        problem = str_cat("rank 0 is in call ", first.seq, " (", kind_name(static_cast<Kind>(first.kind)), "), rank ",
                          k, " in call ", theirs.seq, " (", kind_name(static_cast<Kind>(theirs.kind)), ")");
      else if (kind != Kind::broadcast_bytes && theirs.elements != first.elements)
        problem = str_cat("rank 0 passed ", first.elements, " values, rank ", k, " passed ", theirs.elements);
      else if (theirs.op != first.op)
        problem = str_cat("rank 0 asked for ", to_string(static_cast<ReduceOp>(first.op)), ", rank ", k, " for ",
                          to_string(static_cast<ReduceOp>(theirs.op)));
      else if (theirs.root != first.root)
        problem = str_cat("rank 0 names root ", first.root, ", rank ", k, " names root ", theirs.root);
      else if (theirs.count != first.count)
        problem = str_cat("rank 0 gathers ", first.count, " values, rank ", k, " gathers ", theirs.count);
      if (!problem.empty()) {
        local_break = str_cat("the ranks disagree on ", kind_name(kind), ": ", problem);
        throw Error(str_cat(kind_name(kind), " (", where(), "): ", local_break));
      }
    }
  }

  void all_reduce(std::span<float> data, ReduceOp op, std::chrono::milliseconds limit) {
    begin_call(Kind::all_reduce, data.size(), op, 0, {}, limit);
    if (data.empty()) return;
    if (size == 1) return;  // the sum and the mean of one rank are its values
    const bool registered = data.data() == slots[rank] && data.size() <= slot_elements;
    const std::size_t round = registered ? data.size() : slot_elements;
    for (std::size_t offset = 0; offset < data.size(); offset += round) {
      const std::size_t len = std::min(round, data.size() - offset);
      float* part = data.data() + offset;
      if (len * sizeof(float) < kSmallBytes)
        reduce_small(part, len, op, registered, limit);
      else
        reduce_large(part, len, op, registered, limit);
    }
  }

  // Every rank reduces every slot, into its own output.
  void reduce_small(float* data, std::size_t len, ReduceOp op, bool registered, std::chrono::milliseconds limit) {
    if (!registered) std::memcpy(slots[rank], data, len * sizeof(float));
    tick();
    wait_all(ticks, Kind::all_reduce, limit);
    for (int k = 0; k < size; ++k) sources[k] = slots[k];
    float* out = data;
    if (registered) {
      scratch.resize(len);
      out = scratch.data();
    }
    reduce_range(out, sources, len, op);
    tick();  // done reading the other slots
    wait_all(ticks, Kind::all_reduce, limit);
    if (registered) std::memcpy(data, scratch.data(), len * sizeof(float));
  }

  // Reduce-scatter then all-gather, pipelined chunk by chunk.
  void reduce_large(float* data, std::size_t len, ReduceOp op, bool registered, std::chrono::milliseconds limit) {
    const std::size_t chunks = (len + kPipelineElements - 1) / kPipelineElements;
    const std::uint64_t base = ticks;
    const auto n = static_cast<std::size_t>(size);
    const auto r = static_cast<std::size_t>(rank);
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t start = c * kPipelineElements;
      const std::size_t clen = std::min(kPipelineElements, len - start);
      if (!registered) std::memcpy(slots[rank] + start, data + start, clen * sizeof(float));
      tick();  // base + 2c + 1: chunk c is in my slot
      wait_all(base + 2 * c + 1, Kind::all_reduce, limit);
      const std::size_t from = slice_begin(clen, n, r);
      const std::size_t to = slice_begin(clen, n, r + 1);
      for (int k = 0; k < size; ++k) sources[k] = slots[k] + start + from;
      reduce_range(slots[rank] + start + from, sources, to - from, op);
      tick();  // base + 2c + 2: my slice of chunk c is reduced
    }
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t start = c * kPipelineElements;
      const std::size_t clen = std::min(kPipelineElements, len - start);
      wait_all(base + 2 * c + 2, Kind::all_reduce, limit);
      for (std::size_t k = 0; k < n; ++k) {
        if (registered && k == r) continue;  // already in place
        const std::size_t from = slice_begin(clen, n, k);
        const std::size_t to = slice_begin(clen, n, k + 1);
        std::memcpy(data + start + from, slots[k] + start + from, (to - from) * sizeof(float));
      }
    }
    tick();  // done reading the other slots
    wait_all(ticks, Kind::all_reduce, limit);
  }

  void broadcast(std::span<float> data, int root, std::chrono::milliseconds limit) {
    check_root(Kind::broadcast, root);
    begin_call(Kind::broadcast, data.size(), ReduceOp::sum, root, {}, limit);
    if (data.empty() || size == 1) return;
    broadcast_raw(reinterpret_cast<char*>(data.data()), data.size_bytes(), root, Kind::broadcast, limit);
  }

  void broadcast_bytes(std::string& data, int root, std::chrono::milliseconds limit) {
    check_root(Kind::broadcast_bytes, root);
    begin_call(Kind::broadcast_bytes, rank == root ? data.size() : 0, ReduceOp::sum, root, {}, limit);
    if (size == 1) return;
    const std::uint64_t bytes = blocks[root].call[calls % 2].elements;
    if (rank != root) data.resize(bytes);
    if (bytes > 0) broadcast_raw(data.data(), bytes, root, Kind::broadcast_bytes, limit);
  }

  void broadcast_raw(char* data, std::size_t bytes, int root, Kind kind, std::chrono::milliseconds limit) {
    const std::size_t round = slot_elements * sizeof(float);
    if (round == 0) throw Error(str_cat(kind_name(kind), " (", where(), "): the group has no slot memory"));
    auto* root_slot = reinterpret_cast<char*>(slots[root]);
    for (std::size_t offset = 0; offset < bytes; offset += round) {
      const std::size_t len = std::min(round, bytes - offset);
      if (rank == root && data + offset != root_slot) std::memcpy(root_slot, data + offset, len);
      tick();
      wait_all(ticks, kind, limit);
      if (rank != root) std::memcpy(data + offset, root_slot, len);
      tick();  // the root may reuse its slot
      wait_all(ticks, kind, limit);
    }
  }

  void check_root(Kind kind, int root) const {
    if (root < 0 || root >= size)
      throw Error(str_cat(kind_name(kind), " (", where(), "): root ", root, " is outside the group (ranks 0..",
                          size - 1, ")"));
  }
};

ShmCollective::ShmCollective(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShmCollective::~ShmCollective() = default;

std::unique_ptr<ShmCollective> ShmCollective::attach(const std::string& name, int rank, const ShmObject& own_slot,
                                                     std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) throw Error("a collective timeout must be positive");
  auto impl = std::make_unique<Impl>();
  impl->object = ShmObject::open(name, /*writable=*/true);
  auto* base = static_cast<char*>(impl->object.data());
  // The controller publishes the header before it tells anyone the name.
  if (impl->object.size() >= kPage &&
      static_cast<Header*>(impl->object.data())->state.load(std::memory_order_acquire) != kStateReady)
    throw LayoutError(str_cat("group segment ", name, " is not ready (its creator did not finish it)"));
  if (const std::string problem = group_header_problem(base, impl->object.size()); !problem.empty())
    throw LayoutError(str_cat("group segment ", name, ": ", problem));
  impl->header = reinterpret_cast<Header*>(base);
  const Header& h = *impl->header;
  impl->size = static_cast<int>(h.size);
  impl->epoch = h.epoch;
  if (rank < 0 || rank >= impl->size)
    throw Error(str_cat("rank ", rank, " is outside group epoch ", h.epoch, " (ranks 0..", impl->size - 1, ")"));
  impl->rank = rank;
  impl->blocks = reinterpret_cast<RankBlock*>(base + h.ranks_offset);
  const RankBlock& mine = impl->blocks[rank];
  const ProcessId self = ProcessId::self();
  if (mine.pid != self.pid)
    throw Error(str_cat("group epoch ", h.epoch, " has pid ", mine.pid, " at rank ", rank, ", not this process (pid ",
                        self.pid, "): this worker is not part of that group"));
  if (own_slot.name() != mine.slot_name)
    throw Error(str_cat("group epoch ", h.epoch, " names slot ", mine.slot_name, " at rank ", rank, ", not ",
                        own_slot.name()));
  // Every rank uses the smallest slot, so that all cut data the same way.
  impl->slot_elements = std::numeric_limits<std::size_t>::max();
  for (int k = 0; k < impl->size; ++k) {
    const RankBlock& b = impl->blocks[k];
    impl->slot_elements = std::min<std::size_t>(impl->slot_elements, b.slot_elements);
    const ShmObject* slot = &own_slot;
    if (k != rank) {
      impl->peer_slots.push_back(ShmObject::open(b.slot_name, /*writable=*/false));
      slot = &impl->peer_slots.back();
    }
    const std::span<float> values = slot_values(*slot);
    if (values.size() < b.slot_elements)
      throw LayoutError(str_cat("group epoch ", h.epoch, ": rank ", k, "'s slot ", b.slot_name, " has ",
                                values.size(), " floats, the group says ", b.slot_elements));
    impl->slots.push_back(values.data());
  }
  impl->sources.resize(impl->size);
  impl->timeout = timeout;
  return std::unique_ptr<ShmCollective>(new ShmCollective(std::move(impl)));
}

GroupPosition ShmCollective::position() const { return {impl_->epoch, impl_->rank, impl_->size}; }
std::chrono::milliseconds ShmCollective::timeout() const { return impl_->timeout; }
void ShmCollective::set_timeout(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) throw Error("a collective timeout must be positive");
  impl_->timeout = timeout;
}

std::span<float> ShmCollective::registered_buffer() const {  // up to the group's smallest slot
  return {impl_->slots[impl_->rank], impl_->slot_elements};
}

void ShmCollective::all_reduce(std::span<float> data, ReduceOp op, std::chrono::milliseconds timeout) {
  impl_->all_reduce(data, op, timeout);
}
void ShmCollective::broadcast(std::span<float> data, int root, std::chrono::milliseconds timeout) {
  impl_->broadcast(data, root, timeout);
}
void ShmCollective::broadcast_bytes(std::string& data, int root, std::chrono::milliseconds timeout) {
  impl_->broadcast_bytes(data, root, timeout);
}
void ShmCollective::barrier(std::chrono::milliseconds timeout) {
  impl_->begin_call(Kind::barrier, 0, ReduceOp::sum, 0, {}, timeout);
}

std::vector<double> ShmCollective::all_gather(std::span<const double> values, std::chrono::milliseconds timeout) {
  if (values.size() > kMaxGatherValues)
    throw Error(str_cat("all_gather (", impl_->where(), "): ", values.size(), " values, at most ", kMaxGatherValues));
  impl_->begin_call(Kind::all_gather, values.size(), ReduceOp::sum, 0, values, timeout);
  std::vector<double> out;
  out.reserve(values.size() * static_cast<std::size_t>(impl_->size));
  const std::uint64_t parity = impl_->calls % 2;
  for (int k = 0; k < impl_->size; ++k) {
    const CallInfo& theirs = impl_->blocks[k].call[parity];
    out.insert(out.end(), theirs.values, theirs.values + theirs.count);
  }
  return out;
}

bool ShmCollective::broken() const { return !impl_->local_break.empty() || impl_->header->broken.load() != 0; }

int ShmCollective::lost_rank() const {
  const std::uint32_t b = impl_->header->broken.load();
  return b == 0 || b == kRetired ? -1 : static_cast<int>(b - 1);
}

}  // namespace platoon
