#include "platoon/process/process.hpp"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace platoon {

namespace {
// Reads state (field 3) and start time (field 22) from /proc/<pid>/stat.
// The command name (field 2) may contain spaces, so parse after its ')'.
bool read_stat(std::int64_t pid, char& state, std::uint64_t& start_ticks) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  const auto close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(text.substr(close + 1));
  rest >> state;
  std::string field;
  for (int i = 4; i < 22; ++i) rest >> field;  // fields 4..21
  rest >> start_ticks;
  return static_cast<bool>(rest);
}
}  // namespace

ProcessId ProcessId::self() {
  ProcessId id;
  id.pid = ::getpid();
  char state = 0;
  read_stat(id.pid, state, id.start_ticks);
  return id;
}

ProcessId ProcessId::of(std::int64_t pid) {
  ProcessId id;
  id.pid = pid;
  char state = 0;
  if (!read_stat(pid, state, id.start_ticks)) id.start_ticks = 0;
  return id;
}

std::string ProcessId::to_string() const { return std::to_string(pid) + ":" + std::to_string(start_ticks); }

std::optional<ProcessId> ProcessId::parse(std::string_view text) {
  ProcessId id;
  const std::size_t colon = text.find(':');
  const std::string_view pid_text = text.substr(0, colon);
  auto [end, error] = std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), id.pid);
  if (error != std::errc() || end != pid_text.data() + pid_text.size() || id.pid <= 0) return std::nullopt;
  if (colon != std::string_view::npos) {
    const std::string_view ticks_text = text.substr(colon + 1);
    auto [tend, terror] = std::from_chars(ticks_text.data(), ticks_text.data() + ticks_text.size(), id.start_ticks);
    if (terror != std::errc() || tend != ticks_text.data() + ticks_text.size() || ticks_text.empty())
      return std::nullopt;
  }
  return id;
}

bool ProcessId::alive() const {
  if (pid <= 0) return false;
  char state = 0;
  std::uint64_t ticks = 0;
  if (!read_stat(pid, state, ticks)) return false;
  if (state == 'Z' || state == 'X') return false;
  return start_ticks == 0 || ticks == start_ticks;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown-host";
  return name;
}

}  // namespace platoon
