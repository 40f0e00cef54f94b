// The controller of the Fashion-MNIST examples (MLP and LSTM): a Lieutenant
// speaking this protocol with the workers:
//
//   worker: "next", req_info {"done": j} -> {"action": "train", "minibatches": k}
//                                      {"action": "valid"} | {"action": "stop"}
//                                      (j: minibatches trained since the last "next")
//   worker: {"valid_error": e}      -> {"best": bool} (validation of the center)
//   worker: {"finished": true}      -> {"test": bool} (last one evaluates the test set)
//   worker: {"test_accuracy": a}    -> "ok"
//           (synchronous workers add "parameters": "best validation" or "final")
//
// It stops the job after a number of minibatches, a time budget, a target
// validation accuracy, or `patience` validations without improvement; the
// workers are told "stop" at their next request and leave gracefully. The
// time budget ends the job even when no worker asks (no worker joined, or
// every one is busy).
#pragma once

#include <chrono>
#include <optional>
#include <set>

#include "platoon/lieutenant.hpp"
#include "schedule.hpp"

namespace platoon::examples {

class ExampleController : public Lieutenant {
 public:
  ExampleController(Lieutenant::Options options, ScheduleOptions schedule);

  /// The test accuracy reported by the last worker, once it has.
  [[nodiscard]] std::optional<double> test_accuracy() const { return test_accuracy_; }
  /// Prints the job's summary (why it stopped, minibatches, best error, test accuracy).
  void log_summary() const;

 protected:
  nlohmann::json handle_control(const nlohmann::json& req, const WorkerInfo& worker,
                                const nlohmann::json& req_info) override;
  void on_worker_lost(const WorkerInfo& worker, const std::string& reason) override;
  /// Ends the job once the time budget is spent, even if no worker asks.
  void on_tick() override;

 private:
  [[nodiscard]] double elapsed_seconds() const;

  TrainingSchedule schedule_;
  std::chrono::steady_clock::time_point started_;
  std::optional<int> validating_worker_;
  std::set<int> finished_;
  bool test_assigned_ = false;
  std::optional<double> test_accuracy_;
  std::string test_parameters_;  // which parameters the test measured, quoted; "" when not said
};

/// main() of an example controller: parses the flags, serves the job,
/// prints the summary. Returns the process exit code.
int run_example_controller(int argc, char** argv, const ScheduleOptions& defaults);

}  // namespace platoon::examples
