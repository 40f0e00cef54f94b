// Failure handling of the controller and the workers in one process:
// checkpoints and resume, stale segments, and the security of the control
// endpoint.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "platoon/shm/checkpoint.hpp"
#include "platoon/process/child_process.hpp"
#include "platoon/common/error.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/soldier.hpp"
#include "test_support.hpp"

using nlohmann::json;
using platoon::Soldier;
using platoon::testing::ServedController;
using platoon::testing::TempDir;
using namespace std::chrono_literals;

namespace {
class EndingController : public platoon::Lieutenant {
 public:
  explicit EndingController(Options options) : Lieutenant(std::move(options)) {}

 protected:
  json handle_control(const json& req, const platoon::WorkerInfo&, const json&) override {
    if (req == "end") end_job();
    return "ok";
  }
};

Soldier::Options soldier_options(const std::string& endpoint) {
  Soldier::Options options;
  options.endpoint = endpoint;
  options.timeout = 5s;
  options.on_controller_lost = Soldier::Options::OnControllerLost::throw_error;
  return options;
}

// A process id that certainly belonged to a process that is now gone.
platoon::ProcessId dead_process() {
  auto child = platoon::ChildProcess::spawn({"true"});
  REQUIRE(child.wait_for(5s));
  return {child.pid(), 1};
}
}  // namespace

namespace {
// Whether `path` holds a readable checkpoint whose first value is `first`.
bool checkpoint_starts_with(const std::string& path, float first) {
  try {
    const platoon::Checkpoint c = platoon::load_checkpoint(path);
    return !c.values.empty() && c.values[0] == first;
  } catch (const platoon::FileError&) {
    return false;  // not written yet
  }
}
}  // namespace

TEST_CASE("checkpoints are saved at the end of the job, and a new job resumes from one") {
  TempDir dir;
  const auto path = (dir.path() / "center.ckpt").string();
  std::vector<float> saved_center;
  {
    auto options = platoon::testing::test_controller_options();
    options.checkpoint_path = path;
    options.checkpoint_interval = 20ms;
    EndingController controller(options);
    ServedController served(controller);
    std::vector<float> w(6, 2.0f), b(3, -1.0f);
    Soldier worker(soldier_options(served.endpoint()));
    worker.init_shared_params({{"w", w.data(), {2, 3}}, {"b", b.data(), {3}}}, std::make_unique<platoon::EASGD>(0.5f));
    std::fill(w.begin(), w.end(), 4.0f);
    worker.sync_params();  // center w = 3.0
    REQUIRE(platoon::testing::eventually([&] { return checkpoint_starts_with(path, 3.0f); }, 10s));  // an interval save
    // The center moves after that save: only the end-of-job save can hold it
    // (an interval save may catch it too, hence the reason checked below).
    std::fill(w.begin(), w.end(), 5.0f);
    worker.sync_params();  // center w = 4.0
    worker.send_req("end");
    {
      auto guard = worker.lock();
      saved_center.assign(worker.central_values().begin(), worker.central_values().end());
    }
    worker.close();
    // serve() returns by itself once the last worker has left.
    REQUIRE(platoon::testing::eventually([&] { return served.finished(); }, 10s));
    served.rethrow();
  }
  // Owner-only, and holding the final center.
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const platoon::Checkpoint checkpoint = platoon::load_checkpoint(path);
  CHECK(checkpoint.values == saved_center);
  CHECK(checkpoint.values[0] == doctest::Approx(4.0f));
  CHECK(checkpoint.metadata.at("reason") == "end of job");  // the last save is the final one

  // Resume: the first worker of the new job starts from the checkpoint, not its own values.
  auto options = platoon::testing::test_controller_options();
  options.resume_path = path;
  EndingController controller(options);
  ServedController served(controller);
  std::vector<float> w(6, 100.0f), b(3, 100.0f);
  Soldier worker(soldier_options(served.endpoint()));
  REQUIRE(worker.first());
  worker.init_shared_params({{"w", w.data(), {2, 3}}, {"b", b.data(), {3}}}, std::make_unique<platoon::EASGD>(0.5f));
  CHECK(w[0] == doctest::Approx(4.0f));
  CHECK(b[0] == doctest::Approx(-1.0f));
  auto guard = worker.lock();
  CHECK(std::vector<float>(worker.central_values().begin(), worker.central_values().end()) == saved_center);
}

TEST_CASE("a truncated checkpoint or one of another layout is refused with a clear error") {
  TempDir dir;
  const auto path = dir.path() / "c.ckpt";
  std::vector<float> values(12, 1.0f);
  std::vector<platoon::ParamView> params{{"W", values.data(), {3, 4}}};
  platoon::save_checkpoint(path, platoon::Layout::of(params), values);

  // Another layout: refused when the first worker initializes, naming the parameter.
  {
    auto options = platoon::testing::test_controller_options();
    options.resume_path = path.string();
    EndingController controller(options);
    ServedController served(controller);
    std::vector<float> other(12);
    Soldier worker(soldier_options(served.endpoint()));
    CHECK_THROWS_WITH_AS(worker.init_shared_params({{"W", other.data(), {4, 3}}}, std::make_unique<platoon::EASGD>(0.5f)),
                         doctest::Contains("'W' has shape [3, 4]"), platoon::LayoutError);
  }
  // Truncated: refused by the controller before any worker joins.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 5);
  auto options = platoon::testing::test_controller_options();
  options.resume_path = path.string();
  CHECK_THROWS_WITH_AS(EndingController{options}, doctest::Contains("truncated"), platoon::FileError);
}

TEST_CASE("a new job reclaims the segments of dead jobs and keeps the live ones") {
  std::vector<float> v(16, 1.0f);
  std::vector<platoon::ParamView> params{{"v", v.data(), {16}}};
  const auto layout = platoon::Layout::of(params);
  const std::string dead_name = platoon::SharedSegment::name_for_job(platoon::testing::unique_name("dead"));
  const std::string live_name = platoon::SharedSegment::name_for_job(platoon::testing::unique_name("live"));
  {
    auto dead = platoon::SharedSegment::create(dead_name, "dead-job", layout, dead_process());
    auto live = platoon::SharedSegment::create(live_name, "live-job", layout, platoon::ProcessId::self());
  }
  auto options = platoon::testing::test_controller_options();
  options.reclaim_dead_segments = true;  // what a real job does (tests turn it off)
  EndingController controller(options);
  controller.init_control(0);  // a job start
  const auto names = platoon::SharedSegment::list();
  CHECK(std::find(names.begin(), names.end(), dead_name) == names.end());
  CHECK(std::find(names.begin(), names.end(), live_name) != names.end());
  platoon::SharedSegment::remove(live_name);
}

TEST_CASE("binding beyond loopback needs CURVE keys; with them only allowed workers get in") {
  auto options = platoon::testing::test_controller_options();
  {
    EndingController controller(options);
    CHECK_THROWS_WITH_AS(controller.init_control("tcp://0.0.0.0:*"), doctest::Contains("without CURVE keys"),
                         platoon::Error);
  }
  const auto server = platoon::CurveKeyPair::generate();
  const auto allowed = platoon::CurveKeyPair::generate();
  const auto stranger = platoon::CurveKeyPair::generate();
  options.curve.server = server;
  options.curve.allowed_client_public_keys = {allowed.public_key};
  EndingController controller(options);
  controller.init_control("tcp://0.0.0.0:*");
  std::thread serving([&] { controller.serve(); });
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(controller.port());

  auto with_key = soldier_options(endpoint);
  with_key.curve = {server.public_key, allowed};
  {
    Soldier worker(with_key);
    CHECK(worker.send_req("hello") == "ok");
  }
  auto wrong_key = soldier_options(endpoint);
  wrong_key.timeout = 500ms;
  wrong_key.curve = {server.public_key, stranger};
  CHECK_THROWS_AS(Soldier{wrong_key}, platoon::TimeoutError);
  auto no_key = soldier_options(endpoint);
  no_key.timeout = 500ms;
  CHECK_THROWS_AS(Soldier{no_key}, platoon::TimeoutError);
  controller.stop();
  serving.join();
}

TEST_CASE("a checkpoint waiting for a lock held longer than the heartbeat bound drops no worker") {
  TempDir dir;
  const auto path = (dir.path() / "center.ckpt").string();
  auto options = platoon::testing::test_controller_options();
  options.checkpoint_path = path;
  options.checkpoint_interval = 100ms;
  options.worker_timeout = 1s;
  EndingController controller(options);
  ServedController served(controller);
  Soldier::Options worker = soldier_options(served.endpoint());
  worker.heartbeat_interval = 50ms;
  worker.heartbeat_timeout = 700ms;  // the hold below lasts far longer
  Soldier soldier(worker);
  std::vector<float> w(64, 3.0f);
  soldier.init_shared_params({{"w", w.data(), {64}}}, std::make_unique<platoon::EASGD>(0.5f));
  {
    auto held = soldier.lock();  // every chunk, as a stopped worker or a long user lock() would
    { auto values = soldier.central_values(); std::fill(values.begin(), values.end(), 7.0f); }
    const auto until = std::chrono::steady_clock::now() + 2500ms;
    while (std::chrono::steady_clock::now() < until) {
      CHECK(soldier.send_req("ping") == "ok");  // the controller answers meanwhile
      std::this_thread::sleep_for(100ms);
    }
  }
  CHECK_FALSE(soldier.controller_lost());
  CHECK(soldier.send_req("ping") == "ok");  // still registered (workers() is not for another thread)
  // Once the lock is released, a checkpoint completes, with the values written under it.
  CHECK(platoon::testing::eventually([&] { return checkpoint_starts_with(path, 7.0f); }, 5s));
  soldier.send_req("end");
  soldier.close();
}
