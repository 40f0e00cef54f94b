#include "group_coordinator.hpp"

#include <algorithm>

#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"

namespace platoon::detail {

GroupCoordinator::GroupCoordinator(Settings settings, const Logger& log)
    : settings_(std::move(settings)), log_(log) {
  if (settings_.initial_size < 1) throw Error(str_cat("group size must be at least 1, got ", settings_.initial_size));
  if (settings_.initial_size > kMaxShmGroupSize)
    throw Error(str_cat("group size ", settings_.initial_size, " is above the limit of ", kMaxShmGroupSize));
  if (settings_.form_timeout.count() <= 0) throw Error("the group form timeout must be positive");
}

GroupCoordinator::~GroupCoordinator() { end(); }

std::string GroupCoordinator::segment_name(std::int64_t epoch) const {
  return str_cat("platoon-", settings_.job_id, ".group-", epoch);
}

bool GroupCoordinator::member(int worker_id) const {
  return std::find(members_.begin(), members_.end(), worker_id) != members_.end();
}

nlohmann::json GroupCoordinator::placement(int worker_id) const {
  const auto it = std::find(members_.begin(), members_.end(), worker_id);
  PLATOON_ENFORCE(it != members_.end(), "placement of a worker outside the group");
  return {{"epoch", epoch_},
          {"rank", it - members_.begin()},
          {"size", members_.size()},
          {"segment", segment_name(epoch_)},
          {"members", members_}};
}

nlohmann::json GroupCoordinator::join(const WorkerInfo& worker, const nlohmann::json& info, bool job_ending,
                                      Clock::time_point now) {
  if (!info.is_object()) throw ProtocolError("platoon-group-join needs req_info {after_epoch, slot, slot_elements}");
  std::int64_t after = -1;
  Asker asker;
  asker.worker = worker;
  std::optional<int> lost_rank;
  try {
    after = json_integer<std::int64_t>(info.at("after_epoch"));
    asker.slot = info.at("slot").get<std::string>();
    asker.slot_elements = json_integer<std::size_t>(info.at("slot_elements"));
    if (info.contains("lost_rank") && !info.at("lost_rank").is_null()) lost_rank = json_integer<int>(info.at("lost_rank"));
    asker.layout = Layout::from_json(info.at("layout"));
    asker.state_sizes = json_integers<std::size_t>(info.at("state_sizes"));
  } catch (const nlohmann::json::exception& e) {
    throw ProtocolError(str_cat("platoon-group-join req_info is malformed: ", e.what()));
  }
  if (asker.slot_elements < asker.layout.total_size())
    throw ProtocolError(str_cat("worker ", worker.id, "'s slot holds ", asker.slot_elements,
                                " floats, fewer than its layout's ", asker.layout.total_size()));
  if (worker.host != host_name())
    throw ProtocolError(str_cat("worker ", worker.id, " runs on host ", worker.host,
                                ": a shared-memory group holds the workers of the controller's host only"));
  if (!asker.slot.starts_with(str_cat("platoon-", settings_.job_id, ".")))
    throw ProtocolError(str_cat("worker ", worker.id, "'s slot '", asker.slot, "' is not named after job ",
                                settings_.job_id));
  check_layout(worker, asker);
  if (after > epoch_)
    throw ProtocolError(str_cat("worker ", worker.id, " asks to follow epoch ", after, ", but the group is at epoch ",
                                epoch_));
  // Already placed in an epoch after the one it names: it is polling.
  if (epoch_ > after && member(worker.id)) return placement(worker.id);
  if (job_ending) return {{"job_over", true}};

  asking_[worker.id] = asker;
  if (after == epoch_ && epoch_ >= 0 && member(worker.id)) {
    if (!forming_) {
      forming_ = true;
      deadline_ = now + settings_.form_timeout;
      log_.info("group: worker ", worker.id, " asks for the epoch after ", epoch_,
                lost_rank ? str_cat(" (it lost rank ", *lost_rank, ")") : std::string());
    }
    if (lost_rank && *lost_rank >= 0 && static_cast<std::size_t>(*lost_rank) < members_.size() &&
        members_[*lost_rank] != worker.id)
      out_.insert(members_[*lost_rank]);
  } else if (asking_.size() == 1 && epoch_ < 0) {
    deadline_ = now + settings_.form_timeout;  // epoch 0 forms at the latest then
  }
  if (ready(now)) form();
  if (member(worker.id) && epoch_ > after) return placement(worker.id);
  return {{"wait", true}, {"epoch", epoch_}};
}

void GroupCoordinator::check_layout(const WorkerInfo& worker, const Asker& asker) {
  if (!layout_) {
    // The first worker to ask sets the group's layout for the whole job.
    layout_ = asker.layout;
    state_sizes_ = asker.state_sizes;
    return;
  }
  const std::string group = str_cat("the group's layout (job ", settings_.job_id, ")");
  layout_->require_same(asker.layout, group, str_cat("worker ", worker.id, "'s parameters"));
  if (asker.state_sizes != state_sizes_) {
    auto list = [](const std::vector<std::size_t>& v) {
      std::string out;
      for (const std::size_t n : v) out += str_cat(out.empty() ? "" : ", ", n);
      return str_cat("[", out, "]");
    };
    throw LayoutError(str_cat("worker ", worker.id, "'s optimizer state has buffers of ", list(asker.state_sizes),
                              " floats, the group's has ", list(state_sizes_)));
  }
}

bool GroupCoordinator::ready(Clock::time_point now) const {
  if (asking_.empty()) return false;
  if (epoch_ < 0) return static_cast<int>(asking_.size()) >= settings_.initial_size || now >= deadline_;
  // Members of the current epoch that are still expected to ask.
  bool members_left = false;
  bool all_asked = true;
  for (const int id : members_) {
    if (out_.contains(id)) continue;
    members_left = true;
    if (!asking_.contains(id)) all_asked = false;
  }
  if (!members_left) return true;  // nobody to wait for: the newcomers form the next epoch
  if (!forming_) return false;     // the members are training: newcomers wait for a boundary
  return all_asked || now >= deadline_;
}

void GroupCoordinator::form() {
  // Members that go on keep their order, so rank 0 is always a worker that
  // holds the job's current state; newcomers follow, by worker id.
  std::vector<int> next;
  for (const int id : members_)
    if (asking_.contains(id) && !out_.contains(id)) next.push_back(id);
  for (const auto& [id, asker] : asking_)
    if (std::find(next.begin(), next.end(), id) == next.end()) next.push_back(id);
  std::vector<GroupMember> members;
  for (const int id : next) {
    const Asker& a = asking_.at(id);
    members.push_back({a.worker.process, a.slot, a.slot_elements});
  }
  const std::int64_t epoch = epoch_ + 1;
  GroupSegment segment = GroupSegment::create(segment_name(epoch), settings_.job_id, static_cast<std::uint64_t>(epoch),
                                              members, settings_.controller);
  std::vector<int> left_out;
  for (const int id : members_)
    if (std::find(next.begin(), next.end(), id) == next.end()) left_out.push_back(id);
  end();  // retire the old epoch: a straggler still in it is released at once
  segment_.emplace(std::move(segment));
  epoch_ = epoch;
  members_ = std::move(next);
  asking_.clear();
  out_.clear();
  forming_ = false;
  std::string ids;
  for (const int id : members_) ids += str_cat(ids.empty() ? "" : ", ", id);
  std::string left;
  for (const int id : left_out) left += str_cat(left.empty() ? "" : ", ", id);
  log_.info("group: epoch ", epoch_, " formed with ", members_.size(), " worker(s) [", ids, "]",
            left.empty() ? std::string() : str_cat("; left out: [", left, "]"));
}

std::optional<nlohmann::json> GroupCoordinator::check_request(const WorkerInfo& worker, const nlohmann::json& info) {
  std::int64_t epoch = -1;
  try {
    epoch = json_integer<std::int64_t>(info.at("epoch"));
  } catch (const nlohmann::json::exception& e) {
    throw ProtocolError(str_cat("platoon-group-request req_info is malformed: ", e.what()));
  }
  if (epoch != epoch_ || members_.empty() || members_.front() != worker.id)
    throw ProtocolError(str_cat("worker ", worker.id, " is not rank 0 of group epoch ", epoch, " (the group is at epoch ",
                                epoch_, "): only rank 0 of the current epoch asks for its group"));
  bool newcomers = false;
  for (const auto& [id, asker] : asking_)
    if (!member(id)) newcomers = true;
  if (forming_ || newcomers || !out_.empty()) return nlohmann::json{{"regroup", true}};
  return std::nullopt;
}

void GroupCoordinator::worker_gone(int worker_id, Clock::time_point now) {
  asking_.erase(worker_id);
  if (member(worker_id)) {
    out_.insert(worker_id);
    // Whoever still waits for it in a collective learns at once.
    const auto rank = std::find(members_.begin(), members_.end(), worker_id) - members_.begin();
    if (segment_) segment_->lose(static_cast<int>(rank));
  }
  if (ready(now)) form();
}

void GroupCoordinator::poll(Clock::time_point now) {
  if (ready(now)) form();
}

void GroupCoordinator::end() noexcept {
  if (!segment_) return;
  segment_->retire();
  GroupSegment::remove(segment_->name());
  segment_.reset();
}

}  // namespace platoon::detail
