#include "platoon/process/process.hpp"

#include <unistd.h>

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
