// The control protocol: parsing, and the error replies a controller sends to
// bad requests while it keeps serving everyone else.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>

#include <zmq.hpp>

#include "platoon/channel/control_client.hpp"
#include "platoon/common/error.hpp"
#include "platoon/channel/protocol.hpp"
#include "platoon/soldier.hpp"
#include "test_support.hpp"

using nlohmann::json;
using platoon::str_cat;
namespace protocol = platoon::protocol;
using platoon::testing::ServedController;

namespace {
class EchoController : public platoon::Lieutenant {
 public:
  EchoController() : Lieutenant(platoon::testing::test_controller_options()) {}

 protected:
  json handle_control(const json& req, const platoon::WorkerInfo& worker, const json& req_info) override {
    if (req == "fail") throw std::runtime_error("the handler failed on purpose");
    return {{"req", req}, {"worker", worker.id}, {"info", req_info}};
  }
};

std::string error_kind(const std::string& reply) {
  const json j = json::parse(reply);
  REQUIRE(protocol::is_error_reply(j));
  return j["platoon_error"]["kind"].get<std::string>();
}
}  // namespace

TEST_CASE("parse_request accepts Platoon's wire format") {
  const auto r = protocol::parse_request(R"({"worker_id": 3, "req": "next", "req_info": {"a": 1}})");
  CHECK(r.worker_id == 3);
  CHECK(r.req == "next");
  CHECK(r.req_info["a"] == 1);
  CHECK(r.framework_name().empty());
  CHECK(protocol::parse_request(R"({"worker_id": "w", "req": "platoon-status"})").framework_name() ==
        "platoon-status");
}

TEST_CASE("parse_request names what is wrong") {
  using platoon::ProtocolError;
  CHECK_THROWS_WITH_AS(protocol::parse_request("{not json"), doctest::Contains("not valid JSON"), ProtocolError);
  CHECK_THROWS_WITH_AS(protocol::parse_request("[1, 2]"), doctest::Contains("must be a JSON object"), ProtocolError);
  CHECK_THROWS_WITH_AS(protocol::parse_request(R"({"worker_id": 1})"), doctest::Contains("lacks 'req'"),
                       ProtocolError);
  CHECK(protocol::parse_request(R"({"req": "platoon-status"})").worker_id.is_null());  // the controller decides
  CHECK_THROWS_WITH_AS(protocol::parse_request(R"({"worker_id": [1], "req": 1})"),
                       doctest::Contains("'worker_id' must be"), ProtocolError);
  CHECK_THROWS_WITH_AS(protocol::parse_request(R"({"worker_id": 1, "req": 1, "extra": 2})"),
                       doctest::Contains("unexpected key 'extra'"), ProtocolError);
  CHECK_THROWS_WITH_AS(protocol::parse_request(R"({"worker_id": 1, "req": 1, "token": 5})"),
                       doctest::Contains("'token' must be a string"), ProtocolError);
  CHECK_THROWS_WITH_AS(protocol::parse_request(str_cat(R"({"worker_id": 1, "req": 1, "token": ")",
                                                       std::string(33, 'a'), R"("})")),
                       doctest::Contains("at most 32 characters"), ProtocolError);
  CHECK(protocol::parse_request(R"({"worker_id": 1, "req": 1, "token": "abc"})").token == "abc");
  CHECK_THROWS_WITH_AS(protocol::parse_request(std::string(100, ' '), 10), doctest::Contains("exceeds the limit"),
                       ProtocolError);
}

TEST_CASE("the controller answers each kind of bad request with an error reply") {
  EchoController controller;
  CHECK(error_kind(controller.handle_frame("garbage")) == "bad-request");
  CHECK(error_kind(controller.handle_frame("42")) == "bad-request");
  CHECK(error_kind(controller.handle_frame(R"({"worker_id": 0})")) == "bad-request");
  CHECK(error_kind(controller.handle_frame(R"({"worker_id": 0, "req": "next"})")) == "not-registered");
  CHECK(error_kind(controller.handle_frame(R"({"worker_id": 0, "req": "platoon-nonsense"})")) == "bad-request");
  CHECK(error_kind(controller.handle_frame(R"({"worker_id": null, "req": "next"})")) == "bad-request");
  // Anyone may ask for the job's state, without a worker id; nothing else goes without one.
  const json status = json::parse(controller.handle_frame(R"({"req": "platoon-status"})"));
  CHECK(status.value("job_id", "") == controller.job_id());
  const json anonymous = json::parse(controller.handle_frame(R"({"req": "next"})"));
  CHECK(error_kind(anonymous.dump()) == "bad-request");
  CHECK(anonymous.dump().find("only platoon-status") != std::string::npos);
  CHECK(error_kind(controller.handle_frame(R"({"req": "platoon-heartbeat"})")) == "bad-request");
  CHECK(error_kind(controller.handle_frame(R"({"worker_id": "h:1", "req": "platoon-register"})")) == "unauthorized");
  CHECK(error_kind(controller.handle_frame(platoon::testing::register_frame(controller, {{"pid", "x"}}))) ==
        "bad-request");
  CHECK(error_kind(controller.handle_frame(platoon::testing::register_frame(controller, "x"))) == "unauthorized");
  // Bytes that are not UTF-8 are quoted in the error, replaced, not fatal (a fuzzer finding).
  CHECK(error_kind(controller.handle_frame("{\"worker_id\": 0, \"req\"\xff\xff\x01}")) == "bad-request");
  // A well-formed registration then a failing handler.
  const json reg = json::parse(controller.handle_frame(platoon::testing::register_frame(controller)));
  REQUIRE(reg.contains("worker_id"));
  CHECK(error_kind(controller.handle_frame(platoon::testing::worker_frame(reg, "fail"))) == "handler-error");
  const json ok = json::parse(controller.handle_frame(platoon::testing::worker_frame(reg, "hello")));
  CHECK(ok["req"] == "hello");
}

TEST_CASE("over real sockets, bad requests get errors while a worker keeps working") {
  EchoController controller;
  ServedController served(controller);
  platoon::Soldier::Options options;
  options.endpoint = served.endpoint();
  options.timeout = std::chrono::seconds(5);
  platoon::Soldier soldier(options);

  zmq::context_t context;
  zmq::socket_t raw(context, zmq::socket_type::req);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 5000);
  raw.connect(served.endpoint());
  // (A frame over the size limit gets no reply at all: see test_untrusted_input.cpp.)
  const std::vector<std::string> bad_requests{"\x01\x02 not json", "[]", R"({"req": 1})",
                                              std::string(200, '[') + std::string(200, ']')};
  for (const std::string& bad : bad_requests) {
    raw.send(zmq::buffer(bad), zmq::send_flags::none);
    zmq::message_t reply;
    REQUIRE(raw.recv(reply));
    CHECK(protocol::is_error_reply(json::parse(reply.to_string_view())));
    // The well-behaved worker is served in between.
    CHECK(soldier.send_req("step", {{"n", 1}})["req"] == "step");
  }
  CHECK_THROWS_WITH_AS(soldier.send_req("fail"), doctest::Contains("the handler failed on purpose"),
                       platoon::ProtocolError);
  CHECK(soldier.send_req("still here")["worker"] == soldier.worker_id());
}

TEST_CASE("a request to a controller that is not there times out naming the endpoint") {
  zmq::context_t context;
  zmq::socket_t probe(context, zmq::socket_type::router);
  probe.bind("tcp://127.0.0.1:*");
  const std::string endpoint = probe.get(zmq::sockopt::last_endpoint);
  probe.close();  // nothing listens there any more
  platoon::ControlClient client(endpoint, std::chrono::milliseconds(200));
  CHECK_THROWS_WITH_AS(client.request(0, "next"), doctest::Contains(endpoint.c_str()), platoon::TimeoutError);
  // The client stays usable: a second request times out the same way, no hang.
  CHECK_THROWS_AS(client.request(0, "next"), platoon::TimeoutError);
}

namespace {
// Ends its job on its own clock: after a few ticks, with no request at all.
class TickingController : public platoon::Lieutenant {
 public:
  TickingController() : Lieutenant(options()) {}
  std::atomic<int> ticks{0};

 protected:
  json handle_control(const json&, const platoon::WorkerInfo&, const json&) override { return "ok"; }
  void on_tick() override {
    if (++ticks == 3) end_job();
  }

 private:
  static Options options() {
    Options o = platoon::testing::test_controller_options();
    o.tick = std::chrono::milliseconds(10);
    return o;
  }
};
}  // namespace

TEST_CASE("on_tick runs between requests and may end a job that no worker joined") {
  TickingController controller;
  controller.init_control(0);
  auto served = std::async(std::launch::async, [&] { controller.serve(); });
  const bool ended = served.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  if (!ended) controller.stop();
  served.get();
  CHECK(ended);
  CHECK(controller.ticks.load() >= 3);
  CHECK(controller.job_ending());
}
