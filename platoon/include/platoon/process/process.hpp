// Facts about processes on this host, used to tell live owners of shared
// state from dead ones (a pid alone can be reused; pid + start time cannot).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace platoon {

/// Identity of a process: pid and its start time in clock ticks since boot
/// (field 22 of /proc/<pid>/stat).
struct ProcessId {
  std::int64_t pid = 0;
  std::uint64_t start_ticks = 0;

  /// The calling process.
  static ProcessId self();
  /// Process `pid` of this host, with its start time when it can be read
  /// (start_ticks 0 otherwise: then alive() looks at the pid alone).
  static ProcessId of(std::int64_t pid);
  /// "pid:start_ticks", as parse() reads it.
  [[nodiscard]] std::string to_string() const;
  /// Reads "pid" or "pid:start_ticks"; nullopt for anything else.
  static std::optional<ProcessId> parse(std::string_view text);
  /// Whether this process still runs (a zombie counts as dead).
  [[nodiscard]] bool alive() const;
};

/// This host's name.
std::string host_name();

}  // namespace platoon
