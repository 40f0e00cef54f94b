#include "zap_authenticator.hpp"

#include "platoon/common/thread.hpp"
#include "poll.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <zmq_addon.hpp>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon::detail {

namespace {

// How long the thread waits for a request before looking at the stop flag:
// the bound on the destructor's wait.
constexpr std::chrono::milliseconds kPollInterval{50};
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

}  // namespace

ZapAuthenticator::ZapAuthenticator(zmq::context_t& context, const std::vector<std::string>& allowed_client_public_keys)
    : socket_(context, zmq::socket_type::rep),
      allowed_(allowed_client_public_keys.begin(), allowed_client_public_keys.end()) {
  socket_.set(zmq::sockopt::linger, 0);
  try {
    socket_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    throw ResourceError(str_cat("cannot start the CURVE authenticator: binding ", kZapEndpoint, " failed: ", e.what()));
  }
  thread_ = start_thread_without_signals([this] { run(); });
}

ZapAuthenticator::~ZapAuthenticator() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ZapAuthenticator::run() {
  try {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop_.load()) {
      if (detail::poll_for(&item, 1, kPollInterval) > 0) answer_one();
    }
  } catch (const zmq::error_t& e) {
    // ETERM: the context is shutting down, which ends the handler too.
    if (e.num() != ETERM) Logger("zap").error("the CURVE authenticator stopped: ", e.what());
  }
}

void ZapAuthenticator::answer_one() {
  // Request frames (RFC 27): version, request id, domain, address, identity,
  // mechanism, credentials...
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket_, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
  auto frame = [&request](std::size_t i) { return i < request.size() ? request[i].to_string() : std::string(); };

  std::string status = "400";
  std::string text;
  std::string user_id;
  if (request.size() < 6 || frame(0) != "1.0") {
    status = "500";
    text = "malformed ZAP request";
  } else if (frame(5) != "CURVE") {
    text = str_cat("mechanism ", frame(5), " is not allowed");
  } else if (request.size() < 7 || request[6].size() != 32) {
    status = "500";
    text = "malformed CURVE credentials";
  } else {
    char key[41];
    zmq_z85_encode(key, request[6].data<std::uint8_t>(), 32);
    if (allowed_.count(key) != 0) {
      status = "200";
      text = "OK";
      user_id = key;
    } else {
      text = "client key is not allowed";
    }
  }
  if (status != "200") ++refused_;

  const std::string request_id = frame(1);
  const std::array<zmq::const_buffer, 6> reply{zmq::str_buffer("1.0"), zmq::buffer(request_id), zmq::buffer(status),
                                               zmq::buffer(text),      zmq::buffer(user_id),    zmq::const_buffer{}};
  (void)zmq::send_multipart(socket_, reply);
}

}  // namespace platoon::detail
