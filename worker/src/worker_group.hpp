// The worker's half of a synchronous group (Soldier::init_group and the calls
// after it): its slot in shared memory, its place in the current epoch, and
// the hand-over of rank 0's state whenever an epoch forms.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "platoon/collective/shm_collective.hpp"
#include "platoon/common/log.hpp"
#include "platoon/common/params.hpp"
#include "platoon/shm/shm_object.hpp"
#include "platoon/soldier.hpp"

namespace platoon::detail {

class WorkerGroup {
 public:
  /// Sends a framework request to the controller and returns its reply
  /// (ErrorReply, TimeoutError as the control client throws them).
  using Ask = std::function<nlohmann::json(std::string_view name, const nlohmann::json& info)>;

  struct Settings {
    std::string slot_name;  ///< "<job segment>.slot-w<worker id>"
    ProcessId controller;
    std::chrono::milliseconds collective_timeout;
    std::chrono::milliseconds group_timeout;
  };

  /// Creates this worker's slot (as long as the layout of `state.params`,
  /// and at least a small scratch area). Throws LayoutError for a bad
  /// layout, ResourceError when shared memory is short.
  WorkerGroup(Settings settings, Soldier::GroupState& state, Ask ask, const Logger& log);
  /// Removes the slot.
  ~WorkerGroup();
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  /// Joins the epoch after the current one (the first epoch the first
  /// time), passing the rank lost in the current one if known, and takes
  /// rank 0's state. False when the job is ending.
  bool join();

  [[nodiscard]] bool joined() const { return collective_ != nullptr; }
  [[nodiscard]] Collective& collective();
  [[nodiscard]] GroupPosition position() const;
  [[nodiscard]] std::span<float> gradients();
  [[nodiscard]] std::vector<ParamView> gradient_views();
  void all_reduce(std::span<float> data, ReduceOp op);
  /// See Soldier::send_req_collective.
  nlohmann::json request(const nlohmann::json& req, const nlohmann::json& req_info);

 private:
  void take_state_from_rank0();

  Settings settings_;
  Soldier::GroupState& state_;
  Ask ask_;
  const Logger& log_;
  Layout layout_;
  std::vector<std::size_t> state_sizes_;
  ShmObject slot_;
  std::unique_ptr<ShmCollective> collective_;
  std::int64_t epoch_ = -1;  // the epoch this worker was last placed in
};

}  // namespace platoon::detail
