// The client end of the control channel: one request, one reply, each with a
// bounded wait. Used by Soldier, platoon-launch and the tools.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "platoon/channel/security.hpp"

namespace platoon {

/// Sends control requests to a controller over a ZeroMQ REQ socket.
///
/// A request that gets no reply within the timeout throws TimeoutError naming
/// the endpoint and the time waited; the socket is then closed and a fresh
/// one opened (a REQ socket that timed out cannot send again), so the client
/// stays usable. Not thread-safe: one client per thread.
class ControlClient {
 public:
  /// The largest reply accepted (64 MiB): a larger one is dropped as it
  /// arrives, and the request then times out.
  static constexpr std::size_t kMaxReplyBytes = std::size_t{64} << 20;

  /// How long a request waits for a connection to be made by default: when
  /// nothing has accepted one by then, nothing listens at the endpoint.
  static constexpr std::chrono::milliseconds kDefaultConnectTimeout{5000};

  /// `endpoint` is a ZeroMQ endpoint such as "tcp://127.0.0.1:5567".
  /// `curve` holds keys when the controller requires CURVE (see security.hpp).
  /// A request that waits while no connection has been made for
  /// `connect_timeout` since the socket opened throws TimeoutError saying
  /// that nothing listens at the endpoint; `timeout` bounds the wait for a
  /// controller that is there but slow.
  ControlClient(std::string endpoint, std::chrono::milliseconds timeout, CurveClientKeys curve = {},
                std::chrono::milliseconds connect_timeout = kDefaultConnectTimeout);
  ~ControlClient();
  ControlClient(ControlClient&&) noexcept;
  ControlClient& operator=(ControlClient&&) noexcept;
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  /// Sends {"worker_id", "req", "req_info", "token"} and returns the reply. An error
  /// reply throws ProtocolError with the controller's message; no reply in
  /// time throws TimeoutError.
  nlohmann::json request(const nlohmann::json& worker_id, const nlohmann::json& req,
                         const nlohmann::json& req_info = nullptr);

  /// Same as request() with a different bound for this call only.
  nlohmann::json request(const nlohmann::json& worker_id, const nlohmann::json& req, const nlohmann::json& req_info,
                         std::chrono::milliseconds timeout);

  /// Same as request() with `timeout`, and while waiting for the reply,
  /// asks `peer_alive` every 100 ms: once it returns false, the wait ends
  /// with PeerLostError (the socket is renewed, as after a timeout). For a
  /// controller whose process is known, so that a dead one is not waited for.
  nlohmann::json request(const nlohmann::json& worker_id, const nlohmann::json& req, const nlohmann::json& req_info,
                         std::chrono::milliseconds timeout, const std::function<bool()>& peer_alive);

  /// Every later request carries `token`: a registered worker's session
  /// token, from its platoon-register reply ("" sends none).
  void set_token(std::string token);

  [[nodiscard]] const std::string& endpoint() const;
  [[nodiscard]] std::chrono::milliseconds timeout() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// "tcp://127.0.0.1:<port>": the default endpoint for a port.
std::string loopback_endpoint(int port);

}  // namespace platoon
