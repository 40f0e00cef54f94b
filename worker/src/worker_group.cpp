#include "worker_group.hpp"

#include <algorithm>
#include <thread>

#include "platoon/channel/protocol.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"

namespace platoon::detail {

namespace {

// A slot never holds less than this, so that small models still move their
// control replies and state in few rounds.
constexpr std::size_t kMinSlotElements = std::size_t{1} << 16;

std::vector<std::size_t> sizes_of(const std::vector<std::span<float>>& buffers) {
  std::vector<std::size_t> sizes;
  for (const std::span<float> b : buffers) sizes.push_back(b.size());
  return sizes;
}

// How a failure on rank 0 travels to the other ranks of the group.
nlohmann::json failure_message(std::string_view kind, std::string_view message) {
  return {{"failed", {{"kind", kind}, {"message", message}}}};
}

[[noreturn]] void rethrow_failure(const nlohmann::json& failed) {
  const std::string kind = failed.value("kind", "error");
  const std::string message = failed.value("message", "");
  if (kind == "timeout") throw TimeoutError(message);
  if (kind == "peer-lost") throw PeerLostError(message);
  if (kind == "layout-mismatch") throw LayoutError(message);
  throw ErrorReply(kind, message);
}

}  // namespace

WorkerGroup::WorkerGroup(Settings settings, Soldier::GroupState& state, Ask ask, const Logger& log)
    : settings_(std::move(settings)), state_(state), ask_(std::move(ask)), log_(log) {
  if (settings_.collective_timeout.count() <= 0) throw Error("Soldier::Options::collective_timeout must be positive");
  if (settings_.group_timeout.count() <= 0) throw Error("Soldier::Options::group_timeout must be positive");
  layout_ = Layout::of(state_.params);
  state_sizes_ = sizes_of(state_.state);
  slot_ = create_slot(settings_.slot_name, std::max(layout_.total_size(), kMinSlotElements), settings_.controller);
}

WorkerGroup::~WorkerGroup() {
  collective_.reset();
  if (slot_.mapped()) ShmObject::remove(slot_.name());
}

bool WorkerGroup::join() {
  const auto deadline = std::chrono::steady_clock::now() + settings_.group_timeout;
  for (;;) {
    nlohmann::json info = {{"after_epoch", epoch_},
                           {"slot", slot_.name()},
                           {"slot_elements", slot_values(slot_).size()},
                           {"layout", layout_.to_json()},
                           {"state_sizes", state_sizes_}};
    if (collective_ && collective_->lost_rank() >= 0) info["lost_rank"] = collective_->lost_rank();
    collective_.reset();  // this epoch is over for this worker

    nlohmann::json place;
    for (;;) {
      place = ask_(protocol::kGroupJoin, info);
      if (place.value("job_over", false)) return false;
      if (!place.value("wait", false)) break;
      if (std::chrono::steady_clock::now() >= deadline)
        throw TimeoutError(str_cat("no group epoch took this worker within ", settings_.group_timeout.count(),
                                   " ms (the group is at epoch ", place.value("epoch", nlohmann::json()).dump(), ")"));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::string segment;
    int rank = -1;
    try {
      epoch_ = json_integer<std::int64_t>(place.at("epoch"));
      rank = json_integer<int>(place.at("rank"));
      segment = place.at("segment").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
      throw ProtocolError(str_cat("malformed group placement ", protocol::quote(place), ": ", e.what()));
    }
    try {
      collective_ = ShmCollective::attach(segment, rank, slot_, settings_.collective_timeout);
      take_state_from_rank0();
      log_.info("group: ", collective_->describe());
      return true;
    } catch (const PeerLostError& e) {
      // A member died while the epoch was starting: on to the next one.
      log_.warn("group epoch ", epoch_, " broke as it formed: ", e.what());
    } catch (const ResourceError& e) {
      // The epoch was already replaced (its segment is gone).
      log_.warn("group epoch ", epoch_, " ended before this worker mapped it: ", e.what());
    }
    if (std::chrono::steady_clock::now() >= deadline)
      throw TimeoutError(str_cat("no group epoch held together within ", settings_.group_timeout.count(), " ms"));
  }
}

void WorkerGroup::take_state_from_rank0() {
  ShmCollective& c = *collective_;
  if (c.size() == 1) return;
  std::string progress = c.rank() == 0 ? state_.progress.dump() : std::string();
  c.broadcast_bytes(progress, 0);
  for (const ParamView& p : state_.params) c.broadcast(p.values(), 0);
  for (const std::span<float> s : state_.state) c.broadcast(s, 0);
  if (c.rank() != 0) state_.progress = nlohmann::json::parse(progress);
}

Collective& WorkerGroup::collective() {
  if (!collective_) throw Error("this worker is in no group: init_group() first, or regroup() after a failure");
  return *collective_;
}

GroupPosition WorkerGroup::position() const {
  if (!collective_) return {static_cast<std::uint64_t>(std::max<std::int64_t>(epoch_, 0)), -1, 0};
  return collective_->position();
}

std::span<float> WorkerGroup::gradients() { return slot_values(slot_).first(layout_.total_size()); }

std::vector<ParamView> WorkerGroup::gradient_views() {
  std::vector<ParamView> views;
  float* base = gradients().data();
  for (const LayoutEntry& e : layout_.entries()) views.push_back({e.name, base + e.offset, e.shape});
  return views;
}

void WorkerGroup::all_reduce(std::span<float> data, ReduceOp op) {
  collective().all_reduce(data, op, settings_.collective_timeout);
}

nlohmann::json WorkerGroup::request(const nlohmann::json& req, const nlohmann::json& req_info) {
  // Rank 0's reply, kept when its broadcast failed: the controller has
  // answered it once, and must not count it twice.
  std::string undelivered;
  for (;;) {
    Collective& c = collective();
    std::string bytes;
    std::exception_ptr failure;
    if (c.rank() == 0) {
      if (!undelivered.empty()) {
        bytes = std::move(undelivered);
      } else {
        try {
          bytes = ask_(protocol::kGroupRequest, {{"epoch", epoch_}, {"req", req}, {"req_info", req_info}}).dump();
        } catch (const ErrorReply& e) {
          bytes = failure_message(e.kind(), e.what()).dump();
        } catch (const TimeoutError& e) {
          bytes = failure_message("timeout", e.what()).dump();
          failure = std::current_exception();
        } catch (const PeerLostError& e) {
          bytes = failure_message("peer-lost", e.what()).dump();
          failure = std::current_exception();
        }
      }
    }
    const std::string asked = bytes;
    try {
      c.broadcast_bytes(bytes, 0, settings_.collective_timeout);
    } catch (const PeerLostError&) {
      if (c.rank() == 0 && !failure) undelivered = asked;
      if (!join()) return nullptr;
      continue;
    }
    if (failure) std::rethrow_exception(failure);
    nlohmann::json reply;
    try {
      reply = nlohmann::json::parse(bytes);
    } catch (const nlohmann::json::exception& e) {
      throw ProtocolError(str_cat("rank 0 broadcast a reply that is not JSON: ", e.what()));
    }
    if (reply.contains("failed")) rethrow_failure(reply.at("failed"));
    if (reply.value("regroup", false)) {
      if (!join()) return nullptr;
      continue;
    }
    if (!reply.contains("reply")) throw ProtocolError(str_cat("malformed group reply ", bytes));
    return reply.at("reply");
  }
}

}  // namespace platoon::detail
