// Helpers for tests that run a Soldier against a controller served on a
// thread (ServedController, test_support.hpp).
#pragma once

#include <chrono>

#include "platoon/lieutenant.hpp"
#include "platoon/soldier.hpp"
#include "test_support.hpp"

namespace platoon::testing {

/// A controller that answers "ok" to everything and ends the job on "end".
class EndOnRequestController : public Lieutenant {
 public:
  EndOnRequestController() : Lieutenant(test_controller_options()) {}
  explicit EndOnRequestController(Lieutenant::Options options) : Lieutenant(std::move(options)) {}

 protected:
  nlohmann::json handle_control(const nlohmann::json& req, const WorkerInfo&, const nlohmann::json&) override {
    if (req == "end") end_job();
    return "ok";
  }
};

/// A Soldier's options for `served`: 5 s bounds on requests, the center and
/// its locks, and a lost controller thrown, never exiting the test binary.
inline Soldier::Options soldier_options_for(const ServedController& served) {
  Soldier::Options options;
  options.endpoint = served.endpoint();
  options.timeout = std::chrono::seconds(5);
  options.params_timeout = std::chrono::seconds(5);
  options.lock_timeout = std::chrono::seconds(5);
  options.on_controller_lost = Soldier::Options::OnControllerLost::throw_error;
  return options;
}

}  // namespace platoon::testing
