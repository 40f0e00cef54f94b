#include "platoon/channel/control_client.hpp"

#include <algorithm>
#include <cerrno>
#include <zmq.hpp>

#include "poll.hpp"

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/channel/protocol.hpp"

namespace platoon {

std::string loopback_endpoint(int port) { return str_cat("tcp://127.0.0.1:", port); }

struct ControlClient::Impl {
  std::string endpoint;
  std::chrono::milliseconds timeout;
  std::chrono::milliseconds connect_timeout;
  CurveClientKeys curve;
  std::string token;
  zmq::context_t context{1};
  std::unique_ptr<zmq::socket_t> socket;
  // The socket's monitor reports when a connection is made: until one is,
  // nothing listens at the endpoint, and a wait ends after connect_timeout
  // instead of the request's whole timeout.
  std::unique_ptr<zmq::socket_t> monitor;
  int sockets_opened = 0;
  bool connected = false;
  std::chrono::steady_clock::time_point opened_at;

  void open() {
    monitor.reset();
    socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::req);
    socket->set(zmq::sockopt::linger, 0);
    // Replies are small JSON values; a peer that sends more is not a controller.
    socket->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxReplyBytes));
    if (curve.enabled()) {
      socket->set(zmq::sockopt::curve_serverkey, curve.server_public_key);
      socket->set(zmq::sockopt::curve_publickey, curve.client.public_key);
      socket->set(zmq::sockopt::curve_secretkey, curve.client.secret_key);
    }
    const std::string monitor_address = str_cat("inproc://platoon-control-monitor-", ++sockets_opened);
    if (zmq_socket_monitor(socket->handle(), monitor_address.c_str(), ZMQ_EVENT_CONNECTED) != 0)
      throw ResourceError(str_cat("cannot monitor the connection to controller endpoint '", endpoint,
                                  "': ", zmq_strerror(zmq_errno())));
    monitor = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
    monitor->set(zmq::sockopt::linger, 0);
    monitor->connect(monitor_address);
    connected = false;
    opened_at = std::chrono::steady_clock::now();
    try {
      socket->connect(endpoint);
    } catch (const zmq::error_t& e) {
      throw ResourceError(str_cat("cannot connect to controller endpoint '", endpoint, "': ", e.what()));
    }
  }

  // Reads the monitor's events: any one is a connection made.
  void read_monitor() {
    zmq::message_t event;
    while (!connected && monitor->recv(event, zmq::recv_flags::dontwait)) {
      connected = true;
      while (event.more() && monitor->recv(event, zmq::recv_flags::dontwait)) {
      }
    }
  }
};

ControlClient::ControlClient(std::string endpoint, std::chrono::milliseconds timeout, CurveClientKeys curve,
                             std::chrono::milliseconds connect_timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = std::move(endpoint);
  impl_->timeout = timeout;
  impl_->connect_timeout = connect_timeout;
  impl_->curve = std::move(curve);
  impl_->open();
}

ControlClient::~ControlClient() = default;
ControlClient::ControlClient(ControlClient&&) noexcept = default;
ControlClient& ControlClient::operator=(ControlClient&&) noexcept = default;

void ControlClient::set_token(std::string token) { impl_->token = std::move(token); }

const std::string& ControlClient::endpoint() const { return impl_->endpoint; }
std::chrono::milliseconds ControlClient::timeout() const { return impl_->timeout; }

nlohmann::json ControlClient::request(const nlohmann::json& worker_id, const nlohmann::json& req,
                                      const nlohmann::json& req_info) {
  return request(worker_id, req, req_info, impl_->timeout);
}

nlohmann::json ControlClient::request(const nlohmann::json& worker_id, const nlohmann::json& req,
                                      const nlohmann::json& req_info, std::chrono::milliseconds timeout) {
  return request(worker_id, req, req_info, timeout, {});
}

nlohmann::json ControlClient::request(const nlohmann::json& worker_id, const nlohmann::json& req,
                                      const nlohmann::json& req_info, std::chrono::milliseconds timeout,
                                      const std::function<bool()>& peer_alive) {
  const std::string frame = protocol::encode_request(worker_id, req, req_info, impl_->token);
  zmq::socket_t& socket = *impl_->socket;
  // Sending on a REQ socket does not block: the frame is queued until a peer
  // connects, so the only wait is for the reply, bounded below.
  while (true) {
    try {
      socket.send(zmq::buffer(frame), zmq::send_flags::none);
      break;
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;  // a handled signal: send again
    }
  }

  // Waits in slices, looking between them at the connection (made yet?) and
  // at the peer (alive?).
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  constexpr std::chrono::milliseconds kSlice{100};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int ready = 0;
  while (ready == 0) {
    const auto now = std::chrono::steady_clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left <= std::chrono::milliseconds(0)) break;
    ready = detail::poll_for(&item, 1, std::min(left, kSlice));
    if (ready != 0) break;
    impl_->read_monitor();
    if (!impl_->connected && now - impl_->opened_at >= impl_->connect_timeout) {
      const auto waited =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - impl_->opened_at);
      impl_->open();
      throw TimeoutError(str_cat("nothing listens at ", impl_->endpoint, ": no connection within ", waited.count(),
                                 " ms while '", req.dump(), "' waited (is the controller running, at this endpoint?)"));
    }
    if (peer_alive && !peer_alive()) {
      impl_->open();
      throw PeerLostError(str_cat("controller at ", impl_->endpoint, " is gone: its process ended while '",
                                  req.dump(), "' waited for a reply"));
    }
  }
  if (ready == 0) {
    impl_->open();  // a REQ socket waiting for a reply cannot send again
    throw TimeoutError(str_cat("controller at ", impl_->endpoint, " did not answer '", req.dump(), "' within ",
                               timeout.count(), " ms (is it running?)"));
  }
  zmq::message_t reply;
  // The reply is there (poll said so): this does not block.
  while (true) {
    try {
      (void)socket.recv(reply, zmq::recv_flags::none);
      break;
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }
  nlohmann::json j = nlohmann::json::parse(reply.to_string_view(), nullptr, false);
  if (j.is_discarded())
    throw ProtocolError(str_cat("controller at ", impl_->endpoint, " sent a reply that is not JSON"));
  if (protocol::is_error_reply(j))
    throw ErrorReply(j["platoon_error"].value("kind", "error"), str_cat("controller at ", impl_->endpoint, " refused '", req.dump(), "': ",
                                protocol::error_text(j)));
  return j;
}

}  // namespace platoon
