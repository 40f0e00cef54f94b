// Checkpoint files: the central parameters of a job saved to disk, so that a
// job can be resumed or its model evaluated later.
//
// Format (version 1, little-endian):
//   8 bytes   magic "PLATOONC"
//   4 bytes   format version (uint32)
//   8 bytes   header length H in bytes (uint64)
//   H bytes   header, JSON text: {"layout": Layout::to_json(), "count": n,
//             "checksum": FNV-1a-64 of the data bytes, "metadata": {...}}
//   4n bytes  the n float32 values, in layout order
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <vector>

#include "platoon/common/params.hpp"

namespace platoon {

/// Writes `values` (laid out by `layout`) and free-form `metadata` (job id,
/// time, step count...) to `path`, atomically: the data goes to
/// "<path>.tmp.<pid>.<random>" (mode 0600, created exclusively, never
/// through a link), is flushed to disk, then renamed over
/// `path`, and the directory is flushed. A reader sees either the old file or
/// the new one, never a partial file. Throws LayoutError when values.size()
/// differs from layout.total_size(), ResourceError naming the path when the
/// file cannot be written (e.g. its directory does not exist).
void save_checkpoint(const std::filesystem::path& path, const Layout& layout, std::span<const float> values,
                     const nlohmann::json& metadata = nlohmann::json::object());

/// The content of a checkpoint file.
struct Checkpoint {
  Layout layout;
  std::vector<float> values;
  nlohmann::json metadata;
};

/// Reads a checkpoint written by save_checkpoint(). Throws FileError naming
/// the file when it is missing, truncated (with the sizes announced and
/// found), not a checkpoint (bad magic), of an unsupported version, malformed,
/// or corrupted (checksum mismatch).
Checkpoint load_checkpoint(const std::filesystem::path& path);

/// Reads a checkpoint into `values`, which must hold expected.total_size()
/// floats. Throws what load_checkpoint() throws, and LayoutError naming the
/// first differing parameter when the checkpoint was saved from another
/// layout. `values` is left untouched on any error.
void load_checkpoint_into(const std::filesystem::path& path, const Layout& expected, std::span<float> values);

/// Tells a controller when to save the next checkpoint: every `interval`.
class CheckpointSchedule {
 public:
  using Clock = std::chrono::steady_clock;

  /// Counts the first interval from `start`. A zero or negative interval
  /// disables the schedule: due() is then never true.
  explicit CheckpointSchedule(Clock::duration interval, Clock::time_point start = Clock::now())
      : interval_(interval), last_saved_(start) {}

  /// True when `interval` or more has passed since the last save (or start).
  [[nodiscard]] bool due(Clock::time_point now) const {
    return interval_ > Clock::duration::zero() && now - last_saved_ >= interval_;
  }
  /// Records a save done at `now`; the next one is due an interval later.
  void mark_saved(Clock::time_point now) { last_saved_ = now; }

  [[nodiscard]] Clock::duration interval() const { return interval_; }

 private:
  Clock::duration interval_;
  Clock::time_point last_saved_;
};

}  // namespace platoon
