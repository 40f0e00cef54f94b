// Synchronous data parallelism with real processes: a controller and workers
// of platoon_test_sync_job (least squares, all-reduce of the flat gradient,
// an update rule after it). One-process runs are the reference.
#include <doctest/doctest.h>

#include <csignal>
#include <map>

#include "job_harness.hpp"

using nlohmann::json;
using platoon::ChildProcess;
using platoon::str_cat;
using platoon::testing::LoggedProcesses;
using platoon::testing::read_file;
using platoon::testing::wait_for_file;
using namespace std::chrono_literals;

namespace {

class SyncJob {
 public:
  SyncJob(int workers, int steps) : workers_(workers) {
    controller_ = &procs_.spawn("controller", {"controller", "--port-file", (procs_.dir() / "port").string(),
                                               "--workers", std::to_string(workers), "--steps", std::to_string(steps),
                                               "--result", result_path().string()});
    REQUIRE(wait_for_file(procs_.dir() / "port", 10s));
    endpoint_ = read_file(procs_.dir() / "port");
  }

  ChildProcess& start_worker(const std::string& rule, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"worker", "--endpoint", endpoint_, "--rule", rule};
    args.insert(args.end(), extra.begin(), extra.end());
    return *workers_procs_.emplace_back(&procs_.spawn("worker-" + std::to_string(workers_procs_.size()), args));
  }

  // Waits for every worker and the controller to end; returns the result.
  json finish(std::chrono::seconds bound = 60s) {
    for (ChildProcess* w : workers_procs_)
      if (!w->finished()) {
        const auto status = w->wait_for(bound);
        INFO(procs_.logs());
        REQUIRE(status);
      }
    const auto status = controller_->wait_for(bound);
    INFO(procs_.logs());
    REQUIRE(status);
    CHECK(status->success());
    REQUIRE(std::filesystem::exists(result_path()));
    return json::parse(read_file(result_path()));
  }

  std::filesystem::path marker(const std::string& name) const { return procs_.dir() / name; }
  std::string logs() const { return procs_.logs(); }
  std::vector<ChildProcess*>& workers() { return workers_procs_; }

 private:
  std::filesystem::path result_path() const { return procs_.dir() / "result.json"; }

  LoggedProcesses procs_{PLATOON_TEST_SYNC_JOB_BIN};
  int workers_;
  ChildProcess* controller_ = nullptr;
  std::string endpoint_;
  std::vector<ChildProcess*> workers_procs_;
};

std::vector<float> params_of(const json& report) { return report.at("params").get<std::vector<float>>(); }

// Runs `workers` workers with `rule` for `steps` steps; every worker must end
// with the same bits. Returns rank 0's... any worker's final parameters.
std::vector<float> train(int workers, const std::string& rule, int steps) {
  SyncJob job(workers, steps);
  for (int i = 0; i < workers; ++i) job.start_worker(rule);
  const json result = job.finish();
  INFO(job.logs());
  REQUIRE(result["reports"].size() == static_cast<std::size_t>(workers));
  for (const json& r : result["reports"]) {
    CHECK(r["final_step"] == steps);  // a collective stop: every worker stopped at the same step
    CHECK(r["hash"] == result["reports"][0]["hash"]);
    CHECK(r["failures"].empty());
  }
  for (ChildProcess* w : job.workers()) CHECK(w->status()->success());
  CHECK(result["asked"] == steps + 1);  // one control request per global step, from rank 0
  return params_of(result["reports"][0]);
}

// The relative difference of two parameter vectors: the largest element-wise
// difference over the largest magnitude of `want` (the sums differ in order
// with the number of ranks, so the bits may differ; the values must not).
void check_close(const std::vector<float>& got, const std::vector<float>& want, double relative) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0, scale = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
    const double d = std::abs(static_cast<double>(got[i]) - want[i]);
    if (d > worst) {
      worst = d;
      at = i;
    }
  }
  REQUIRE(scale > 0.0);
  INFO("largest difference " << worst << " at " << at << ": " << got[at] << " vs " << want[at] << ", scale "
                             << scale);
  CHECK(worst / scale <= relative);
}

}  // namespace

TEST_CASE("K steps of synchronous SGD and Adam with 2 and 4 workers equal a one-process run") {
  constexpr int kSteps = 40;
  for (const std::string rule : {"nesterov", "adamw"}) {
    CAPTURE(rule);
    const std::vector<float> one = train(1, rule, kSteps);
    // The parameters moved: the comparison means something.
    CHECK(std::abs(one[0]) > 1e-3);
    check_close(train(2, rule, kSteps), one, 1e-5);
    check_close(train(4, rule, kSteps), one, 1e-5);  // a batch of 30 over 4 ranks: slices 8, 8, 7, 7
  }
}

TEST_CASE("a worker SIGKILLed inside all_reduce: the others get PeerLostError within 5 s and the job finishes") {
  constexpr int kSteps = 30;
  SyncJob job(3, kSteps);
  job.start_worker("adam");
  const auto marker = job.marker("victim-stalls");
  job.start_worker("adam", {"--stall-at", "7", "--marker", marker.string()});
  job.start_worker("adam");
  REQUIRE(wait_for_file(marker, 30s));
  std::this_thread::sleep_for(100ms);  // the others are now waiting inside all_reduce
  ChildProcess& victim = *job.workers()[1];
  const auto killed_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  victim.send_signal(SIGKILL);
  REQUIRE(victim.wait_for(5s));

  const json result = job.finish();
  INFO(job.logs());
  REQUIRE(result["reports"].size() == 2);
  for (const json& r : result["reports"]) {
    REQUIRE(r["failures"].size() == 1);
    const json& failure = r["failures"][0];
    CHECK(failure["step"] == 7);
    const std::string what = failure["what"];
    INFO(what);
    // Names the lost process (its rank is its place in registration order).
    CHECK(what.find(str_cat("(pid ", victim.pid(), ")")) != std::string::npos);
    CHECK(failure["at_unix_ms"].get<std::int64_t>() - killed_at < 5000);
    CHECK(r["final_step"] == kSteps);  // the job went on to the end
    CHECK(r["final_epoch"].get<int>() >= 1);
    CHECK(r["hash"] == result["reports"][0]["hash"]);
  }
  for (int i : {0, 2}) CHECK(job.workers()[i]->status()->success());
}

TEST_CASE("a worker that joins mid-job starts from the others' parameters and optimizer state") {
  constexpr int kSteps = 60;
  SyncJob job(2, kSteps);
  const auto marker = job.marker("step-15");
  job.start_worker("adam", {"--step-ms", "15", "--marker-at", "15", "--marker", marker.string()});
  job.start_worker("adam", {"--step-ms", "15"});
  REQUIRE(wait_for_file(marker, 30s));
  job.start_worker("adam", {"--step-ms", "15"});
  const json result = job.finish();
  INFO(job.logs());
  REQUIRE(result["reports"].size() == 3);
  json joiner;
  for (const json& r : result["reports"]) {
    CHECK(r["final_step"] == kSteps);
    CHECK(r["hash"] == result["reports"][0]["hash"]);  // Adam's moments and step count included
    if (r["worker"] == 2) joiner = r;
  }
  REQUIRE(joiner.is_object());
  CHECK(joiner["first_step"].get<int>() >= 15);  // it started from the job's progress, not from 0
  CHECK(joiner["first_epoch"].get<int>() >= 1);
  // Bitwise equal among the workers, and close to a run that never changed.
  check_close(params_of(joiner), train(1, "adam", kSteps), 1e-5);
}

TEST_CASE("a worker whose layout differs is refused with LayoutError; the group goes on") {
  SyncJob job(2, 40);
  const auto marker = job.marker("training");
  job.start_worker("sgd", {"--step-ms", "10", "--marker-at", "2", "--marker", marker.string()});
  job.start_worker("sgd", {"--step-ms", "10"});
  REQUIRE(wait_for_file(marker, 30s));  // the group's layout is set: the odd one comes later
  ChildProcess& odd = job.start_worker("sgd", {"--dim", "38"});
  const auto status = odd.wait_for(30s);
  REQUIRE(status);
  CHECK(status->code == 4);
  const json result = job.finish();
  const std::string logs = job.logs();
  INFO(logs);
  CHECK(logs.find("LayoutError") != std::string::npos);
  CHECK(logs.find("[38]") != std::string::npos);  // names both shapes
  CHECK(result["reports"].size() == 2);
}

TEST_CASE("all_reduce before init_group is an error naming the call") {
  SyncJob job(1, 1);
  ChildProcess& w = job.start_worker("sgd", {"--misuse"});
  REQUIRE(w.wait_for(30s));
  CHECK(w.status()->success());
  CHECK(job.logs().find("all_reduce called before init_group()") != std::string::npos);
}
