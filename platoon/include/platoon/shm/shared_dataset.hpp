// A data set in read-only shared memory, one copy per host: the first worker
// of a job that asks for it loads it, every other worker maps that copy.
//
//   std::vector<platoon::DatasetArray> arrays = {{"images", "float32", {60000, 784}},
//                                               {"labels", "uint8", {60000}}};
//   auto data = platoon::SharedDataset::open_or_create(
//       soldier.job_id(), "fashion-mnist", platoon::describe_files({images_path, labels_path}), arrays,
//       [&](platoon::SharedDataset::Writer& w) { load_into(w.array<float>("images"), ...); },
//       soldier.controller(), std::chrono::minutes(2));
//   std::span<const float> images = data.array<float>("images");
//
// The object is "platoon-<job>.data-<name>", so the controller removes it
// with the job's other objects. Its header starts like every platoon
// segment's (magic, version, state, controller pid and start time), then
// holds the offsets and a table of contents as JSON: the arrays (name,
// dtype, shape, offset) and the "source" (the files it was loaded from, with
// sizes and modification times). A worker whose source differs gets an
// error that names the file, never data of another set.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "platoon/process/process.hpp"
#include "platoon/shm/shm_object.hpp"

namespace platoon {

/// One array of a shared data set: row-major, of `dtype` ("float32",
/// "uint8", "int32", "int64" or "float64").
struct DatasetArray {
  std::string name;
  std::string dtype;
  std::vector<std::size_t> shape;
  std::size_t offset = 0;  ///< bytes from the start of the data (set by the data set)
  std::size_t bytes = 0;   ///< set by the data set

  friend bool operator==(const DatasetArray&, const DatasetArray&) = default;
};

/// {"files": [{"path", "bytes", "mtime_ns"}]} of `paths`, in order: what a
/// shared copy must have been loaded from. Throws FileError naming a file
/// that does not exist or cannot be read.
nlohmann::json describe_files(const std::vector<std::filesystem::path>& paths);

class SharedDataset {
 public:
  /// What the loading process writes into.
  class Writer {
   public:
    /// The array `name`, writable, as T (its dtype must match T's size).
    template <class T>
    std::span<T> array(std::string_view name) {
      const DatasetArray& a = find(name, sizeof(T));
      return {reinterpret_cast<T*>(base_ + a.offset), a.bytes / sizeof(T)};
    }

   private:
    friend class SharedDataset;
    Writer(std::byte* base, const std::vector<DatasetArray>& arrays) : base_(base), arrays_(arrays) {}
    const DatasetArray& find(std::string_view name, std::size_t element_bytes) const;
    std::byte* base_;
    const std::vector<DatasetArray>& arrays_;
  };
  using Fill = std::function<void(Writer&)>;

  /// Maps job `job_id`'s shared copy of data set `name`, creating and
  /// filling it (`fill`, in this process only) if it does not exist yet.
  /// Waits at most `timeout` for another process that is filling it.
  /// Throws LayoutError when the existing copy was loaded from another
  /// source (the message names the first file that differs) or holds other
  /// arrays, ResourceError when shared memory is short (bytes needed and
  /// free), TimeoutError when the filler neither finishes nor dies in time,
  /// Error when the filler died (the copy is then removed for a retry), and
  /// whatever `fill` throws (nothing is left behind).
  static SharedDataset open_or_create(const std::string& job_id, const std::string& name,
                                      const nlohmann::json& source, std::vector<DatasetArray> arrays,
                                      const Fill& fill, const ProcessId& controller,
                                      std::chrono::milliseconds timeout);

  /// What a loader returns: the arrays (shapes known once the files are
  /// read) and how to fill them.
  struct Loaded {
    std::vector<DatasetArray> arrays;
    Fill fill;
  };
  /// As above, for data whose shapes are known only once it is read: `load`
  /// runs only in a process that creates the copy; the others take the
  /// arrays from the shared copy, whose source must still equal `source`.
  /// Two processes that start at once may both load, but only one copy is
  /// ever kept.
  static SharedDataset open_or_create(const std::string& job_id, const std::string& name,
                                      const nlohmann::json& source, const std::function<Loaded()>& load,
                                      const ProcessId& controller, std::chrono::milliseconds timeout);

  /// The object's name for job `job_id` and data set `name`.
  static std::string object_name(const std::string& job_id, const std::string& name);

  SharedDataset(SharedDataset&&) noexcept = default;
  SharedDataset& operator=(SharedDataset&&) noexcept = default;

  /// The array `name`, read-only, as T. Throws Error naming the array when
  /// there is none of that name or its dtype is not T's size.
  template <class T>
  [[nodiscard]] std::span<const T> array(std::string_view name) const {
    const DatasetArray& a = find(name, sizeof(T));
    return {reinterpret_cast<const T*>(data_ + a.offset), a.bytes / sizeof(T)};
  }
  [[nodiscard]] const std::vector<DatasetArray>& arrays() const { return arrays_; }
  /// Whether this process loaded it (false: it mapped another's copy).
  [[nodiscard]] bool created() const { return created_; }
  /// Bytes of the whole object in shared memory.
  [[nodiscard]] std::size_t mapped_bytes() const { return object_.size(); }
  [[nodiscard]] const std::string& name() const { return object_.name(); }

 private:
  SharedDataset() = default;
  static SharedDataset open(const std::string& job_id, const std::string& name, const nlohmann::json& source,
                            const std::vector<DatasetArray>* expected, const std::function<Loaded()>& load,
                            const ProcessId& controller, std::chrono::milliseconds timeout);
  const DatasetArray& find(std::string_view name, std::size_t element_bytes) const;

  ShmObject object_;
  const std::byte* data_ = nullptr;
  std::vector<DatasetArray> arrays_;
  bool created_ = false;
};

/// Checks a data set's header and table of contents from raw bytes. Returns
/// the problem, or an empty string. Used when mapping, and by the fuzz target.
std::string dataset_header_problem(const void* base, std::size_t size);

}  // namespace platoon
