// The ZAP handler (ZeroMQ RFC 27) that decides which CURVE clients may talk
// to a controller. Internal to platoon; not installed.
#pragma once

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

namespace platoon::detail {

/// Answers the ZAP requests of every socket of `context` on its own thread:
/// a CURVE client whose public key (Z85) is in the allowed list gets status
/// "200" with its key as user id; any other client or mechanism gets "400".
///
/// Create it before the server socket binds (ZeroMQ only consults a handler
/// that exists when a connection is made) and destroy it before the context.
/// The server socket should set zmq::sockopt::zap_domain. The destructor
/// stops and joins the thread within about one poll interval.
class ZapAuthenticator {
 public:
  /// Binds "inproc://zeromq.zap.01" in `context` and starts answering.
  /// Throws ResourceError when the endpoint cannot be bound (e.g. another
  /// handler already serves this context).
  ZapAuthenticator(zmq::context_t& context, const std::vector<std::string>& allowed_client_public_keys);
  ~ZapAuthenticator();
  ZapAuthenticator(const ZapAuthenticator&) = delete;
  ZapAuthenticator& operator=(const ZapAuthenticator&) = delete;
  ZapAuthenticator(ZapAuthenticator&&) = delete;
  ZapAuthenticator& operator=(ZapAuthenticator&&) = delete;

  /// How many requests were refused so far (for logs and tests).
  [[nodiscard]] int refused() const { return refused_.load(); }

 private:
  void run();
  void answer_one();

  zmq::socket_t socket_;
  std::set<std::string> allowed_;
  std::atomic<bool> stop_{false};
  std::atomic<int> refused_{0};
  std::thread thread_;
};

}  // namespace platoon::detail
