// A worker's view of a center on another host: the client of ParamServer.
// Soldier uses it when its transport is TCP; the worker code does not change.
//
// Syncs are pipelined: up to `window` chunks are in flight at once, so the
// link carries pushes and answers both ways while the server applies.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "platoon/channel/security.hpp"
#include "platoon/common/params.hpp"
#include "platoon/sync/sync_rules.hpp"

namespace platoon {

class RemoteCenter {
 public:
  struct Options {
    /// The parameter server, e.g. "tcp://192.0.2.1:5570".
    std::string endpoint;
    /// Keys, when the server requires CURVE.
    CurveClientKeys curve;
    /// This worker's id and session token, from platoon-register.
    int worker_id = -1;
    std::string token;
    /// Bound on each answer; past it, TimeoutError names the server.
    std::chrono::milliseconds timeout{std::chrono::seconds(30)};
    /// Bound on waiting for the center to exist (the server answers "not
    /// ready" until then).
    std::chrono::milliseconds ready_timeout{std::chrono::seconds(120)};
    /// Chunks in flight at once.
    std::size_t window = 4;
  };

  /// Fills the chunk's push (`out`, the chunk's size).
  using Fill = std::function<void(std::size_t chunk, std::span<float> out)>;
  /// Takes the server's answer for a chunk.
  using Take = std::function<void(std::size_t chunk, std::span<const float> answer)>;

  /// Connects and says hello: checks that `layout` is the center's
  /// (LayoutError naming the first parameter that differs) and learns its
  /// chunking. Throws TimeoutError when the server does not answer,
  /// ErrorReply (kind "unauthorized", ...) when it refuses.
  RemoteCenter(Options options, const Layout& layout);
  ~RemoteCenter();
  RemoteCenter(const RemoteCenter&) = delete;
  RemoteCenter& operator=(const RemoteCenter&) = delete;

  [[nodiscard]] std::size_t chunk_elements() const;
  [[nodiscard]] std::size_t num_chunks() const;
  [[nodiscard]] const std::string& endpoint() const;

  /// One sync: every chunk, in order, is pushed (`fill`), updated by the
  /// server under its lock with `update`, and answered (`take`). `take`
  /// runs on the calling thread, in the order the answers arrive.
  void sync(const CenterUpdate& update, const Fill& fill, const Take& take);
  /// Reads every chunk of the center.
  void pull(const Take& take);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace platoon
