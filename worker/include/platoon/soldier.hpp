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
#include "platoon/channel/control_client.hpp"
#include "platoon/channel/security.hpp"
#include "platoon/collective/collective.hpp"
#include "platoon/process/process.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/sync/sync_rules.hpp"

namespace platoon {

class Soldier {
 public:
  struct Options {
    /// The controller's endpoint, e.g. "tcp://127.0.0.1:5567".
    std::string endpoint;
    /// A name for this worker's process, shown next to its id in its own log
    /// lines and in the controller's ("worker 4 (worker-1)"). The id changes
    /// when a worker is restarted; the name is what stays, e.g. the name of
    /// its log file. Empty: $PLATOON_WORKER_NAME, which platoon-launch sets to
    /// "worker-<index>", or no name. At most 64 printable ASCII characters.
    std::string name;
    /// Bound on every control request; past it, TimeoutError names the endpoint.
    std::chrono::milliseconds timeout{std::chrono::seconds(60)};
    /// Bound on waiting for a connection to the endpoint: when nothing has
    /// accepted one by then, TimeoutError says that nothing listens there (a
    /// mistyped port fails in seconds, not after `timeout`).
    std::chrono::milliseconds connect_timeout{ControlClient::kDefaultConnectTimeout};
    /// The controller's process, when it runs on this host and is known
    /// before registering: registration then ends with JobOverError as soon
    /// as that process is gone, instead of waiting for `timeout`. Pid 0:
    /// $PLATOON_CONTROLLER_PROCESS ("pid:start_ticks"), which platoon-launch
    /// sets, or unknown.
    ProcessId controller_process;
    /// Bound on waiting for a lock of the center.
    std::chrono::milliseconds lock_timeout{std::chrono::seconds(60)};
    /// Bound on waiting for the first worker to create the center.
    std::chrono::milliseconds params_timeout{std::chrono::seconds(120)};
    /// Keys, when the controller requires CURVE. Empty: the server key in
    /// $PLATOON_CURVE_SERVER_PUBLIC_KEY and this worker's key pair in the
    /// file $PLATOON_CURVE_CLIENT_KEYS, when platoon-launch --remote-workers
    /// sets them (or the user, on another host), or none.
    CurveClientKeys curve;
    /// The job key to register with (see job_key.hpp). Empty:
    /// $PLATOON_JOB_KEY, which platoon-launch sets, or else the key file that
    /// a controller of this user wrote for `endpoint`.
    std::string job_key;
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
    /// Bound on every collective call of a synchronous group (all_reduce,
    /// send_req_collective's broadcast, ...): a peer that dies or stalls for
    /// longer makes the call throw PeerLostError.
    std::chrono::milliseconds collective_timeout{std::chrono::seconds(5)};
    /// Bound on waiting to be placed in a group (init_group(), regroup()).
    std::chrono::milliseconds group_timeout{std::chrono::seconds(120)};

    /// How sync_params() reaches the center.
    enum class Transport {
      /// Shared memory when the center's segment can be mapped on this host,
      /// else TCP through the controller's parameter server.
      automatic,
      shared_memory,  ///< the center's host only
      tcp,            ///< through the parameter server, from any host
    } transport = Transport::automatic;
    /// The parameter server to sync with over TCP. Empty: the one the
    /// controller announces at registration
    /// (Lieutenant::Options::param_server_endpoint).
    std::string param_server;
    /// Chunks in flight at once in a TCP sync: enough to keep the link busy
    /// both ways while the server applies.
    std::size_t tcp_window = 4;
  };

  /// What a worker of a synchronous group holds, and what a worker that
  /// joins receives from rank 0: the parameters, the optimizer's state, and
  /// the training progress. The buffers are the user's; they must outlive
  /// the Soldier.
  struct GroupState {
    /// The model's parameters. Their layout must be the same on every worker
    /// (checked by the controller, LayoutError naming the difference).
    std::vector<ParamView> params;
    /// The optimizer's state (momentum, Adam's moments, ...), in a fixed
    /// order with the same sizes on every worker.
    std::vector<std::span<float>> state;
    /// Where training stands, e.g. {"step": 120}: rank 0's replaces the
    /// others' whenever a group forms. Keep it current.
    nlohmann::json progress;
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
  /// parameters from its own values, in shared memory (so it runs on the
  /// controller's host); any other worker waits (bounded by
  /// Options::params_timeout) until they exist, checks that its layout is
  /// the same (LayoutError names the first parameter that differs and both
  /// shapes) and starts from the central values. `rule` is applied by
  /// sync_params(). `cleanup` = false keeps the center in shared memory after
  /// the job ends (for inspection); by default the controller removes it.
  /// A worker that syncs over TCP (see Options::transport) needs a rule that
  /// can (EASGD, ASGD, WeightedAverage; SyncRule::center_update), else Error.
  void init_shared_params(std::vector<ParamView> params, std::unique_ptr<SyncRule> rule, bool cleanup = true);

  /// Applies the sync rule to the local and central values, chunk by chunk,
  /// each under its lock: in shared memory, or on the parameter server over
  /// TCP (with the same locks, so both kinds of workers interleave safely).
  /// Over TCP, a server that does not answer in Options::timeout throws
  /// TimeoutError; each chunk is then either fully synced or untouched.
  void sync_params();

  /// Whether this worker syncs over TCP (decided by init_shared_params()).
  [[nodiscard]] bool remote() const;

  /// Locks the whole center until the returned guard is destroyed (for
  /// reading or writing it by hand, with central_values()). Shared memory
  /// only: Error for a worker that syncs over TCP.
  [[nodiscard]] SegmentLock lock();
  /// The central values, in layout order. Hold lock() while using them.
  /// Shared memory only, as lock().
  [[nodiscard]] std::span<float> central_values() const;
  /// Copies every central value, in layout order, into `out` (as long as
  /// the layout: else LayoutError), chunk by chunk, each chunk under its lock: in
  /// shared memory or over TCP alike (to evaluate the center, say). For the
  /// whole center at one instant, hold lock() (shared memory only).
  void read_center(std::span<float> out);
  /// Copies the central values into the local parameters, under the lock
  /// (over TCP too).
  void copy_center_to_local();

  // ---- Synchronous data parallelism: a group of the workers of one host ----
  //
  //   platoon::Soldier::GroupState state{model.param_views(), optimizer.state(), {{"step", 0}}};
  //   soldier.init_group(state);                  // rank 0's values reach everyone
  //   while (soldier.send_req_collective("next") == "train") {   // the same answer on every rank
  //     model.gradients(my_part_of_the_batch, soldier.gradient_views());
  //     try {
  //       soldier.all_reduce(soldier.gradients());                 // mean over the ranks, in place
  //     } catch (const platoon::PeerLostError&) {
  //       if (!soldier.regroup()) break;                           // the job goes on without it
  //       continue;
  //     }
  //     optimizer.step(params, soldier.gradients());               // the same on every rank
  //     state.progress["step"] = ++step;
  //   }

  /// Joins the job's synchronous group: waits (bounded by
  /// Options::group_timeout) until the controller places this worker in an
  /// epoch, then takes rank 0's parameters, state and progress into `state`
  /// (in epoch 0, every worker starts from rank 0's initialization; a worker
  /// that joins later starts where the job is). Keeps a reference to
  /// `state`. Returns false, with nothing changed, when the job is already
  /// ending. Throws LayoutError when this worker's layout differs from the
  /// group's, TimeoutError when no epoch forms in time.
  bool init_group(GroupState& state);

  /// After a collective threw PeerLostError: joins the next epoch (the
  /// controller forms it without the lost worker, and with any worker that
  /// waits to join) and takes rank 0's state again, so every rank is
  /// identical even if the failed step ended differently on some. Returns
  /// false when the job is ending: leave the loop and close().
  bool regroup();

  /// The group of the current epoch. Throws Error before init_group().
  [[nodiscard]] Collective& group();

  /// A flat buffer in shared memory, as long as the parameters' layout, that
  /// all_reduce() reduces in place: nothing is copied in or out. Other
  /// collective calls (send_req_collective, regroup) use it as scratch
  /// memory: fill it after the step's control request.
  [[nodiscard]] std::span<float> gradients();
  /// gradients() cut into views named and shaped like the parameters.
  [[nodiscard]] std::vector<ParamView> gradient_views();

  /// Combines `data` over the group in place (default: the mean), with the
  /// same bits on every rank. Same size on every rank. Throws PeerLostError
  /// when a peer dies or stalls (Options::collective_timeout).
  void all_reduce(std::span<float> data, ReduceOp op = ReduceOp::mean);

  /// A control request for the whole group: rank 0 sends it to the
  /// controller's handle_control() and every rank returns the same reply
  /// (an error reply throws the same ErrorReply on every rank). When the
  /// group must change (a worker waits to join), every rank regroups first,
  /// then asks again. Returns a null JSON when the job ended while
  /// regrouping.
  nlohmann::json send_req_collective(const nlohmann::json& req, const nlohmann::json& req_info = nullptr);

  /// Where this worker stands in its group; rank -1 before init_group().
  [[nodiscard]] GroupPosition group_position() const;

  /// The rule given to init_shared_params (e.g. to change EASGD's alpha).
  [[nodiscard]] SyncRule& rule();

  [[nodiscard]] int worker_id() const;
  [[nodiscard]] const std::string& job_id() const;
  /// The name of the center's shared-memory segment (as the controller
  /// announced it; a TCP worker knows it too, without mapping it).
  [[nodiscard]] const std::string& segment_name() const;
  /// The controller's process (what the job's shared-memory objects name as
  /// their owner).
  [[nodiscard]] const ProcessId& controller() const;
  /// Whether this worker created the central parameters.
  [[nodiscard]] bool first() const;
  [[nodiscard]] const Logger& log() const;
  /// Whether the controller was found gone (see Options::on_controller_lost).
  [[nodiscard]] bool controller_lost() const;

  /// Tells the controller this worker is done, unmaps the center (never
  /// removes it) and removes this worker's group slot. Idempotent. Errors are logged, not thrown: the controller
  /// may already be gone.
  void close() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace platoon
