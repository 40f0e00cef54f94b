#include "platoon/shm/shared_dataset.hpp"

#include "platoon/common/json_number.hpp"
#include "platoon/shm/object_prefix.hpp"

#include <sys/mman.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "platoon/common/checksum.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/common/params.hpp"

namespace platoon {

namespace {

constexpr char kMagic[8] = {'P', 'L', 'A', 'T', 'O', 'O', 'N', 'D'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kStateFilling = 1;
constexpr std::uint32_t kStateReady = 2;
constexpr std::size_t kPage = kShmPage;
constexpr std::size_t kArrayAlign = 64;

// The first page. The prefix up to controller_start_ticks is the same in
// every platoon segment.
struct Header : ObjectPrefix {
  std::int64_t creator_pid;
  std::uint64_t creator_start_ticks;
  std::uint64_t total_bytes;
  std::uint64_t toc_offset;
  std::uint64_t toc_bytes;
  std::uint64_t data_offset;
  std::uint64_t data_bytes;
  std::uint64_t toc_checksum;  // FNV-1a of the table of contents
};
static_assert(sizeof(Header) <= kPage);

bool add_to(std::uint64_t& total, std::uint64_t more) { return !__builtin_add_overflow(total, more, &total); }

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Bytes per element of `dtype`, 0 when unknown.
std::size_t dtype_bytes(const std::string& dtype) {
  if (dtype == "uint8") return 1;
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "float64" || dtype == "int64") return 8;
  return 0;
}

// The bytes of an array of `shape` and `dtype`; false on overflow or an unknown dtype.
bool array_bytes(const std::vector<std::size_t>& shape, const std::string& dtype, std::uint64_t& bytes) {
  bytes = dtype_bytes(dtype);
  if (bytes == 0) return false;
  for (const std::size_t d : shape)
    if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(d), &bytes)) return false;
  return true;
}

nlohmann::json toc_of(const nlohmann::json& source, const std::vector<DatasetArray>& arrays) {
  nlohmann::json list = nlohmann::json::array();
  for (const DatasetArray& a : arrays)
    list.push_back({{"name", a.name}, {"dtype", a.dtype}, {"shape", a.shape}, {"offset", a.offset}, {"bytes", a.bytes}});
  return {{"source", source}, {"arrays", list}};
}

std::vector<DatasetArray> arrays_of(const nlohmann::json& toc) {
  std::vector<DatasetArray> out;
  for (const nlohmann::json& a : toc.at("arrays"))
    out.push_back({a.at("name").get<std::string>(), a.at("dtype").get<std::string>(),
                   json_integers<std::size_t>(a.at("shape")), json_integer<std::size_t>(a.at("offset")),
                   json_integer<std::size_t>(a.at("bytes"))});
  return out;
}

std::string describe_file(const nlohmann::json& f) {
  // Printed as written: the description is read from a segment and may hold anything.
  const auto field = [&f](const char* key) { return f.contains(key) ? f.at(key).dump() : std::string("?"); };
  return str_cat(field("path"), " (", field("bytes"), " bytes, modified at ", field("mtime_ns"), " ns)");
}

// Why the copy's `theirs` source differs from this process's `ours`.
std::string source_difference(const nlohmann::json& theirs, const nlohmann::json& ours) {
  const nlohmann::json& a = theirs.contains("files") ? theirs.at("files") : nlohmann::json::array();
  const nlohmann::json& b = ours.contains("files") ? ours.at("files") : nlohmann::json::array();
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size() && i < b.size() && a[i] == b[i]) continue;
    if (i >= a.size()) return str_cat("this worker also reads ", describe_file(b[i]));
    if (i >= b.size()) return str_cat("the shared copy was also loaded from ", describe_file(a[i]));
    return str_cat("the shared copy was loaded from ", describe_file(a[i]), ", this worker has ", describe_file(b[i]));
  }
  return str_cat("its source ", theirs.dump(), " is not this worker's ", ours.dump());
}

std::string list_arrays(const std::vector<DatasetArray>& arrays) {
  std::string out;
  for (const DatasetArray& a : arrays)
    out += str_cat(out.empty() ? "" : ", ", a.name, " ", a.dtype, " ", shape_to_string(a.shape));
  return out;
}

}  // namespace

nlohmann::json describe_files(const std::vector<std::filesystem::path>& paths) {
  nlohmann::json files = nlohmann::json::array();
  for (const std::filesystem::path& p : paths) {
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0) throw FileError(str_cat("data file ", p.string(), ": ", std::strerror(errno)));
    const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    files.push_back({{"path", std::filesystem::absolute(p).lexically_normal().string()},
                     {"bytes", static_cast<std::uint64_t>(st.st_size)},
                     {"mtime_ns", mtime}});
  }
  return {{"files", files}};
}

std::string dataset_header_problem(const void* base, std::size_t size) {
  if (base == nullptr || size < kPage) return str_cat(size, " bytes, smaller than a data set's header");
  const auto& h = *static_cast<const Header*>(base);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return "not a platoon data set (bad magic)";
  if (h.version != kVersion) return str_cat("data set format version ", h.version, ", this platoon reads ", kVersion);
  if (h.total_bytes != size) return str_cat("the header says ", h.total_bytes, " bytes, the object has ", size);
  std::uint64_t toc_end = h.toc_offset, data_end = h.data_offset;
  if (h.toc_offset != kPage || !add_to(toc_end, h.toc_bytes) || toc_end > size || h.data_offset < toc_end ||
      h.data_offset % kPage != 0 || !add_to(data_end, h.data_bytes) || data_end > size)
    return "the header's regions are out of bounds or misaligned (corrupted header)";
  const char* toc_text = static_cast<const char*>(base) + h.toc_offset;
  if (fnv1a(toc_text, h.toc_bytes) != h.toc_checksum) return "table of contents checksum mismatch (corrupted)";
  try {
    const nlohmann::json toc = nlohmann::json::parse(std::string_view(toc_text, h.toc_bytes));
    for (const DatasetArray& a : arrays_of(toc)) {
      std::uint64_t bytes = 0, end = a.offset;
      if (!array_bytes(a.shape, a.dtype, bytes) || bytes != a.bytes)
        return str_cat("array ", a.name, ": dtype ", a.dtype, " and shape ", shape_to_string(a.shape),
                       " do not make ", a.bytes, " bytes");
      if (a.offset % kArrayAlign != 0 || !add_to(end, a.bytes) || end > h.data_bytes)
        return str_cat("array ", a.name, " lies outside the data (corrupted)");
    }
  } catch (const nlohmann::json::exception& e) {
    return str_cat("the table of contents is malformed: ", e.what());
  }
  return {};
}

std::string SharedDataset::object_name(const std::string& job_id, const std::string& name) {
  return str_cat("platoon-", job_id, ".data-", name);
}

const DatasetArray& SharedDataset::Writer::find(std::string_view name, std::size_t element_bytes) const {
  for (const DatasetArray& a : arrays_)
    if (a.name == name) {
      if (dtype_bytes(a.dtype) != element_bytes)
        throw Error(str_cat("data set array ", name, " is ", a.dtype, ", not of ", element_bytes, "-byte elements"));
      return a;
    }
  throw Error(str_cat("the data set has no array ", name));
}

const DatasetArray& SharedDataset::find(std::string_view name, std::size_t element_bytes) const {
  return Writer(nullptr, arrays_).find(name, element_bytes);
}

namespace {

// Lays out `arrays` (offsets, bytes), with checked sizes; returns the data bytes.
std::uint64_t lay_out(const std::string& name, std::vector<DatasetArray>& arrays) {
  std::uint64_t data_bytes = 0;
  for (DatasetArray& a : arrays) {
    std::uint64_t bytes = 0;
    if (!array_bytes(a.shape, a.dtype, bytes))
      throw Error(str_cat("data set ", name, ", array ", a.name, ": dtype ", a.dtype, " or shape ",
                          shape_to_string(a.shape), " is not usable (unknown dtype or too large)"));
    a.offset = round_up(data_bytes, kArrayAlign);
    a.bytes = bytes;
    data_bytes = a.offset;
    if (!add_to(data_bytes, bytes)) throw Error(str_cat("data set ", name, " is too large"));
  }
  return data_bytes;
}

}  // namespace

SharedDataset SharedDataset::open_or_create(const std::string& job_id, const std::string& name,
                                            const nlohmann::json& source, std::vector<DatasetArray> arrays,
                                            const Fill& fill, const ProcessId& controller,
                                            std::chrono::milliseconds timeout) {
  lay_out(name, arrays);
  return open(job_id, name, source, &arrays, [&] { return Loaded{arrays, fill}; }, controller, timeout);
}

SharedDataset SharedDataset::open_or_create(const std::string& job_id, const std::string& name,
                                            const nlohmann::json& source, const std::function<Loaded()>& load,
                                            const ProcessId& controller, std::chrono::milliseconds timeout) {
  return open(job_id, name, source, nullptr, load, controller, timeout);
}

SharedDataset SharedDataset::open(const std::string& job_id, const std::string& name, const nlohmann::json& source,
                                  const std::vector<DatasetArray>* expected, const std::function<Loaded()>& load,
                                  const ProcessId& controller, std::chrono::milliseconds timeout) {
  const std::string object = object_name(job_id, name);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!std::filesystem::exists("/dev/shm/" + object)) {
      Loaded loaded = load();
      const std::uint64_t data_bytes = lay_out(name, loaded.arrays);
      std::vector<DatasetArray>& arrays = loaded.arrays;
      const std::string toc = toc_of(source, arrays).dump();
      const std::size_t data_offset = round_up(kPage + toc.size(), kPage);
      std::uint64_t total = data_offset;
      if (!add_to(total, data_bytes)) throw Error(str_cat("data set ", name, " is too large"));
      SharedDataset d;
      try {
        d.object_ = ShmObject::create(object, total);
      } catch (const ResourceError&) {
        if (!std::filesystem::exists("/dev/shm/" + object)) throw;  // no space, not a race
        continue;                                                    // another process was faster
      }
      auto* h = new (d.object_.data()) Header{};
      h->init(kMagic, kVersion, kStateFilling, controller);
      const ProcessId self = ProcessId::self();
      h->creator_pid = self.pid;
      h->creator_start_ticks = self.start_ticks;
      h->total_bytes = total;
      h->toc_offset = kPage;
      h->toc_bytes = toc.size();
      h->data_offset = data_offset;
      h->data_bytes = data_bytes;
      auto* base = static_cast<char*>(d.object_.data());
      std::memcpy(base + kPage, toc.data(), toc.size());
      h->toc_checksum = fnv1a(base + kPage, toc.size());
      try {
        Writer writer(reinterpret_cast<std::byte*>(base + data_offset), arrays);
        loaded.fill(writer);
      } catch (...) {
        ShmObject::remove(object);
        throw;
      }
      h->state.store(kStateReady, std::memory_order_release);
      // Read-only from now on, in this process as in the others.
      ::mprotect(d.object_.data(), d.object_.size(), PROT_READ);
      d.data_ = reinterpret_cast<const std::byte*>(base + data_offset);
      d.arrays_ = std::move(arrays);
      d.created_ = true;
      return d;
    }

    // Another process created it: wait until it is filled, then check it.
    SharedDataset d;
    try {
      d.object_ = ShmObject::open(object, /*writable=*/false);
    } catch (const ResourceError&) {
      if (std::chrono::steady_clock::now() >= deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;  // removed or not yet sized: look again
    }
    const auto& h = *static_cast<const Header*>(d.object_.data());
    if (d.object_.size() < kPage || h.state.load(std::memory_order_acquire) != kStateReady) {
      const ProcessId creator{d.object_.size() >= kPage ? h.creator_pid : 0,
                              d.object_.size() >= kPage ? h.creator_start_ticks : 0};
      if (creator.pid != 0 && !creator.alive()) {
        ShmObject::remove(object);  // its loader died half-way: load it again
        continue;
      }
      if (std::chrono::steady_clock::now() >= deadline)
        throw TimeoutError(str_cat("data set ", object, " was not loaded within ", timeout.count(),
                                   " ms by process ", creator.pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (const std::string problem = dataset_header_problem(d.object_.data(), d.object_.size()); !problem.empty())
      throw LayoutError(str_cat("data set ", object, ": ", problem));
    const char* base = static_cast<const char*>(d.object_.data());
    const nlohmann::json theirs = nlohmann::json::parse(std::string_view(base + h.toc_offset, h.toc_bytes));
    if (theirs.at("source") != source)
      throw LayoutError(str_cat("data set ", object, " is not this worker's: ",
                                source_difference(theirs.at("source"), source)));
    std::vector<DatasetArray> shared = arrays_of(theirs);
    if (expected != nullptr && shared != *expected)
      throw LayoutError(str_cat("data set ", object, " holds ", list_arrays(shared), "; this worker expects ",
                                list_arrays(*expected)));
    d.data_ = reinterpret_cast<const std::byte*>(base + h.data_offset);
    d.arrays_ = std::move(shared);
    return d;
  }
}

}  // namespace platoon
