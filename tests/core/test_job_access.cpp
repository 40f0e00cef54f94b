// Who may act in a job: registering needs the job key, which the controller
// keeps in a file only its user can read; every later request needs the
// session token of the worker it speaks for. Real sockets, a real Soldier,
// and a raw ZeroMQ client as the outsider.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "platoon/channel/job_key.hpp"
#include "platoon/channel/protocol.hpp"
#include "platoon/common/error.hpp"
#include "platoon/soldier.hpp"
#include "test_support.hpp"

using nlohmann::json;
using platoon::Soldier;
using platoon::str_cat;
using platoon::testing::ServedController;
using namespace std::chrono_literals;

namespace {

// Answers every request with who asked; records the user requests it saw.
class RecordingController : public platoon::Lieutenant {
 public:
  explicit RecordingController(Options options = platoon::testing::test_controller_options())
      : Lieutenant(std::move(options)) {}

  std::vector<std::string> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 protected:
  json handle_control(const json& req, const platoon::WorkerInfo& worker, const json&) override {
    std::lock_guard lock(mutex_);
    seen_.push_back(req.dump());
    return {{"worker", worker.id}, {"req", req}};
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> seen_;
};

// A raw REQ socket: what any process on the host can open.
class Outsider {
 public:
  explicit Outsider(const std::string& endpoint) : socket_(context_, zmq::socket_type::req) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  json ask(const std::string& frame) {
    socket_.send(zmq::buffer(frame), zmq::send_flags::none);
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&item, 1, 5s) == 1);
    zmq::message_t reply;
    REQUIRE(socket_.recv(reply, zmq::recv_flags::none));
    return json::parse(reply.to_string_view());
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

std::string error_kind(const json& reply) {
  return platoon::protocol::is_error_reply(reply) ? reply["platoon_error"].value("kind", "") : "";
}

Soldier::Options soldier_options(const std::string& endpoint) {
  Soldier::Options options;
  options.endpoint = endpoint;
  options.timeout = 5s;
  return options;
}

}  // namespace

TEST_CASE("a request in a registered worker's name without its token changes nothing and gets an error reply") {
  RecordingController controller;
  ServedController served(controller);
  Soldier soldier(soldier_options(served.endpoint()));
  const int id = soldier.worker_id();
  Outsider outsider(served.endpoint());

  // End the worker, speak for it, beat its heart: without a token, with another one.
  for (const char* req : {"platoon-done", "next", "platoon-heartbeat", "platoon-group-join"}) {
    CAPTURE(req);
    const json bare = outsider.ask(platoon::protocol::encode_request(id, req));
    CHECK(error_kind(bare) == "unauthorized");
    CHECK(bare["platoon_error"]["message"].get<std::string>().find("carries no session token") != std::string::npos);
    const json forged = outsider.ask(platoon::protocol::encode_request(id, req, nullptr, std::string(32, 'a')));
    CHECK(error_kind(forged) == "unauthorized");
    CHECK(forged["platoon_error"]["message"].get<std::string>().find("wrong session token") != std::string::npos);
  }
  CHECK(controller.seen().empty());  // no user request reached the handler

  // The worker was neither ended nor dropped: it keeps working, in its own name.
  std::this_thread::sleep_for(300ms);
  const json reply = soldier.send_req("still here");
  CHECK(reply["worker"] == id);
  CHECK(controller.seen() == std::vector<std::string>{"\"still here\""});
  soldier.close();
}

TEST_CASE("registering needs the job key, which the controller keeps in a file only its user can read") {
  RecordingController controller;
  ServedController served(controller);
  Outsider outsider(served.endpoint());
  const json info = {{"pid", 1}, {"host", "h"}};

  const json without = outsider.ask(platoon::protocol::encode_request("h:1", "platoon-register", info));
  CHECK(error_kind(without) == "unauthorized");
  CHECK(without["platoon_error"]["message"].get<std::string>().find("needs the job key") != std::string::npos);
  json wrong_info = info;
  wrong_info["job_key"] = std::string(64, '0');
  const json wrong = outsider.ask(platoon::protocol::encode_request("h:1", "platoon-register", wrong_info));
  CHECK(error_kind(wrong) == "unauthorized");
  CHECK(wrong.dump().find(controller.job_key()) == std::string::npos);  // nothing tells the key

  // The key file: the controller's key, mode 0600, in a folder of mode 0700.
  const std::filesystem::path file = controller.job_key_file();
  REQUIRE(!file.empty());
  CHECK(file == platoon::job_key_path(served.endpoint()));
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat(file.parent_path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK(platoon::read_job_key(served.endpoint()) == controller.job_key());

  // A Soldier finds it there; one given another key is refused.
  {
    Soldier soldier(soldier_options(served.endpoint()));
    CHECK(soldier.send_req("hello")["worker"] == soldier.worker_id());
  }
  Soldier::Options forged = soldier_options(served.endpoint());
  forged.job_key = std::string(64, 'f');
  CHECK_THROWS_WITH_AS(Soldier{forged}, doctest::Contains("wrong job key"), platoon::ErrorReply);

  // Once the job is over, the file is gone.
  served.stop();
  CHECK(!std::filesystem::exists(file));
}

TEST_CASE("a worker with no key anywhere is refused, saying where it looked") {
  auto options = platoon::testing::test_controller_options();
  options.write_job_key_file = false;
  RecordingController controller(options);
  ServedController served(controller);
  CHECK(controller.job_key_file().empty());
  const std::string no_key = str_cat("this worker has no key: no job key for ", served.endpoint());
  CHECK_THROWS_WITH_AS(Soldier{soldier_options(served.endpoint())}, doctest::Contains(no_key.c_str()),
                       platoon::ErrorReply);
  // Given the key (as platoon-launch gives it), it joins.
  Soldier::Options given = soldier_options(served.endpoint());
  given.job_key = controller.job_key();
  Soldier soldier(given);
  CHECK(soldier.send_req("hello")["worker"] == soldier.worker_id());
}

TEST_CASE("a controller that writes no key file removes an earlier job's left at its endpoint") {
  // A controller killed with SIGKILL leaves its key file behind; a later job
  // at the same endpoint without a key file must not let workers read it.
  platoon::testing::TempDir dir;
  const std::string endpoint = str_cat("ipc://", (dir.path() / "job.sock").string());
  const std::filesystem::path stale = platoon::job_key_path(endpoint);
  {
    std::ofstream out(stale);
    out << std::string(64, '2') << "\n";
  }
  REQUIRE(::chmod(stale.c_str(), 0600) == 0);
  REQUIRE(platoon::read_job_key(endpoint) == std::string(64, '2'));
  auto options = platoon::testing::test_controller_options();
  options.write_job_key_file = false;
  RecordingController controller(options);
  ServedController served(controller, endpoint);
  CHECK_FALSE(std::filesystem::exists(stale));
  CHECK_THROWS_WITH_AS(Soldier{soldier_options(served.endpoint())}, doctest::Contains("this worker has no key"),
                       platoon::ErrorReply);
}

TEST_CASE("key files that others could read, or that are not files, are refused naming them") {
  platoon::testing::TempDir dir;
  // A key file of the right form but open to the group.
  const std::string endpoint = str_cat("ipc://", (dir.path() / "job.sock").string());
  {
    platoon::JobKeyFile written(endpoint, std::string(64, '1'));
    CHECK(platoon::read_job_key(endpoint) == std::string(64, '1'));
    REQUIRE(::chmod(written.path().c_str(), 0640) == 0);
    CHECK_THROWS_WITH_AS(platoon::read_job_key(endpoint), doctest::Contains("only this user can read"),
                         platoon::ResourceError);
    REQUIRE(::chmod(written.path().c_str(), 0600) == 0);
    std::ofstream(written.path()) << "not a key\n";
    CHECK_THROWS_WITH_AS(platoon::read_job_key(endpoint), doctest::Contains("does not hold a job key"),
                         platoon::ResourceError);
  }
  // The destructor leaves a file that no longer holds its key (another job's, say).
  CHECK(std::filesystem::exists(platoon::job_key_path(endpoint)));
  std::filesystem::remove(platoon::job_key_path(endpoint));
  CHECK_THROWS_WITH_AS(platoon::read_job_key(endpoint), doctest::Contains("no job key for ipc://"),
                       platoon::ResourceError);
  CHECK(!platoon::is_job_key(std::string(63, 'a')));
  CHECK(!platoon::is_job_key(std::string(64, 'A')));
  CHECK(platoon::is_job_key(std::string(64, 'a')));
}

TEST_CASE("a single-host job at a private ipc:// endpoint: workers join, the socket file goes with the controller") {
  const std::string endpoint = platoon::private_ipc_endpoint(str_cat("test-", ::getpid()));
  const std::filesystem::path socket_file = endpoint.substr(6);
  {
    RecordingController controller;
    ServedController served(controller, endpoint);
    CHECK(served.endpoint() == endpoint);
    CHECK(std::filesystem::exists(socket_file));
    // Only this user can enter the folder, so only this user can connect.
    CHECK(std::filesystem::status(socket_file.parent_path()).permissions() == std::filesystem::perms::owner_all);
    Soldier soldier(soldier_options(endpoint));  // the key is found for ipc endpoints too
    CHECK(soldier.send_req("hello")["worker"] == soldier.worker_id());
    soldier.close();
  }
  CHECK_FALSE(std::filesystem::exists(socket_file));
  for (const char* bad : {"", "../x", "a/b", "."})
    CHECK_THROWS_WITH_AS(platoon::private_ipc_endpoint(bad), doctest::Contains("must be 1 to 64 letters"),
                         platoon::Error);
}
