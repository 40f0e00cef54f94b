#include "platoon/remote/remote_center.hpp"

#include <cstring>
#include <map>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "../channel/poll.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/common/log.hpp"
#include "platoon/remote/wire.hpp"

namespace platoon {

namespace {

std::string kind_of(wire::Status status) {
  switch (status) {
    case wire::Status::ok: return "ok";
    case wire::Status::bad_request: return "bad-request";
    case wire::Status::unauthorized: return "unauthorized";
    case wire::Status::layout_mismatch: return "layout-mismatch";
    case wire::Status::not_ready: return "not-ready";
    case wire::Status::busy: return "busy";
  }
  return "unknown";
}

}  // namespace

struct RemoteCenter::Impl {
  Options options;
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::dealer};
  std::uint64_t next_sequence = 1;
  std::size_t chunk_elements = 0;
  std::size_t num_chunks = 0;
  std::size_t total_size = 0;
  std::vector<float> scratch;  // an answer whose bytes are not aligned for floats

  explicit Impl(Options o) : options(std::move(o)) {
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::rcvhwm, 10000);
    socket.set(zmq::sockopt::sndhwm, 10000);
    if (options.curve.enabled()) {
      socket.set(zmq::sockopt::curve_serverkey, options.curve.server_public_key);
      socket.set(zmq::sockopt::curve_publickey, options.curve.client.public_key);
      socket.set(zmq::sockopt::curve_secretkey, options.curve.client.secret_key);
    }
    try {
      socket.connect(options.endpoint);
    } catch (const zmq::error_t& e) {
      throw Error(str_cat("cannot connect to the parameter server '", options.endpoint, "': ", e.what()));
    }
  }

  std::size_t chunk_size(std::size_t c) const { return std::min(chunk_elements, total_size - c * chunk_elements); }

  wire::RequestHeader header(wire::Op op, std::size_t chunk) {
    wire::RequestHeader h;
    h.op = op;
    h.worker_id = static_cast<std::uint32_t>(options.worker_id);
    h.sequence = next_sequence++;
    h.chunk = static_cast<std::uint32_t>(chunk);
    h.token = options.token;
    return h;
  }

  void send(const wire::RequestHeader& h, zmq::message_t& payload) {
    const std::string bytes = wire::encode(h);
    zmq::message_t empty, header_message(bytes.data(), bytes.size());
    detail::send_now(socket, empty, zmq::send_flags::sndmore);
    detail::send_now(socket, header_message, zmq::send_flags::sndmore);
    detail::send_now(socket, payload, zmq::send_flags::none);
  }

  // The next answer: its header and payload. Throws TimeoutError after
  // options.timeout, ProtocolError for a malformed one.
  wire::ReplyHeader receive(zmq::message_t& payload, const char* what) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (detail::poll_for(&item, 1, options.timeout) == 0)
      throw TimeoutError(str_cat("the parameter server at ", options.endpoint, " did not answer ", what, " within ",
                                 options.timeout.count(), " ms"));
    std::vector<zmq::message_t> parts = detail::receive_parts_now(socket);
    wire::ReplyHeader h;
    std::string problem;
    if (parts.size() != 3 || parts[0].size() != 0)
      throw ProtocolError(str_cat("the parameter server at ", options.endpoint, " sent a reply of ", parts.size(),
                                  " frames (expected 3)"));
    if (!wire::decode(parts[1].data(), parts[1].size(), h, problem))
      throw ProtocolError(str_cat("the parameter server at ", options.endpoint, " sent a malformed reply: ", problem));
    payload = std::move(parts[2]);
    return h;
  }

  [[noreturn]] void refused(const wire::ReplyHeader& h, const zmq::message_t& payload, const std::string& what) {
    const std::string text = str_cat("the parameter server at ", options.endpoint, " refused ", what, ": ",
                                     payload.to_string_view());
    if (h.status == wire::Status::layout_mismatch) throw LayoutError(text);
    throw ErrorReply(kind_of(h.status), text);
  }

  std::span<const float> floats(const zmq::message_t& payload) {
    if (reinterpret_cast<std::uintptr_t>(payload.data()) % alignof(float) == 0)
      return {static_cast<const float*>(payload.data()), payload.size() / sizeof(float)};
    scratch.resize(payload.size() / sizeof(float));
    std::memcpy(scratch.data(), payload.data(), scratch.size() * sizeof(float));
    return scratch;
  }

  void hello(const Layout& layout) {
    const std::string text = layout.to_json().dump();
    const auto deadline = std::chrono::steady_clock::now() + options.ready_timeout;
    while (true) {
      const wire::RequestHeader h = header(wire::Op::hello, 0);
      zmq::message_t payload(text.data(), text.size());
      send(h, payload);
      zmq::message_t answer;
      wire::ReplyHeader r;
      do r = receive(answer, "hello");
      while (r.sequence != h.sequence);  // a late answer to an earlier request
      if (r.status == wire::Status::not_ready && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      if (r.status != wire::Status::ok) refused(r, answer, "this worker's hello");
      try {
        const nlohmann::json info = nlohmann::json::parse(answer.to_string_view());
        chunk_elements = json_integer<std::size_t>(info.at("chunk_elements"));
        num_chunks = json_integer<std::size_t>(info.at("num_chunks"));
        total_size = json_integer<std::size_t>(info.at("total_size"));
      } catch (const std::exception& e) {
        throw ProtocolError(str_cat("the parameter server at ", options.endpoint, " sent a malformed hello: ",
                                    e.what()));
      }
      if (total_size != layout.total_size() || chunk_elements == 0 ||
          num_chunks != (total_size + chunk_elements - 1) / chunk_elements)
        throw ProtocolError(str_cat("the parameter server at ", options.endpoint, " describes ", num_chunks,
                                    " chunks of ", chunk_elements, " for ", total_size, " values"));
      return;
    }
  }

  // Sends every chunk (windowed) and takes each answer as it arrives.
  void exchange(wire::Op op, const CenterUpdate& update, const Fill* fill, const Take& take) {
    const std::size_t window = std::max<std::size_t>(1, options.window);
    const std::uint64_t first = next_sequence;
    std::map<std::uint64_t, std::size_t> in_flight;  // sequence -> chunk
    std::size_t next = 0;
    const char* what = op == wire::Op::sync ? "a sync" : "a pull";
    while (next < num_chunks || !in_flight.empty()) {
      while (in_flight.size() < window && next < num_chunks) {
        wire::RequestHeader h = header(op, next);
        h.update = update;
        zmq::message_t payload;
        if (fill) {
          payload.rebuild(chunk_size(next) * sizeof(float));
          (*fill)(next, std::span<float>(static_cast<float*>(payload.data()), chunk_size(next)));
        }
        send(h, payload);
        in_flight[h.sequence] = next++;
      }
      zmq::message_t answer;
      const wire::ReplyHeader r = receive(answer, what);
      const auto it = in_flight.find(r.sequence);
      if (it == in_flight.end()) {
        if (r.sequence < first) continue;  // from a sync that failed earlier: nothing waits for it
        throw ProtocolError(str_cat("the parameter server at ", options.endpoint, " answered request ", r.sequence,
                                    ", which was never sent"));
      }
      const std::size_t chunk = it->second;
      in_flight.erase(it);
      if (r.status != wire::Status::ok) refused(r, answer, str_cat(what, " of chunk ", chunk));
      if (answer.size() != chunk_size(chunk) * sizeof(float))
        throw ProtocolError(str_cat("the parameter server at ", options.endpoint, " answered chunk ", chunk, " with ",
                                    answer.size(), " bytes, expected ", chunk_size(chunk) * sizeof(float)));
      take(chunk, floats(answer));
    }
  }
};

RemoteCenter::RemoteCenter(Options options, const Layout& layout) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->hello(layout);
}

RemoteCenter::~RemoteCenter() = default;

std::size_t RemoteCenter::chunk_elements() const { return impl_->chunk_elements; }
std::size_t RemoteCenter::num_chunks() const { return impl_->num_chunks; }
const std::string& RemoteCenter::endpoint() const { return impl_->options.endpoint; }

void RemoteCenter::sync(const CenterUpdate& update, const Fill& fill, const Take& take) {
  impl_->exchange(wire::Op::sync, update, &fill, take);
}

void RemoteCenter::pull(const Take& take) { impl_->exchange(wire::Op::pull, CenterUpdate{}, nullptr, take); }

}  // namespace platoon
