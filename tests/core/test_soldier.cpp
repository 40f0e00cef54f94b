// Soldier and Lieutenant in one process (one thread per rank): registration,
// the first worker's values in the center, layout checks, and a controller
// that goes away.
#include <doctest/doctest.h>

#include <cstdlib>

#include "platoon/common/error.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/soldier.hpp"
#include "soldier_support.hpp"
#include "test_support.hpp"

using nlohmann::json;
using platoon::ParamView;
using platoon::Soldier;
using platoon::testing::ServedController;

namespace {
using StopController = platoon::testing::EndOnRequestController;

Soldier::Options options_for(const ServedController& served) {
  return platoon::testing::soldier_options_for(served);
}
}  // namespace

TEST_CASE("the first worker's values seed the center; the others start from it") {
  StopController controller;
  ServedController served(controller);
  std::vector<float> a(10, 1.5f), b(10, -7.0f);
  Soldier first(options_for(served));
  CHECK(first.first());
  first.init_shared_params({{"w", a.data(), {2, 5}}}, std::make_unique<platoon::EASGD>(0.5f));
  {
    auto guard = first.lock();
    for (float v : first.central_values()) CHECK(v == 1.5f);  // never zeros
  }
  Soldier second(options_for(served));
  CHECK_FALSE(second.first());
  CHECK(second.worker_id() != first.worker_id());
  CHECK(second.job_id() == first.job_id());
  second.init_shared_params({{"w", b.data(), {2, 5}}}, std::make_unique<platoon::EASGD>(0.5f));
  for (float v : b) CHECK(v == 1.5f);  // a joining worker starts from the center

  // EASGD through the segment: local 3.5 vs center 1.5 with alpha 0.5 -> both 2.5.
  std::fill(a.begin(), a.end(), 3.5f);
  first.sync_params();
  for (float v : a) CHECK(v == doctest::Approx(2.5f));
  CHECK(first.central_values()[0] == doctest::Approx(2.5f));
  dynamic_cast<platoon::EASGD&>(first.rule()).set_alpha(1.0f);
  std::fill(a.begin(), a.end(), 0.0f);
  first.sync_params();  // alpha 1: the center takes the local value, the local takes the center's
  CHECK(a[0] == doctest::Approx(2.5f));
  CHECK(first.central_values()[0] == doctest::Approx(0.0f));
}

TEST_CASE("a worker with another layout gets an error naming the parameter and both shapes") {
  StopController controller;
  ServedController served(controller);
  std::vector<float> w(20), bias(4);
  Soldier first(options_for(served));
  first.init_shared_params({{"W", w.data(), {4, 5}}, {"bias", bias.data(), {4}}},
                           std::make_unique<platoon::EASGD>(0.5f));
  Soldier second(options_for(served));
  CHECK_THROWS_WITH_AS(second.init_shared_params({{"W", w.data(), {5, 4}}, {"bias", bias.data(), {4}}},
                                                 std::make_unique<platoon::EASGD>(0.5f)),
                       doctest::Contains("'W' has shape [4, 5] in the segment"), platoon::LayoutError);
  Soldier third(options_for(served));
  CHECK_THROWS_WITH_AS(third.init_shared_params({{"W", w.data(), {4, 5}}}, std::make_unique<platoon::EASGD>(0.5f)),
                       doctest::Contains("'bias'"), platoon::LayoutError);
}

TEST_CASE("the job ends when every worker has left, and the segment is removed") {
  StopController controller;
  ServedController served(controller);
  std::vector<float> w(8, 1.0f), v(8);
  Soldier first(options_for(served));
  first.init_shared_params({{"w", w.data(), {8}}}, std::make_unique<platoon::ASGD>());
  Soldier second(options_for(served));
  second.init_shared_params({{"w", v.data(), {8}}}, std::make_unique<platoon::ASGD>());
  const std::string segment = platoon::SharedSegment::name_for_job(first.job_id());
  CHECK(platoon::SharedSegment::inspect(segment).ready);
  first.close();  // the creator leaves: the segment stays for the others
  CHECK(platoon::SharedSegment::inspect(segment).problem.empty());
  second.sync_params();
  second.send_req("end");
  second.close();
  // serve() returns by itself once the job has ended and everyone has left.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!platoon::SharedSegment::inspect(segment).problem.size() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK_FALSE(platoon::SharedSegment::inspect(segment).problem.empty());
  const auto names = platoon::SharedSegment::list();
  CHECK(std::find(names.begin(), names.end(), segment) == names.end());
}

TEST_CASE("a Soldier whose controller is gone raises a timeout naming the endpoint") {
  StopController controller;
  ServedController served(controller);
  auto options = options_for(served);
  options.timeout = std::chrono::milliseconds(300);
  options.heartbeat_interval = std::chrono::milliseconds(0);  // only the call itself notices
  Soldier worker(options);
  CHECK(worker.send_req("hello") == "ok");
  served.stop();
  CHECK_THROWS_WITH_AS(worker.send_req("hello"), doctest::Contains(options.endpoint.c_str()), platoon::TimeoutError);
  CHECK_THROWS_AS(worker.send_req("hello"), platoon::TimeoutError);
}

TEST_CASE("the heartbeat finds a dead controller even while the worker makes no call") {
  StopController controller;
  ServedController served(controller);
  auto options = options_for(served);
  options.timeout = std::chrono::milliseconds(300);
  options.heartbeat_interval = std::chrono::milliseconds(50);
  options.heartbeat_timeout = std::chrono::milliseconds(300);
  Soldier worker(options);
  served.stop();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!worker.controller_lost() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(worker.controller_lost());
  CHECK_THROWS_WITH_AS(worker.send_req("hello"), doctest::Contains("is lost"), platoon::PeerLostError);
}

TEST_CASE("no controller at all: registering times out") {
  Soldier::Options options;
  options.endpoint = "tcp://127.0.0.1:9";  // discard port: nothing answers
  options.timeout = std::chrono::milliseconds(200);
  CHECK_THROWS_WITH_AS(Soldier{options}, doctest::Contains("tcp://127.0.0.1:9"), platoon::TimeoutError);
}

TEST_CASE("workers syncing concurrently on many chunks keep local + center sums") {
  StopController controller;
  ServedController served(controller);
  constexpr int kWorkers = 3;
  constexpr std::size_t kSize = 1000;
  std::vector<std::vector<float>> locals(kWorkers, std::vector<float>(kSize, 2.0f));
  auto options = options_for(served);
  options.chunk_elements = 64;  // many locks
  std::vector<std::unique_ptr<Soldier>> soldiers;
  for (int r = 0; r < kWorkers; ++r) {
    soldiers.push_back(std::make_unique<Soldier>(options));
    soldiers.back()->init_shared_params({{"x", locals[r].data(), {kSize}}}, std::make_unique<platoon::EASGD>(0.3f));
  }
  platoon::testing::run_ranks(kWorkers, [&](int r) {
    for (int step = 0; step < 50; ++step) {
      for (float& v : locals[r]) v += 0.01f * float(r + 1);
      soldiers[r]->sync_params();
    }
  });
  auto guard = soldiers[0]->lock();
  const auto center = soldiers[0]->central_values();
  for (std::size_t i = 0; i < kSize; i += 97) {
    double total = center[i];
    for (int r = 0; r < kWorkers; ++r) total += locals[r][i];
    // (workers + 1) * 2.0 at the start, plus every step's progress.
    CHECK(total == doctest::Approx(4 * 2.0 + 50 * 0.01 * (1 + 2 + 3)).epsilon(1e-4));
  }
}

TEST_CASE("a worker that a new controller does not know learns it on both of its threads, without a race") {
  auto first = std::make_unique<StopController>();
  auto served = std::make_unique<ServedController>(*first);
  const std::string endpoint = served->endpoint();
  const int port = std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  Soldier::Options options = options_for(*served);
  options.heartbeat_interval = std::chrono::milliseconds(5);
  options.heartbeat_timeout = std::chrono::seconds(5);
  Soldier soldier(options);
  served.reset();  // the controller goes away, its socket closed ...
  first.reset();
  StopController second;  // ... and another takes its port: it knows no worker
  ServedController again(second, port);
  // The heartbeat thread and this one both get "not registered" now; the
  // first to see it writes the reason, and TSan checks that nothing races.
  std::string what;
  for (int i = 0; i < 2000 && what.empty(); ++i) {
    try {
      soldier.send_req("ping");
    } catch (const platoon::PeerLostError& e) {
      what = e.what();
    } catch (const platoon::ErrorReply& e) {
      what = e.what();
    }
  }
  CHECK(soldier.controller_lost());
  CHECK(what.find("is lost") != std::string::npos);
}

TEST_CASE("a worker's name shows in its log tag and the controller's; a bad name is refused before anything is sent") {
  StopController controller;
  ServedController served(controller);
  Soldier::Options options = options_for(served);
  options.name = "trainer-a";
  {
    Soldier soldier(options);
    CHECK(soldier.log().tag() == platoon::str_cat("worker ", soldier.worker_id(), " (trainer-a)"));
    soldier.close();
  }
  options.name = std::string(65, 'n');
  CHECK_THROWS_WITH_AS(Soldier{options}, doctest::Contains("longer than 64"), platoon::Error);
  options.name = "tab\there";
  CHECK_THROWS_WITH_AS(Soldier{options}, doctest::Contains("not printable ASCII"), platoon::Error);
  // No name: $PLATOON_WORKER_NAME, as platoon-launch sets it, or none.
  options.name.clear();
  ::setenv("PLATOON_WORKER_NAME", "worker-7", 1);
  {
    Soldier soldier(options);
    CHECK(soldier.log().tag() == platoon::str_cat("worker ", soldier.worker_id(), " (worker-7)"));
    soldier.close();
  }
  ::unsetenv("PLATOON_WORKER_NAME");
  Soldier unnamed(options);
  CHECK(unnamed.log().tag() == platoon::str_cat("worker ", unnamed.worker_id()));
}

TEST_CASE("a sync thread count out of range is refused with the range, before anything starts") {
  StopController controller;
  ServedController served(controller);
  Soldier::Options options = options_for(served);
  options.sync_threads = static_cast<std::size_t>(-1);  // what "--sync-threads -1" became
  CHECK_THROWS_WITH_AS(Soldier{options}, doctest::Contains("must be in 1..256"), platoon::Error);
}

TEST_CASE("read_center gives the center through shared memory and over TCP; lock() is for shared memory only") {
  platoon::Lieutenant::Options options = platoon::testing::test_controller_options();
  options.param_server_endpoint = "tcp://127.0.0.1:*";
  StopController controller(options);
  ServedController served(controller);
  CHECK(controller.param_server_endpoint().starts_with("tcp://127.0.0.1:"));
  std::vector<float> a(3000), b(3000, 0.0f), seen_shm(3000), seen_tcp(3000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i);
  Soldier::Options first_options = options_for(served);
  first_options.chunk_elements = 1024;  // 3 chunks, the last one short
  Soldier first(first_options);
  first.init_shared_params({{"w", a.data(), {3000}}}, std::make_unique<platoon::EASGD>(0.5f));
  CHECK_FALSE(first.remote());
  Soldier::Options tcp_options = options_for(served);
  tcp_options.transport = Soldier::Options::Transport::tcp;
  Soldier remote(tcp_options);
  remote.init_shared_params({{"w", b.data(), {3000}}}, std::make_unique<platoon::EASGD>(0.5f));
  CHECK(remote.remote());
  CHECK(b == a);  // a joining worker starts from the center, over TCP too

  std::fill(b.begin(), b.end(), 10.0f);
  remote.sync_params();
  first.read_center(seen_shm);
  remote.read_center(seen_tcp);
  CHECK(seen_shm == seen_tcp);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const float d = 0.5f * (10.0f - static_cast<float>(i));
    CHECK(seen_tcp[i] == static_cast<float>(i) + d);
    CHECK(b[i] == 10.0f - d);
  }
  std::vector<float> wrong(2999);
  CHECK_THROWS_AS(remote.read_center(wrong), platoon::LayoutError);
  try {
    (void)remote.lock();
    FAIL("lock() over TCP");
  } catch (const platoon::Error& e) {
    CHECK(std::string(e.what()).find("syncs over TCP") != std::string::npos);
  }
  CHECK_THROWS_AS((void)remote.central_values(), platoon::Error);
  remote.close();
  first.close();
}
