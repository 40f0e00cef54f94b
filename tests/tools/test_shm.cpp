// platoon-shm, run as a real process on real segments: one whose controller
// is a dead process, one whose controller is this test.
#include <doctest/doctest.h>
#include <signal.h>

#include <regex>

#include <nlohmann/json.hpp>

#include "platoon/shm/shared_segment.hpp"
#include "tools_test_support.hpp"

#ifndef PLATOON_SHM_BIN
#error "PLATOON_SHM_BIN must name the platoon-shm binary"
#endif

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using platoon::testing::run_tool;

namespace {

// Removes the named segments when the test ends, whatever happened.
struct SegmentCleanup {
  std::vector<std::string> names;
  ~SegmentCleanup() {
    for (const auto& n : names) platoon::SharedSegment::remove(n);
  }
};

// The identity of a process that has ended (spawned, identified, killed, reaped).
platoon::ProcessId dead_process() {
  platoon::ChildProcess child = platoon::ChildProcess::spawn({"sleep", "30"});
  const platoon::ProcessId id = platoon::testing::process_id_of(child.pid());
  REQUIRE(id.start_ticks != 0);
  REQUIRE(id.alive());
  child.send_signal(SIGKILL);
  REQUIRE(child.wait_for(5s));
  REQUIRE_FALSE(id.alive());
  return id;
}

bool listed(const std::string& name) {
  const auto names = platoon::SharedSegment::list();
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

TEST_CASE("platoon-shm lists a dead controller's segment as dead and --remove-dead removes only it") {
  platoon::testing::TempDir dir;
  std::vector<float> a(6), b(4);
  const std::vector<platoon::ParamView> params{{"a", a.data(), {2, 3}}, {"b", b.data(), {4}}};
  const platoon::Layout layout = platoon::Layout::of(params);

  // Every controller that starts on this host removes the segments of dead
  // controllers (Lieutenant::Options::reclaim_dead_segments), so one of
  // another test or job may take the dead segment away while this test looks
  // at it. Such an attempt is told apart (the segment is gone although
  // platoon-shm did not report removing it) and made again; a platoon-shm
  // that does not list, show or remove it fails every attempt.
  constexpr int kAttempts = 5;
  int attempt = 1;
  for (; attempt <= kAttempts; ++attempt) {
    // A token only this attempt's segments have, so that --match leaves other
    // jobs on this host alone.
    const std::string token = platoon::testing::unique_name("shmtest");
    const std::string dead_name = platoon::SharedSegment::name_for_job(token + "-dead");
    const std::string live_name = platoon::SharedSegment::name_for_job(token + "-live");
    SegmentCleanup cleanup{{dead_name, live_name}};
    {
      auto dead = platoon::SharedSegment::create(dead_name, token + "-dead", layout, dead_process());
      dead.mark_ready();
      auto live = platoon::SharedSegment::create(live_name, token + "-live", layout, platoon::ProcessId::self());
    }  // unmapped; the segments stay

    const auto [list_status, list_text] = run_tool({PLATOON_SHM_BIN, "--json", "--match", token}, dir);
    const auto [table_status, table] = run_tool({PLATOON_SHM_BIN, "--match", token}, dir);
    const auto [layout_status, layout_text] = run_tool({PLATOON_SHM_BIN, "--layout", dead_name}, dir);
    const auto [by_job_status, by_job] = run_tool({PLATOON_SHM_BIN, "--layout", token + "-live", "--json"}, dir);
    const auto [remove_status, removed] = run_tool({PLATOON_SHM_BIN, "--remove-dead", "--match", token}, dir);
    INFO("--json:\n" << list_text << "\ntable:\n" << table << "\n--layout:\n" << layout_text << "\n--remove-dead:\n"
                     << removed);
    const bool seen = list_text.find(dead_name) != std::string::npos && table.find(dead_name) != std::string::npos &&
                      layout_status.success() && removed.find("removed " + dead_name) != std::string::npos;
    if (!seen && !listed(dead_name)) {
      MESSAGE("attempt ", attempt, ": the dead segment was reclaimed by another controller meanwhile; again");
      continue;
    }

    // --json
    REQUIRE(list_status.success());
    const json list = json::parse(list_text);
    REQUIRE(list.size() == 2);
    for (const json& s : list) {
      CAPTURE(s.dump());
      const bool is_dead = s["name"] == dead_name;
      CHECK((is_dead || s["name"] == live_name));
      CHECK(s["controller_alive"] == !is_dead);
      CHECK(s["state"] == (is_dead ? "dead" : "alive"));
      CHECK(s["ready"] == is_dead);  // only the dead one was marked ready
      CHECK(s["parameters"] == 2);
      CHECK(s["values"] == 10);
      CHECK(s["bytes"].get<std::size_t>() > 0);
      CHECK(s["problem"] == "");
    }

    // The table.
    CHECK(table_status.success());
    CHECK(table.find("NAME") != std::string::npos);
    CHECK(std::regex_search(
        table, std::regex(dead_name + R"( +\S+ +\d+ +dead +yes +[0-9.]+ KiB +2 params, 10 values)")));
    CHECK(std::regex_search(table, std::regex(live_name + R"( +\S+ +)" + std::to_string(::getpid()) +
                                              R"( +alive +no .*2 params, 10 values)")));

    // One segment's layout, by segment name and by job id.
    CHECK(layout_status.success());
    CHECK(std::regex_search(layout_text, std::regex(R"(a +\[2, 3\] +float32 +0 +6)")));
    CHECK(std::regex_search(layout_text, std::regex(R"(b +\[4\] +float32 +6 +4)")));
    CHECK(by_job_status.success());
    CHECK(json::parse(by_job)["layout"].size() == 2);

    // --remove-dead: the dead controller's segment goes, the live one stays.
    CHECK(remove_status.success());
    CHECK(removed.find("removed " + dead_name) != std::string::npos);
    CHECK(removed.find(live_name) == std::string::npos);
    CHECK_FALSE(listed(dead_name));
    CHECK(listed(live_name));
    CHECK(platoon::SharedSegment::inspect(live_name).problem.empty());

    // --remove NAME removes a named one.
    const auto [one_status, one] = run_tool({PLATOON_SHM_BIN, "--remove", live_name}, dir);
    INFO(one);
    CHECK(one_status.success());
    CHECK(one.find("removed " + live_name) != std::string::npos);
    CHECK_FALSE(listed(live_name));
    break;
  }
  CHECK(attempt <= kAttempts);
}

TEST_CASE("platoon-shm: bad usage exits 1") {
  platoon::testing::TempDir dir;
  // Each refusal names the options involved.
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--frobnicate"}, "--frobnicate"},
      {{"--layout"}, "--layout"},
      {{"--remove-dead", "--remove", "x"}, "--remove-dead excludes --remove"},
      {{"--layout", "x", "--remove", "y"}, "--layout excludes --remove"},
      {{"--layout", "x", "--match", "y"}, "--layout excludes --match"},
      {{"--remove", "x", "--match", "y"}, "--remove excludes --match"},
  };
  for (const auto& [args, expected] : bad) {
    std::vector<std::string> argv{PLATOON_SHM_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto [code, message] = run_tool(argv, dir);
    INFO(args[0], ": ", message);
    CHECK(code.code == 1);
    CHECK(message.find(expected) != std::string::npos);
  }
  const auto [status, out] = run_tool({PLATOON_SHM_BIN, "--remove", platoon::testing::unique_name("no-such")}, dir);
  CHECK(status.code == 1);
  CHECK(out.find("no platoon segment named") != std::string::npos);
  auto [help_status, help] = run_tool({PLATOON_SHM_BIN, "--help"}, dir);
  CHECK(help_status.success());
  CHECK(help.find("Exit codes") != std::string::npos);
  for (const char* option : {"--layout", "--remove-dead", "--remove", "--match", "--json", "--help"})
    CHECK_MESSAGE(help.find(option) != std::string::npos, option);
}
