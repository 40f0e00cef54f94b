// The controller side of a platoon job.
//
// Subclass Lieutenant, implement handle_control(), then:
//
//   MyController controller;
//   controller.init_control(5567);   // tcp://127.0.0.1:5567
//   controller.serve();              // until the job is over
//
// One ROUTER socket serves every worker; serve() sleeps in poll() between
// messages (no busy spinning) and wakes up at least every Options::tick to
// check on the workers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "platoon/common/log.hpp"
#include "platoon/process/process.hpp"
#include "platoon/channel/protocol.hpp"
#include "platoon/channel/security.hpp"

namespace platoon {

/// What the controller knows about one registered worker.
struct WorkerInfo {
  int id = -1;             ///< assigned at registration, from 0 in order of arrival
  std::string name;        ///< the worker's own name (Soldier::Options::name), or empty
  std::string host;        ///< host the worker runs on
  ProcessId process;       ///< its process on that host
  bool creator = false;    ///< it was told to create the central parameters
  std::chrono::steady_clock::time_point last_seen{};

  /// How logs call this worker: "worker 4 (worker-1)", or "worker 4".
  [[nodiscard]] std::string label() const { return protocol::worker_label(id, name); }
};

/// Base class of a controller. See the file comment for the life cycle.
class Lieutenant {
 public:
  struct Options {
    /// Job id; empty generates one unique to this run ("u<uid>-<pid>-<random>"),
    /// so two jobs never share a segment, even on the same port.
    std::string job_id;
    /// Upper bound on one sleep of serve(): how quickly stop() and lost
    /// workers are noticed.
    std::chrono::milliseconds tick{100};
    /// Turn SIGINT and SIGTERM into a clean end of serve(). The signals are
    /// blocked in the serving thread and read through a signalfd.
    bool handle_signals = true;
    /// Requests larger than this get an error reply.
    std::size_t max_message_bytes = protocol::kDefaultMaxMessageBytes;
    /// A worker silent for this long, or whose process is gone, is lost.
    std::chrono::milliseconds worker_timeout{2000};
    /// Required to bind to anything but loopback. Empty: the key pair in the
    /// file $PLATOON_CURVE_SERVER_KEYS (CurveKeyPair::save's format) and the
    /// worker keys in $PLATOON_CURVE_ALLOWED_KEYS (comma-separated), when
    /// platoon-launch --remote-workers sets them, or none.
    CurveServerKeys curve;
    /// The key a worker must show to register (2·kJobKeyBytes lowercase hex
    /// digits, see job_key.hpp). Empty: a fresh random one.
    std::string job_key;
    /// Write the job key to this user's key folder when init_control() binds
    /// (job_key_path(endpoint), mode 0600), where the user's workers find it;
    /// the file is removed when serve() returns. Off: hand job_key() to the
    /// workers yourself (Soldier::Options::job_key, or PLATOON_JOB_KEY);
    /// a key file left at the endpoint by an earlier job that died is then
    /// removed, so that no worker reads that job's key for this one.
    bool write_job_key_file = true;
    /// Where to save the central parameters (atomically: write, fsync,
    /// rename), every `checkpoint_interval` and at the end of the job. Empty:
    /// no checkpoints.
    std::string checkpoint_path;
    std::chrono::milliseconds checkpoint_interval{std::chrono::minutes(5)};
    /// A checkpoint to start from: the first worker initializes the center
    /// from it instead of its own values. Checked when the controller starts
    /// (FileError or LayoutError there, before any worker joins).
    std::string resume_path;
    /// Remove, with a warning, the segments of jobs whose controller died
    /// (killed with SIGKILL, say) when this job starts.
    bool reclaim_dead_segments = true;
    /// Synchronous groups (Soldier::init_group): epoch 0 forms when this
    /// many workers have asked to join, or `group_form_timeout` after the
    /// first asked, with those that did.
    int group_size = 1;
    /// How long a forming epoch waits for the members it expects; members
    /// that have not asked by then are left out (they may join later).
    std::chrono::milliseconds group_form_timeout{std::chrono::seconds(10)};
    /// A process whose end ends the job as SIGTERM would (serve() returns
    /// with the final checkpoint written and the segment removed): the
    /// launcher that started this controller. pid 0: $PLATOON_LAUNCHER_PROCESS
    /// ("pid:start_ticks"), which platoon-launch sets, or none.
    ProcessId launcher_process{};
    /// Where to serve workers on other hosts (ParamServer), e.g.
    /// "tcp://192.0.2.1:5570"; started by init_control(). Workers learn it
    /// at registration. Anything but loopback requires `curve`, and the same
    /// worker keys are allowed in. Empty: $PLATOON_PARAM_SERVER, which
    /// platoon-launch --remote-workers sets, or no parameter server (every
    /// worker syncs through shared memory).
    std::string param_server_endpoint;
    /// A second control endpoint, for workers on other hosts, e.g.
    /// "tcp://192.0.2.1:5568", bound by init_control() beside the first (the
    /// local workers keep using that one). Off loopback it requires `curve`.
    /// Empty: $PLATOON_REMOTE_ENDPOINT, which platoon-launch --remote-workers
    /// sets, or none.
    std::string remote_endpoint;
    /// Threads of the parameter server.
    std::size_t param_server_threads = 2;
  };

  Lieutenant();
  explicit Lieutenant(Options options);
  virtual ~Lieutenant();
  Lieutenant(const Lieutenant&) = delete;
  Lieutenant& operator=(const Lieutenant&) = delete;

  /// Binds the control socket to tcp://127.0.0.1:`port` (0 picks a free port;
  /// see port()). Throws ResourceError naming the endpoint if it is taken.
  void init_control(int port);
  /// Binds to a full ZeroMQ endpoint. Anything but a loopback address
  /// requires Options::curve, or throws Error.
  void init_control(const std::string& endpoint);

  /// The endpoint as bound, with the real port ("tcp://127.0.0.1:41234").
  [[nodiscard]] const std::string& endpoint() const;
  /// The bound TCP port.
  [[nodiscard]] int port() const;
  /// The parameter server's endpoint as bound, or empty when there is none.
  [[nodiscard]] std::string param_server_endpoint() const;
  /// The second control endpoint as bound (Options::remote_endpoint), or
  /// empty. platoon-status reports both.
  [[nodiscard]] const std::string& remote_endpoint() const;
  /// This job's id; the shared segment is named after it.
  [[nodiscard]] const std::string& job_id() const;
  /// The key workers must show to register: a secret, keep it so.
  [[nodiscard]] const std::string& job_key() const;
  /// The file holding the job key, once init_control() wrote it; empty
  /// when Options::write_job_key_file is off or before init_control().
  [[nodiscard]] std::string job_key_file() const;

  /// Serves requests until the job is over: end_job() was called and every
  /// registered worker has left (done or lost); or stop(), SIGINT or SIGTERM.
  /// On return the job's shared segment has been removed.
  void serve();

  /// Makes serve() return within one tick. Safe from any thread.
  void stop() noexcept;

  /// Declares that the job is over: no new worker may join, and serve()
  /// returns once every registered worker has left. Call it from
  /// handle_control() when answering the first "stop".
  void end_job();
  [[nodiscard]] bool job_ending() const;

  /// Whether the first worker has initialized the central parameters.
  [[nodiscard]] bool params_ready() const;
  /// The workers registered now.
  [[nodiscard]] std::vector<WorkerInfo> workers() const;
  /// The synchronous group's current epoch, or -1 before the first.
  [[nodiscard]] std::int64_t group_epoch() const;
  /// The worker ids of the current epoch, in rank order.
  [[nodiscard]] std::vector<int> group_members() const;

  /// Handles one request frame exactly as serve() does and returns the reply
  /// frame. Never throws for bad input: it becomes an error reply. For tests
  /// and the fuzz target; serve() is the way to run a job.
  std::string handle_frame(std::string_view frame);

 protected:
  /// Answers one user request. Any JSON may be returned. An exception becomes
  /// an error reply to that worker (Soldier::send_req throws it there); the
  /// controller keeps serving the others. In a synchronous group, only rank 0
  /// asks (Soldier::send_req_collective) and every rank gets the reply.
  virtual nlohmann::json handle_control(const nlohmann::json& req, const WorkerInfo& worker,
                                        const nlohmann::json& req_info) = 0;

  /// Called when a worker has registered.
  virtual void on_worker_joined(const WorkerInfo& worker);
  /// Called when a worker has left normally (Soldier::close()).
  virtual void on_worker_left(const WorkerInfo& worker);
  /// Called when a worker died or went silent for Options::worker_timeout.
  /// Default: log it. The job goes on with the others.
  virtual void on_worker_lost(const WorkerInfo& worker, const std::string& reason);
  /// Called by serve() on its own thread about every Options::tick, between
  /// requests: for decisions that depend on time rather than on a request
  /// (a time budget that must end the job even when no worker asks).
  /// Default: nothing.
  virtual void on_tick();

  /// The controller's logger ("[controller]").
  [[nodiscard]] const Logger& log() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend struct Impl;
};

}  // namespace platoon
