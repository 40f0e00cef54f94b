#include "platoon/soldier.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "platoon/common/json_number.hpp"
#include "platoon/shm/checkpoint.hpp"
#include "platoon/channel/control_client.hpp"
#include "platoon/channel/job_key.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/thread.hpp"
#include "platoon/process/process.hpp"
#include "platoon/channel/protocol.hpp"
#include "platoon/remote/remote_center.hpp"
#include "task_pool.hpp"
#include "worker_group.hpp"

namespace platoon {

namespace {

// A run of elements that lies in one parameter and one chunk.
struct Piece {
  float* local;
  std::size_t offset;  // in the flat vector
  std::size_t size;
};

}  // namespace

struct Soldier::Impl {
  Options options;
  Logger log{"worker"};
  ControlClient client;
  int worker_id = -1;
  std::string token;  // this worker's session token: every request after registering carries it
  std::string job_id;
  std::string segment_name;
  bool first = false;
  std::string resume_from;  // a checkpoint the first worker starts from
  ProcessId controller;
  bool closed = false;

  std::vector<ParamView> params;
  std::unique_ptr<SyncRule> rule;
  std::optional<SharedSegment> segment;
  std::unique_ptr<RemoteCenter> remote;  // instead of `segment`, for a worker that syncs over TCP
  std::string announced_param_server;    // from the registration reply, when the controller runs one
  std::vector<std::vector<Piece>> pieces_by_chunk;
  std::size_t total_size = 0;  // elements of the flat vector, once init_shared_params() ran
  detail::TaskPool pool;
  std::unique_ptr<detail::WorkerGroup> group;  // after init_group()

  // The heartbeat thread and what it found.
  std::thread heartbeat;
  std::mutex heartbeat_mutex;
  std::condition_variable heartbeat_wake;
  bool heartbeat_stop = false;
  // Why the controller is lost: both threads may find out at once (a dropped
  // worker's heartbeat and its next request), so the first one writes it,
  // under the mutex, and everyone reads a copy.
  std::mutex lost_mutex;
  std::atomic<bool> controller_lost{false};
  std::string controller_lost_reason;

  explicit Impl(Options opts)
      : options(std::move(opts)),
        client(options.endpoint, options.timeout, options.curve, options.connect_timeout),
        pool(std::max<std::size_t>(1, options.sync_threads)) {}

  ~Impl() { stop_heartbeat(); }

  void start_heartbeat() {
    if (options.heartbeat_interval.count() <= 0) return;
    heartbeat = start_thread_without_signals([this] { heartbeat_loop(); });
  }

  void stop_heartbeat() {
    {
      std::lock_guard lock(heartbeat_mutex);
      heartbeat_stop = true;
    }
    heartbeat_wake.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
  }

  // Runs on its own thread with its own socket: a worker busy computing, or
  // blocked anywhere, is still seen alive, and still learns that the
  // controller is gone.
  void heartbeat_loop() {
    ControlClient beat(options.endpoint, options.heartbeat_timeout, options.curve, options.connect_timeout);
    beat.set_token(token);
    std::unique_lock lock(heartbeat_mutex);
    while (!heartbeat_wake.wait_for(lock, options.heartbeat_interval, [&] { return heartbeat_stop; })) {
      lock.unlock();
      std::string failure;
      try {
        beat.request(worker_id, std::string(protocol::kHeartbeat));
      } catch (const TimeoutError& e) {
        failure = e.what();
      } catch (const ErrorReply& e) {
        failure = str_cat("the controller no longer knows this worker: ", e.what());
      } catch (const std::exception& e) {
        failure = e.what();
      }
      lock.lock();
      if (!failure.empty() && !heartbeat_stop) {
        on_controller_lost(failure);
        return;
      }
    }
  }

  void on_controller_lost(const std::string& reason) {
    std::string why;
    {
      std::lock_guard lock(lost_mutex);
      if (controller_lost.load()) return;  // the other thread said it first
      controller_lost_reason = str_cat("controller of job ", job_id, " at ", options.endpoint, " is lost: ", reason);
      why = controller_lost_reason;
      controller_lost.store(true);
    }
    if (options.on_controller_lost == Options::OnControllerLost::exit_process) {
      log.error(why, "; exiting with code ", kExitControllerLost);
      std::_Exit(kExitControllerLost);  // the job is over for this worker, whatever it was doing
    }
    log.error(why);
  }

  std::string lost_reason() {
    std::lock_guard lock(lost_mutex);
    return controller_lost_reason;
  }

  void check_controller() {
    if (controller_lost.load()) throw PeerLostError(lost_reason());
  }

  nlohmann::json framework(std::string_view name, const nlohmann::json& info = nullptr) {
    return client.request(worker_id, std::string(name), info);
  }

  void cut_into_pieces(std::size_t chunk, std::size_t num_chunks) {
    pieces_by_chunk.assign(num_chunks, {});
    std::size_t offset = 0;
    for (const ParamView& p : params) {
      std::size_t done = 0;
      while (done < p.size()) {
        const std::size_t flat = offset + done;
        const std::size_t c = flat / chunk;
        const std::size_t n = std::min(p.size() - done, (c + 1) * chunk - flat);
        pieces_by_chunk[c].push_back({p.data + done, flat, n});
        done += n;
      }
      offset += p.size();
    }
  }

  template <class F>
  void for_each_piece_in(std::size_t chunk, F&& f) {
    float* central = segment->values().data();
    for (const Piece& piece : pieces_by_chunk[chunk])
      f(std::span<float>(piece.local, piece.size), std::span<float>(central + piece.offset, piece.size), piece.offset);
  }

  detail::WorkerGroup& require_group(const char* what) const {
    if (!group || !group->joined()) throw Error(str_cat(what, " called before init_group(), or after the job ended"));
    return *group;
  }

  void require_shared(const char* what) const {
    if (!segment && !remote) throw Error(str_cat(what, " called before init_shared_params()"));
  }

  void require_shared_memory(const char* what) const {
    require_shared(what);
    if (remote)
      throw Error(str_cat(what, " needs the center in shared memory; this worker syncs over TCP with ",
                          remote->endpoint(), " (use copy_center_to_local() and sync_params())"));
  }

  // Whether a non-first worker syncs over TCP: never when told shared
  // memory, always when told TCP, else when the center's segment is not
  // visible on this host.
  bool use_tcp() const {
    switch (options.transport) {
      case Options::Transport::shared_memory: return false;
      case Options::Transport::tcp: return true;
      case Options::Transport::automatic: break;
    }
    std::error_code ec;
    return !std::filesystem::exists(std::filesystem::path("/dev/shm") / segment_name, ec);
  }

  void connect_remote(const Layout& layout) {
    const std::string server = options.param_server.empty() ? announced_param_server : options.param_server;
    if (server.empty())
      throw Error(str_cat("the center of job ", job_id, " (segment ", segment_name, ") is not in this host's shared "
                          "memory, and the controller at ", options.endpoint,
                          " runs no parameter server (Lieutenant::Options::param_server_endpoint, platoon-launch "
                          "--param-server): this worker cannot reach the center"));
    if (!rule->center_update())
      throw Error(str_cat("sync rule ", rule->describe(), " cannot sync over TCP (it has no center_update()); "
                          "use EASGD, ASGD or WeightedAverage, or run this worker on the center's host"));
    RemoteCenter::Options remote_options;
    remote_options.endpoint = server;
    remote_options.curve = options.curve;
    remote_options.worker_id = worker_id;
    remote_options.token = token;
    remote_options.timeout = options.timeout;
    remote_options.ready_timeout = options.params_timeout;
    remote_options.window = options.tcp_window;
    remote = std::make_unique<RemoteCenter>(std::move(remote_options), layout);
  }

  void remote_sync() {
    const std::optional<CenterUpdate> update = rule->center_update();
    const std::size_t chunk = remote->chunk_elements();
    remote->sync(
        *update,
        [&](std::size_t c, std::span<float> out) {
          for (const Piece& p : pieces_by_chunk[c])
            rule->remote_push(std::span<const float>(p.local, p.size), p.offset, out.subspan(p.offset - c * chunk, p.size));
        },
        [&](std::size_t c, std::span<const float> answer) {
          for (const Piece& p : pieces_by_chunk[c])
            rule->remote_apply(std::span<float>(p.local, p.size), answer.subspan(p.offset - c * chunk, p.size), p.offset);
        });
  }
};

namespace {
Soldier::Options loopback_options(int port) {
  Soldier::Options options;
  options.endpoint = loopback_endpoint(port);
  return options;
}
}  // namespace

Soldier::Soldier(int port) : Soldier(loopback_options(port)) {}

Soldier::Soldier(Options options) {
  if (options.endpoint.empty()) throw Error("Soldier::Options::endpoint is empty");
  if (options.name.empty())
    if (const char* from_launcher = std::getenv("PLATOON_WORKER_NAME")) options.name = from_launcher;
  // Checked here too, so that a bad name is named before anything is sent.
  if (const std::string why = protocol::worker_name_problem(options.name); !why.empty())
    throw Error(str_cat("Soldier::Options::name ", protocol::quote(options.name), " ", why));
  if (options.controller_process.pid == 0)
    if (const char* from_launcher = std::getenv("PLATOON_CONTROLLER_PROCESS")) {
      const std::optional<ProcessId> controller = ProcessId::parse(from_launcher);
      if (!controller)
        throw Error(str_cat("PLATOON_CONTROLLER_PROCESS=", from_launcher, " is not 'pid' or 'pid:start_ticks'"));
      options.controller_process = *controller;
    }
  if (!options.curve.enabled())
    if (const char* server_key = std::getenv("PLATOON_CURVE_SERVER_PUBLIC_KEY")) {
      const char* key_file = std::getenv("PLATOON_CURVE_CLIENT_KEYS");
      if (key_file == nullptr)
        throw Error("PLATOON_CURVE_SERVER_PUBLIC_KEY is set but PLATOON_CURVE_CLIENT_KEYS (this worker's key file) "
                    "is not");
      options.curve.server_public_key = server_key;
      options.curve.client = CurveKeyPair::load(key_file);
    }
  // The job key: given, from platoon-launch, or from the user's key file.
  std::string key_problem;
  if (options.job_key.empty()) {
    if (const char* from_launcher = std::getenv("PLATOON_JOB_KEY")) {
      options.job_key = from_launcher;
    } else {
      try {
        options.job_key = read_job_key(options.endpoint);
      } catch (const ResourceError& e) {
        key_problem = e.what();  // said if the controller asks for a key (it may not be there at all)
      }
    }
  }
  impl_ = std::make_unique<Impl>(std::move(options));
  const ProcessId self = ProcessId::self();
  nlohmann::json info = {{"pid", self.pid}, {"start_ticks", self.start_ticks}, {"host", host_name()}};
  if (!impl_->options.name.empty()) info["name"] = impl_->options.name;
  if (!impl_->options.job_key.empty()) info["job_key"] = impl_->options.job_key;
  nlohmann::json reply;
  const ProcessId controller = impl_->options.controller_process;
  try {
    std::function<bool()> controller_alive;
    if (controller.pid != 0) controller_alive = [controller] { return controller.alive(); };
    reply = impl_->client.request(str_cat(host_name(), ":", self.pid), std::string(protocol::kRegister), info,
                                  impl_->options.timeout, controller_alive);
  } catch (const ErrorReply& e) {
    if (e.kind() == "job-over") throw JobOverError(e.what());
    if (e.kind() == "unauthorized" && !key_problem.empty())
      throw ErrorReply(e.kind(), str_cat(e.what(), "; this worker has no key: ", key_problem));
    throw;
  } catch (const PeerLostError& e) {
    throw JobOverError(str_cat("the controller (pid ", controller.pid,
                               ") ended before this worker could register: its job is over, or it failed (",
                               e.what(), ")"));
  }
  try {
    impl_->worker_id = json_integer<int>(reply.at("worker_id"));
    impl_->token = reply.at("token").get<std::string>();
    impl_->job_id = reply.at("job_id").get<std::string>();
    impl_->segment_name = reply.at("segment").get<std::string>();
    impl_->first = reply.at("first").get<bool>();
    impl_->resume_from = reply.value("resume_from", "");
    impl_->announced_param_server = reply.value("param_server", "");
    impl_->controller.pid = json_integer<std::int64_t>(reply.at("controller").at("pid"));
    impl_->controller.start_ticks = json_integer<std::uint64_t>(reply.at("controller").at("start_ticks"));
  } catch (const nlohmann::json::exception& e) {
    throw ProtocolError(str_cat("controller at ", impl_->options.endpoint, " sent a malformed registration reply ",
                                protocol::quote(reply), ": ", e.what()));
  }
  impl_->client.set_token(impl_->token);
  impl_->log.set_tag(protocol::worker_label(impl_->worker_id, impl_->options.name));
  impl_->start_heartbeat();
  impl_->log.info("joined job ", impl_->job_id, " at ", impl_->options.endpoint,
                  impl_->first ? " as the first worker" : "");
}

Soldier::~Soldier() { close(); }

nlohmann::json Soldier::send_req(const nlohmann::json& req, const nlohmann::json& req_info) {
  if (impl_->closed) throw Error("send_req called after close()");
  impl_->check_controller();
  try {
    return impl_->client.request(impl_->worker_id, req, req_info);
  } catch (const ErrorReply& e) {
    // Dropped as lost (e.g. after being stopped for longer than the bound):
    // the job has gone on without this worker.
    if (e.kind() != "not-registered") throw;
    impl_->on_controller_lost(str_cat("the controller dropped this worker: ", e.what()));
    throw PeerLostError(impl_->lost_reason());
  }
}

void Soldier::init_shared_params(std::vector<ParamView> params, std::unique_ptr<SyncRule> rule, bool cleanup) {
  if (impl_->segment || impl_->remote) throw Error("init_shared_params called twice");
  if (!rule) throw Error("init_shared_params needs a sync rule");
  const Layout layout = Layout::of(params);
  impl_->params = std::move(params);
  impl_->rule = std::move(rule);
  const auto started = std::chrono::steady_clock::now();

  if (impl_->first) {
    if (impl_->options.transport == Options::Transport::tcp)
      throw Error(str_cat("this worker was asked to create the center of job ", impl_->job_id,
                          ", which lives in the shared memory of the controller's host: the first worker must run "
                          "there, with transport shared_memory or automatic (start the remote workers after it)"));
    if (!impl_->resume_from.empty()) {
      // Resume: local values and center both start from the checkpoint.
      std::vector<float> saved(layout.total_size());
      load_checkpoint_into(impl_->resume_from, layout, saved);
      for (std::size_t i = 0; i < impl_->params.size(); ++i) {
        const LayoutEntry& e = layout.entries()[i];
        std::copy_n(saved.data() + e.offset, e.size, impl_->params[i].data);
      }
      impl_->log.info("initialized the parameters from checkpoint ", impl_->resume_from);
    }
    // A creator that died half-way may have left an uninitialized segment.
    if (SharedSegment::remove(impl_->segment_name))
      impl_->log.warn("removed an unfinished segment ", impl_->segment_name, " left by a previous creator");
    impl_->segment.emplace(SharedSegment::create(impl_->segment_name, impl_->job_id, layout, impl_->controller,
                                                 impl_->options.chunk_elements));
    // The center starts from this worker's initial values, never zeros.
    std::span<float> center = impl_->segment->values();
    for (std::size_t i = 0; i < impl_->params.size(); ++i) {
      const LayoutEntry& e = layout.entries()[i];
      std::copy_n(impl_->params[i].data, e.size, center.data() + e.offset);
    }
    impl_->segment->mark_ready();
    impl_->client.request(impl_->worker_id, std::string(protocol::kParamsReady), {{"keep_segment", !cleanup}});
  } else {
    // Wait until the controller says the center exists, then attach.
    const auto deadline = started + impl_->options.params_timeout;
    while (!impl_->client.request(impl_->worker_id, std::string(protocol::kStatus)).value("params_ready", false)) {
      if (std::chrono::steady_clock::now() >= deadline)
        throw TimeoutError(str_cat("the central parameters of job ", impl_->job_id, " were not created within ",
                                   impl_->options.params_timeout.count(), " ms"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (impl_->use_tcp())
      impl_->connect_remote(layout);
    else
      impl_->segment.emplace(SharedSegment::attach(impl_->segment_name, layout, impl_->options.params_timeout));
  }
  if (impl_->remote)
    impl_->cut_into_pieces(impl_->remote->chunk_elements(), impl_->remote->num_chunks());
  else
    impl_->cut_into_pieces(impl_->segment->chunk_elements(), impl_->segment->num_chunks());
  if (!impl_->first) copy_center_to_local();  // a joining worker starts from the job's progress
  impl_->total_size = layout.total_size();
  impl_->rule->attach(layout.total_size());
  for (const std::vector<Piece>& chunk : impl_->pieces_by_chunk)
    for (const Piece& p : chunk) impl_->rule->init_piece(std::span<const float>(p.local, p.size), p.offset);
  impl_->log.info(impl_->first ? "created" : impl_->remote ? "syncs over TCP with" : "attached to", " the center ",
                  impl_->remote ? str_cat(impl_->segment_name, " at ", impl_->remote->endpoint()) : impl_->segment_name,
                  ": ",
                  layout.entries().size(), " parameters, ", layout.total_size(), " values, rule ",
                  impl_->rule->describe());
}

void Soldier::sync_params() {
  impl_->require_shared("sync_params");
  impl_->check_controller();
  impl_->rule->begin_sync();
  if (impl_->remote) return impl_->remote_sync();
  // Chunks go in increasing order on every worker, each under its own lock,
  // so workers syncing at the same time follow each other chunk by chunk.
  impl_->pool.run(impl_->pieces_by_chunk.size(), [this](std::size_t c) {
    SegmentLock held = impl_->segment->lock_chunk(c, impl_->options.lock_timeout, impl_->log);
    impl_->for_each_piece_in(c, [&](std::span<float> local, std::span<float> central, std::size_t offset) {
      impl_->rule->apply(local, central, offset);
    });
  });
}

bool Soldier::remote() const { return impl_->remote != nullptr; }

SegmentLock Soldier::lock() {
  impl_->require_shared_memory("lock");
  return impl_->segment->lock_all(impl_->options.lock_timeout, impl_->log);
}

std::span<float> Soldier::central_values() const {
  impl_->require_shared_memory("central_values");
  return impl_->segment->values();
}

void Soldier::read_center(std::span<float> out) {
  impl_->require_shared("read_center");
  const std::size_t total = impl_->total_size;
  if (out.size() != total)
    throw LayoutError(str_cat("read_center: the buffer holds ", out.size(), " values, the center ", total));
  if (impl_->remote) {
    const std::size_t chunk = impl_->remote->chunk_elements();
    impl_->remote->pull([&](std::size_t c, std::span<const float> center) {
      std::copy(center.begin(), center.end(), out.begin() + static_cast<std::ptrdiff_t>(c * chunk));
    });
    return;
  }
  for (std::size_t c = 0; c < impl_->segment->num_chunks(); ++c) {
    SegmentLock held = impl_->segment->lock_chunk(c, impl_->options.lock_timeout, impl_->log);
    const std::span<float> values = impl_->segment->chunk(c);
    std::copy(values.begin(), values.end(), out.begin() + static_cast<std::ptrdiff_t>(c * impl_->segment->chunk_elements()));
  }
}

void Soldier::copy_center_to_local() {
  impl_->require_shared("copy_center_to_local");
  if (impl_->remote) {
    const std::size_t chunk = impl_->remote->chunk_elements();
    impl_->remote->pull([&](std::size_t c, std::span<const float> center) {
      for (const Piece& p : impl_->pieces_by_chunk[c])
        std::copy_n(center.begin() + static_cast<std::ptrdiff_t>(p.offset - c * chunk), p.size, p.local);
    });
    return;
  }
  for (std::size_t c = 0; c < impl_->pieces_by_chunk.size(); ++c) {
    SegmentLock held = impl_->segment->lock_chunk(c, impl_->options.lock_timeout, impl_->log);
    impl_->for_each_piece_in(c, [](std::span<float> local, std::span<float> central, std::size_t) {
      std::copy(central.begin(), central.end(), local.begin());
    });
  }
}

bool Soldier::init_group(GroupState& state) {
  if (impl_->closed) throw Error("init_group called after close()");
  if (impl_->group) throw Error("init_group called twice");
  impl_->check_controller();
  detail::WorkerGroup::Settings settings{str_cat(impl_->segment_name, ".slot-w", impl_->worker_id), impl_->controller,
                                         impl_->options.collective_timeout, impl_->options.group_timeout};
  auto ask = [this](std::string_view name, const nlohmann::json& info) {
    impl_->check_controller();
    try {
      return impl_->framework(name, info);
    } catch (const ErrorReply& e) {
      if (e.kind() == "layout-mismatch") throw LayoutError(e.what());
      if (e.kind() != "not-registered") throw;
      impl_->on_controller_lost(str_cat("the controller dropped this worker: ", e.what()));
      throw PeerLostError(impl_->lost_reason());
    }
  };
  impl_->group = std::make_unique<detail::WorkerGroup>(std::move(settings), state, std::move(ask), impl_->log);
  return impl_->group->join();
}

bool Soldier::regroup() {
  if (!impl_->group) throw Error("regroup called before init_group()");
  impl_->check_controller();
  return impl_->group->join();
}

Collective& Soldier::group() { return impl_->require_group("group").collective(); }

std::span<float> Soldier::gradients() {
  if (!impl_->group) throw Error("gradients called before init_group()");
  return impl_->group->gradients();
}

std::vector<ParamView> Soldier::gradient_views() {
  if (!impl_->group) throw Error("gradient_views called before init_group()");
  return impl_->group->gradient_views();
}

void Soldier::all_reduce(std::span<float> data, ReduceOp op) {
  impl_->check_controller();
  impl_->require_group("all_reduce").all_reduce(data, op);
}

nlohmann::json Soldier::send_req_collective(const nlohmann::json& req, const nlohmann::json& req_info) {
  impl_->check_controller();
  return impl_->require_group("send_req_collective").request(req, req_info);
}

GroupPosition Soldier::group_position() const {
  if (!impl_->group) return {0, -1, 0};
  return impl_->group->position();
}

SyncRule& Soldier::rule() {
  impl_->require_shared("rule");
  return *impl_->rule;
}

int Soldier::worker_id() const { return impl_->worker_id; }
const std::string& Soldier::job_id() const { return impl_->job_id; }
const std::string& Soldier::segment_name() const { return impl_->segment_name; }
const ProcessId& Soldier::controller() const { return impl_->controller; }
bool Soldier::first() const { return impl_->first; }
bool Soldier::controller_lost() const { return impl_->controller_lost.load(); }
const Logger& Soldier::log() const { return impl_->log; }

void Soldier::close() noexcept {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  impl_->stop_heartbeat();
  if (impl_->controller_lost.load()) {
    impl_->segment.reset();
    impl_->remote.reset();
    impl_->group.reset();
    return;
  }
  try {
    impl_->client.request(impl_->worker_id, std::string(protocol::kDone), nullptr,
                          std::min(impl_->options.timeout, std::chrono::milliseconds(5000)));
  } catch (const std::exception& e) {
    impl_->log.warn("could not tell the controller that this worker is done: ", e.what());
  }
  impl_->segment.reset();  // unmap only: the job's end removes the segment
  impl_->remote.reset();
  impl_->group.reset();    // removes this worker's slot
}

}  // namespace platoon
