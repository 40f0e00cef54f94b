#include "platoon/lieutenant.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <zmq.hpp>

#include "platoon/channel/job_key.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/common/secret.hpp"
#include "platoon/shm/checkpoint.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/thread.hpp"
#include "platoon/remote/param_server.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/shm/shm_object.hpp"
#include "channel/poll.hpp"
#include "channel/zap_authenticator.hpp"
#include "group_coordinator.hpp"

namespace platoon {

namespace {

std::string generate_job_id() {
  std::random_device rd;
  const auto random = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(random));
  return str_cat("u", ::getuid(), "-", ::getpid(), "-", std::string(hex, 8));
}

// Blocks SIGINT and SIGTERM in the calling thread and reads them through a
// signalfd for as long as it lives; restores the previous mask after.
class SignalWatch {
 public:
  explicit SignalWatch(bool enabled) {
    if (!enabled) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
    fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) {
      pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
      throw ResourceError("cannot create a signalfd for SIGINT/SIGTERM");
    }
  }
  ~SignalWatch() {
    if (fd_ >= 0) {
      ::close(fd_);
      pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    }
  }
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  /// The signal received, or 0.
  int read_signal() const {
    signalfd_siginfo info{};
    if (fd_ >= 0 && ::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
      return static_cast<int>(info.ssi_signo);
    return 0;
  }

 private:
  int fd_ = -1;
  sigset_t previous_{};
};

// A request from a worker id the controller does not know.
class NotRegistered : public ProtocolError {
 public:
  using ProtocolError::ProtocolError;
};

// A registration without the job key, or a request in a worker's name
// without that worker's session token.
class Unauthorized : public ProtocolError {
 public:
  using ProtocolError::ProtocolError;
};

}  // namespace

struct Lieutenant::Impl {
  Lieutenant& owner;
  Options options;
  Logger log{"controller"};
  std::string job_id;
  ProcessId self = ProcessId::self();
  zmq::context_t context{1};
  std::unique_ptr<detail::ZapAuthenticator> authenticator;  // before the socket, gone after it
  std::unique_ptr<zmq::socket_t> socket;
  std::optional<SharedSegment> center;  // mapped for checkpoints, once ready
  std::optional<CheckpointSchedule> checkpoints;
  // Interval checkpoints are taken on a thread of their own: waiting for the
  // center's locks (a worker may hold one for long: stopped in a debugger, a
  // long user lock()) and writing a large file must not stop the serving
  // thread, or every worker's heartbeat would go unanswered.
  std::thread checkpoint_thread;
  std::atomic<bool> checkpoint_running{false};
  std::string endpoint;
  std::string remote_endpoint;  // the second control endpoint, as bound
  int port = 0;
  std::atomic<bool> stop_requested{false};
  bool ending = false;
  bool params_ready = false;
  bool keep_segment = false;  // the creator asked to keep the center after the job
  int creator_id = -1;
  int next_worker_id = 0;
  std::map<int, WorkerInfo> workers;
  // Each registered worker's session token: only it can act in its name.
  std::map<int, std::string> tokens;
  std::string job_key;
  std::optional<JobKeyFile> job_key_file;  // written at init_control, removed when serve() ends
  std::unique_ptr<detail::GroupCoordinator> group;
  std::unique_ptr<ParamServer> param_server;  // when Options::param_server_endpoint is set

  Impl(Lieutenant& o, Options opts) : owner(o), options(std::move(opts)) {
    job_id = options.job_id.empty() ? generate_job_id() : options.job_id;
    if (!options.job_key.empty() && !is_job_key(options.job_key))
      throw Error(str_cat("Lieutenant::Options::job_key must be ", 2 * kJobKeyBytes, " lowercase hex digits"));
    job_key = options.job_key.empty() ? random_secret_hex(kJobKeyBytes) : options.job_key;
    if (options.launcher_process.pid == 0)
      if (const char* from_launcher = std::getenv("PLATOON_LAUNCHER_PROCESS")) {
        const std::optional<ProcessId> launcher = ProcessId::parse(from_launcher);
        if (!launcher)
          throw Error(str_cat("PLATOON_LAUNCHER_PROCESS=", from_launcher, " is not 'pid' or 'pid:start_ticks'"));
        options.launcher_process = *launcher;
      }
    // What platoon-launch --remote-workers hands the controller.
    if (options.param_server_endpoint.empty())
      if (const char* from_launcher = std::getenv("PLATOON_PARAM_SERVER")) options.param_server_endpoint = from_launcher;
    if (options.remote_endpoint.empty())
      if (const char* from_launcher = std::getenv("PLATOON_REMOTE_ENDPOINT")) options.remote_endpoint = from_launcher;
    if (!options.curve.enabled())
      if (const char* key_file = std::getenv("PLATOON_CURVE_SERVER_KEYS")) {
        options.curve.server = CurveKeyPair::load(key_file);
        const char* allowed = std::getenv("PLATOON_CURVE_ALLOWED_KEYS");
        for (std::string_view rest = allowed ? allowed : ""; !rest.empty();) {
          const std::size_t comma = std::min(rest.find(','), rest.size());
          if (comma > 0) options.curve.allowed_client_public_keys.emplace_back(rest.substr(0, comma));
          rest.remove_prefix(std::min(comma + 1, rest.size()));
        }
      }
    group = std::make_unique<detail::GroupCoordinator>(
        detail::GroupCoordinator::Settings{job_id, self, options.group_size, options.group_form_timeout}, log);
    if (!options.resume_path.empty()) {
      // Fail now, before any worker joins, if the checkpoint is unusable.
      const Checkpoint checkpoint = load_checkpoint(options.resume_path);
      log.info("job ", job_id, " resumes from ", options.resume_path, " (", checkpoint.layout.entries().size(),
               " parameters, ", checkpoint.values.size(), " values)");
    }
    if (!options.checkpoint_path.empty())
      checkpoints.emplace(options.checkpoint_interval, CheckpointSchedule::Clock::now());
  }

  ~Impl() {
    if (checkpoint_thread.joinable()) checkpoint_thread.join();
    param_server.reset();
    socket.reset();
    authenticator.reset();
    // ZeroMQ leaves a bound ipc:// socket's file behind; it is this job's.
    if (endpoint.starts_with("ipc://")) {
      std::error_code ignored;
      std::filesystem::remove(endpoint.substr(6), ignored);
    }
  }

  // Maps the center for checkpoints (once it is ready); false when it cannot.
  bool map_center() {
    if (center) return true;
    try {
      const SegmentInfo info = SharedSegment::inspect(segment_name());
      if (!info.layout) throw ResourceError(str_cat("cannot read segment ", segment_name(), ": ", info.problem));
      center.emplace(SharedSegment::attach(segment_name(), *info.layout, std::chrono::seconds(5)));
      return true;
    } catch (const std::exception& e) {
      log.error("could not save checkpoint ", options.checkpoint_path, ": ", e.what());
      return false;
    }
  }

  // Copies the center under its locks and writes it to the checkpoint path;
  // errors are logged, the job goes on. Safe on the checkpoint thread: it
  // reads only the mapped center and settings fixed before serve().
  void write_checkpoint(const std::string& why) const {
    try {
      std::vector<float> values;
      {
        SegmentLock held = center->lock_all(std::chrono::seconds(30), log);
        values.assign(center->values().begin(), center->values().end());
      }
      save_checkpoint(options.checkpoint_path, center->layout(), values,
                      {{"job_id", job_id}, {"saved_at", utc_timestamp()}, {"reason", why}});
      log.info("saved checkpoint ", options.checkpoint_path, " (", why, ")");
    } catch (const std::exception& e) {
      log.error("could not save checkpoint ", options.checkpoint_path, ": ", e.what());
    }
  }

  // An interval checkpoint, on the checkpoint thread (one at a time).
  void start_checkpoint(CheckpointSchedule::Clock::time_point now) {
    if (!checkpoints || !params_ready || checkpoint_running.load() || !map_center()) return;
    checkpoints->mark_saved(now);  // the interval counts from the start of this one
    if (checkpoint_thread.joinable()) checkpoint_thread.join();  // the previous one has ended
    checkpoint_running.store(true);
    checkpoint_thread = start_thread_without_signals([this] {
      write_checkpoint("interval");
      checkpoint_running.store(false);
    });
  }

  // The final checkpoint, on the calling thread, after any running one.
  void finish_checkpoints() {
    if (checkpoint_thread.joinable()) checkpoint_thread.join();
    if (!checkpoints || !params_ready || !map_center()) return;
    write_checkpoint("end of job");
  }

  std::string segment_name() const { return SharedSegment::name_for_job(job_id); }

  // Removes this job's other shared-memory objects (group segments, the
  // workers' slots, shared data): "<segment name>.<anything>". Workers remove
  // their own; this catches those of workers that died.
  void remove_companions() const {
    const std::string prefix = segment_name() + ".";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
      const std::string file = entry.path().filename().string();
      if (file.starts_with(prefix) && ShmObject::remove(file)) log.info("removed shared-memory object ", file);
    }
  }

  nlohmann::json status() const {
    nlohmann::json ids = nlohmann::json::array();
    for (const auto& [id, w] : workers) ids.push_back(id);
    return {{"job_id", job_id},       {"segment", segment_name()}, {"params_ready", params_ready},
            {"ending", ending},       {"workers", ids},            {"controller_pid", self.pid},
            {"group", {{"epoch", group->epoch()}, {"members", group->members()}}},
            {"remote_endpoint", remote_endpoint},
            {"param_server", param_server ? param_server->endpoint() : std::string()},
            // Workers may start once the center exists, or once a synchronous group has begun.
            {"workers_may_join", params_ready || group->started()}};
  }

  WorkerInfo& registered(const protocol::Request& r) {
    if (r.worker_id.is_null())
      throw ProtocolError("request lacks 'worker_id' (only platoon-status may be sent without one)");
    if (!r.worker_id.is_number_integer())
      throw ProtocolError(str_cat("worker_id ", protocol::quote(r.worker_id), " is not a registered worker id"));
    const int id = json_integer<int>(r.worker_id);
    auto it = workers.find(id);
    if (it == workers.end())
      throw NotRegistered(str_cat("worker ", id, " is not registered in job ", job_id,
                                  " (it never registered, left, or was dropped as lost)"));
    // Checked before anything is believed of the request, its sign of life included.
    if (!secrets_equal(r.token, tokens.at(id)))
      throw Unauthorized(str_cat("a request in the name of ", it->second.label(),
                                 r.token.empty() ? " carries no session token" : " carries a wrong session token",
                                 ": refused (only the process that registered as that worker holds it)"));
    it->second.last_seen = std::chrono::steady_clock::now();  // any message shows it is alive
    return it->second;
  }

  // Removes a worker that left or was lost, and its token.
  void forget(int id) {
    workers.erase(id);
    tokens.erase(id);
    if (param_server) param_server->dismiss(id);
  }

  nlohmann::json register_worker(const protocol::Request& r) {
    const nlohmann::json& info = r.req_info;
    const nlohmann::json shown = info.is_object() ? info.value("job_key", nlohmann::json()) : nlohmann::json();
    if (!shown.is_string())
      throw Unauthorized(str_cat("platoon-register needs the job key (req_info \"job_key\"); a worker of this "
                                 "user finds it in ",
                                 job_key_file ? job_key_file->path().string() : "the file the controller wrote",
                                 ", or is given it (PLATOON_JOB_KEY)"));
    if (!secrets_equal(shown.get_ref<const std::string&>(), job_key))
      throw Unauthorized("platoon-register: wrong job key");
    if (ending) throw JobOverError(str_cat("job ", job_id, " is ending; no new worker may join"));
    const std::string here = host_name();
    WorkerInfo w;
    try {
      w.process.pid = json_integer<std::int64_t>(info.at("pid"));
      w.process.start_ticks = json_integer_or<std::uint64_t>(info, "start_ticks", 0);
      w.host = info.at("host").get<std::string>();
      w.name = info.value("name", "");
    } catch (const nlohmann::json::exception& e) {
      throw ProtocolError(str_cat("platoon-register req_info is malformed: ", e.what()));
    }
    if (const std::string why = protocol::worker_name_problem(w.name); !why.empty())
      throw ProtocolError(str_cat("platoon-register: worker name ", protocol::quote(w.name), " ", why));
    w.id = next_worker_id++;
    w.last_seen = std::chrono::steady_clock::now();
    // The first worker to arrive while nobody is creating the center creates
    // it. A creator that died is replaced at once, without waiting for the
    // next liveness check (a restarted first worker must not wait for itself).
    if (!params_ready && creator_id >= 0 && workers.contains(creator_id)) {
      const WorkerInfo& creator = workers.at(creator_id);
      if (creator.host == here && !creator.process.alive()) {
        const WorkerInfo gone = creator;
        forget(creator_id);
        owner.on_worker_lost(gone, str_cat("its process ", gone.process.pid, " is gone"));
      }
    }
    if (!params_ready && (creator_id < 0 || !workers.contains(creator_id))) {
      creator_id = w.id;
      w.creator = true;
    }
    workers[w.id] = w;
    tokens[w.id] = random_secret_hex(protocol::kTokenBytes);
    if (param_server) param_server->admit(w.id, tokens.at(w.id));
    log.info(w.label(), " joined (pid ", w.process.pid, " on ", w.host, w.creator ? ", creates the center" : "",
             ")");
    owner.on_worker_joined(w);
    nlohmann::json reply = {{"worker_id", w.id},
            {"token", tokens.at(w.id)},
            {"job_id", job_id},
            {"first", w.creator},
            {"segment", segment_name()},
            {"params_ready", params_ready},
            {"controller", {{"pid", self.pid}, {"start_ticks", self.start_ticks}}}};
    if (w.creator && !options.resume_path.empty()) reply["resume_from"] = options.resume_path;
    if (param_server) reply["param_server"] = param_server->endpoint();
    return reply;
  }

  nlohmann::json framework_request(const std::string& name, const protocol::Request& r) {
    if (name == protocol::kStatus) return status();
    if (name == protocol::kRegister) return register_worker(r);
    if (name != protocol::kHeartbeat && name != protocol::kParamsReady && name != protocol::kDone &&
        name != protocol::kGroupJoin && name != protocol::kGroupRequest)
      throw ProtocolError(str_cat("unknown framework request '", name, "'"));
    WorkerInfo& w = registered(r);
    if (name == protocol::kHeartbeat) return {{"ending", ending}};
    if (name == protocol::kGroupJoin) return group->join(w, r.req_info, ending, std::chrono::steady_clock::now());
    if (name == protocol::kGroupRequest) {
      if (auto regroup = group->check_request(w, r.req_info)) return *regroup;
      if (!r.req_info.contains("req")) throw ProtocolError("platoon-group-request needs req_info {epoch, req, req_info}");
      const nlohmann::json& inner = r.req_info.at("req");
      if (inner.is_string() && inner.get<std::string>().starts_with(protocol::kFrameworkPrefix))
        throw ProtocolError("platoon-group-request cannot carry a framework request");
      return {{"reply", owner.handle_control(inner, w, r.req_info.value("req_info", nlohmann::json()))}};
    }
    if (name == protocol::kParamsReady) {
      if (!w.creator) throw ProtocolError(str_cat(w.label(), " was not asked to create the center"));
      // The center must be where this host's shared-memory workers and the
      // parameter server find it: a creator on another host (or with a
      // /dev/shm of its own) made it where nobody else can see it.
      if (const SegmentInfo info = SharedSegment::inspect(segment_name()); !info.ready)
        throw ProtocolError(str_cat(w.label(), " reports the center ready, but segment ", segment_name(),
                                    " is not ready in the shared memory of the controller's host ", host_name(), " (",
                                    info.problem.empty() ? "not initialized" : info.problem,
                                    "): the first worker must run on the controller's host"));
      params_ready = true;
      if (r.req_info.is_object()) keep_segment = r.req_info.value("keep_segment", false);
      log.info("central parameters are ready (created by ", w.label(), ")");
      return {{"params_ready", true}};
    }
    if (name == protocol::kDone) {
      const WorkerInfo left = w;
      forget(left.id);
      group->worker_gone(left.id, std::chrono::steady_clock::now());
      log.info(left.label(), " is done");
      owner.on_worker_left(left);
      return {{"job_over", ending}};
    }
    PLATOON_ENFORCE(false, "framework request not dispatched: " + name);
  }

  nlohmann::json answer(std::string_view frame) {
    protocol::Request r;
    try {
      r = protocol::parse_request(frame, options.max_message_bytes);
    } catch (const ProtocolError& e) {
      return protocol::error_reply("bad-request", e.what());
    }
    try {
      if (std::string name = r.framework_name(); !name.empty()) return framework_request(name, r);
      WorkerInfo& w = registered(r);
      return owner.handle_control(r.req, w, r.req_info);
    } catch (const NotRegistered& e) {
      return protocol::error_reply("not-registered", e.what());
    } catch (const Unauthorized& e) {
      return protocol::error_reply("unauthorized", e.what());
    } catch (const JobOverError& e) {
      return protocol::error_reply("job-over", e.what());
    } catch (const LayoutError& e) {
      return protocol::error_reply("layout-mismatch", e.what());
    } catch (const ProtocolError& e) {
      return protocol::error_reply("bad-request", e.what());
    } catch (const std::exception& e) {
      log.error("handle_control failed for request ", protocol::quote(r.req), ": ", e.what());
      return protocol::error_reply("handler-error", e.what());
    }
  }

  void check_workers() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<int, std::string>> lost;
    const std::string here = host_name();
    for (const auto& [id, w] : workers) {
      const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - w.last_seen);
      if (w.host == here && !w.process.alive())
        lost.emplace_back(id, str_cat("its process ", w.process.pid, " is gone"));
      else if (silent > options.worker_timeout)
        lost.emplace_back(id, str_cat("silent for ", silent.count(), " ms (limit ", options.worker_timeout.count(),
                                      " ms)"));
    }
    for (const auto& [id, reason] : lost) {
      const WorkerInfo w = workers.at(id);
      forget(id);
      if (w.creator && !params_ready) creator_id = -1;  // let the next worker create the center
      group->worker_gone(id, now);
      owner.on_worker_lost(w, reason);
    }
    group->poll(now);
  }

  void receive_one() {
    std::vector<zmq::message_t> parts = detail::receive_parts_now(*socket);
    // REQ peers send [routing id][empty][payload]; anything else is dropped,
    // since there is no well-formed way to answer it.
    if (parts.size() != 3 || parts[1].size() != 0) {
      log.warn("dropped a malformed message of ", parts.size(), " frames");
      return;
    }
    const std::string reply = owner.handle_frame(parts[2].to_string_view());
    // The reply goes only to the socket that asked (its routing id).
    try {
      zmq::message_t empty, body(reply.data(), reply.size());
      detail::send_now(*socket, parts[0], zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      detail::send_now(*socket, empty, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      detail::send_now(*socket, body, zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      log.warn("could not reply to a worker that has gone away: ", e.what());
    }
  }
};

Lieutenant::Lieutenant() : Lieutenant(Options{}) {}
Lieutenant::Lieutenant(Options options) : impl_(std::make_unique<Impl>(*this, std::move(options))) {}
Lieutenant::~Lieutenant() = default;

void Lieutenant::init_control(int port) { init_control(str_cat("tcp://127.0.0.1:", port == 0 ? "*" : std::to_string(port))); }

void Lieutenant::init_control(const std::string& endpoint) {
  if (impl_->socket) throw Error(str_cat("init_control called twice (bound to ", impl_->endpoint, ")"));
  const CurveServerKeys& curve = impl_->options.curve;
  for (const std::string& e : {endpoint, impl_->options.remote_endpoint})
    if (!e.empty() && !is_loopback_endpoint(e) && !curve.enabled())
      throw Error(str_cat("refusing to bind the control endpoint '", e,
                          "' without CURVE keys: only loopback addresses may be used without encryption "
                          "(set Lieutenant::Options::curve)"));
  if (impl_->options.reclaim_dead_segments) SharedSegment::reclaim_dead(impl_->log);
  if (curve.enabled() && curve.allowed_client_public_keys.empty())
    throw Error("CURVE is enabled but no worker key is allowed (CurveServerKeys::allowed_client_public_keys)");
  // Only workers holding an allowed key get in; the handler must exist before the bind.
  if (curve.enabled())
    impl_->authenticator = std::make_unique<detail::ZapAuthenticator>(impl_->context, curve.allowed_client_public_keys);
  auto socket = std::make_unique<zmq::socket_t>(impl_->context, zmq::socket_type::router);
  socket->set(zmq::sockopt::linger, 0);
  socket->set(zmq::sockopt::router_mandatory, 1);
  // A frame over the limit is refused as it arrives (the peer is
  // disconnected), never received whole first: no sender can make the
  // controller hold more than the limit per connection.
  socket->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(impl_->options.max_message_bytes));
  if (curve.enabled()) {
    socket->set(zmq::sockopt::zap_domain, "platoon");
    socket->set(zmq::sockopt::curve_server, 1);
    socket->set(zmq::sockopt::curve_secretkey, curve.server.secret_key);
  }
  try {
    socket->bind(endpoint);
  } catch (const zmq::error_t& e) {
    throw ResourceError(str_cat("cannot bind the control endpoint '", endpoint, "': ", e.what()));
  }
  impl_->endpoint = socket->get(zmq::sockopt::last_endpoint);
  if (const std::string& remote = impl_->options.remote_endpoint; !remote.empty()) {
    try {
      socket->bind(remote);
    } catch (const zmq::error_t& e) {
      throw ResourceError(str_cat("cannot bind the remote control endpoint '", remote, "': ", e.what()));
    }
    impl_->remote_endpoint = socket->get(zmq::sockopt::last_endpoint);
  }
  if (auto colon = impl_->endpoint.rfind(':'); colon != std::string::npos)
    impl_->port = std::atoi(impl_->endpoint.c_str() + colon + 1);
  impl_->socket = std::move(socket);
  if (impl_->options.write_job_key_file) {
    impl_->job_key_file.emplace(impl_->endpoint, impl_->job_key);
  } else {
    // This job holds the endpoint now, so a key file for it is an earlier
    // job's, left by a controller that was killed: its workers would read
    // that key and be refused with "wrong job key".
    const std::filesystem::path stale = job_key_path(impl_->endpoint);
    std::error_code error;
    if (std::filesystem::remove(stale, error))
      impl_->log.warn("removed ", stale.string(), ", the job key of an earlier job at ", impl_->endpoint);
  }
  impl_->log.info("job ", impl_->job_id, " listening on ", impl_->endpoint,
                  impl_->remote_endpoint.empty() ? "" : str_cat(" and ", impl_->remote_endpoint, " (CURVE)"),
                  impl_->job_key_file ? str_cat(" (job key in ", impl_->job_key_file->path().string(), ")") : "");
  if (!impl_->options.param_server_endpoint.empty()) {
    ParamServer::Options server;
    server.endpoint = impl_->options.param_server_endpoint;
    server.segment_name = impl_->segment_name();
    server.curve = curve;
    server.threads = impl_->options.param_server_threads;
    impl_->param_server = std::make_unique<ParamServer>(std::move(server), impl_->log);
  }
}

const std::string& Lieutenant::remote_endpoint() const { return impl_->remote_endpoint; }

std::string Lieutenant::param_server_endpoint() const {
  return impl_->param_server ? impl_->param_server->endpoint() : std::string();
}

const std::string& Lieutenant::endpoint() const { return impl_->endpoint; }
int Lieutenant::port() const { return impl_->port; }
const std::string& Lieutenant::job_id() const { return impl_->job_id; }
const std::string& Lieutenant::job_key() const { return impl_->job_key; }
std::string Lieutenant::job_key_file() const {
  return impl_->job_key_file ? impl_->job_key_file->path().string() : std::string();
}
void Lieutenant::stop() noexcept { impl_->stop_requested.store(true); }
void Lieutenant::end_job() {
  if (!impl_->ending) impl_->log.info("job is ending: waiting for ", impl_->workers.size(), " worker(s) to leave");
  impl_->ending = true;
}
bool Lieutenant::job_ending() const { return impl_->ending; }
bool Lieutenant::params_ready() const { return impl_->params_ready; }
const Logger& Lieutenant::log() const { return impl_->log; }

std::int64_t Lieutenant::group_epoch() const { return impl_->group->epoch(); }
std::vector<int> Lieutenant::group_members() const { return impl_->group->members(); }

std::vector<WorkerInfo> Lieutenant::workers() const {
  std::vector<WorkerInfo> out;
  for (const auto& [id, w] : impl_->workers) out.push_back(w);
  return out;
}

std::string Lieutenant::handle_frame(std::string_view frame) {
  // Error messages may quote the offending bytes: replace invalid UTF-8
  // rather than fail to answer.
  constexpr auto replace = nlohmann::json::error_handler_t::replace;
  try {
    return impl_->answer(frame).dump(-1, ' ', false, replace);
  } catch (const std::exception& e) {
    return protocol::error_reply("internal-error", e.what()).dump(-1, ' ', false, replace);
  }
}

void Lieutenant::on_worker_joined(const WorkerInfo&) {}
void Lieutenant::on_worker_left(const WorkerInfo&) {}
void Lieutenant::on_worker_lost(const WorkerInfo& worker, const std::string& reason) {
  impl_->log.warn(worker.label(), " (pid ", worker.process.pid, ") was lost: ", reason);
}

void Lieutenant::on_tick() {}

void Lieutenant::serve() {
  if (!impl_->socket) throw Error("serve() called before init_control()");
  SignalWatch signals(impl_->options.handle_signals);
  zmq::pollitem_t items[2] = {{impl_->socket->handle(), 0, ZMQ_POLLIN, 0}, {nullptr, signals.fd(), POLLIN, 0}};
  const int n_items = signals.fd() >= 0 ? 2 : 1;
  auto next_check = std::chrono::steady_clock::now();
  while (true) {
    if (impl_->stop_requested.load()) {
      impl_->log.info("stop requested");
      break;
    }
    if (impl_->ending && impl_->workers.empty()) {
      impl_->log.info("every worker has left: job ", impl_->job_id, " is over");
      break;
    }
    detail::poll_for(items, n_items, impl_->options.tick);
    if (n_items == 2 && (items[1].revents & POLLIN)) {
      const int signo = signals.read_signal();
      impl_->log.info("received ", signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal",
                      ": stopping");
      break;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      // Drain what has arrived, a bounded number per wake-up.
      for (int i = 0; i < 256 && detail::has_message(*impl_->socket); ++i) impl_->receive_one();
    }
    if (const auto now = std::chrono::steady_clock::now(); now >= next_check) {
      if (const ProcessId& launcher = impl_->options.launcher_process; launcher.pid != 0 && !launcher.alive()) {
        // Nobody reads our stderr any more, even if the pipe is not closed yet.
        impl_->log.stream_gone();
        impl_->log.error("the launcher of this job (pid ", launcher.pid, ") is gone: stopping as on SIGTERM");
        break;
      }
      impl_->check_workers();
      on_tick();
      if (impl_->checkpoints && impl_->checkpoints->due(now)) impl_->start_checkpoint(now);
      next_check = now + impl_->options.tick;
    }
  }
  impl_->finish_checkpoints();
  impl_->job_key_file.reset();  // no worker may join any more
  impl_->center.reset();
  impl_->param_server.reset();  // no remote sync after the segment is gone
  impl_->group->end();
  impl_->remove_companions();
  if (impl_->keep_segment)
    impl_->log.info("keeping shared-memory segment ", impl_->segment_name(), " as its creator asked");
  else if (SharedSegment::remove(impl_->segment_name()))
    impl_->log.info("removed shared-memory segment ", impl_->segment_name());
}

}  // namespace platoon
