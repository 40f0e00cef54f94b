// The parameter server: serves the syncs of workers on other hosts against
// the job's shared segment, on the center's host. Started by the controller
// (Lieutenant::Options::param_server_endpoint); a ParamServer can also be
// run on its own, as the benchmark does.
//
// One ROUTER socket receives every remote worker's frames (wire.hpp) and
// hands them to a pool of threads. Each sync frame is one chunk: its thread
// takes that chunk's lock in the segment, the same lock shared-memory
// workers take, applies the CenterUpdate to the whole chunk and answers.
// A frame is received whole before anything is applied, so a worker that
// dies or disconnects mid-sync leaves each chunk either fully updated or
// untouched.
//
// Only registered workers are served: the controller admits each worker's
// session token at registration and dismisses it when the worker leaves or
// is lost. Anything else (short, oversized or malformed frames, an unknown
// chunk, a wrong token) gets an error reply and touches nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "platoon/channel/security.hpp"
#include "platoon/common/log.hpp"
#include "platoon/remote/wire.hpp"

namespace platoon {

class ParamServer {
 public:
  struct Options {
    /// Where to listen, e.g. "tcp://192.0.2.1:5570" ("tcp://127.0.0.1:*"
    /// picks a free port; see endpoint()). Anything but loopback requires
    /// `curve`, as the control endpoint does.
    std::string endpoint;
    /// The job's segment (SharedSegment::name_for_job): mapped at the first
    /// request after it exists.
    std::string segment_name;
    /// CURVE keys: the server's pair and the worker keys allowed in.
    CurveServerKeys curve;
    /// Threads that apply syncs. Chunks of different workers, or of one
    /// worker's window, are applied in parallel when they differ.
    std::size_t threads = 2;
    /// Bound on waiting for a chunk's lock; past it the reply is "busy".
    std::chrono::milliseconds lock_timeout{std::chrono::seconds(30)};
    /// Frames larger than this are refused as they arrive (the connection is
    /// dropped). Must hold one chunk: 4 bytes per element (the default
    /// holds 4 of the default chunks; the server logs an error when the
    /// center's chunks do not fit).
    std::size_t max_frame_bytes = std::size_t{16} << 20;
  };

  /// Binds and starts serving. Throws Error for a non-loopback endpoint
  /// without CURVE keys, ResourceError when the endpoint cannot be bound.
  ParamServer(Options options, const Logger& log);
  /// Stops the threads and closes the socket (within about 100 ms).
  ~ParamServer();
  ParamServer(const ParamServer&) = delete;
  ParamServer& operator=(const ParamServer&) = delete;

  /// The endpoint as bound, with the real port.
  [[nodiscard]] const std::string& endpoint() const;

  /// Lets worker `worker_id` in with its session token. Thread-safe.
  void admit(int worker_id, const std::string& token);
  /// Keeps worker `worker_id` out from now on. Thread-safe.
  void dismiss(int worker_id);

  /// Answers one request (its header frame and payload frame) exactly as
  /// the serving threads do, and returns the reply header and payload.
  /// Never throws for bad input. For tests and the fuzz target.
  std::pair<wire::ReplyHeader, std::string> handle_request(std::string_view header, std::string_view payload);

  /// Frames answered with an error so far (for logs and tests).
  [[nodiscard]] std::size_t refused() const;
  /// Chunks applied so far.
  [[nodiscard]] std::size_t chunks_applied() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace platoon
