// platoon-shm: lists, inspects and removes the shared-memory segments of
// platoon jobs on this host.
//
//   platoon-shm                  table of every segment: name, job, controller
//                                pid, alive/dead, ready, size, layout summary
//   platoon-shm --layout NAME    the full layout of one segment
//   platoon-shm --remove-dead    removes the objects whose controller is dead
//                                (whatever their format); keeps the others
//   platoon-shm --remove NAME    removes one segment
//   --json                       machine-readable output for any of the above
//   --match TEXT                 only segments whose name contains TEXT
//
// NAME is a segment name as listed ("platoon-<job id>") or a job id.
//
// Exit codes: 0 done; 1 bad usage (including a NAME that names no segment);
// 3 a removal failed.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "platoon/common/log.hpp"
#include "platoon/shm/shared_segment.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitRemoveFailed = 3;

constexpr const char* kDescription = R"(usage: platoon-shm [--json] [--match TEXT]
       platoon-shm --layout NAME [--json]
       platoon-shm --remove-dead [--match TEXT] [--json]
       platoon-shm --remove NAME [--json]

Lists the shared-memory segments of platoon jobs on this host. With no
action: a table of name, job, controller pid, alive/dead, ready, size and
layout summary (parameters, values).
)";

constexpr const char* kFooter = R"(
NAME is a segment name as listed ("platoon-<job id>") or a job id.

Exit codes: 0 done; 1 bad usage, or NAME names no segment; 3 a removal
failed (another user's object, say).
)";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  enum class Action { list, layout, remove_dead, remove } action = Action::list;
  std::string name;   // for --layout and --remove
  std::string match;  // for the list and --remove-dead
  bool json = false;
  bool help = false;       // --help: print help_text, exit 0
  std::string help_text;
};

Options parse_options(int argc, char** argv) {
  Options o;
  CLI::App app(kDescription, "platoon-shm");
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "this text");
  app.footer(kFooter);
  CLI::Option* layout = app.add_option("--layout", o.name, "the full layout of one segment")->type_name("NAME");
  bool remove_dead_flag = false;
  CLI::Option* remove_dead = app.add_flag(
      "--remove-dead", remove_dead_flag,
      "remove the objects (segments, and jobs' group segments, slots and data) whose controller is positively "
      "dead, whatever their format; anything whose owner cannot be read is reported and kept");
  CLI::Option* remove =
      app.add_option("--remove", o.name, "remove one segment (processes that mapped it keep it)")->type_name("NAME");
  CLI::Option* match = app.add_option("--match", o.match, "only the segments whose name contains TEXT");
  app.add_flag("--json", o.json, "machine-readable output");
  // One action at most; --match goes with the list and --remove-dead only.
  layout->excludes(remove_dead)->excludes(remove)->excludes(match);
  remove->excludes(remove_dead)->excludes(match);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    o.help = true;
    o.help_text = app.help();
    return o;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  if (*layout) o.action = Options::Action::layout;
  if (*remove) o.action = Options::Action::remove;
  if (*remove_dead) o.action = Options::Action::remove_dead;
  return o;
}

std::vector<std::string> segments(const std::string& match) {
  std::vector<std::string> names = platoon::SharedSegment::list();
  std::erase_if(names, [&](const std::string& n) { return n.find(match) == std::string::npos; });
  return names;
}

/// The listed segment that `name` means: a segment name (with or without a
/// leading '/') or a job id. Throws UsageError when there is none.
std::string resolve(std::string name) {
  if (name.starts_with('/')) name.erase(0, 1);
  const std::vector<std::string> all = platoon::SharedSegment::list();
  if (std::find(all.begin(), all.end(), name) != all.end()) return name;
  const std::string by_job = platoon::SharedSegment::name_for_job(name);
  if (std::find(all.begin(), all.end(), by_job) != all.end()) return by_job;
  throw UsageError(platoon::str_cat("no platoon segment named '", name, "' (platoon-shm lists them)"));
}

std::string human_bytes(std::size_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  std::ostringstream out;
  if (unit == 0) out << bytes << " B";
  else out << std::fixed << std::setprecision(1) << value << " " << kUnits[unit];
  return out.str();
}

std::string state_of(const platoon::SegmentInfo& info) {
  if (!info.owner_known) return "unreadable";
  return info.controller.alive() ? "alive" : "dead";
}

std::string layout_summary(const platoon::SegmentInfo& info) {
  if (!info.layout) return info.problem;
  return platoon::str_cat(info.layout->entries().size(), " params, ", info.layout->total_size(), " values");
}

json to_json(const platoon::SegmentInfo& info) {
  json j = {{"name", info.name},
            {"job_id", info.job_id},
            {"controller_pid", info.controller.pid},
            {"controller_alive", info.problem.empty() && info.controller.alive()},
            {"state", state_of(info)},
            {"creator_pid", info.creator.pid},
            {"ready", info.ready},
            {"bytes", info.bytes},
            {"created_unix_ms", info.created_unix_ms},
            {"problem", info.problem}};
  if (info.layout) {
    j["parameters"] = info.layout->entries().size();
    j["values"] = info.layout->total_size();
  }
  return j;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], row[c].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

int list(const Options& o) {
  const std::vector<std::string> names = segments(o.match);
  if (o.json) {
    json out = json::array();
    for (const auto& name : names) out.push_back(to_json(platoon::SharedSegment::inspect(name)));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (names.empty()) {
    std::cout << "no platoon shared-memory segments" << (o.match.empty() ? "" : " matching '" + o.match + "'")
              << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows{{"NAME", "JOB", "CONTROLLER", "STATE", "READY", "SIZE", "LAYOUT"}};
  for (const auto& name : names) {
    const platoon::SegmentInfo info = platoon::SharedSegment::inspect(name);
    const bool readable = info.problem.empty();
    rows.push_back({name, readable ? info.job_id : "-", readable ? std::to_string(info.controller.pid) : "-",
                    state_of(info), readable ? (info.ready ? "yes" : "no") : "-", human_bytes(info.bytes),
                    layout_summary(info)});
  }
  print_table(rows);
  return kExitOk;
}

int layout(const Options& o) {
  const platoon::SegmentInfo info = platoon::SharedSegment::inspect(resolve(o.name));
  if (o.json) {
    json out = to_json(info);
    if (info.layout) out["layout"] = info.layout->to_json();
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "segment     " << info.name << "\n";
  if (!info.problem.empty()) {
    std::cout << "unreadable  " << info.problem << "\nsize        " << human_bytes(info.bytes) << "\n";
    return kExitOk;
  }
  std::cout << "job         " << info.job_id << "\n"
            << "controller  pid " << info.controller.pid << " (" << state_of(info) << ")\n"
            << "creator     pid " << info.creator.pid << "\n"
            << "ready       " << (info.ready ? "yes" : "no") << "\n"
            << "size        " << human_bytes(info.bytes) << " (" << info.bytes << " bytes)\n"
            << "layout      " << layout_summary(info) << "\n\n";
  std::vector<std::vector<std::string>> rows{{"#", "NAME", "SHAPE", "DTYPE", "OFFSET", "SIZE"}};
  std::size_t i = 0;
  for (const platoon::LayoutEntry& e : info.layout->entries())
    rows.push_back({std::to_string(i++), e.name, platoon::shape_to_string(e.shape), e.dtype, std::to_string(e.offset),
                    std::to_string(e.size)});
  print_table(rows);
  return kExitOk;
}

int remove_dead(const Options& o) {
  json removed = json::array(), kept = json::array(), failed = json::array();
  for (const auto& name : segments(o.match)) {
    const platoon::SegmentInfo info = platoon::SharedSegment::inspect(name);
    const std::string reason = platoon::stale_reason(info);
    if (reason.empty()) {
      // A running job's, or one whose owner cannot be read: not ours to touch.
      if (!info.owner_known)
        kept.push_back({{"name", name},
                        {"reason", platoon::str_cat("its owner cannot be read (", info.problem,
                                                    "): kept; remove it by name if you know it is stale")}});
      continue;
    }
    if (platoon::SharedSegment::remove(name)) removed.push_back({{"name", name}, {"reason", reason}});
    else failed.push_back({{"name", name}, {"reason", reason + "; could not remove it (another user's?)"}});
  }
  if (o.json) {
    std::cout << json{{"removed", removed}, {"kept", kept}, {"failed", failed}}.dump(2) << "\n";
    return failed.empty() ? kExitOk : kExitRemoveFailed;
  }
  for (const auto& r : removed) std::cout << "removed " << r["name"].get<std::string>() << ": " << r["reason"].get<std::string>() << "\n";
  for (const auto& k : kept) std::cout << "kept " << k["name"].get<std::string>() << ": " << k["reason"].get<std::string>() << "\n";
  for (const auto& f : failed) std::cout << "failed " << f["name"].get<std::string>() << ": " << f["reason"].get<std::string>() << "\n";
  if (removed.empty() && kept.empty() && failed.empty()) std::cout << "no dead segments\n";
  return failed.empty() ? kExitOk : kExitRemoveFailed;
}

int remove_one(const Options& o) {
  const std::string name = resolve(o.name);
  const platoon::SegmentInfo info = platoon::SharedSegment::inspect(name);
  const bool live = info.owner_known && info.controller.alive();
  const bool ok = platoon::SharedSegment::remove(name);
  if (o.json) {
    std::cout << json{{"name", name}, {"removed", ok}, {"controller_alive", live}}.dump(2) << "\n";
    return ok ? kExitOk : kExitRemoveFailed;
  }
  if (!ok) {
    std::cout << "could not remove " << name << " (gone already, or another user's)\n";
    return kExitRemoveFailed;
  }
  if (live)
    std::cout << "removed " << name << " although its controller (pid " << info.controller.pid
              << ") is alive: processes that mapped it keep it, new workers cannot join\n";
  else std::cout << "removed " << name << "\n";
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_options(argc, argv);
    if (o.help) {
      std::cout << o.help_text;
      return kExitOk;
    }
    switch (o.action) {
      case Options::Action::list: return list(o);
      case Options::Action::layout: return layout(o);
      case Options::Action::remove_dead: return remove_dead(o);
      case Options::Action::remove: return remove_one(o);
    }
  } catch (const UsageError& e) {
    std::cerr << "platoon-shm: " << e.what() << "\n(platoon-shm --help shows the usage)\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "platoon-shm: " << e.what() << "\n";
    return kExitUsage;
  }
  return kExitOk;
}
