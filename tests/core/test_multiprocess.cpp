// Real processes: a controller and several workers of platoon_test_job (see
// job_main.cpp), talking over loopback TCP and sharing a real segment.
#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <optional>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "platoon/common/error.hpp"
#include "platoon/process/child_process.hpp"
#include "platoon/shm/checkpoint.hpp"
#include "platoon/channel/control_client.hpp"
#include "platoon/soldier.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "test_support.hpp"

#ifndef PLATOON_TEST_JOB_BIN
#error "PLATOON_TEST_JOB_BIN must name the platoon_test_job binary"
#endif

using nlohmann::json;
using platoon::ChildProcess;
using namespace std::chrono_literals;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Waits (bounded) until `path` exists.
bool wait_for_file(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class Job {
 public:
  Job(int workers, int steps) : workers_(workers), steps_(steps) {}

  void start_controller(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"controller", "--port-file", (dir_.path() / "port").string(), "--workers",
                                  std::to_string(workers_), "--steps", std::to_string(steps_), "--result",
                                  result_path().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    controller_ = spawn("controller", args);
    REQUIRE(wait_for_file(dir_.path() / "port", 10s));
    endpoint_ = read_file(dir_.path() / "port");
  }

  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }

  ChildProcess& start_worker(int index, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"worker", "--endpoint", endpoint_, "--index", std::to_string(index), "--size",
                                  "1000", "--tau", "3", "--alpha", "0.4", "--chunk", "128"};
    args.insert(args.end(), extra.begin(), extra.end());
    workers_procs_.push_back(spawn("worker-" + std::to_string(index), args));
    return workers_procs_.back();
  }

  // As platoon-launch does: ask the controller, no sleeps on a guess.
  void wait_params_ready() {
    platoon::ControlClient client(endpoint_, 5s);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!client.request("test", "platoon-status")["params_ready"].get<bool>()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(5ms);
    }
  }

  std::string logs() const {
    std::string all;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
      if (entry.path().extension() == ".log")
        all += "---- " + entry.path().filename().string() + "\n" + read_file(entry.path());
    return all;
  }

  std::filesystem::path result_path() const { return dir_.path() / "result.json"; }
  ChildProcess& controller() { return controller_; }
  std::vector<ChildProcess>& workers() { return workers_procs_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  ChildProcess spawn(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), PLATOON_TEST_JOB_BIN);
    const auto log = dir_.path() / (name + ".log");
    FILE* f = std::fopen(log.c_str(), "w");
    REQUIRE(f != nullptr);
    ChildProcess child = ChildProcess::spawn(args, {-1, fileno(f), fileno(f)});
    std::fclose(f);
    return child;
  }

  platoon::testing::TempDir dir_;
  int workers_, steps_;
  std::string endpoint_;
  ChildProcess controller_;
  std::vector<ChildProcess> workers_procs_;
};


// EASGD conserves center + sum of locals: at the end every element must be
// (N + 1) * 1.0 + K * sum_i g_i, whatever the order of the syncs.
void check_easgd_conserved(const json& result, int workers, int steps, std::size_t size) {
  REQUIRE(result["reports"].size() == static_cast<std::size_t>(workers));
  const auto center = result["center"].get<std::vector<float>>();
  REQUIRE(center.size() == size);
  std::vector<std::vector<float>> locals(workers);
  for (const auto& r : result["reports"]) locals[r["index"].get<int>()] = r["local"].get<std::vector<float>>();
  bool center_moved = false;
  for (std::size_t j = 0; j < size; ++j) {
    double g_sum = 0, total = center[j];
    for (int i = 0; i < workers; ++i) {
      g_sum += 0.001 * (i + 1) * (j % 7 + 1);
      total += locals[i][j];
    }
    const double expected = (workers + 1) * 1.0 + steps * g_sum;
    CHECK(total == doctest::Approx(expected).epsilon(1e-4));
    center_moved = center_moved || std::abs(center[j] - 1.0f) > 1e-3f;
  }
  CHECK(center_moved);
}

}  // namespace

TEST_CASE("a controller and 4 worker processes: EASGD keeps center + locals exact, all exit 0") {
  constexpr int kWorkers = 4, kSteps = 60, kSize = 1000;
  Job job(kWorkers, kSteps);
  job.start_controller();
  job.workers().reserve(kWorkers);
  job.start_worker(0);
  job.wait_params_ready();
  for (int i = 1; i < kWorkers; ++i) job.start_worker(i);

  for (auto& w : job.workers()) {
    const auto status = w.wait_for(60s);
    INFO(job.logs());
    REQUIRE(status);
    CHECK(status->describe() == "exited with code 0");
  }
  const auto controller_status = job.controller().wait_for(20s);
  INFO(job.logs());
  REQUIRE(controller_status);
  CHECK(controller_status->success());

  check_easgd_conserved(json::parse(read_file(job.result_path())), kWorkers, kSteps, kSize);
  // The controller removed the job's segment at the end.
  for (const auto& name : platoon::SharedSegment::list())
    CHECK(platoon::SharedSegment::inspect(name).job_id.find(std::to_string(job.controller().pid())) ==
          std::string::npos);
}

TEST_CASE("a worker killed in the middle of sync_params does not block the others") {
  constexpr int kWorkers = 3;
  Job job(kWorkers, 40);
  job.start_controller();
  job.workers().reserve(kWorkers);
  job.start_worker(0);
  job.wait_params_ready();
  job.start_worker(1);
  const auto marker = job.dir() / "victim-in-sync";
  ChildProcess& victim = job.start_worker(2, {"--hang-in-sync", marker.string()});
  REQUIRE(wait_for_file(marker, 30s));
  victim.send_signal(SIGKILL);  // holding a chunk lock inside sync_params
  REQUIRE(victim.wait_for(5s));
  CHECK(victim.status()->signal == SIGKILL);

  for (int i = 0; i < 2; ++i) {
    const auto status = job.workers()[i].wait_for(60s);
    INFO(job.logs());
    REQUIRE(status);
    CHECK(status->success());
  }
  const auto controller_status = job.controller().wait_for(20s);
  INFO(job.logs());
  REQUIRE(controller_status);
  CHECK(controller_status->success());
  const std::string logs = job.logs();
  CHECK(logs.find("died while holding it") != std::string::npos);  // the next holder says so
  CHECK(logs.find("was lost") != std::string::npos);               // the controller noticed
  const json result = json::parse(read_file(job.result_path()));
  CHECK(result["lost"] == 1);
  for (float v : result["center"].get<std::vector<float>>()) CHECK(std::isfinite(v));
}

namespace {
// The worker ids the controller has registered now.
std::vector<int> registered_workers(const std::string& endpoint) {
  platoon::ControlClient client(endpoint, 5s);
  return client.request("test", "platoon-status")["workers"].get<std::vector<int>>();
}

// Waits (bounded) until `count` workers are registered.
void wait_until_registered(const std::string& endpoint, std::size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (registered_workers(endpoint).size() < count) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(5ms);
  }
}

// Waits until worker `id` is no longer registered; returns how long it took.
std::optional<std::chrono::milliseconds> time_until_dropped(const std::string& endpoint, int id,
                                                            std::chrono::steady_clock::time_point since) {
  while (std::chrono::steady_clock::now() - since < 10s) {
    const auto ids = registered_workers(endpoint);
    if (std::find(ids.begin(), ids.end(), id) == ids.end())
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since);
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}
}  // namespace

TEST_CASE("a silent worker killed with SIGKILL is noticed within 2 s and the job goes on") {
  Job job(2, 40);
  job.start_controller();
  job.workers().reserve(2);
  job.start_worker(0, {"--step-ms", "20"});
  job.wait_params_ready();
  ChildProcess& silent = job.start_worker(1, {"--silent", "1"});
  wait_until_registered(job.endpoint(), 2);
  const auto killed_at = std::chrono::steady_clock::now();
  silent.send_signal(SIGKILL);
  const auto noticed = time_until_dropped(job.endpoint(), 1, killed_at);
  INFO(job.logs());
  REQUIRE(noticed);
  CHECK(noticed->count() <= 2000);
  REQUIRE(job.workers()[0].wait_for(30s));
  CHECK(job.workers()[0].status()->success());
  REQUIRE(job.controller().wait_for(10s));
  CHECK(job.controller().status()->success());
  CHECK(job.logs().find("was lost: its process") != std::string::npos);
}

TEST_CASE("a stopped (silent, alive) worker is dropped after the heartbeat bound, and exits when resumed") {
  // The controller's bound on silence; the test allows twice that, since the
  // drop comes one controller tick after the bound and is seen through this
  // test's own requests, on a machine that may be loaded.
  constexpr auto kWorkerTimeout = 1500ms;
  Job job(2, 100);
  job.start_controller({"--worker-timeout-ms", std::to_string(kWorkerTimeout.count())});
  job.workers().reserve(2);
  job.start_worker(0, {"--step-ms", "20"});
  job.wait_params_ready();
  ChildProcess& frozen = job.start_worker(1, {"--step-ms", "20"});
  wait_until_registered(job.endpoint(), 2);
  const auto stopped_at = std::chrono::steady_clock::now();
  frozen.send_signal(SIGSTOP);
  const auto noticed = time_until_dropped(job.endpoint(), 1, stopped_at);
  frozen.send_signal(SIGCONT);
  INFO(job.logs());
  REQUIRE(noticed);
  CHECK(*noticed <= 2 * kWorkerTimeout);
  // Resumed, it learns that the job dropped it and leaves with the documented code.
  REQUIRE(frozen.wait_for(30s));
  CHECK(frozen.status()->code == platoon::Soldier::kExitControllerLost);
  REQUIRE(job.workers()[0].wait_for(30s));
  CHECK(job.workers()[0].status()->success());
  const auto controller_status = job.controller().wait_for(10s);
  REQUIRE(controller_status);
  CHECK(controller_status->describe() == "exited with code 0");  // losing a worker is no failure of the job
}

TEST_CASE("a controller killed with SIGKILL: every worker exits with the error") {
  constexpr int kWorkers = 3;
  Job job(kWorkers, 100000);
  job.start_controller();
  job.workers().reserve(kWorkers);
  job.start_worker(0, {"--step-ms", "5"});
  job.wait_params_ready();
  for (int i = 1; i < kWorkers; ++i) job.start_worker(i, {"--step-ms", "5"});
  wait_until_registered(job.endpoint(), kWorkers);
  const std::string segment = [&] {
    platoon::ControlClient client(job.endpoint(), 5s);
    return client.request("test", "platoon-status")["segment"].get<std::string>();
  }();
  job.controller().send_signal(SIGKILL);
  for (auto& w : job.workers()) {
    const auto status = w.wait_for(30s);  // the workers time out after 3 s
    INFO(job.logs());
    REQUIRE(status);
    CHECK(status->code == platoon::Soldier::kExitControllerLost);
  }
  const std::string logs = job.logs();
  CHECK(logs.find("is lost") != std::string::npos);
  // The killed controller left its segment; the next job start reclaims it
  // (or another test's controller did already: the tests run in parallel).
  (void)platoon::SharedSegment::reclaim_dead(platoon::Logger("test"));
  const auto names = platoon::SharedSegment::list();
  CHECK(std::find(names.begin(), names.end(), segment) == names.end());
}

TEST_CASE("a signal storm (a handled SIGUSR1, SIGCHLD, SIGWINCH) on every process: the job ends with nothing lost") {
  constexpr int kWorkers = 2, kSteps = 150, kSize = 1000;
  Job job(kWorkers, kSteps);
  job.start_controller({"--usr1-handler", "1"});
  job.workers().reserve(kWorkers);
  job.start_worker(0, {"--usr1-handler", "1", "--step-ms", "10", "--heartbeat-ms", "20"});
  job.wait_params_ready();
  job.start_worker(1, {"--usr1-handler", "1", "--step-ms", "10", "--heartbeat-ms", "20"});
  wait_until_registered(job.endpoint(), kWorkers);  // their handlers are in place by then
  std::vector<pid_t> pids{job.controller().pid()};
  for (auto& w : job.workers()) pids.push_back(w.pid());
  std::atomic<bool> storming{true};
  std::atomic<int> sent{0};
  std::thread storm([&] {
    while (storming.load()) {
      for (const pid_t pid : pids)
        for (const int signo : {SIGUSR1, SIGCHLD, SIGWINCH})
          if (::kill(pid, signo) == 0) sent.fetch_add(1);
      std::this_thread::sleep_for(2ms);  // about 500 of each per second
    }
  });
  std::vector<std::optional<platoon::ExitStatus>> ends;
  for (auto& w : job.workers()) ends.push_back(w.wait_for(60s));
  storming.store(false);
  storm.join();
  INFO(job.logs());
  for (const auto& end : ends) {
    REQUIRE(end);
    CHECK(end->describe() == "exited with code 0");
  }
  const auto controller_status = job.controller().wait_for(20s);
  REQUIRE(controller_status);
  CHECK(controller_status->success());
  CHECK(sent.load() > 1000);
  check_easgd_conserved(json::parse(read_file(job.result_path())), kWorkers, kSteps, kSize);
}

namespace {
// The center of a job's segment now, read under its locks.
std::vector<float> read_center(const std::string& segment) {
  const platoon::SegmentInfo info = platoon::SharedSegment::inspect(segment);
  INFO(info.problem);
  REQUIRE(info.layout);
  const auto mapped = platoon::SharedSegment::attach(segment, *info.layout, 5s);
  const auto guard = mapped.lock_all(5s, platoon::Logger("test"));
  return {mapped.values().begin(), mapped.values().end()};
}

// The checkpoint's values, or nothing while there is no readable one.
std::optional<std::vector<float>> checkpoint_values(const std::filesystem::path& path) {
  try {
    return platoon::load_checkpoint(path).values;
  } catch (const platoon::FileError&) {
    return std::nullopt;
  }
}

std::string job_segment(const std::string& endpoint) {
  platoon::ControlClient client(endpoint, 5s);
  return client.request("test", "platoon-status")["segment"].get<std::string>();
}

// Removes a segment that a killed controller left, whatever happens.
struct RemoveAtEnd {
  std::string name;
  ~RemoveAtEnd() { platoon::SharedSegment::remove(name); }
};
}  // namespace

TEST_CASE("a SIGKILLed controller loses at most one checkpoint interval: the next job resumes from its last center") {
  constexpr int kSteps = 200;
  platoon::testing::TempDir keep;  // outlives both jobs
  const auto checkpoint = keep.path() / "center.ckpt";
  std::vector<float> last_center;
  {
    Job job(1, kSteps);
    job.start_controller({"--checkpoint", checkpoint.string(), "--checkpoint-ms", "100"});
    const auto reported = job.dir() / "reported";
    // Trains, reports, then stays registered: the center no longer moves,
    // and interval checkpoints go on.
    ChildProcess& worker =
        job.start_worker(0, {"--step-ms", "2", "--linger-ms", "60000", "--report-marker", reported.string()});
    const RemoveAtEnd remove{job_segment(job.endpoint())};
    REQUIRE(wait_for_file(reported, 60s));
    last_center = read_center(remove.name);
    REQUIRE(last_center[1] != 1.0f);  // it trained: not the initial values
    // Within an interval or so, a checkpoint holds this center (bounded far
    // beyond the 100 ms interval, for a loaded machine).
    const bool saved = platoon::testing::eventually([&] { return checkpoint_values(checkpoint) == last_center; }, 20s);
    INFO(job.logs());
    REQUIRE(saved);
    job.controller().send_signal(SIGKILL);
    REQUIRE(job.controller().wait_for(5s));
    const auto worker_status = worker.wait_for(30s);
    REQUIRE(worker_status);
    CHECK(worker_status->code == platoon::Soldier::kExitControllerLost);
  }
  // The file the killed controller left is whole and holds that center.
  REQUIRE(checkpoint_values(checkpoint) == last_center);

  // The next job starts from it: with no step to train, its center stays the checkpoint's.
  Job resumed(1, 0);
  resumed.start_controller({"--resume", checkpoint.string()});
  ChildProcess& worker = resumed.start_worker(0);
  const auto worker_status = worker.wait_for(60s);
  INFO(resumed.logs());
  REQUIRE(worker_status);
  CHECK(worker_status->success());
  const auto controller_status = resumed.controller().wait_for(20s);
  REQUIRE(controller_status);
  CHECK(controller_status->success());
  const json result = json::parse(read_file(resumed.result_path()));
  CHECK(result["center"].get<std::vector<float>>() == last_center);
}

TEST_CASE("a controller killed while a worker hangs inside sync_params and another waits for its lock: both exit 75") {
  // The workers' bounds (job_main.cpp): heartbeat timeout 1 s, lock timeout
  // 30 s, and the hanging sync lasts 60 s. Exiting 75 well before 30 s shows
  // that neither waited for its lock or its sync to end.
  constexpr auto kBound = 20s;
  Job job(2, 100000);
  job.start_controller();
  job.workers().reserve(2);
  const auto in_sync = job.dir() / "in-sync";
  const auto syncing = job.dir() / "syncing";
  ChildProcess& hanging = job.start_worker(0, {"--hang-in-sync", in_sync.string()});
  job.wait_params_ready();
  ChildProcess& blocked =
      job.start_worker(1, {"--sync-after", in_sync.string(), "--sync-marker", syncing.string()});
  REQUIRE(wait_for_file(in_sync, 30s));  // worker 0 holds lock 1 and sleeps inside apply()
  REQUIRE(wait_for_file(syncing, 30s));  // worker 1 has entered sync_params since: it waits for lock 1
  const std::string segment = job_segment(job.endpoint());
  const RemoveAtEnd remove{segment};
  job.controller().send_signal(SIGKILL);
  for (ChildProcess* w : {&hanging, &blocked}) {
    const auto status = w->wait_for(kBound);
    INFO(job.logs());
    REQUIRE(status);
    CHECK(status->code == platoon::Soldier::kExitControllerLost);
  }
  CHECK(job.logs().find("is lost") != std::string::npos);
}

TEST_CASE("the next job reclaims a SIGKILLed controller's segment, with a warning naming it and the dead controller") {
  // Any controller starting on this host (another test's, a tool test's) may
  // reclaim the dead segment first. Such an attempt is told apart (the
  // segment is gone, and the next job did not say it removed it) and made
  // again; a next job that does not reclaim it, or does so silently, fails
  // every attempt.
  constexpr int kAttempts = 5;
  int attempt = 1;
  for (; attempt <= kAttempts; ++attempt) {
    Job dead(1, 100000);
    dead.start_controller();
    dead.start_worker(0, {"--step-ms", "5"});
    dead.wait_params_ready();
    platoon::ControlClient client(dead.endpoint(), 5s);
    const json status = client.request("test", "platoon-status");
    const std::string segment = status["segment"].get<std::string>();
    const RemoveAtEnd remove{segment};
    const auto dead_pid = dead.controller().pid();
    dead.controller().send_signal(SIGKILL);
    REQUIRE(dead.controller().wait_for(5s));

    Job next(1, 1);
    next.start_controller({"--reclaim-dead", "1"});  // the port file is written after init_control's reclaim
    const std::string logs = next.logs();
    const std::string warning = platoon::str_cat("[controller] warning: reclaimed stale shared-memory object ", segment, ": job ",
                                        status["job_id"].get<std::string>(), " is over: controller pid ", dead_pid,
                                        " is gone");
    const bool still_there = std::filesystem::exists("/dev/shm/" + segment);
    if (logs.find(warning) == std::string::npos && !still_there) {
      MESSAGE("attempt ", attempt, ": another controller reclaimed the dead segment first; again");
      continue;
    }
    INFO(logs);
    CHECK(logs.find(warning) != std::string::npos);
    CHECK_FALSE(still_there);
    break;
  }
  CHECK(attempt <= kAttempts);
}

// ---- Workers that sync over TCP, through the controller's parameter server ----

TEST_CASE("a TCP worker and shared-memory workers train one center: EASGD keeps center + locals exact") {
  constexpr int kWorkers = 3, kSteps = 60, kSize = 1000;
  Job job(kWorkers, kSteps);
  job.start_controller({"--param-server", "tcp://127.0.0.1:*"});
  job.workers().reserve(kWorkers);
  job.start_worker(0);  // creates the center in shared memory
  job.wait_params_ready();
  job.start_worker(1, {"--transport", "tcp", "--step-ms", "1"});
  job.start_worker(2, {"--step-ms", "1"});  // automatic: the segment is visible, so shared memory
  for (auto& w : job.workers()) {
    const auto status = w.wait_for(60s);
    INFO(job.logs());
    REQUIRE(status);
    CHECK(status->describe() == "exited with code 0");
  }
  const auto controller_status = job.controller().wait_for(20s);
  INFO(job.logs());
  REQUIRE(controller_status);
  CHECK(controller_status->success());
  const json result = json::parse(read_file(job.result_path()));
  for (const auto& report : result["reports"]) CHECK(report["remote"] == (report["index"] == 1));
  CHECK(job.logs().find("syncs over TCP with the center") != std::string::npos);
  check_easgd_conserved(result, kWorkers, kSteps, kSize);
}

TEST_CASE("a TCP worker SIGKILLed in the middle of its syncs leaves every chunk whole") {
  // ASGD with every value moved by exactly +1 per step: each applied push
  // adds 1.0 to all the values of its chunk, so a chunk left half-updated
  // would hold two different values.
  constexpr int kChunk = 500, kSize = 40000;
  Job job(2, 400);
  job.start_controller({"--param-server", "tcp://127.0.0.1:*"});
  job.workers().reserve(2);
  const std::vector<std::string> common{"--size", std::to_string(kSize), "--chunk", std::to_string(kChunk),
                                        "--rule", "asgd", "--unit-steps", "1", "--tau", "1"};
  std::vector<std::string> first = common;
  first.insert(first.end(), {"--step-ms", "3"});
  job.start_worker(0, first);
  job.wait_params_ready();
  const auto marker = job.dir() / "victim-syncing";
  std::vector<std::string> victim_flags = common;
  victim_flags.insert(victim_flags.end(), {"--transport", "tcp", "--sync-marker", marker.string()});
  ChildProcess& victim = job.start_worker(1, victim_flags);
  // Let it sync a while, then kill it wherever it is: it syncs all the time.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string step = std::filesystem::exists(marker) ? read_file(marker) : "";
    if (!step.empty() && std::stoi(step) >= 100) break;
    std::this_thread::sleep_for(1ms);
  }
  victim.send_signal(SIGKILL);
  REQUIRE(victim.wait_for(5s));
  CHECK(victim.status()->signal == SIGKILL);

  const auto status = job.workers()[0].wait_for(60s);
  INFO(job.logs());
  REQUIRE(status);
  CHECK(status->success());
  const auto controller_status = job.controller().wait_for(20s);
  REQUIRE(controller_status);
  CHECK(controller_status->success());
  const json result = json::parse(read_file(job.result_path()));
  CHECK(result["lost"] == 1);
  const auto center = result["center"].get<std::vector<float>>();
  REQUIRE(center.size() == kSize);
  int torn = 0;
  float low = center[0], high = center[0];
  for (std::size_t c = 0; c * kChunk < kSize; ++c) {
    for (std::size_t j = c * kChunk; j < (c + 1) * kChunk; ++j)
      if (center[j] != center[c * kChunk]) {
        ++torn;
        MESSAGE("chunk " << c << " is torn: " << center[c * kChunk] << " and " << center[j]);
        break;
      }
    low = std::min(low, center[c * kChunk]);
    high = std::max(high, center[c * kChunk]);
  }
  CHECK(torn == 0);
  // When the kill landed mid-sync, the chunks differ by one push.
  MESSAGE("chunk values from " << low << " to " << high);
  // Both workers' pushes landed (the center moved past where worker 0's
  // 400 alone would leave it), and whole numbers only.
  CHECK(high >= 1.0f + 400.0f + 99.0f);
  CHECK(low == std::floor(low));
}

TEST_CASE("a worker that cannot reach the center says why: no parameter server, or TCP for the first worker") {
  Job job(2, 5);
  job.start_controller();  // no --param-server
  job.workers().reserve(2);
  job.start_worker(0);
  job.wait_params_ready();
  ChildProcess& tcp = job.start_worker(1, {"--transport", "tcp"});
  const auto status = tcp.wait_for(30s);
  REQUIRE(status);
  CHECK(status->describe() == "exited with code 1");
  CHECK(job.logs().find("runs no parameter server") != std::string::npos);
  job.controller().send_signal(SIGTERM);
  REQUIRE(job.controller().wait_for(20s));

  Job first_over_tcp(1, 5);
  first_over_tcp.start_controller({"--param-server", "tcp://127.0.0.1:*"});
  first_over_tcp.workers().reserve(1);
  ChildProcess& w = first_over_tcp.start_worker(0, {"--transport", "tcp"});
  REQUIRE(w.wait_for(30s));
  CHECK(w.status()->describe() == "exited with code 1");
  CHECK(first_over_tcp.logs().find("the first worker must run there") != std::string::npos);
  first_over_tcp.controller().send_signal(SIGTERM);
  REQUIRE(first_over_tcp.controller().wait_for(20s));
}
