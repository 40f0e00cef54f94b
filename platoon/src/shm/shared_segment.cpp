#include "platoon/shm/shared_segment.hpp"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>

#include "platoon/common/checksum.hpp"
#include "platoon/common/error.hpp"
#include "platoon/shm/object_prefix.hpp"
#include "platoon/shm/shm_object.hpp"

namespace bip = boost::interprocess;

namespace platoon {

namespace {

constexpr char kMagic[8] = {'P', 'L', 'A', 'T', 'O', 'O', 'N', '1'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kStateInitializing = 1;
constexpr std::uint32_t kStateReady = 2;
constexpr std::size_t kPage = kShmPage;
constexpr std::size_t kJobIdBytes = 128;
constexpr const char* kNamePrefix = "platoon-";

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// The fixed part of the header. Everything but `state` is written once by
// the creator before the segment becomes ready and covered by `checksum`.
struct Header : ObjectPrefix {
  std::int64_t creator_pid;
  std::uint64_t creator_start_ticks;
  std::int64_t created_unix_ms;
  std::uint64_t total_bytes;
  std::uint64_t layout_offset;
  std::uint64_t layout_bytes;
  std::uint64_t locks_offset;
  std::uint64_t num_chunks;
  std::uint64_t chunk_elements;
  std::uint64_t data_offset;
  std::uint64_t total_elements;
  char job_id[kJobIdBytes];
  std::uint64_t checksum;  // FNV-1a of the fields above but `state`, and of the layout text
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// One chunk's lock: a robust, process-shared mutex, and who holds it (for
// messages only).
struct alignas(64) ChunkLock {
  pthread_mutex_t mutex;
  std::atomic<std::int64_t> holder_pid;
};
static_assert(sizeof(ChunkLock) == 64);

std::uint64_t header_checksum(const Header& h, const char* layout_text) {
  std::uint64_t hash = fnv1a(h.magic, sizeof h.magic);
  hash = fnv1a(&h.version, sizeof h.version, hash);
  // Every field after `state` up to `checksum`.
  const auto* from = reinterpret_cast<const char*>(&h.controller_pid);
  const auto* to = reinterpret_cast<const char*>(&h.checksum);
  hash = fnv1a(from, static_cast<std::size_t>(to - from), hash);
  return fnv1a(layout_text, h.layout_bytes, hash);
}

std::int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

timespec deadline_after(std::chrono::milliseconds timeout) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const auto ns = static_cast<long long>(ts.tv_nsec) + (timeout.count() % 1000) * 1'000'000LL;
  ts.tv_sec += static_cast<time_t>(timeout.count() / 1000 + ns / 1'000'000'000LL);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000LL);
  return ts;
}

// end = offset + count * unit, false when it overflows.
bool region_end(std::uint64_t offset, std::uint64_t count, std::uint64_t unit, std::uint64_t& end) {
  std::uint64_t bytes = 0;
  return !__builtin_mul_overflow(count, unit, &bytes) && !__builtin_add_overflow(offset, bytes, &end);
}

// Validates the header of a mapping of `size` bytes (the object's real size).
// Every size is read from outside: the arithmetic is checked, and the regions
// (header, layout text, locks, data) must follow each other in that order,
// aligned, inside the mapping. Returns the problem, or an empty string.
std::string header_problem_of(const void* base, std::size_t size) {
  if (size < sizeof(Header)) return str_cat("segment is ", size, " bytes, smaller than a platoon header");
  const auto& h = *static_cast<const Header*>(base);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return "not a platoon segment (bad magic)";
  if (h.version != kVersion) return str_cat("segment format version ", h.version, ", this platoon reads ", kVersion);
  if (h.total_bytes != size) return str_cat("header says ", h.total_bytes, " bytes, the segment has ", size);
  std::uint64_t layout_end = 0, locks_end = 0, data_end = 0;
  if (!region_end(h.layout_offset, h.layout_bytes, 1, layout_end) ||
      !region_end(h.locks_offset, h.num_chunks, sizeof(ChunkLock), locks_end) ||
      !region_end(h.data_offset, h.total_elements, sizeof(float), data_end))
    return "header sizes overflow (corrupted header)";
  if (h.layout_offset < sizeof(Header) || layout_end > h.locks_offset || locks_end > h.data_offset ||
      data_end > size)
    return "header regions overlap or lie outside the segment (corrupted header)";
  if (h.locks_offset % alignof(ChunkLock) != 0 || h.data_offset % alignof(float) != 0)
    return "header regions are misaligned (corrupted header)";
  if (h.chunk_elements == 0 ||
      h.num_chunks != h.total_elements / h.chunk_elements + (h.total_elements % h.chunk_elements != 0 ? 1 : 0))
    return "header chunk counts are inconsistent (corrupted header)";
  if (h.job_id[kJobIdBytes - 1] != '\0') return "header job id is not terminated (corrupted header)";
  const char* layout_text = static_cast<const char*>(base) + h.layout_offset;
  if (header_checksum(h, layout_text) != h.checksum) return "header checksum mismatch (corrupted header)";
  return {};
}

}  // namespace

// ---------------------------------------------------------------- SegmentLock

SegmentLock::~SegmentLock() { release(); }

SegmentLock::SegmentLock(SegmentLock&& other) noexcept : mutexes_(std::move(other.mutexes_)) {
  other.mutexes_.clear();
}

SegmentLock& SegmentLock::operator=(SegmentLock&& other) noexcept {
  if (this != &other) {
    release();
    mutexes_ = std::move(other.mutexes_);
    other.mutexes_.clear();
  }
  return *this;
}

void SegmentLock::release() noexcept {
  for (auto it = mutexes_.rbegin(); it != mutexes_.rend(); ++it) {
    auto* lock = static_cast<ChunkLock*>(*it);
    lock->holder_pid.store(0, std::memory_order_relaxed);
    pthread_mutex_unlock(&lock->mutex);
  }
  mutexes_.clear();
}

// -------------------------------------------------------------- SharedSegment

struct SharedSegment::Impl {
  std::string name;
  bip::mapped_region region;
  Header* header = nullptr;
  ChunkLock* locks = nullptr;
  float* data = nullptr;
  Layout layout;

  void bind(bip::mapped_region mapped) {
    region = std::move(mapped);
    auto* base = static_cast<char*>(region.get_address());
    header = reinterpret_cast<Header*>(base);
    locks = reinterpret_cast<ChunkLock*>(base + header->locks_offset);
    data = reinterpret_cast<float*>(base + header->data_offset);
  }
};

SharedSegment::SharedSegment(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SharedSegment::SharedSegment(SharedSegment&&) noexcept = default;
SharedSegment& SharedSegment::operator=(SharedSegment&&) noexcept = default;
SharedSegment::~SharedSegment() = default;

std::string SharedSegment::name_for_job(const std::string& job_id) { return kNamePrefix + job_id; }

SharedSegment SharedSegment::create(const std::string& name, const std::string& job_id, const Layout& layout,
                                    const ProcessId& controller, std::size_t chunk_elements) {
  if (job_id.size() >= kJobIdBytes) throw Error(str_cat("job id '", job_id, "' is longer than ", kJobIdBytes - 1));
  if (chunk_elements == 0) throw Error("chunk_elements must be positive");
  const std::string layout_text = layout.to_json().dump();
  const std::size_t total = layout.total_size();
  const std::size_t num_chunks = (total + chunk_elements - 1) / chunk_elements;
  const std::size_t layout_offset = round_up(sizeof(Header), 64);
  const std::size_t locks_offset = round_up(layout_offset + layout_text.size(), 64);
  const std::size_t data_offset = round_up(locks_offset + num_chunks * sizeof(ChunkLock), kPage);
  const std::size_t total_bytes = round_up(data_offset + total * sizeof(float), kPage);

  auto impl = std::make_unique<Impl>();
  impl->name = name;
  try {
    bip::permissions owner_only(S_IRUSR | S_IWUSR);
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, owner_only);
    // The umask may have narrowed the mode; owner-only is what we want anyway.
    ::fchmod(shm.get_mapping_handle().handle, S_IRUSR | S_IWUSR);
    shm.truncate(static_cast<bip::offset_t>(total_bytes));
    try {
      reserve_shm_space(shm.get_mapping_handle().handle, name, total_bytes);
    } catch (const ResourceError&) {
      remove(name);
      throw;
    }
    bip::mapped_region region(shm, bip::read_write);
    // Fill the header before bind(), which reads the offsets from it.
    auto* h = new (region.get_address()) Header{};
    h->init(kMagic, kVersion, kStateInitializing, controller);
    const ProcessId self = ProcessId::self();
    h->creator_pid = self.pid;
    h->creator_start_ticks = self.start_ticks;
    h->created_unix_ms = unix_ms_now();
    h->total_bytes = total_bytes;
    h->layout_offset = layout_offset;
    h->layout_bytes = layout_text.size();
    h->locks_offset = locks_offset;
    h->num_chunks = num_chunks;
    h->chunk_elements = chunk_elements;
    h->data_offset = data_offset;
    h->total_elements = total;
    std::memcpy(h->job_id, job_id.data(), job_id.size());
    char* base = static_cast<char*>(region.get_address());
    std::memcpy(base + layout_offset, layout_text.data(), layout_text.size());
    h->checksum = header_checksum(*h, base + layout_offset);
    impl->bind(std::move(region));
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::already_exists_error)
      throw ResourceError(str_cat("shared-memory segment '", name, "' already exists"));
    remove(name);
    throw ResourceError(str_cat("cannot create shared-memory segment '", name, "' of ", total_bytes,
                                " bytes: ", e.what()));
  }

  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  for (std::size_t i = 0; i < num_chunks; ++i) {
    auto* lock = new (&impl->locks[i]) ChunkLock{};
    const int rc = pthread_mutex_init(&lock->mutex, &attr);
    if (rc != 0) {
      pthread_mutexattr_destroy(&attr);
      remove(name);
      throw ResourceError(str_cat("cannot initialize lock ", i, " of segment '", name, "': ", std::strerror(rc)));
    }
    lock->holder_pid.store(0, std::memory_order_relaxed);
  }
  pthread_mutexattr_destroy(&attr);
  impl->layout = layout;
  return SharedSegment(std::move(impl));
}

SharedSegment SharedSegment::attach(const std::string& name, const Layout& expected,
                                    std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  try {
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
    bip::offset_t size = 0;
    shm.get_size(size);
    bip::mapped_region region(shm, bip::read_write);
    if (std::string problem = header_problem_of(region.get_address(), static_cast<std::size_t>(size));
        !problem.empty())
      throw LayoutError(str_cat("shared-memory segment '", name, "' is refused: ", problem));
    impl->bind(std::move(region));
  } catch (const bip::interprocess_exception& e) {
    throw ResourceError(str_cat("cannot open shared-memory segment '", name, "': ", e.what()));
  }
  const Header& h = *impl->header;
  const char* layout_text = static_cast<const char*>(impl->region.get_address()) + h.layout_offset;
  nlohmann::json layout_json = nlohmann::json::parse(std::string_view(layout_text, h.layout_bytes), nullptr, false);
  if (layout_json.is_discarded())
    throw LayoutError(str_cat("shared-memory segment '", name, "' has an unreadable layout"));
  impl->layout = Layout::from_json(layout_json);
  impl->layout.require_same(expected, str_cat("the segment '", name, "'"), "this worker");

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl->header->state.load(std::memory_order_acquire) != kStateReady) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw TimeoutError(str_cat("shared-memory segment '", name, "' was not initialized by its creator (pid ",
                                 h.creator_pid, ") within ", timeout.count(), " ms"));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return SharedSegment(std::move(impl));
}

SegmentInfo SharedSegment::inspect(const std::string& name) {
  SegmentInfo info;
  info.name = name;
  try {
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_only);
    bip::offset_t size = 0;
    shm.get_size(size);
    info.bytes = static_cast<std::size_t>(size);
    if (size == 0) {
      info.problem = "empty segment";
      return info;
    }
    bip::mapped_region region(shm, bip::read_only);
    // The owner first, from the prefix every platoon object shares.
    if (const auto owner = object_owner(region.get_address(), info.bytes)) {
      info.controller = *owner;
      info.owner_known = true;
    }
    info.problem = header_problem_of(region.get_address(), info.bytes);
    if (!info.problem.empty()) return info;
    const auto& h = *static_cast<const Header*>(region.get_address());
    info.job_id = std::string(h.job_id, strnlen(h.job_id, kJobIdBytes));
    info.controller = {h.controller_pid, h.controller_start_ticks};
    info.creator = {h.creator_pid, h.creator_start_ticks};
    info.ready = h.state.load(std::memory_order_acquire) == kStateReady;
    info.created_unix_ms = h.created_unix_ms;
    const char* text = static_cast<const char*>(region.get_address()) + h.layout_offset;
    info.layout = Layout::from_json(nlohmann::json::parse(std::string_view(text, h.layout_bytes)));
  } catch (const std::exception& e) {
    info.problem = e.what();
  }
  return info;
}

bool SharedSegment::remove(const std::string& name) noexcept {
  try {
    return bip::shared_memory_object::remove(name.c_str());
  } catch (...) {
    return false;
  }
}

std::vector<std::string> SharedSegment::list() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.starts_with(kNamePrefix)) names.push_back(file);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string segment_header_problem(const void* base, std::size_t size) {
  if (base == nullptr) return str_cat("segment is ", size, " bytes, smaller than a platoon header");
  return header_problem_of(base, size);
}

std::string stale_reason(const SegmentInfo& info) {
  if (!info.owner_known || info.controller.alive()) return {};
  return str_cat(info.job_id.empty() ? std::string("its job") : str_cat("job ", info.job_id), " is over: controller pid ",
                 info.controller.pid, " is gone");
}

std::vector<std::string> SharedSegment::reclaim_dead(const Logger& log) {
  std::vector<std::string> removed;
  for (const std::string& name : list()) {
    const std::string why = stale_reason(inspect(name));
    if (!why.empty() && remove(name)) {
      log.warn("reclaimed stale shared-memory object ", name, ": ", why);
      removed.push_back(name);
    }
  }
  return removed;
}

void SharedSegment::mark_ready() { impl_->header->state.store(kStateReady, std::memory_order_release); }

const std::string& SharedSegment::name() const { return impl_->name; }
const Layout& SharedSegment::layout() const { return impl_->layout; }
std::span<float> SharedSegment::values() const { return {impl_->data, impl_->header->total_elements}; }
std::size_t SharedSegment::num_chunks() const { return impl_->header->num_chunks; }
std::size_t SharedSegment::chunk_elements() const { return impl_->header->chunk_elements; }

std::span<float> SharedSegment::chunk(std::size_t i) const {
  PLATOON_ENFORCE(i < num_chunks(), "chunk index out of range");
  const std::size_t begin = i * chunk_elements();
  const std::size_t end = std::min<std::size_t>(begin + chunk_elements(), impl_->header->total_elements);
  return {impl_->data + begin, end - begin};
}

SegmentLock SharedSegment::lock_chunk(std::size_t i, std::chrono::milliseconds timeout, const Logger& log) const {
  PLATOON_ENFORCE(i < num_chunks(), "chunk index out of range");
  ChunkLock& lock = impl_->locks[i];
  const timespec deadline = deadline_after(timeout);
  int rc = pthread_mutex_timedlock(&lock.mutex, &deadline);
  if (rc == EOWNERDEAD) {
    // The holder's pid is written just after locking and cleared just before
    // unlocking: a death in between those leaves 0.
    const std::int64_t holder = lock.holder_pid.load();
    log.warn("the previous holder (", holder != 0 ? str_cat("pid ", holder) : std::string("an unknown process"),
             ") of lock ", i, " of segment '", impl_->name,
             "' died while holding it; recovered the lock (that chunk may hold a partial update)");
    pthread_mutex_consistent(&lock.mutex);
    rc = 0;
  }
  if (rc == ETIMEDOUT)
    throw TimeoutError(str_cat("lock ", i, " of segment '", impl_->name, "' is still held by pid ",
                               lock.holder_pid.load(), " after ", timeout.count(), " ms"));
  if (rc != 0)
    throw ResourceError(str_cat("cannot take lock ", i, " of segment '", impl_->name, "': ", std::strerror(rc)));
  lock.holder_pid.store(::getpid(), std::memory_order_relaxed);
  SegmentLock held;
  held.mutexes_.push_back(&lock);
  return held;
}

SegmentLock SharedSegment::lock_all(std::chrono::milliseconds timeout, const Logger& log) const {
  SegmentLock all;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (std::size_t i = 0; i < num_chunks(); ++i) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    SegmentLock one = lock_chunk(i, std::max(left, std::chrono::milliseconds(0)), log);
    all.mutexes_.push_back(one.mutexes_.front());
    one.mutexes_.clear();
  }
  return all;
}

}  // namespace platoon
