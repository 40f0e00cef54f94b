// The worker side of a platoon job.
//
//   platoon::Soldier soldier(5567);                      // registers with the controller
//   soldier.init_shared_params(model.param_views(),       // the first worker creates the
//                              std::make_unique<platoon::EASGD>(0.5f));  // center, others attach
//   while (soldier.send_req("next") == "train") {
//     train_one_minibatch();
//     if (++step % 10 == 0) soldier.sync_params();        // elastic averaging
//   }
//   soldier.close();                                      // leaves the job
//
// A Soldier is used directly, never subclassed. It is not thread-safe: use it
// from one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "platoon/common/log.hpp"
#include "platoon/common/params.hpp"
#include "platoon/channel/security.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/sync/sync_rules.hpp"

namespace platoon {

class Soldier {
 public:
  struct Options {
    /// The controller's endpoint, e.g. "tcp://127.0.0.1:5567".
    std::string endpoint;
    /// Bound on every control request; past it, TimeoutError names the endpoint.
    std::chrono::milliseconds timeout{std::chrono::seconds(60)};
    /// Bound on waiting for a lock of the center.
    std::chrono::milliseconds lock_timeout{std::chrono::seconds(60)};
    /// Bound on waiting for the first worker to create the center.
    std::chrono::milliseconds params_timeout{std::chrono::seconds(120)};
    /// Keys, when the controller requires CURVE.
    CurveClientKeys curve;
    /// Elements per lock of the center (set by the first worker only).
    std::size_t chunk_elements = SharedSegment::kDefaultChunkElements;
    /// Threads that sync_params() uses, the calling thread included. Chunks
    /// are spread over them; more than one helps with large models when the
    /// machine has idle cores.
    std::size_t sync_threads = 1;
    /// How often a background thread tells the controller this worker is
    /// alive (and checks that the controller is). Zero disables it.
    std::chrono::milliseconds heartbeat_interval{500};
    /// A heartbeat unanswered for this long means the controller is lost.
    std::chrono::milliseconds heartbeat_timeout{std::chrono::seconds(5)};
    /// What to do when the controller stops answering heartbeats (within
    /// `heartbeat_timeout`) or no longer knows this worker.
    enum class OnControllerLost {
      exit_process,  ///< log the error and end the process with kExitControllerLost
      throw_error,   ///< make the next Soldier call throw PeerLostError
    } on_controller_lost = OnControllerLost::exit_process;
  };

  /// The exit code of a worker that ended because its controller was lost.
  static constexpr int kExitControllerLost = 75;

  /// Connects to tcp://127.0.0.1:`port` and registers. Throws TimeoutError
  /// if no controller answers within the default timeout.
  explicit Soldier(int port);
  /// Connects to `options.endpoint` and registers.
  explicit Soldier(Options options);
  /// Leaves the job (see close()); never throws.
  ~Soldier();
  Soldier(const Soldier&) = delete;
  Soldier& operator=(const Soldier&) = delete;

  /// Sends a user request to the controller's handle_control() and returns
  /// its reply. An error reply throws ProtocolError; no reply in time throws
  /// TimeoutError naming the endpoint.
  nlohmann::json send_req(const nlohmann::json& req, const nlohmann::json& req_info = nullptr);

  /// Shares `params` with the job. The first worker creates the central
  /// parameters from its own values; any other worker waits (bounded by
  /// Options::params_timeout) until they exist, checks that its layout is
  /// the same (LayoutError names the first parameter that differs and both
  /// shapes) and starts from the central values. `rule` is applied by
  /// sync_params(). `cleanup` = false keeps the center in shared memory after
  /// the job ends (for inspection); by default the controller removes it.
  void init_shared_params(std::vector<ParamView> params, std::unique_ptr<SyncRule> rule, bool cleanup = true);

  /// Applies the sync rule to the local and central values, chunk by chunk,
  /// each under its lock.
  void sync_params();

  /// Locks the whole center until the returned guard is destroyed (for
  /// reading or writing it by hand, with central_values()).
  [[nodiscard]] SegmentLock lock();
  /// The central values, in layout order. Hold lock() while using them.
  [[nodiscard]] std::span<float> central_values() const;
  /// Copies the central values into the local parameters, under the lock.
  void copy_center_to_local();

  /// The rule given to init_shared_params (e.g. to change EASGD's alpha).
  [[nodiscard]] SyncRule& rule();

  [[nodiscard]] int worker_id() const;
  [[nodiscard]] const std::string& job_id() const;
  /// Whether this worker created the central parameters.
  [[nodiscard]] bool first() const;
  [[nodiscard]] const Logger& log() const;
  /// Whether the controller was found gone (see Options::on_controller_lost).
  [[nodiscard]] bool controller_lost() const;

  /// Tells the controller this worker is done and unmaps the center (never
  /// removes it). Idempotent. Errors are logged, not thrown: the controller
  /// may already be gone.
  void close() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace platoon
