// platoon-launch, run as a real process on a real job (launch_fixture.cpp):
// start order, logs, failures, restarts, Ctrl-C. Plus the pieces that need
// no process (launch_support.hpp).
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include "launch_run.hpp"
#include "launch_support.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "tools_test_support.hpp"

#if !defined(PLATOON_LAUNCH_BIN) || !defined(PLATOON_LAUNCH_FIXTURE_BIN)
#error "PLATOON_LAUNCH_BIN and PLATOON_LAUNCH_FIXTURE_BIN must name the binaries"
#endif

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using platoon::ExitStatus;
using platoon::str_cat;
using platoon::testing::check_nothing_left;
using platoon::testing::eventually;
using platoon::testing::LaunchRun;
using platoon::testing::quoted;
using platoon::testing::read_lines;
using platoon::testing::read_file;

namespace {

const std::regex kStamped(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z .*)");

}  // namespace

TEST_CASE("split_command splits words and quotes like a shell, without expansion") {
  using platoon::launch::split_command;
  CHECK(split_command("prog  -a\tb\nc") == std::vector<std::string>{"prog", "-a", "b", "c"});
  CHECK(split_command("  ") == std::vector<std::string>{});
  CHECK(split_command("p 'a b' \"c d\" e\\ f") == std::vector<std::string>{"p", "a b", "c d", "e f"});
  CHECK(split_command("p '' \"\" x''y") == std::vector<std::string>{"p", "", "", "xy"});
  CHECK(split_command(R"(p "a \"q\" \\ \$HOME \n" '$HOME' $HOME)") ==
        std::vector<std::string>{"p", R"(a "q" \ $HOME \n)", "$HOME", "$HOME"});
  CHECK(split_command("p 'it'\\''s'") == std::vector<std::string>{"p", "it's"});
  CHECK_THROWS_AS(split_command("p 'open"), platoon::launch::UsageError);
  CHECK_THROWS_AS(split_command("p \"open"), platoon::launch::UsageError);
  CHECK_THROWS_AS(split_command("p \\"), platoon::launch::UsageError);
}

TEST_CASE("with_port replaces {port} or appends --port") {
  using platoon::launch::with_port;
  CHECK(with_port({"w", "--lr", "0.1"}, 5567) == std::vector<std::string>{"w", "--lr", "0.1", "--port", "5567"});
  CHECK(with_port({"w", "--endpoint=tcp://127.0.0.1:{port}", "{port}{port}"}, 80) ==
        std::vector<std::string>{"w", "--endpoint=tcp://127.0.0.1:80", "8080"});
}

TEST_CASE("lines are stamped unless they start with an ISO-8601 timestamp") {
  using platoon::launch::starts_with_timestamp;
  CHECK(starts_with_timestamp("2026-11-21T23:10:00.123Z [worker 1] synced"));
  CHECK(starts_with_timestamp("2026-11-21T23:10:00Z x"));
  CHECK(starts_with_timestamp("2026-11-21T23:10:00.123456+01:00 x"));
  CHECK_FALSE(starts_with_timestamp("2026-11-21 23:10:00 x"));
  CHECK_FALSE(starts_with_timestamp("2026-11-21T23:10:00.123"));
  CHECK_FALSE(starts_with_timestamp("epoch 12 loss 0.5"));
  CHECK_FALSE(starts_with_timestamp(""));
  const std::string plain = platoon::launch::stamped("epoch 12");
  CHECK(std::regex_match(plain, kStamped));
  CHECK(plain.ends_with(" epoch 12"));
  CHECK(platoon::launch::stamped("2026-11-21T23:10:00.123Z a") == "2026-11-21T23:10:00.123Z a");
}

TEST_CASE("LineSplitter passes on whole lines, cuts overlong ones, flushes the rest") {
  std::vector<std::string> lines;
  platoon::launch::LineSplitter splitter([&](std::string_view l) { lines.emplace_back(l); }, 8);
  splitter.feed("ab");
  splitter.feed("c\nde\n\nf");
  CHECK(lines == std::vector<std::string>{"abc", "de", ""});
  splitter.feed("0123456789abcdefg\nxyz");
  CHECK(lines == std::vector<std::string>{"abc", "de", "", "f0123456", "789abcde", "fg"});
  splitter.finish();
  CHECK(lines.back() == "xyz");
  splitter.finish();
  CHECK(lines.size() == 7);
}

TEST_CASE("platoon-launch --help and bad usage") {
  platoon::testing::TempDir dir;
  auto [help, text] = platoon::testing::run_tool({PLATOON_LAUNCH_BIN, "--help"}, dir);
  CHECK(help.success());
  CHECK(text.find("Exit codes (the same with and without --restart)") != std::string::npos);
  CHECK(text.find("--restart") != std::string::npos);

  auto [bad, message] = platoon::testing::run_tool({PLATOON_LAUNCH_BIN, "--workers", "two"}, dir);
  CHECK(bad.code == 1);
  CHECK(message.find("--workers") != std::string::npos);
  auto [missing, why] = platoon::testing::run_tool({PLATOON_LAUNCH_BIN, "--controller", "c"}, dir);
  CHECK(missing.code == 1);
  CHECK(why.find("--worker is required") != std::string::npos);
  // Every option is listed, with its default where it has one.
  for (const char* option : {"--controller", "--worker", "--workers", "--port", "--experiment", "--log-dir",
                             "--restart", "--start-timeout", "--params-timeout", "--end-grace", "--help"})
    CHECK_MESSAGE(text.find(option) != std::string::npos, option);
  CHECK(text.find("=60") != std::string::npos);
  CHECK(text.find("PLATOON_WORKER_INDEX") != std::string::npos);
}

// Defect 9: the range of each number is checked before anything starts; the
// message names the option and the range.
TEST_CASE("platoon-launch refuses numbers out of range, naming the option and its range") {
  platoon::testing::TempDir dir;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--port", "0"}, "--port: Value 0 not in range 1 to 65535"},
      {{"--port", "99999"}, "--port: Value 99999 not in range 1 to 65535"},
      {{"--port", "-5"}, "--port: Value -5 not in range 1 to 65535"},
      {{"--workers", "0"}, "--workers: Value 0 not in range 1 to 10000"},
      {{"--restart", "-1"}, "--restart: Value -1 not in range 0 to 1000000"},
      {{"--start-timeout", "0"}, "--start-timeout: needs a number of seconds in (0, 1e7]"},
      {{"--params-timeout", "-2"}, "--params-timeout: needs a number of seconds in (0, 1e7]"},
      {{"--end-grace", "1e300"}, "--end-grace: needs a number of seconds in (0, 1e7]"},
      {{"--log-dir", ""}, "--log-dir: needs a non-empty path"},
      {{"--controller", "'open"}, "--controller"},
  };
  for (const auto& [args, expected] : cases) {
    std::vector<std::string> argv{PLATOON_LAUNCH_BIN, "--log-dir", (dir.path() / "logs").string(), "--controller",
                                  "c", "--worker", "w"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto [status, message] = platoon::testing::run_tool(argv, dir);
    INFO(args[0], " ", args[1], ": ", message);
    CHECK(status.code == 1);
    CHECK(message.find(expected) != std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir.path() / "logs"));  // refused before any run folder
}

TEST_CASE("a controller program that cannot be started: exit 1, saying which") {
  platoon::testing::TempDir dir;
  auto [status, output] = platoon::testing::run_tool(
      {PLATOON_LAUNCH_BIN, "--log-dir", (dir.path() / "logs").string(), "--controller",
       (dir.path() / "no-such-program").string(), "--worker", "w"},
      dir);
  INFO(output);
  CHECK(status.code == 1);
  CHECK(output.find("cannot start controller") != std::string::npos);
}

TEST_CASE("a controller that never answers: exit 3 after --start-timeout, and it is stopped") {
  platoon::testing::TempDir dir;
  const auto record = dir.path() / "record.txt";
  auto [status, output] = platoon::testing::run_tool(
      {PLATOON_LAUNCH_BIN, "--log-dir", (dir.path() / "logs").string(), "--start-timeout", "0.5", "--controller",
       platoon::str_cat(quoted(PLATOON_LAUNCH_FIXTURE_BIN), " silent --record ", quoted(record.string())), "--worker",
       "never-started"},
      dir, 20s);
  INFO(output);
  CHECK(status.code == 3);
  CHECK(output.find("did not answer platoon-status") != std::string::npos);
  CHECK(output.find("never-started") == std::string::npos);  // no worker was started
  const auto lines = read_lines(record);
  REQUIRE(lines.size() == 1);
  const std::regex id(R"(pid=(\d+) ticks=(\d+))");
  std::smatch m;
  REQUIRE(std::regex_search(lines[0], m, id));
  CHECK_FALSE(platoon::ProcessId{std::stoll(m[1]), std::stoull(m[2])}.alive());
}

TEST_CASE("start order: the controller, worker 0, then the others once the parameters are ready") {
  LaunchRun run({.workers = 3, .steps = 10});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.success());

  const auto lines = run.record();
  REQUIRE(!lines.empty());
  CHECK(lines.front().starts_with("controller-start "));
  const auto position = [&](const std::string& prefix) {
    return std::find_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.starts_with(prefix); }) -
           lines.begin();
  };
  const auto worker0 = position("worker 0 start ");
  REQUIRE(worker0 < static_cast<long>(lines.size()));
  CHECK(lines[static_cast<std::size_t>(worker0)].find("params_ready=false") != std::string::npos);
  for (int i = 1; i < 3; ++i) {
    const auto at = position(platoon::str_cat("worker ", i, " start "));
    REQUIRE(at < static_cast<long>(lines.size()));
    CHECK(at > worker0);
    CHECK(lines[static_cast<std::size_t>(at)].find("params_ready=true") != std::string::npos);
  }
  for (int i = 0; i < 3; ++i) CHECK(run.count(platoon::str_cat("worker ", i, " done")) == 1);
  CHECK(run.count("controller end") == 1);
  CHECK(run.output().find("job finished") != std::string::npos);
  check_nothing_left(run);
}

TEST_CASE("logs: one timestamped file per process in the run folder, prefixed lines on the console") {
  LaunchRun run({.workers = 2, .steps = 6});
  const ExitStatus status = run.wait();
  INFO(run.story());
  REQUIRE(status.success());

  const fs::path run_dir = run.run_dir();
  CHECK(std::regex_match(run_dir.filename().string(), std::regex(R"(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})")));
  // Every process saw the run folder in PLATOON_RUN_DIR.
  for (const std::string& line : run.record())
    if (line.find(" start ") != std::string::npos && line.starts_with("worker "))
      CHECK(line.ends_with("run_dir=" + run_dir.string()));
  for (const std::string name : {"controller", "worker-0", "worker-1", "launch"}) {
    CAPTURE(name);
    const auto lines = read_lines(run_dir / (name + ".log"));
    CHECK(!lines.empty());
    for (const std::string& line : lines) {
      CAPTURE(line);
      CHECK(std::regex_match(line, kStamped));
    }
  }
  // The worker's plain lines got a timestamp; the Logger's kept theirs.
  const std::string worker_log = read_file(run_dir / "worker-1.log");
  CHECK(std::regex_search(worker_log, std::regex(R"(Z worker 1 step 1\n)")));
  CHECK(read_file(run_dir / "controller.log").find("[controller] job ") != std::string::npos);
  CHECK(read_file(run_dir / "launch.log").find("[launch] started worker-1") != std::string::npos);

  const std::string out = run.output();
  for (const std::string prefix : {"controller | ", "worker-0   | ", "worker-1   | ", "launch     | "}) {
    CAPTURE(prefix);
    CHECK(out.find("\n" + prefix) != std::string::npos);
  }
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    CAPTURE(line);
    CHECK(std::regex_match(line, std::regex(R"(^(controller|worker-\d  |launch    ) \| \d{4}-\d\d-\d\dT.*)")));
  }
}

TEST_CASE("a worker that exits with code 3: exit 2 naming it, and nothing of the job is left") {
  LaunchRun run({.workers = 3,
                 .steps = 100000,
                 .worker_extra = "--step-ms 10 --fail-index 1 --exit-code 3 --fail-after 3"});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.code == 2);
  const std::string out = run.output();
  CHECK(std::regex_search(out, std::regex(R"(worker-1 \(pid \d+\) exited with code 3)")));
  CHECK(out.find("job failed: worker-1") != std::string::npos);
  CHECK(run.count("worker 1 fail") == 1);
  check_nothing_left(run);
}

TEST_CASE("a worker killed by SIGKILL: exit 2 saying so") {
  LaunchRun run({.workers = 2, .steps = 100000, .worker_extra = "--step-ms 10 --fail-index 1 --kill-self"});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.code == 2);
  CHECK(std::regex_search(run.output(), std::regex(R"(worker-1 \(pid \d+\) killed by signal 9 \(SIGKILL\))")));
  check_nothing_left(run);
}

TEST_CASE("--restart 1: a worker that fails once is restarted and the job finishes") {
  platoon::testing::TempDir marker_dir;
  const fs::path marker = marker_dir.path() / "failed-once";
  LaunchRun run({.workers = 3,
                 .steps = 15,
                 .worker_extra = platoon::str_cat("--step-ms 5 --fail-index 1 --exit-code 3 --fail-once ",
                                                  quoted(marker.string())),
                 .launcher_extra = {"--restart", "1"}});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.success());
  CHECK(fs::exists(marker));
  const std::string out = run.output();
  CHECK(std::regex_search(out, std::regex(R"(worker-1 \(pid \d+\) exited with code 3)")));
  CHECK(out.find("restarting worker-1 (restart 1 of 1)") != std::string::npos);
  CHECK(read_file(run.run_dir() / "launch.log").find("restarting worker-1") != std::string::npos);
  CHECK(run.count("worker 1 start ") == 2);
  CHECK(run.count("worker 1 fail") == 1);
  for (int i = 0; i < 3; ++i) CHECK(run.count(platoon::str_cat("worker ", i, " done")) == 1);

  // The restarted worker has a new id but the name of its log file, in its
  // own lines and in the controller's.
  std::vector<std::string> ids;
  for (const std::string& line : run.record()) {
    std::smatch m;
    if (std::regex_search(line, m, std::regex(R"(^worker 1 joined id=(\d+) )"))) ids.push_back(m[1]);
  }
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] != ids[1]);
  const std::string worker_log = read_file(run.run_dir() / "worker-1.log");
  const std::string controller_log = read_file(run.run_dir() / "controller.log");
  for (const std::string& id : ids) {
    CAPTURE(id);
    CHECK(worker_log.find(platoon::str_cat("[worker ", id, " (worker-1)] joined job ")) != std::string::npos);
    CHECK(controller_log.find(platoon::str_cat("worker ", id, " (worker-1) joined (pid ")) != std::string::npos);
  }
  check_nothing_left(run);
}

TEST_CASE("a failing worker with no restart left: exit 2") {
  LaunchRun run({.workers = 2,
                 .steps = 100000,
                 .worker_extra = "--step-ms 10 --fail-index 1 --exit-code 4",
                 .launcher_extra = {"--restart", "1"}});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.code == 2);
  CHECK(run.count("worker 1 start ") == 2);  // the first run and its one restart
  CHECK(run.output().find("no restart left") != std::string::npos);
  check_nothing_left(run);
}

TEST_CASE("SIGINT to the launcher in the middle of a job: exit 130, every process and the segment gone") {
  LaunchRun run({.workers = 2, .steps = 100000, .worker_extra = "--step-ms 10"});
  const bool started = eventually([&] { return run.count("worker 1 start ") == 1 && !run.segment().empty(); }, 20s);
  INFO(run.story());
  REQUIRE(started);
  REQUIRE(eventually([&] { return run.output().find("worker 1 step 3\n") != std::string::npos; }, 10s));
  const std::string segment = run.segment();
  CHECK(eventually([&] { return fs::exists(fs::path("/dev/shm") / segment); }, 10s));
  run.launcher().send_signal(SIGINT);  // to the launcher's process group, as a terminal's Ctrl-C
  const ExitStatus status = run.wait(20s);
  INFO(run.story());
  CHECK(status.code == 130);
  const std::string out = run.output();
  CHECK(out.find("interrupted by SIGINT") != std::string::npos);
  // Only the launcher got SIGINT; it stopped the others in order, with SIGTERM.
  CHECK(out.find("[controller] received SIGTERM") != std::string::npos);
  for (int i = 0; i < 2; ++i)
    CHECK(std::regex_search(out, std::regex(platoon::str_cat("worker-", i,
                                                             R"( \(pid \d+\) stopped: killed by signal 15 \(SIGTERM\))"))));
  check_nothing_left(run);
}

TEST_CASE("worker 0 dies before creating the parameters: exit 2, and no other worker is started") {
  LaunchRun run({.workers = 3, .steps = 10, .worker_extra = "--fail-index 0 --fail-after 0 --exit-code 5"});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.code == 2);
  CHECK(std::regex_search(run.output(), std::regex(R"(worker-0 \(pid \d+\) exited with code 5 before the central)")));
  CHECK(run.count("worker 0 fail") == 1);
  CHECK(run.count("worker 1 ") == 0);
  CHECK(run.count("worker 2 ") == 0);
  check_nothing_left(run);
}

TEST_CASE("central parameters never created: exit 3 after --params-timeout") {
  platoon::testing::TempDir dir;
  const auto record = dir.path() / "record.txt";
  const std::string fixture = quoted(PLATOON_LAUNCH_FIXTURE_BIN);
  auto [status, output] = platoon::testing::run_tool(
      {PLATOON_LAUNCH_BIN, "--workers", "2", "--log-dir", (dir.path() / "logs").string(), "--params-timeout", "0.5",
       "--controller", platoon::str_cat(fixture, " controller --workers 2 --record ", quoted(record.string())),
       "--worker", platoon::str_cat(fixture, " silent --record ", quoted(record.string()))},
      dir, 20s);
  INFO(output);
  CHECK(status.code == 3);
  CHECK(output.find("central parameters were not created within 0.5 s") != std::string::npos);
  const auto lines = read_lines(record);
  CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.starts_with("silent-start"); }) ==
        1);  // worker 0 only
  CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l == "controller end"; }) == 1);
}

TEST_CASE("--restart of worker 0 before the parameters exist: the new worker 0 creates them") {
  // The controller notices lost workers only once a second here, so the new
  // worker 0 would register before the old one is forgotten if the launcher
  // did not wait for that.
  platoon::testing::TempDir marker_dir;
  const fs::path marker = marker_dir.path() / "failed-once";
  LaunchRun run({.workers = 2,
                 .steps = 5,
                 .controller_extra = "--tick-ms 1000",
                 .worker_extra = platoon::str_cat("--fail-index 0 --fail-after 0 --exit-code 6 --fail-once ",
                                                  quoted(marker.string())),
                 .launcher_extra = {"--restart", "1", "--params-timeout", "20"}});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.success());
  CHECK(run.count("worker 0 start params_ready=false") == 2);
  CHECK(run.count("worker 1 start params_ready=true") == 1);
  CHECK(run.count("worker 0 done") == 1);
  CHECK(run.count("worker 1 done") == 1);
  check_nothing_left(run);
}

TEST_CASE("a second launcher on the first job's port: it exits 1 naming the holder; the first job finishes intact") {
  LaunchRun first({.workers = 2, .steps = 300, .worker_extra = "--step-ms 10"});
  REQUIRE(eventually([&] { return first.port() != 0 && !first.segment().empty() && first.count("worker 1 start ") == 1; },
                     20s));
  const std::string segment = first.segment();
  LaunchRun second({.workers = 1, .steps = 5, .launcher_extra = {"--port", std::to_string(first.port())}});
  const ExitStatus second_status = second.wait();
  INFO(second.story());
  CHECK(second_status.code == 1);
  const std::string out = second.output();
  CHECK(out.find(platoon::str_cat("port ", first.port(), " is already in use")) != std::string::npos);
  const auto holder = first.job_processes();
  REQUIRE(!holder.empty());
  CHECK(out.find(platoon::str_cat("pid ", holder.front().pid)) != std::string::npos);  // the first controller
  CHECK(second.count("controller-start") == 0);  // the second controller was never started
  // The first job's segment survives the second launcher and the job trains to the end.
  CHECK(fs::exists(fs::path("/dev/shm") / segment));
  const ExitStatus first_status = first.wait(60s);
  INFO(first.story());
  CHECK(first_status.success());
  for (int i = 0; i < 2; ++i) CHECK(first.count(platoon::str_cat("worker ", i, " done")) == 1);
}

namespace {

/// The pids listed in `file`, one a line (what "echo $! >> file" writes).
std::vector<pid_t> pids_in(const fs::path& file) {
  std::vector<pid_t> pids;
  for (const std::string& line : read_lines(file))
    if (!line.empty()) pids.push_back(static_cast<pid_t>(std::stol(line)));
  return pids;
}

/// Whether `pid` runs (a zombie does not), killing it if it does so that a
/// failing test leaves nothing behind.
bool alive_then_killed(pid_t pid) {
  const bool alive = platoon::ProcessId{pid, 0}.alive();
  if (alive) ::kill(pid, SIGKILL);
  return alive;
}

}  // namespace

TEST_CASE("a worker that exits leaving a helper behind: the job ends with exit 2 and the helper goes with it") {
  platoon::testing::TempDir dir;
  const fs::path helpers = dir.path() / "helpers.txt";
  const std::string script = platoon::str_cat("sleep 4141 & echo $! >> ", quoted(helpers.string()), "; exit 3");
  auto [status, output] = platoon::testing::run_tool(
      {PLATOON_LAUNCH_BIN, "--log-dir", (dir.path() / "logs").string(), "--controller",
       platoon::str_cat(quoted(PLATOON_LAUNCH_FIXTURE_BIN), " controller --workers 1 --steps 5 --record ",
                        quoted((dir.path() / "record.txt").string())),
       "--worker", platoon::str_cat("sh -c ", quoted(script))},
      dir, 30s);
  INFO(output);
  CHECK(status.code == 2);
  const auto pids = pids_in(helpers);
  REQUIRE(pids.size() == 1);
  CHECK_FALSE(alive_then_killed(pids[0]));
}

TEST_CASE("--restart: the failed worker's helper is gone before its replacement starts") {
  platoon::testing::TempDir dir;
  const fs::path helpers = dir.path() / "helpers.txt";
  const fs::path marker = dir.path() / "failed-once";
  const fs::path record = dir.path() / "record.txt";
  // The first run leaves a helper and fails; the second becomes a real worker.
  const std::string script = platoon::str_cat(
      "sleep 4142 & echo $! >> ", quoted(helpers.string()), "; if [ -e ", quoted(marker.string()), " ]; then exec ",
      quoted(PLATOON_LAUNCH_FIXTURE_BIN), " worker --step-ms 10 --record ", quoted(record.string()),
      " \"$@\"; fi; touch ", quoted(marker.string()), "; exit 3");
  platoon::testing::ToolRun run(
      {PLATOON_LAUNCH_BIN, "--log-dir", (dir.path() / "logs").string(), "--restart", "1", "--controller",
       platoon::str_cat(quoted(PLATOON_LAUNCH_FIXTURE_BIN), " controller --workers 1 --steps 100000 --record ",
                        quoted(record.string())),
       "--worker", platoon::str_cat("sh -c ", quoted(script), " sh")},
      dir.path() / "launcher-output.txt", /*own_process_group=*/true);
  const auto worker_started = [&] {
    const auto lines = read_lines(record);
    return std::any_of(lines.begin(), lines.end(), [](const std::string& l) { return l.starts_with("worker 0 start "); });
  };
  const bool started = eventually(worker_started, 30s);
  INFO(run.output());
  REQUIRE(started);
  const auto pids = pids_in(helpers);
  REQUIRE(pids.size() == 2);
  CHECK_FALSE(alive_then_killed(pids[0]));  // the failed run's helper, killed with its group at the restart
  run.child().send_signal(SIGINT);
  CHECK(run.wait(30s).code == 130);
  CHECK_FALSE(alive_then_killed(pids[1]));  // the replacement's helper, killed at the job's end
}

namespace {

/// A job of two workers ended with --stop-file, where worker 1 fails when it
/// is told to stop (the job is ending then); returns the launcher's status.
ExitStatus run_failing_at_stop(const std::string& restarts) {
  platoon::testing::TempDir stop_dir;
  const fs::path stop_file = stop_dir.path() / "stop";
  LaunchRun run({.workers = 2,
                 .controller_extra = platoon::str_cat("--stop-file ", quoted(stop_file.string())),
                 .worker_extra = "--step-ms 5 --fail-index 1 --fail-after 1000000 --fail-at-stop --exit-code 6",
                 .launcher_extra = {"--restart", restarts}});
  REQUIRE(eventually([&] { return run.count("worker 1 joined ") == 1 && run.count("worker 0 joined ") == 1; }, 20s));
  std::ofstream(stop_file) << "stop";
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(run.count("worker 1 fail") == 1);
  CHECK(run.output().find("job failed: worker-1") != std::string::npos);
  CHECK(run.count("worker 1 start ") == 1);  // not restarted: the job is ending
  check_nothing_left(run);
  return status;
}

}  // namespace

TEST_CASE("exit codes: a worker failing while the job ends is exit 2, with and without --restart") {
  CHECK(run_failing_at_stop("0").code == 2);
  CHECK(run_failing_at_stop("3").code == 2);
}

TEST_CASE("exit codes: a controller that does not end after the last worker finished is exit 3, segment removed") {
  LaunchRun run({.workers = 2,
                 .steps = 5,
                 .controller_extra = "--linger-ms 60000",
                 .launcher_extra = {"--end-grace", "0.5"}});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.code == 3);
  CHECK(run.count("controller end") == 1);
  CHECK(run.output().find("did not end 0.5 s after the last worker finished") != std::string::npos);
  check_nothing_left(run);
}

TEST_CASE("exit codes: a worker that does not end after the controller ended is exit 3, segment removed") {
  LaunchRun run({.workers = 2,
                 .steps = 5,
                 .worker_extra = "--linger-ms 60000",
                 .launcher_extra = {"--end-grace", "0.5"}});
  const ExitStatus status = run.wait();
  INFO(run.story());
  CHECK(status.code == 3);
  CHECK(run.count("controller end") == 1);
  CHECK(run.output().find("still running 0.5 s after the controller ended") != std::string::npos);
  check_nothing_left(run);
}

TEST_CASE("exit codes: SIGTERM and SIGHUP to the launcher are 143 and 129") {
  for (const int signo : {SIGTERM, SIGHUP}) {
    LaunchRun run({.workers = 1, .steps = 100000, .worker_extra = "--step-ms 10"});
    REQUIRE(eventually([&] { return run.count("worker 0 joined ") == 1; }, 20s));
    ::kill(run.launcher().pid(), signo);  // the launcher alone
    const ExitStatus status = run.wait(20s);
    INFO(run.story());
    CHECK(status.code == 128 + signo);
    check_nothing_left(run);
  }
}

TEST_CASE("SIGKILL of the launcher mid-job: the job ends as on SIGTERM, checkpointed, logged, with nothing left") {
  platoon::testing::TempDir dir;
  const fs::path checkpoint = dir.path() / "center.ckpt";
  LaunchRun run({.workers = 2,
                 .steps = 100000,
                 .controller_extra = str_cat("--checkpoint ", quoted(checkpoint.string())),
                 .worker_extra = "--step-ms 10"});
  REQUIRE(eventually([&] { return run.output().find("worker 1 step 3\n") != std::string::npos; }, 20s));
  const std::string segment = run.segment();
  REQUIRE(!segment.empty());
  ::kill(run.launcher().pid(), SIGKILL);  // as an out-of-memory killer or a scheduler would
  CHECK(run.wait(10s).signal == SIGKILL);
  // The output pipes are closed now; the controller sees its launcher gone
  // within a tick, the workers see their controller gone within a heartbeat
  // bound (0.5 + 5 s).
  const auto processes = run.job_processes();
  REQUIRE(processes.size() >= 3);
  const bool all_ended = eventually(
      [&] { return std::none_of(processes.begin(), processes.end(), [](const platoon::ProcessId& p) { return p.alive(); }); },
      15s);
  INFO(run.story());
  CHECK(all_ended);
  CHECK_FALSE(fs::exists(fs::path("/dev/shm") / segment));
  CHECK(fs::exists(checkpoint));
  // The last words of each process are in its log file, written by the process itself.
  const std::string controller_log = read_file(run.run_dir() / "controller.log");
  INFO(controller_log);
  CHECK(controller_log.find("is gone: stopping as on SIGTERM") != std::string::npos);
  CHECK(controller_log.find(str_cat("saved checkpoint ", checkpoint.string(), " (end of job)")) != std::string::npos);
  CHECK(controller_log.find(str_cat("removed shared-memory segment ", segment)) != std::string::npos);
  for (const char* worker : {"worker-0.log", "worker-1.log"}) {
    const std::string log = read_file(run.run_dir() / worker);
    INFO(worker, ": ", log);
    CHECK(log.find("is lost: ") != std::string::npos);
    CHECK(log.find("exiting with code 75") != std::string::npos);
  }
}
