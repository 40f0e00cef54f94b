#include "platoon/remote/param_server.hpp"

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "../channel/poll.hpp"
#include "../channel/zap_authenticator.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/secret.hpp"
#include "platoon/common/thread.hpp"
#include "platoon/remote/wire.hpp"
#include "platoon/shm/shared_segment.hpp"

namespace platoon {

namespace {

// Frames queued per socket of the server: 16 workers' windows of 4.
constexpr int kQueuedFrames = 64;

// A refusal: the reply's status and the reason sent with it.
struct Refusal {
  wire::Status status;
  std::string reason;
};

}  // namespace

struct ParamServer::Impl {
  Options options;
  const Logger& log;
  zmq::context_t context{1};
  std::unique_ptr<detail::ZapAuthenticator> authenticator;  // before the socket, gone after it
  std::string endpoint;
  std::string backend_endpoint;
  std::string control_endpoint;
  std::unique_ptr<zmq::socket_t> frontend, backend, control;  // owned by the proxy thread once it runs
  std::unique_ptr<zmq::socket_t> control_peer;                // the destructor's end of `control`
  std::thread proxy;
  std::vector<std::thread> appliers;
  std::atomic<bool> stop{false};

  std::mutex tokens_mutex;
  std::map<std::uint32_t, std::string> tokens;

  std::mutex segment_mutex;
  std::optional<SharedSegment> segment;

  std::atomic<std::size_t> refused{0};
  std::atomic<std::size_t> applied{0};

  Impl(Options opts, const Logger& l) : options(std::move(opts)), log(l) {}

  // The segment, mapped at the first request after it exists; null before.
  const SharedSegment* center() {
    std::lock_guard lock(segment_mutex);
    if (segment) return &*segment;
    const SegmentInfo info = SharedSegment::inspect(options.segment_name);
    if (!info.layout || !info.ready) return nullptr;
    segment.emplace(SharedSegment::attach(options.segment_name, *info.layout, std::chrono::seconds(1)));
    const std::size_t chunk_bytes = segment->chunk_elements() * sizeof(float);
    if (chunk_bytes > options.max_frame_bytes)
      log.error("the center's chunks (", chunk_bytes, " bytes) exceed ParamServer::Options::max_frame_bytes (",
                options.max_frame_bytes, "): remote syncs will be refused");
    return &*segment;
  }

  bool authorized(const wire::RequestHeader& h) {
    std::lock_guard lock(tokens_mutex);
    const auto it = tokens.find(h.worker_id);
    return it != tokens.end() && secrets_equal(h.token, it->second);
  }

  void note_refusal(const Refusal& r) {
    // A misbehaving peer must not flood the log: the first few, then a count.
    const std::size_t n = ++refused;
    if (n <= 20 || n % 1000 == 0)
      log.warn("parameter server refused a frame (", wire::status_name(r.status), ", ", n, " so far): ", r.reason);
  }

  static void check_chunk(const SharedSegment& s, const wire::RequestHeader& h) {
    if (h.chunk >= s.num_chunks())
      throw Refusal{wire::Status::bad_request,
                    str_cat("chunk ", h.chunk, " does not exist (the center has ", s.num_chunks(), ")")};
  }

  // Answers one request into `answer`; throws Refusal.
  void serve_one(const wire::RequestHeader& h, zmq::message_t& payload, zmq::message_t& answer) {
    if (!authorized(h))
      throw Refusal{wire::Status::unauthorized,
                    str_cat("worker ", h.worker_id, " is not registered in this job or shows a wrong session token")};
    const SharedSegment* s = center();
    if (!s) throw Refusal{wire::Status::not_ready, "the central parameters do not exist yet"};
    switch (h.op) {
      case wire::Op::hello: {
        Layout theirs;
        try {
          theirs = Layout::from_json(nlohmann::json::parse(payload.to_string_view()));
        } catch (const std::exception& e) {
          throw Refusal{wire::Status::bad_request, str_cat("hello: the layout is malformed: ", e.what())};
        }
        try {
          s->layout().require_same(theirs, "the center", "this worker");
        } catch (const LayoutError& e) {
          throw Refusal{wire::Status::layout_mismatch, e.what()};
        }
        if (const std::size_t bytes = s->chunk_elements() * sizeof(float); bytes > options.max_frame_bytes)
          throw Refusal{wire::Status::bad_request,
                        str_cat("the center's chunks have ", bytes, " bytes, over this server's frame limit of ",
                                options.max_frame_bytes, " (ParamServer::Options::max_frame_bytes)")};
        const std::string info = nlohmann::json{{"chunk_elements", s->chunk_elements()},
                                                {"num_chunks", s->num_chunks()},
                                                {"total_size", s->layout().total_size()}}
                                     .dump();
        answer.rebuild(info.data(), info.size());
        return;
      }
      case wire::Op::pull: {
        check_chunk(*s, h);
        if (payload.size() != 0) throw Refusal{wire::Status::bad_request, "pull: the payload must be empty"};
        const std::span<float> chunk = s->chunk(h.chunk);
        answer.rebuild(chunk.size_bytes());
        SegmentLock held = lock_or_busy(*s, h.chunk);
        std::memcpy(answer.data(), chunk.data(), chunk.size_bytes());
        return;
      }
      case wire::Op::sync: {
        check_chunk(*s, h);
        const std::span<float> chunk = s->chunk(h.chunk);
        if (payload.size() != chunk.size_bytes())
          throw Refusal{wire::Status::bad_request, str_cat("sync of chunk ", h.chunk, ": ", payload.size(),
                                                           " bytes, the chunk has ", chunk.size_bytes())};
        if (const std::string why = h.update.problem(); !why.empty())
          throw Refusal{wire::Status::bad_request, str_cat("sync of chunk ", h.chunk, ": ", why)};
        // The answer is computed in place, in the received frame when its
        // bytes are aligned for floats, else in a copy.
        if (reinterpret_cast<std::uintptr_t>(payload.data()) % alignof(float) == 0) {
          answer.move(payload);
        } else {
          answer.rebuild(payload.data(), payload.size());
        }
        const std::span<float> pushed(static_cast<float*>(answer.data()), chunk.size());
        SegmentLock held = lock_or_busy(*s, h.chunk);
        h.update.apply(pushed, chunk);
        held.release();
        ++applied;
        return;
      }
    }
    throw Refusal{wire::Status::bad_request, "unknown op"};
  }

  SegmentLock lock_or_busy(const SharedSegment& s, std::uint32_t chunk) {
    try {
      return s.lock_chunk(chunk, options.lock_timeout, log);
    } catch (const TimeoutError& e) {
      throw Refusal{wire::Status::busy, e.what()};
    }
  }

  // Answers one request's frames (header, payload) into `answer`: the
  // reply's status, and `h` as far as it was read.
  wire::Status answer_parts(std::vector<zmq::message_t>& parts, wire::RequestHeader& h, zmq::message_t& answer) {
    try {
      std::string problem;
      if (parts.size() != 2)
        throw Refusal{wire::Status::bad_request,
                      str_cat("a request has 2 frames (header, payload), this one ", parts.size())};
      if (!wire::decode(parts[0].data(), parts[0].size(), h, problem)) throw Refusal{wire::Status::bad_request, problem};
      serve_one(h, parts[1], answer);
      return wire::Status::ok;
    } catch (const Refusal& r) {
      note_refusal(r);
      answer.rebuild(r.reason.data(), r.reason.size());
      return r.status;
    } catch (const std::exception& e) {
      const std::string reason = str_cat("the server failed: ", e.what());
      log.error("parameter server: ", reason);
      answer.rebuild(reason.data(), reason.size());
      return wire::Status::bad_request;
    }
  }

  // One applier thread: a REP socket behind the proxy, so each request's
  // envelope finds its way back to the worker that sent it.
  void apply_loop() {
    zmq::socket_t rep(context, zmq::socket_type::rep);
    rep.set(zmq::sockopt::linger, 0);
    rep.connect(backend_endpoint);
    zmq::pollitem_t item{rep.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop.load()) {
      if (detail::poll_for(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
      std::vector<zmq::message_t> parts = detail::receive_parts_now(rep);
      if (parts.empty()) continue;
      wire::RequestHeader h;
      zmq::message_t answer;
      const wire::Status status = answer_parts(parts, h, answer);
      const std::string header = wire::encode(wire::ReplyHeader{status, h.chunk, h.sequence});
      zmq::message_t header_message(header.data(), header.size());
      try {
        detail::send_now(rep, header_message, zmq::send_flags::sndmore);
        detail::send_now(rep, answer, zmq::send_flags::none);
      } catch (const zmq::error_t& e) {
        if (stop.load()) return;
        log.warn("parameter server could not answer: ", e.what());
      }
    }
  }

  void proxy_loop() {
    while (true) {
      try {
        zmq::proxy_steerable(*frontend, *backend, zmq::socket_ref(), *control);
        return;  // TERMINATE
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        if (e.num() != ETERM) log.error("parameter server stopped: ", e.what());
        return;
      }
    }
  }
};

ParamServer::ParamServer(Options options, const Logger& log) : impl_(std::make_unique<Impl>(std::move(options), log)) {
  Impl& m = *impl_;
  const CurveServerKeys& curve = m.options.curve;
  if (m.options.endpoint.empty()) throw Error("ParamServer::Options::endpoint is empty");
  if (m.options.segment_name.empty()) throw Error("ParamServer::Options::segment_name is empty");
  if (!is_loopback_endpoint(m.options.endpoint) && !curve.enabled())
    throw Error(str_cat("refusing to bind the parameter server to '", m.options.endpoint,
                        "' without CURVE keys: only loopback addresses may be used without encryption "
                        "(set the controller's CURVE keys)"));
  if (curve.enabled() && curve.allowed_client_public_keys.empty())
    throw Error("CURVE is enabled but no worker key is allowed (CurveServerKeys::allowed_client_public_keys)");
  if (curve.enabled())
    m.authenticator = std::make_unique<detail::ZapAuthenticator>(m.context, curve.allowed_client_public_keys);
  m.frontend = std::make_unique<zmq::socket_t>(m.context, zmq::socket_type::router);
  m.frontend->set(zmq::sockopt::linger, 0);
  m.frontend->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(m.options.max_frame_bytes));
  // Queues hold every worker's window of chunks, and no more: frames are
  // received before their token is checked, so what one peer can make the
  // server hold is bounded by these and max_frame_bytes (past them, TCP
  // pushes back).
  m.frontend->set(zmq::sockopt::rcvhwm, kQueuedFrames);
  m.frontend->set(zmq::sockopt::sndhwm, kQueuedFrames);
  if (curve.enabled()) {
    m.frontend->set(zmq::sockopt::zap_domain, "platoon");
    m.frontend->set(zmq::sockopt::curve_server, 1);
    m.frontend->set(zmq::sockopt::curve_secretkey, curve.server.secret_key);
  }
  try {
    m.frontend->bind(m.options.endpoint);
  } catch (const zmq::error_t& e) {
    throw ResourceError(str_cat("cannot bind the parameter server to '", m.options.endpoint, "': ", e.what()));
  }
  m.endpoint = m.frontend->get(zmq::sockopt::last_endpoint);
  const std::string tag = str_cat(reinterpret_cast<std::uintptr_t>(this));
  m.backend_endpoint = "inproc://param-server-appliers-" + tag;
  m.control_endpoint = "inproc://param-server-control-" + tag;
  m.backend = std::make_unique<zmq::socket_t>(m.context, zmq::socket_type::dealer);
  m.backend->set(zmq::sockopt::linger, 0);
  m.backend->set(zmq::sockopt::rcvhwm, kQueuedFrames);
  m.backend->set(zmq::sockopt::sndhwm, kQueuedFrames);
  m.backend->bind(m.backend_endpoint);
  m.control = std::make_unique<zmq::socket_t>(m.context, zmq::socket_type::pair);
  m.control->bind(m.control_endpoint);
  m.control_peer = std::make_unique<zmq::socket_t>(m.context, zmq::socket_type::pair);
  m.control_peer->connect(m.control_endpoint);
  const std::size_t threads = std::max<std::size_t>(1, m.options.threads);
  for (std::size_t i = 0; i < threads; ++i) m.appliers.push_back(start_thread_without_signals([&m] { m.apply_loop(); }));
  m.proxy = start_thread_without_signals([&m] { m.proxy_loop(); });
  log.info("parameter server listening on ", m.endpoint, curve.enabled() ? " (CURVE)" : "", ", ", threads,
           " thread(s)");
}

ParamServer::~ParamServer() {
  Impl& m = *impl_;
  try {
    zmq::message_t terminate("TERMINATE", 9);
    m.control_peer->send(terminate, zmq::send_flags::none);
  } catch (const zmq::error_t&) {
  }
  if (m.proxy.joinable()) m.proxy.join();
  m.stop.store(true);
  for (std::thread& t : m.appliers) t.join();
  m.frontend.reset();
  m.backend.reset();
  m.control.reset();
  m.control_peer.reset();
  m.authenticator.reset();
}

const std::string& ParamServer::endpoint() const { return impl_->endpoint; }

void ParamServer::admit(int worker_id, const std::string& token) {
  std::lock_guard lock(impl_->tokens_mutex);
  impl_->tokens[static_cast<std::uint32_t>(worker_id)] = token;
}

void ParamServer::dismiss(int worker_id) {
  std::lock_guard lock(impl_->tokens_mutex);
  impl_->tokens.erase(static_cast<std::uint32_t>(worker_id));
}

std::pair<wire::ReplyHeader, std::string> ParamServer::handle_request(std::string_view header, std::string_view payload) {
  std::vector<zmq::message_t> parts;
  parts.emplace_back(header.data(), header.size());
  parts.emplace_back(payload.data(), payload.size());
  wire::RequestHeader h;
  zmq::message_t answer;
  const wire::Status status = impl_->answer_parts(parts, h, answer);
  return {wire::ReplyHeader{status, h.chunk, h.sequence}, answer.to_string()};
}

std::size_t ParamServer::refused() const { return impl_->refused.load(); }
std::size_t ParamServer::chunks_applied() const { return impl_->applied.load(); }

}  // namespace platoon
