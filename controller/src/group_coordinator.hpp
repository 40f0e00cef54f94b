// The controller's half of synchronous groups: it forms each epoch of the
// group from the workers that ask, creates that epoch's segment, and retires
// it when the next one forms.
//
// Epoch 0 forms when `initial_size` workers have asked, or `form_timeout`
// after the first ask with those that did. A later epoch forms when every
// member of the current one has asked again (after a lost peer, or when rank
// 0 learned that workers wait to join), leaving out the members that were
// reported lost, left the job, or did not ask within `form_timeout`.
// Workers that ask while an epoch runs wait for its end: rank 0's next group
// request is answered "regroup" instead of going to handle_control().
// Ranks: the members that go on keep their order (rank 0 always holds the
// job's current state, which every epoch starts by copying), newcomers
// follow by worker id.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "platoon/collective/shm_collective.hpp"
#include "platoon/common/log.hpp"
#include "platoon/common/params.hpp"
#include "platoon/lieutenant.hpp"

namespace platoon::detail {

class GroupCoordinator {
 public:
  using Clock = std::chrono::steady_clock;

  struct Settings {
    std::string job_id;
    ProcessId controller;
    int initial_size = 1;
    std::chrono::milliseconds form_timeout{10'000};
  };

  GroupCoordinator(Settings settings, const Logger& log);
  ~GroupCoordinator();
  GroupCoordinator(const GroupCoordinator&) = delete;
  GroupCoordinator& operator=(const GroupCoordinator&) = delete;

  /// Answers platoon-group-join from `worker`. Throws ProtocolError for a
  /// malformed request, LayoutError when the worker's parameters (or its
  /// optimizer state) differ from those of the first worker that asked.
  nlohmann::json join(const WorkerInfo& worker, const nlohmann::json& info, bool job_ending, Clock::time_point now);

  /// Checks platoon-group-request from `worker`: returns {"regroup": true}
  /// when the group must change first, nullopt when handle_control() should
  /// answer. Throws ProtocolError if the worker is not rank 0 of the current
  /// epoch named in the request.
  std::optional<nlohmann::json> check_request(const WorkerInfo& worker, const nlohmann::json& info);

  /// A worker left the job or was lost.
  void worker_gone(int worker_id, Clock::time_point now);

  /// Forms an epoch whose deadline has passed.
  void poll(Clock::time_point now);

  /// Retires and removes the current epoch's segment (job end).
  void end() noexcept;

  /// Whether a worker has asked to join, or an epoch has formed.
  [[nodiscard]] bool started() const { return epoch_ >= 0 || !asking_.empty(); }
  /// The current epoch, or -1 before the first.
  [[nodiscard]] std::int64_t epoch() const { return epoch_; }
  /// The worker ids of the current epoch, in rank order.
  [[nodiscard]] const std::vector<int>& members() const { return members_; }

 private:
  struct Asker {
    WorkerInfo worker;
    std::string slot;
    std::size_t slot_elements = 0;
    Layout layout;
    std::vector<std::size_t> state_sizes;
  };

  // Throws LayoutError when `asker`'s parameters or state differ from the group's.
  void check_layout(const WorkerInfo& worker, const Asker& asker);

  bool member(int worker_id) const;
  bool ready(Clock::time_point now) const;
  void form();
  std::string segment_name(std::int64_t epoch) const;
  nlohmann::json placement(int worker_id) const;

  Settings settings_;
  const Logger& log_;
  std::int64_t epoch_ = -1;
  std::vector<int> members_;
  std::optional<GroupSegment> segment_;
  std::optional<Layout> layout_;  // of the first worker that asked; every later one must match
  std::vector<std::size_t> state_sizes_;
  std::map<int, Asker> asking_;  // by worker id
  std::set<int> out_;            // members of the current epoch that will not be in the next
  bool forming_ = false;         // a member asked for the next epoch
  Clock::time_point deadline_{};
};

}  // namespace platoon::detail
