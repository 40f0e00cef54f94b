// CURVE on the control channel: key files, the ZAP handler, and a real
// CURVE server socket that answers allowed clients only.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "../../platoon/src/channel/zap_authenticator.hpp"
#include "platoon/channel/control_client.hpp"
#include "platoon/common/error.hpp"
#include "platoon/channel/security.hpp"
#include "test_support.hpp"

using platoon::ControlClient;
using platoon::CurveClientKeys;
using platoon::CurveKeyPair;
using platoon::FileError;
using platoon::testing::TempDir;
using namespace std::chrono_literals;

namespace {

/// A ROUTER socket with CURVE on, bound to a free loopback port, answering
/// every request with {"echo": <req>} on a thread, as a controller would.
class CurveServer {
 public:
  explicit CurveServer(const std::vector<std::string>& allowed)
      : server_keys_(CurveKeyPair::generate()), zap_(context_, allowed), socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::curve_server, 1);
    socket_.set(zmq::sockopt::curve_secretkey, server_keys_.secret_key);
    socket_.set(zmq::sockopt::zap_domain, "platoon");
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~CurveServer() {
    stop_ = true;
    thread_.join();
  }
  CurveServer(const CurveServer&) = delete;
  CurveServer& operator=(const CurveServer&) = delete;

  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }
  [[nodiscard]] const std::string& public_key() const { return server_keys_.public_key; }
  [[nodiscard]] int refused() const { return zap_.refused(); }

 private:
  void serve() {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop_) {
      if (zmq::poll(&item, 1, 20ms) == 0) continue;
      std::vector<zmq::message_t> frames;  // identity, empty, request
      if (!zmq::recv_multipart(socket_, std::back_inserter(frames)) || frames.size() != 3) continue;
      const auto request = nlohmann::json::parse(frames[2].to_string_view());
      const std::string reply = nlohmann::json{{"echo", request.at("req")}}.dump();
      frames[2].rebuild(reply.data(), reply.size());
      (void)zmq::send_multipart(socket_, frames);
    }
  }

  zmq::context_t context_{1};
  CurveKeyPair server_keys_;
  platoon::detail::ZapAuthenticator zap_;  // before the socket binds, destroyed after it closes
  zmq::socket_t socket_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Sends one ZAP request over inproc and returns the reply's status code.
std::string zap_status(zmq::context_t& context, const std::string& mechanism, const std::string& credentials) {
  zmq::socket_t req(context, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect("inproc://zeromq.zap.01");
  std::vector<zmq::const_buffer> request{zmq::str_buffer("1.0"),       zmq::str_buffer("7"), zmq::str_buffer("platoon"),
                                         zmq::str_buffer("127.0.0.1"), zmq::str_buffer(""),  zmq::buffer(mechanism)};
  if (!credentials.empty()) request.push_back(zmq::buffer(credentials));
  (void)zmq::send_multipart(req, request);
  zmq::pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&item, 1, 2000ms) == 1);
  std::vector<zmq::message_t> reply;
  REQUIRE(zmq::recv_multipart(req, std::back_inserter(reply)));
  REQUIRE(reply.size() == 6);
  CHECK(reply[0].to_string() == "1.0");
  CHECK(reply[1].to_string() == "7");  // the request id comes back
  return reply[2].to_string();
}

std::string binary_key(const std::string& z85) {
  std::string binary(32, '\0');
  REQUIRE(zmq_z85_decode(reinterpret_cast<std::uint8_t*>(binary.data()), z85.c_str()) != nullptr);
  return binary;
}

}  // namespace

TEST_CASE("a CURVE key pair is 40 Z85 characters per key and survives save and load") {
  TempDir dir;
  const CurveKeyPair keys = CurveKeyPair::generate();
  CHECK(keys.public_key.size() == 40);
  CHECK(keys.secret_key.size() == 40);
  CHECK(keys.public_key != CurveKeyPair::generate().public_key);

  const auto path = dir.path() / "worker.key";
  keys.save(path);
  const CurveKeyPair loaded = CurveKeyPair::load(path);
  CHECK(loaded.public_key == keys.public_key);
  CHECK(loaded.secret_key == keys.secret_key);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("bad key files are refused naming the file") {
  TempDir dir;
  const CurveKeyPair keys = CurveKeyPair::generate();
  const auto path = dir.path() / "bad.key";
  auto refused = [&path](const std::string& content, const std::string& why) {
    CAPTURE(content);
    std::ofstream(path, std::ios::trunc) << content;
    CHECK_THROWS_WITH_AS(CurveKeyPair::load(path), doctest::Contains(path.c_str()), FileError);
    CHECK_THROWS_WITH_AS(CurveKeyPair::load(path), doctest::Contains(why.c_str()), FileError);
  };
  CHECK_THROWS_WITH_AS(CurveKeyPair::load(dir.path() / "none.key"), doctest::Contains("none.key"), FileError);
  refused("", "lacks its public key");
  refused("public " + keys.public_key + "\n", "lacks its secret key");
  refused("public " + keys.public_key.substr(0, 39) + "\nsecret " + keys.secret_key + "\n", "39 characters");
  refused("public " + keys.public_key + "\nsecret\n", "expected 'public <key>'");
  refused("public " + CurveKeyPair::generate().public_key + "\nsecret " + keys.secret_key + "\n", "does not belong");
}

TEST_CASE("the ZAP handler allows listed CURVE keys only") {
  const CurveKeyPair allowed = CurveKeyPair::generate();
  zmq::context_t context(1);
  platoon::detail::ZapAuthenticator zap(context, {allowed.public_key});
  CHECK(zap_status(context, "CURVE", binary_key(allowed.public_key)) == "200");
  CHECK(zap_status(context, "CURVE", binary_key(CurveKeyPair::generate().public_key)) == "400");
  CHECK(zap_status(context, "PLAIN", "user") == "400");
  CHECK(zap_status(context, "NULL", "") == "400");
  CHECK(zap.refused() == 3);
  // One handler per context.
  CHECK_THROWS_AS(platoon::detail::ZapAuthenticator(context, {}), platoon::ResourceError);
}

TEST_CASE("a CURVE server answers allowed clients and never the others") {
  const CurveKeyPair allowed = CurveKeyPair::generate();
  const CurveKeyPair stranger = CurveKeyPair::generate();
  CurveServer server({allowed.public_key});

  ControlClient good(server.endpoint(), 5000ms, CurveClientKeys{server.public_key(), allowed});
  CHECK(good.request("w1", "platoon-status") == nlohmann::json{{"echo", "platoon-status"}});
  CHECK(server.refused() == 0);

  ControlClient bad_key(server.endpoint(), 500ms, CurveClientKeys{server.public_key(), stranger});
  CHECK_THROWS_AS(bad_key.request("w2", "platoon-status"), platoon::TimeoutError);
  CHECK(server.refused() >= 1);

  ControlClient plain(server.endpoint(), 500ms);
  CHECK_THROWS_AS(plain.request("w3", "platoon-status"), platoon::TimeoutError);

  // The allowed client still gets answers after the others were refused.
  CHECK(good.request("w1", "again") == nlohmann::json{{"echo", "again"}});
}
